"""stp.extract"""
