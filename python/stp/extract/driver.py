"""Running the Lean extractor over many Mathlib modules, resumably.

Each module is one unit of work: the extractor re-elaborates its file (the cost of building it),
and the driver stores the raw protocol lines in `raw/<module>.jsonl.gz` and a copy of the exact
source bytes in `sources/<module>.lean`, each written atomically. A module whose raw shard exists
is done; rerunning the command after a crash or Ctrl-C processes only the rest. Assembly
(`assemble.py`) runs afterwards over all shards and is cheap, so it is simply redone.

Parallelism: local extractor processes (one per worker thread), or Ray tasks when a cluster
address is given (the Mathlib checkout must be at the same path on every node). Either way a
process is restarted after `extract.modules_per_process` modules, because Lean keeps a copy of
every `.olean` a process re-imports (see `stp.lean.extractor`); a restart loses nothing, since the
unit of work and of storage is the module.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from stp import storage
from stp.errors import UsageError
from stp.extract.config import DEFAULT_MODULES_PER_PROCESS
from stp.extract.records import ModuleSummary
from stp.lean.extractor import ExtractorProcess
from stp.lean.protocol import (
    ExtractDone,
    ExtractFailed,
    ExtractorOutput,
    encode_line,
    extractor_output_decoder,
)
from stp.metrics import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModuleJob:
    module: str
    # Path handed to the extractor (absolute, or relative to its working directory).
    path: str
    # Path relative to the Mathlib root, recorded in the theorem records.
    rel_path: str


def discover_modules(mathlib_root: Path, prefixes: Iterable[str] = ()) -> list[ModuleJob]:
    """Modules under `<root>/Mathlib` (sorted), keeping those equal to or below a prefix."""
    root = mathlib_root.expanduser().resolve()
    base = root / "Mathlib"
    if not base.is_dir():
        raise UsageError(f"no Mathlib sources at {base} (pass --mathlib-dir, the directory "
                         "that contains Mathlib/, e.g. lean/.lake/packages/mathlib)")
    wanted = [p for p in prefixes if p]
    jobs = []
    for path in sorted(base.rglob("*.lean")):
        rel = path.relative_to(root).as_posix()
        module = rel[: -len(".lean")].replace("/", ".")
        if wanted and not any(module == p or module.startswith(p + ".") for p in wanted):
            continue
        jobs.append(ModuleJob(module, str(path), rel))
    if not jobs:
        raise UsageError(f"no module under {base} matches {', '.join(wanted) or 'anything'}")
    return jobs


def raw_path(out_dir: str, module: str) -> str:
    return storage.join(out_dir, "raw", f"{module}.jsonl.gz")


def source_path(out_dir: str, module: str) -> str:
    return storage.join(out_dir, "sources", f"{module}.lean")


def done_modules(out_dir: str) -> set[str]:
    """Modules whose raw shard exists (the resume state)."""
    raw_dir = storage.join(out_dir, "raw")
    if not storage.exists(raw_dir):
        return set()
    return {n[: -len(".jsonl.gz")] for n in storage.listdir(raw_dir) if n.endswith(".jsonl.gz")}


def read_raw(out_dir: str, module: str) -> list[ExtractorOutput]:
    return list(storage.iter_jsonl(raw_path(out_dir, module), type=ExtractorOutput))


def summarize(module: str, lines: list[ExtractorOutput]) -> ModuleSummary:
    for msg in reversed(lines):
        if isinstance(msg, ExtractDone):
            return ModuleSummary(module=module, status="done", commands=msg.commands,
                                 decls=msg.decls, lean_errors=len(msg.errors), ms=msg.ms)
        if isinstance(msg, ExtractFailed):
            return ModuleSummary(module=module, status="failed", message=msg.message)
    return ModuleSummary(module=module, status="failed", message="no done line")


def _store(out_dir: str, job: ModuleJob, source: bytes, lines: list[ExtractorOutput]) -> None:
    # Source first, shard last: the shard's existence marks the module as done.
    storage.write_bytes(source_path(out_dir, job.module), source)
    storage.write_jsonl(raw_path(out_dir, job.module), lines)


def _read_source(job: ModuleJob, cwd: str | None) -> bytes:
    return Path(job.path if cwd is None else os.path.join(cwd, job.path)).read_bytes()


def _run_local(jobs: list[ModuleJob], command: list[str], cwd: str | None, workers: int,
               premises: bool, timeout_s: float | None, restart_after: int
               ) -> Iterator[tuple[ModuleJob, bytes, list[ExtractorOutput]]]:
    local = threading.local()
    procs: list[ExtractorProcess] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work(job: ModuleJob) -> tuple[ModuleJob, bytes, list[ExtractorOutput]]:
        if stop.is_set():
            raise RuntimeError("extraction stopped")
        proc = getattr(local, "proc", None)
        if proc is None:
            proc = ExtractorProcess(command, cwd, timeout_s, restart_after=restart_after)
            local.proc = proc
            with lock:
                procs.append(proc)
        return job, _read_source(job, cwd), proc.extract(job.module, job.path, premises)

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="extract")
    try:
        pending: set[Future[tuple[ModuleJob, bytes, list[ExtractorOutput]]]] = set()
        queue = iter(jobs)
        for job in queue:
            pending.add(pool.submit(work, job))
            if len(pending) >= 2 * max(1, workers):
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(work, nxt))
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        with lock:
            for proc in procs:
                proc.kill()
        pool.shutdown(wait=True)


def _ray_batch(command: list[str], cwd: str | None, jobs: list[ModuleJob], premises: bool,
               timeout_s: float | None, restart_after: int
               ) -> list[tuple[ModuleJob, bytes, list[bytes]]]:
    """Body of one Ray task: extractor processes for a batch of modules."""
    proc = ExtractorProcess(command, cwd, timeout_s, restart_after=restart_after)
    out = []
    try:
        for job in jobs:
            lines = proc.extract(job.module, job.path, premises)
            out.append((job, _read_source(job, cwd), [encode_line(m) for m in lines]))
    finally:
        proc.kill()
    return out


def _run_ray(jobs: list[ModuleJob], command: list[str], cwd: str | None, premises: bool,
             timeout_s: float | None, batch: int, restart_after: int
             ) -> Iterator[tuple[ModuleJob, bytes, list[ExtractorOutput]]]:
    import ray

    from stp.cluster import LEAN_RESOURCE

    remote = ray.remote(num_cpus=1, resources={LEAN_RESOURCE: 1}, max_retries=1)(_ray_batch)
    refs = [remote.remote(command, cwd, jobs[i:i + batch], premises, timeout_s, restart_after)
            for i in range(0, len(jobs), batch)]
    try:
        while refs:
            ready, refs = ray.wait(refs, num_returns=1)
            for job, source, lines in ray.get(ready[0]):
                yield job, source, [extractor_output_decoder.decode(line) for line in lines]
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)


@dataclass
class RunResult:
    total: int
    resumed: int
    processed: list[ModuleSummary]
    seconds: float

    @property
    def failed(self) -> list[ModuleSummary]:
        return [s for s in self.processed if s.status == "failed"]


def run_extraction(jobs: list[ModuleJob], out_dir: str, command: list[str], *,
                   cwd: str | None = None, workers: int = 1, premises: bool = True,
                   timeout_s: float | None = None, retry_failed: bool = False,
                   ray_address: str = "", ray_batch: int = 4, progress: bool = True,
                   modules_per_process: int = DEFAULT_MODULES_PER_PROCESS,
                   on_module: Callable[[ModuleSummary], None] | None = None) -> RunResult:
    """Extract every job not already stored under `out_dir`; see the module docstring.

    `modules_per_process`: restart each extractor process after this many modules (0 = never)."""
    started = time.monotonic()
    done = done_modules(out_dir)
    if retry_failed:
        done = {m for m in done if summarize(m, read_raw(out_dir, m)).status == "done"}
    todo = [j for j in jobs if j.module not in done]
    resumed = len(jobs) - len(todo)
    if resumed:
        log.info("resuming: %d of %d modules already extracted", resumed, len(jobs))
    processed: list[ModuleSummary] = []
    bar = Progress(len(jobs), "extract", done=resumed, unit="modules",
                   enabled=None if progress else False) if todo else None
    if ray_address and todo:
        from stp.cluster import ClusterConfig, init_cluster

        init_cluster(ClusterConfig(address=ray_address if ray_address != "local" else ""))
        stream = _run_ray(todo, command, cwd, premises, timeout_s, ray_batch,
                          modules_per_process)
    else:
        stream = _run_local(todo, command, cwd, workers, premises, timeout_s,
                            modules_per_process)
    try:
        for job, source, lines in stream:
            _store(out_dir, job, source, lines)
            summary = summarize(job.module, lines)
            processed.append(summary)
            if summary.status == "failed":
                log.warning("%s: %s", job.module, summary.message)
            if bar is not None:
                bar.advance()
            if on_module is not None:
                on_module(summary)
    finally:
        if hasattr(stream, "close"):
            stream.close()
        if bar is not None:
            bar.close()
    return RunResult(total=len(jobs), resumed=resumed, processed=processed,
                     seconds=time.monotonic() - started)
