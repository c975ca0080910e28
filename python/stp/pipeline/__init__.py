"""stp.pipeline: the paper's whole pipeline in one run directory (`python -m stp.pipeline`), and
the one sample→verify shard pipeline that self-play and evaluation share (`stp.pipeline.shards`).

See docs/selfplay.md.
"""
