"""stp.selfplay: the self-play loop (`python -m stp.selfplay`, `stp.selfplay.loop.run_selfplay`).

See docs/selfplay.md.
"""
