"""Independent second opinion on passing proofs, through lean-interact (the community Lean REPL).

Two checkers built differently (our own Lean program vs. the REPL driven by lean-interact) that
disagree on a proof reveal a soundness bug in one of them, e.g. an exploit our syntax gate misses
or a false rejection. Only proofs our checker passed are re-checked: that is where an unsound
verdict would poison training data and reported numbers.

The REPL's criterion here: the command `statement + proof` elaborates with no error message and no
sorry, and `#print axioms <theorem>` lists nothing outside the allowed axioms. The REPL keeps one
environment per distinct header (imported once, reused via its `env` field).

The REPL elaborates the same model-written text as our checker, so it runs in the same sandbox
(stp.verify.sandbox): lean-interact starts it as `<lake> env <repl>` with the `lake` its config
names, and that `lake` is a wrapper that starts exactly that REPL through the checker launcher
(digest checked at every start, seccomp filter, namespaces, read-only binds). lean-interact's
one-time set-up (cloning and building the REPL) runs before, with the real `lake`: it runs no
model text.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stp.errors import UsageError
from stp.lean.config import LeanConfig
from stp.verify.config import VerifierConfig
from stp.verify.leanfile import declared_name
from stp.verify.pool import join_proof
from stp.verify.types import VerifyItem, VerifyResult

log = logging.getLogger(__name__)

_AXIOMS = re.compile(r"depends on axioms:\s*\[([^\]]*)\]", re.S)


@dataclass(frozen=True)
class CrossVerdict:
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Disagreement:
    """Our checker passed the item; the second backend did not."""

    name: str
    statement: str
    proof: str
    ours: str
    theirs: str
    detail: str


class CrossBackend(Protocol):
    def judge(self, item: VerifyItem) -> CrossVerdict: ...

    def close(self) -> None: ...


class CrossChecker:
    """Runs the second backend on passing results and collects disagreements."""

    def __init__(self, backend: CrossBackend) -> None:
        self.backend = backend
        self.checked = 0
        self.disagreements: list[Disagreement] = []

    def check(self, item: VerifyItem, result: VerifyResult) -> Disagreement | None:
        if not result.passed:
            return None
        self.checked += 1
        try:
            verdict = self.backend.judge(item)
        except Exception as err:  # the second opinion failing is reported, never fatal
            verdict = CrossVerdict(False, f"cross-check backend error: {type(err).__name__}: {err}")
        if verdict.passed:
            return None
        found = Disagreement(name=item.name or _theorem_name(item.statement) or "?",
                             statement=item.statement, proof=item.proof, ours=result.status,
                             theirs="fail", detail=verdict.detail)
        log.warning("cross-check disagreement on %s: %s", found.name, found.detail)
        self.disagreements.append(found)
        return found

    def close(self) -> None:
        self.backend.close()


def _theorem_name(statement: str) -> str | None:
    """The declared constant, from the parsed declaration (never a name in a docstring)."""
    return declared_name(statement)


def axioms_from_messages(texts: list[str]) -> list[str] | None:
    """Parse `#print axioms` output; [] when it depends on none, None when not found."""
    for text in texts:
        if "does not depend on any axioms" in text:
            return []
        m = _AXIOMS.search(text)
        if m:
            return [a.strip() for a in m.group(1).split(",") if a.strip()]
    return None


class LeanInteractBackend:
    """lean-interact's AutoLeanServer on the same Lake workspace as our checker."""

    def __init__(self, lean_cfg: LeanConfig, timeout_s: float, memory_mb: int,
                 verifier_cfg: VerifierConfig | None = None) -> None:
        """lean-interact clones and builds its REPL (github.com/leanprover-community/repl) into
        its cache directory on first use, so the first cross-check needs network access and a
        few minutes; later ones reuse the build. `verifier_cfg` gives the sandbox settings
        (`verifier.sandbox`, `sandbox_binds`); without it the default, a required sandbox."""
        from stp.lean import toolchain
        from stp.verify import sandbox

        verifier_cfg = verifier_cfg or VerifierConfig()
        sandbox.sandboxed(verifier_cfg)  # refuse before minutes of REPL set-up

        toolchain.require_lean(lean_cfg)
        try:
            from lean_interact import AutoLeanServer, LeanREPLConfig, LocalProject
        except ImportError as err:
            raise UsageError("--cross-check needs lean-interact: pip install 'stp-prover[crosscheck]'") \
                from err
        lake = toolchain.find_lake() or "lake"
        project = LocalProject(directory=str(toolchain.project_dir(lean_cfg)), lake_path=lake,
                               auto_build=False)
        # the same lake for the REPL's own build; no reuse of earlier commands' elaboration (an
        # independent opinion on each proof); the worker memory cap as the REPL's hard limit
        self.config = LeanREPLConfig(project=project, lake_path=lake,
                                     memory_hard_limit_mb=memory_mb or None,
                                     enable_incremental_optimization=False)
        self._wrapper_dir = Path(tempfile.mkdtemp(prefix="stp-crosscheck-"))
        repl = str(Path(self.config.cache_repl_dir) / ".lake" / "build" / "bin" / "repl")
        self.config.lake_path = sandbox.lake_wrapper(verifier_cfg, lean_cfg, repl,
                                                     self.config.working_dir, self._wrapper_dir)
        try:
            self.server: Any = AutoLeanServer(self.config)
        except BaseException:
            shutil.rmtree(self._wrapper_dir, ignore_errors=True)
            raise
        self.allowed = set(lean_cfg.allowed_axioms)
        self.timeout_s = timeout_s
        self._envs: dict[str, int] = {}

    def _header_env(self, header: str) -> int:
        env = self._envs.get(header)
        if env is None:
            from lean_interact import Command

            resp = self.server.run(Command(cmd=header), timeout=self.timeout_s,
                                   add_to_session_cache=True)
            errors = _errors(resp)
            if errors:
                raise RuntimeError(f"header failed in the REPL: {errors[0]}")
            env = self._envs[header] = resp.env
        return env

    def judge(self, item: VerifyItem) -> CrossVerdict:
        from lean_interact import Command

        env = self._header_env(item.header)
        code = item.statement + join_proof(item.statement, item.proof)
        resp = self.server.run(Command(cmd=code, env=env), timeout=self.timeout_s)
        errors = _errors(resp)
        if errors:
            return CrossVerdict(False, f"REPL error: {errors[0]}")
        if not resp.lean_code_is_valid(allow_sorry=False):
            return CrossVerdict(False, "REPL reports a sorry")
        name = _theorem_name(item.statement)
        if name is None:
            return CrossVerdict(False, "no theorem name in the statement")
        printed = self.server.run(Command(cmd=f"#print axioms {name}", env=resp.env),
                                  timeout=self.timeout_s)
        texts = [m.data for m in getattr(printed, "messages", [])]
        axioms = axioms_from_messages(texts)
        if axioms is None:
            return CrossVerdict(False, f"could not read `#print axioms`: {texts[:1]}")
        extra = sorted(set(axioms) - self.allowed)
        if extra:
            return CrossVerdict(False, f"REPL: depends on axioms {extra}")
        return CrossVerdict(True)

    def close(self) -> None:
        kill = getattr(self.server, "kill", None)
        if callable(kill):
            kill()
        shutil.rmtree(self._wrapper_dir, ignore_errors=True)


def _errors(resp: Any) -> list[str]:
    """Error texts of a REPL response; a LeanError (no `messages`) is itself an error."""
    messages = getattr(resp, "messages", None)
    if messages is None:
        return [getattr(resp, "message", repr(resp))]
    return [m.data for m in messages if m.severity == "error"]
