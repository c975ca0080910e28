"""stp.lean"""
