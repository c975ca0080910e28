"""Running the Lean extractor over many Mathlib modules, resumably.

Each module is one unit of work: the extractor re-elaborates its file (the cost of building it),
and the driver stores the raw protocol lines in `raw/<module>.jsonl.gz` and a copy of the exact
source bytes in `sources/<module>.lean`, each written atomically. A module whose raw shard exists
is done; rerunning the command after a crash or Ctrl-C processes only the rest. Assembly
(`assemble.py`) runs afterwards over all shards and is cheap, so it is simply redone.

Parallelism: local extractor processes (one per worker thread; each serves many modules), or
Ray tasks when a cluster address is given (the Mathlib checkout must be at the same path on
every node).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import msgspec

from stp import storage
from stp.errors import UsageError
from stp.extract.records import ModuleSummary
from stp.lean.protocol import (
    ExtractDone,
    ExtractError,
    ExtractorOutput,
    ExtractRequest,
    encode_line,
    extractor_output_decoder,
)
from stp.metrics import Progress, get_logger

log = get_logger(__name__)
STDERR_TAIL = 2000


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


class ExtractorProcess:
    """One long-lived extractor process serving modules one at a time."""

    def __init__(self, command: list[str], cwd: str | None, timeout_s: float | None) -> None:
        self.command = command
        self.cwd = cwd
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr: tempfile._TemporaryFileWrapper[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        # Kept open for the process's lifetime (a file, not a pipe: Lean must never block on it).
        self.stderr = tempfile.NamedTemporaryFile(prefix="stp-extract-", suffix=".err")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self.stderr,
                                         start_new_session=True)
        except OSError as err:
            raise UsageError(f"cannot start the extractor {self.command[0]!r}: {err}") from None
        return self.proc

    def _stderr_tail(self) -> str:
        if self.stderr is None:
            return ""
        self.stderr.flush()
        with open(self.stderr.name, "rb") as fh:
            fh.seek(max(0, os.path.getsize(self.stderr.name) - STDERR_TAIL))
            return fh.read().decode("utf-8", "replace").strip()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None

    def extract(self, job: ModuleJob, premises: bool) -> list[ExtractorOutput]:
        """Protocol lines for one module, closed by Done or Error. A dead, hung or babbling
        process yields a synthesized ExtractError and is replaced for the next module."""
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        assert proc.stdin is not None and proc.stdout is not None
        timer = None
        timed_out = threading.Event()
        if self.timeout_s:
            def on_timeout() -> None:
                timed_out.set()
                self.kill_group(proc)
            timer = threading.Timer(self.timeout_s, on_timeout)
            timer.start()
        lines: list[ExtractorOutput] = []
        try:
            try:
                proc.stdin.write(encode_line(ExtractRequest(module=job.module, path=job.path,
                                                            premises=premises)))
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # reported below through the exit status
            for raw in proc.stdout:
                if not raw.strip():
                    continue
                try:
                    msg = extractor_output_decoder.decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as err:
                    self.kill()
                    return [*lines, ExtractError(module=job.module, message=f"protocol error: {err}: {raw[:200]!r}")]
                lines.append(msg)
                if isinstance(msg, ExtractDone | ExtractError) and msg.module == job.module:
                    return lines
            code = proc.wait()
            detail = "timed out" if timed_out.is_set() else f"exited with status {code}"
            tail = self._stderr_tail()
            self.kill()
            return [*lines, ExtractError(module=job.module, message=f"extractor {detail}" + (f": {tail}" if tail else ""))]
        finally:
            if timer is not None:
                timer.cancel()

    @staticmethod
    def kill_group(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def summarize(module: str, lines: list[ExtractorOutput]) -> ModuleSummary:
    for msg in reversed(lines):
        if isinstance(msg, ExtractDone):
            return ModuleSummary(module=module, status="done", commands=msg.commands,
                                 decls=msg.decls, lean_errors=len(msg.errors), ms=msg.ms)
        if isinstance(msg, ExtractError):
            return ModuleSummary(module=module, status="failed", message=msg.message)
    return ModuleSummary(module=module, status="failed", message="no done line")


def _store(out_dir: str, job: ModuleJob, source: bytes, lines: list[ExtractorOutput]) -> None:
    # Source first, shard last: the shard's existence marks the module as done.
    storage.write_bytes(source_path(out_dir, job.module), source)
    storage.write_jsonl(raw_path(out_dir, job.module), lines)


def _run_local(jobs: list[ModuleJob], command: list[str], cwd: str | None, workers: int,
               premises: bool, timeout_s: float | None
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
            proc = ExtractorProcess(command, cwd, timeout_s)
            local.proc = proc
            with lock:
                procs.append(proc)
        source = Path(job.path if cwd is None else os.path.join(cwd, job.path)).read_bytes()
        return job, source, proc.extract(job, premises)

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
               timeout_s: float | None) -> list[tuple[ModuleJob, bytes, list[bytes]]]:
    """Body of one Ray task: a fresh extractor process for a batch of modules."""
    proc = ExtractorProcess(command, cwd, timeout_s)
    out = []
    try:
        for job in jobs:
            source = Path(job.path if cwd is None else os.path.join(cwd, job.path)).read_bytes()
            lines = proc.extract(job, premises)
            out.append((job, source, [encode_line(m) for m in lines]))
    finally:
        proc.kill()
    return out


def _run_ray(jobs: list[ModuleJob], command: list[str], cwd: str | None, premises: bool,
             timeout_s: float | None, batch: int
             ) -> Iterator[tuple[ModuleJob, bytes, list[ExtractorOutput]]]:
    import ray

    from stp.cluster import LEAN_RESOURCE

    remote = ray.remote(num_cpus=1, resources={LEAN_RESOURCE: 1}, max_retries=1)(_ray_batch)
    refs = [remote.remote(command, cwd, jobs[i:i + batch], premises, timeout_s)
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
                   on_module: Callable[[ModuleSummary], None] | None = None) -> RunResult:
    """Extract every job not already stored under `out_dir`; see the module docstring."""
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
        from stp.cluster import init_cluster
        from stp.config import ClusterConfig

        init_cluster(ClusterConfig(address=ray_address if ray_address != "local" else ""))
        stream = _run_ray(todo, command, cwd, premises, timeout_s, ray_batch)
    else:
        stream = _run_local(todo, command, cwd, workers, premises, timeout_s)
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
