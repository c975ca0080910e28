"""Accelerator phases: sampling, training and embedding each own the device alone, then free it.

One process cannot hand a GPU or TPU from one framework to another reliably: JAX's default
allocator keeps what it grew to, vLLM asks for a fixed fraction of the device when its engine
starts, and on a TPU VM only one process can open the chips at all. So with isolation on, each
phase runs in a process of its own, started with the `spawn` method (no CUDA/JAX state inherited
from the driver) and ended when the phase is over; the driver never initialises an accelerator.
The operating system then releases everything the phase held, whatever the framework's
allocator did, before the next phase starts: one owner at a time.

`model.phase_isolation`: "process" always, "inline" never (the old in-process hand-off:
`release_for_training` frees torch's cache and keeps JAX from pre-allocating), "auto" = process
when this machine has a GPU or TPU device node, inline on a CPU-only machine (the tests and the
tiny config, where a process per phase would only add start-up time).

`IsolatedSampler` is a `Sampler` whose backend lives in its phase process (`make_sampler` returns
one when isolation is on); `run_isolated` runs one call (the trainer) in a phase process and
returns its picklable result. Errors raised in the phase process are re-raised in the driver
with their type when they pickle (an `STPError` stays one line), else as `PhaseError`.
"""

from __future__ import annotations

import gc
import glob
import logging
import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import numpy as np

from stp.errors import STPError
from stp.model.config import PhaseIsolation

log = logging.getLogger(__name__)

PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
# Device nodes of accelerators: NVIDIA GPUs (/dev/nvidia0..), TPU VMs (/dev/accel0.., /dev/vfio).
_ACCELERATOR_NODES = ("/dev/nvidia[0-9]*", "/dev/accel[0-9]*", "/dev/vfio/[0-9]*")
# How long a phase process may take to exit after it was asked to (then it is killed).
CLOSE_TIMEOUT_S = 120.0

T = TypeVar("T")


class PhaseError(STPError):
    """A phase process failed with an error that could not be sent back as itself, or died."""

    exit_code = 1


def has_accelerator() -> bool:
    """A GPU or TPU device node exists (checked without importing torch or JAX)."""
    return any(glob.glob(pattern) for pattern in _ACCELERATOR_NODES)


def isolated(mode: PhaseIsolation) -> bool:
    """Whether phases run in processes of their own under `model.phase_isolation = mode`."""
    if mode == "auto":
        return has_accelerator()
    return mode == "process"


PHASE_ENV = "STP_PHASE_PROCESS"


def in_phase_process() -> bool:
    """This process is a phase process (it runs its backend itself, never nests another)."""
    return os.environ.get(PHASE_ENV) == "1"


def release_for_training() -> None:
    """Inline hand-off (isolation off): free what a closed sampler left and keep JAX from
    grabbing the whole device (`XLA_PYTHON_CLIENT_PREALLOCATE=false`, unless the user set it)."""
    os.environ.setdefault(PREALLOCATE, "false")
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _context() -> Any:
    return mp.get_context("spawn")


def _send_error(conn: Connection, err: BaseException) -> None:
    try:
        conn.send(("error", err))
    except Exception:  # an exception that does not pickle: its type and text
        conn.send(("error", PhaseError(f"{type(err).__name__}: {err}")))


def _raise(err: object) -> None:
    if isinstance(err, BaseException):
        raise err
    raise PhaseError(f"phase process failed: {err!r}")


# ---------------------------------------------------------------------------------------------
# Sampling (and embedding) in a phase process
# ---------------------------------------------------------------------------------------------


def _serve_sampler(conn: Connection, build_backend: Callable[..., Any], model_path: str,
                   model_cfg: Any, sampler_cfg: Any) -> None:
    """Phase process: build the real backend, answer calls until "close", then exit."""
    os.environ[PHASE_ENV] = "1"
    try:
        sampler = build_backend(model_path, model_cfg, sampler_cfg)
    except BaseException as err:
        _send_error(conn, err)
        return
    conn.send(("ready", os.getpid()))
    try:
        while True:
            op, arg = conn.recv()
            if op == "close":
                break
            try:
                result = sampler.generate(arg) if op == "generate" else sampler.embed(arg)
            except BaseException as err:
                _send_error(conn, err)
                continue
            conn.send(("ok", result))
    finally:
        sampler.close()
        conn.send(("closed", os.getpid()))


class IsolatedSampler:
    """A `Sampler` whose backend runs in a phase process that owns the accelerator; `close()`
    ends the process, which releases every byte of device memory the backend held."""

    def __init__(self, build_backend: Callable[..., Any], model_path: str, model_cfg: Any,
                 sampler_cfg: Any) -> None:
        """`build_backend(model_path, model_cfg, sampler_cfg)` makes the real sampler in the
        phase process (stp.model.sampling.build_backend; passed in, so this module imports no
        backend)."""
        ctx = _context()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_sampler, name="stp-sampling-phase",
                                 args=(child, build_backend, model_path, model_cfg,
                                       sampler_cfg))
        self._proc.start()
        child.close()
        kind, value = self._receive()
        if kind != "ready":
            self._stop()
            _raise(value)
        self.pid: int = int(value)
        log.info("sampling phase: process %d owns the accelerator", self.pid)

    def _receive(self) -> tuple[str, Any]:
        try:
            kind, value = self._conn.recv()
        except EOFError:
            self._proc.join(5)
            raise PhaseError(f"the sampling phase process died (exit status "
                             f"{self._proc.exitcode})") from None
        return kind, value

    def _call(self, op: str, arg: Any) -> Any:
        if not self._proc.is_alive():
            raise PhaseError("the sampling phase process is not running")
        self._conn.send((op, arg))
        kind, value = self._receive()
        if kind == "error":
            _raise(value)
        return value

    def generate(self, requests: Sequence[Any]) -> list[list[str]]:
        result: list[list[str]] = self._call("generate", list(requests))
        return result

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._call("embed", list(texts)))

    def _stop(self) -> None:
        self._proc.join(CLOSE_TIMEOUT_S)
        if self._proc.is_alive():
            log.warning("sampling phase process %s did not exit; killing it", self._proc.pid)
            self._proc.kill()
            self._proc.join()
        self._conn.close()

    def close(self) -> None:
        """End the phase: the backend closes, the process exits (waited for), memory is free."""
        if self._conn.closed:
            return
        if self._proc.is_alive():
            try:
                self._conn.send(("close", None))
                while self._receive()[0] != "closed":
                    pass
            except (PhaseError, BrokenPipeError, OSError):
                pass
        self._stop()
        log.info("sampling phase: process %s ended (exit status %s)", self._proc.pid,
                 self._proc.exitcode)


# ---------------------------------------------------------------------------------------------
# One call (training) in a phase process
# ---------------------------------------------------------------------------------------------


def _run_call(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
    os.environ[PHASE_ENV] = "1"
    try:
        result = fn(*args, **kwargs)
    except BaseException as err:
        _send_error(conn, err)
        return
    conn.send(("ok", result))


def run_isolated(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` in a phase process of its own (fn must be importable by name, its
    arguments and result picklable); returns once the process has exited. Ctrl-C in the driver
    reaches the phase process too (same process group); the driver then waits for it to end."""
    ctx = _context()
    conn, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run_call, name="stp-phase", args=(child, fn, args, kwargs))
    proc.start()
    child.close()
    log.info("phase %s: process %d owns the accelerator", getattr(fn, "__name__", fn), proc.pid)
    try:
        try:
            kind, value = conn.recv()
        except EOFError:
            kind, value = "died", None
        proc.join()
    except BaseException:
        proc.join(CLOSE_TIMEOUT_S)
        if proc.is_alive():
            proc.kill()
            proc.join()
        raise
    finally:
        conn.close()
    if kind == "ok":
        result: T = value
        return result
    if kind == "died":
        if proc.exitcode is not None and proc.exitcode < 0 and -proc.exitcode == 2:
            raise KeyboardInterrupt
        raise PhaseError(f"the phase process running {getattr(fn, '__name__', fn)} died "
                         f"(exit status {proc.exitcode})")
    _raise(value)
    raise AssertionError("unreachable")
