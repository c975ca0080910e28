"""stp.lean.process: what both Lean process clients share."""

from __future__ import annotations

import subprocess
import sys

from stp.lean.process import with_address_space_limit

PRINT_LIMIT = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])"


def test_address_space_limit_reaches_the_program_without_a_preexec_hook() -> None:
    # The cap is applied by a shell that execs the program, so the driver (which may hold JAX's
    # threads) never runs Python code between fork and exec.
    argv = with_address_space_limit([sys.executable, "-c", PRINT_LIMIT], 4096)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert int(out) == 4096 * 1024 * 1024


def test_no_limit_leaves_the_command_alone() -> None:
    argv = [sys.executable, "-c", PRINT_LIMIT]
    assert with_address_space_limit(argv, 0) == argv
    assert with_address_space_limit(["prog", "a b", "$HOME"], 1)[-3:] == ["prog", "a b", "$HOME"]


def test_killing_an_extractor_with_unsent_input_is_quiet() -> None:
    """A stop (Ctrl-C, a failed module) can kill the extractor while a request still sits in its
    stdin buffer; closing that pipe flushes into a dead process. kill() must still reap it and
    free its pipes instead of raising BrokenPipeError (seen as a flaky CI failure)."""
    import sys

    from stp.lean.extractor import ExtractorProcess

    ex = ExtractorProcess([sys.executable, "-c", "pass"], None, None)
    proc = ex._start()
    proc.wait(timeout=30)
    assert proc.stdin is not None
    proc.stdin.write(b"x" * 100)  # buffered, not yet flushed: the reader is gone
    ex.kill()
    assert ex.proc is None and proc.stdin.closed and proc.returncode is not None
