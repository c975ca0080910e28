"""Settings of the verification pool (stp.verify)."""

from __future__ import annotations

from typing import Literal

import msgspec

from stp.ranges import NonNegativeInt, PositiveFloat, PositiveInt


class VerifierConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "local": a process pool on this machine; "ray": one pool per Ray node.
    backend: Literal["local", "ray"] = "local"
    # Checker processes per pool (0 = one per CPU, minus cluster.reserved_cpus).
    workers: NonNegativeInt = 0
    # Wall-clock limit of one check; the worker is killed and the item marked `timeout`.
    timeout_s: PositiveFloat = 200.0
    # Private resident memory cap per worker (RSS minus file-backed pages such as mmap'd oleans,
    # over its process tree); a worker above it is recycled, its item marked `memory`; 0 = no cap.
    memory_mb: NonNegativeInt = 12_000
    # How often the pool samples each worker's private resident memory.
    memory_check_s: PositiveFloat = 1.0
    # Optional hard address-space limit per worker (RLIMIT_AS, MiB; 0 = none). Must leave room
    # for the whole mmap'd Mathlib olean set (check `du -sh` of the olean directory).
    rlimit_as_mb: NonNegativeInt = 0
    # Requests in flight per worker: hides the pipe round trip without starving other workers.
    pipeline_depth: PositiveInt = 2
    # Recycle a worker after this many checks (Lean processes grow; 0 = never).
    recycle_after: NonNegativeInt = 2_000
    # Warm pools kept per distinct header (least recently used evicted).
    max_header_pools: PositiveInt = 4
    # Seconds to wait for a worker to import its header before it counts as crashed.
    start_timeout_s: PositiveFloat = 600.0
    # A crashed check is retried this many times on a fresh worker before it is marked `crash`.
    crash_retries: NonNegativeInt = 1
    # Persistent result cache (SQLite, local); empty = <run_dir>/verify-cache; "off" = none.
    cache_dir: str = ""
    # Ask the checker for the Mathlib premises each passing proof used.
    premises: bool = False
    # Re-verify passing proofs with the independent lean-interact backend.
    cross_check: bool = False
    # Ray backend: resources of one worker.
    cpus_per_worker: PositiveFloat = 1.0
    # Memory Ray reserves per worker; 0 = no reservation.
    memory_per_worker_mb: NonNegativeInt = 12_000
