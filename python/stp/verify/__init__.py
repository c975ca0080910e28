"""stp.verify"""
