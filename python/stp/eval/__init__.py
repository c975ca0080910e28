"""stp.eval"""
