"""Facts of the machine this process runs on, defined once.

`available_cpus` is the one CPU-count rule of the project: the verifier's default worker count,
the extraction's worker count, Ray's `num_cpus` and the benchmarks' machine line all use it, so
a container pinned to 8 of 64 cores starts 8 checker processes, not 64. This module imports
nothing from `stp` (ground floor), so every package can use it without an upward import.
"""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask where the OS exposes one (Linux: taskset,
    cgroup cpusets, Slurm/Kubernetes pinning), else the machine's count (macOS)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def workers_after_reserve(reserved_cpus: int) -> int:
    """Worker processes for one-per-core pools (verifier, extraction): the usable CPUs minus
    those reserved for the driver and the sampler, at least one."""
    return max(1, available_cpus() - reserved_cpus)
