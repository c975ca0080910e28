"""stp.data"""
