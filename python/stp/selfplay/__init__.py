"""stp.selfplay: the self-play loop (`python -m stp.selfplay`, `stp.selfplay.loop.run_selfplay`).

Kept import-free on purpose: `stp.config` imports `stp.selfplay.config` while the CLI module is
still initialising, so importing the loop here would create an import cycle. See docs/selfplay.md.
"""
