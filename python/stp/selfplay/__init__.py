"""stp.selfplay"""
