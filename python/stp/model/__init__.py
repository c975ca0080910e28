"""stp.model"""
