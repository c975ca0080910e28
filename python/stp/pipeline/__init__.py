"""stp.pipeline: the paper's whole pipeline in one run directory (`python -m stp.pipeline`), the
top floor of the package: it runs self-play, re-training and evaluation, and nothing below
imports it (the sample→verify runner they share is `stp.verify.runner`).

See docs/selfplay.md.
"""
