"""Settings of the verification pool (stp.verify)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from stp.lean.protocol import DEFAULT_MAX_RESPONSE_MB
from stp.ranges import NonNegativeInt, PositiveFloat, PositiveInt, UnitFloat

Backend = Literal["local", "ray"]
Sandbox = Literal["auto", "bwrap", "none"]
# How a pass is confirmed before it is cached, rewarded or counted (docs/verify.md):
# "replay": the judge (a process that never parses or elaborates text) re-adds the EXPORT of the
# check worker's pass through the kernel and compares it with the statement's REFERENCE from a
# statement process; "fresh": the same, plus a fresh re-check of the proof on top; "off": no
# confirmation. Under the paper profile (no exports) a pass is re-checked by a fresh worker.
Recheck = Literal["replay", "fresh", "off"]
# -1 = derived (see rlimit_as_mb), 0 = none, else MiB.
AddressSpaceMB = Annotated[int, Meta(ge=-1)]


class VerifierConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "local": a process pool on this machine; "ray": one pool per Ray node.
    backend: Backend = "local"
    # Checker processes per pool (0 = one per CPU, minus cluster.reserved_cpus).
    workers: NonNegativeInt = 0
    # Wall-clock limit of one check; the worker is killed and the item marked `timeout`. This is
    # also the per-check CPU bound (a worker lives for many checks, so RLIMIT_CPU cannot be).
    timeout_s: PositiveFloat = 200.0
    # Private resident memory cap per worker (RSS minus file-backed pages such as mmap'd oleans,
    # over its process tree); a worker above it is recycled, its item marked `memory`; 0 = no cap.
    memory_mb: NonNegativeInt = 12_000
    # How often the pool samples each worker's private resident memory.
    memory_check_s: PositiveFloat = 1.0
    # Hard address-space limit per worker (RLIMIT_AS, MiB). -1 = derived: memory_mb + the size of
    # every .olean under the Lake workspace (they are mmap'd) + 4096 MiB headroom; 0 = none.
    rlimit_as_mb: AddressSpaceMB = -1
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
    # Outage guard of self-play proving and evaluation (stp.verify.runner): attempts that got no
    # verdict (`error`, `crash`) are verified again this many times; if more than this fraction
    # of a stage's attempts still has none, the stage fails and a rerun verifies only those (the
    # original aborted a round above 0.5 %).
    unverified_retries: NonNegativeInt = 1
    max_unverified_fraction: UnitFloat = 0.005
    # Longest checker output line accepted (MiB); a longer one is a protocol error of the worker
    # and is never buffered beyond this.
    max_response_mb: PositiveInt = DEFAULT_MAX_RESPONSE_MB
    # Run checker processes (workers and the cross-check's REPL) under bubblewrap + seccomp
    # (stp.verify.sandbox, docs/verify.md). "auto" and "bwrap": required, also for a
    # lean.checker_command (no working bwrap is an error naming the fix); "none": no sandbox,
    # only when said explicitly, and then named in every report header.
    sandbox: Sandbox = "auto"
    # Extra paths bound read-only into the sandbox (e.g. the interpreter of a checker_command).
    sandbox_binds: list[str] = msgspec.field(default_factory=list)
    # Confirm every pass before it is cached, rewarded or counted (a pass the judge refutes is
    # `fail`; one it cannot judge is `error`). A strict pass must carry its EXPORT: a pass
    # without one is a protocol error, never re-checked some cheaper way instead.
    recheck: Recheck = "replay"
    # Judges (replay role) per header pool; 0 = sized from `workers` and the measured pass rate
    # and judge/check time ratio (stp.verify.pool.judge_target). Outside the `workers` cap.
    replay_workers: NonNegativeInt = 0
    # Statement processes running at once per header pool; 0 = sized like the judges
    # (stp.verify.pool.statement_target). Each is single-use: one batch, then it exits.
    statement_workers: NonNegativeInt = 0
    # Statements per statement process (a compromised one can misstate at most its batch).
    statement_batch: PositiveInt = 32
    # Largest EXPORT (joined chunks) accepted; a larger one makes the item `error`
    # (`export_too_large`).
    max_export_mb: PositiveInt = 256
    # Fresh workers kept started per header pool, ready for fresh pass re-checks (each runs one);
    # used by recheck = "fresh" and under the paper profile.
    recheck_spares: NonNegativeInt = 1
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
