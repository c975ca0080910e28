"""The one CPU-count rule (affinity respected everywhere) and the error model's bottom layer
(every user-facing error an STPError, so no command ends in a traceback and no caller
translates errors by hand)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from stp.errors import STPError
from stp.extract.assemble import AssemblyError
from stp.model.training.data import ExampleError
from stp.model.training.levanter_trainer import TrainingSettingsMismatch
from stp.verify.leanfile import LeanFileError


@pytest.mark.parametrize("error", [AssemblyError, ExampleError, LeanFileError,
                                   TrainingSettingsMismatch])
def test_user_facing_errors_are_stp_errors(error: type[Exception]) -> None:
    assert issubclass(error, STPError)
    assert error("x").exit_code == 2  # type: ignore[attr-defined]


def test_worker_counts_respect_cpu_affinity() -> None:
    """Pinned to one core (as a container or Slurm job is), the verifier's and the
    extraction's default worker counts are 1, not the machine's core count."""
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - Linux CI
        raise AssertionError("this test needs Linux (sched_setaffinity)")
    code = textwrap.dedent("""
        import os
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        from stp.host import available_cpus
        from stp.verify.pool import default_workers
        print(os.cpu_count(), available_cpus(), default_workers(0))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ}).stdout.split()
    assert out[1:] == ["1", "1"], out
