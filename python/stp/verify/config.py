"""Settings of the verification pool (stp.verify)."""

from __future__ import annotations

import msgspec


class VerifierConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "local": a process pool on this machine; "ray": one pool per Ray node.
    backend: str = "local"
    # Checker processes per pool (0 = one per CPU, minus cluster.reserved_cpus).
    workers: int = 0
    # Wall-clock limit of one check; the worker is killed and the item marked `timeout`.
    timeout_s: float = 200.0
    # Private resident memory cap per worker (RSS minus file-backed pages such as mmap'd oleans,
    # over its process tree); a worker above it is recycled, its item marked `memory`.
    memory_mb: int = 12_000
    # How often the pool samples each worker's private resident memory.
    memory_check_s: float = 1.0
    # Optional hard address-space limit per worker (RLIMIT_AS, MiB; 0 = none). Must leave room
    # for the whole mmap'd Mathlib olean set (check `du -sh` of the olean directory).
    rlimit_as_mb: int = 0
    # Requests in flight per worker: hides the pipe round trip without starving other workers.
    pipeline_depth: int = 2
    # Recycle a worker after this many checks (Lean processes grow; 0 = never).
    recycle_after: int = 2_000
    # Warm pools kept per distinct header (least recently used evicted).
    max_header_pools: int = 4
    # Seconds to wait for a worker to import its header before it counts as crashed.
    start_timeout_s: float = 600.0
    # A crashed check is retried this many times on a fresh worker before it is marked `crash`.
    crash_retries: int = 1
    # Outage guard of self-play proving and evaluation (stp.pipeline.shards): attempts that got no
    # verdict (`error`, `crash`) are verified again this many times; if more than this fraction
    # of a stage's attempts still has none, the stage fails and a rerun verifies only those (the
    # original aborted a round above 0.5 %).
    unverified_retries: int = 1
    max_unverified_fraction: float = 0.005
    # Persistent result cache (SQLite, local); empty = <run_dir>/verify-cache; "off" = none.
    cache_dir: str = ""
    # Ask the checker for the Mathlib premises each passing proof used.
    premises: bool = False
    # Re-verify passing proofs with the independent lean-interact backend.
    cross_check: bool = False
    # Ray backend: resources of one worker.
    cpus_per_worker: float = 1.0
    memory_per_worker_mb: int = 12_000
