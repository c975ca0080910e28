"""Shared pieces of the self-play tests: config, lemma dict, stand-in rules, run comparison."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from stp import storage
from stp.backends import Backends, production_verifier
from stp.config import STPConfig, load_config
from stp.model.prompts import START_THM
from stp.model.types import SampleRequest
from stp.stages import StageEvent, StageHook

REPO_ROOT = Path(__file__).resolve().parents[2]
# The benchmark files shipped with the repository.
DATA_DIR = REPO_ROOT / "data" / "benchmarks"

LEMMAS = {
    "Nat.add_comm": "theorem Nat.add_comm (n m : ℕ) : n + m = m + n",
    "Nat.mul_comm": "theorem Nat.mul_comm (n m : ℕ) : n * m = m * n",
}

# norm_num proofs pass and use both lemmas, omega proofs pass using one, everything else fails.
RULES: dict[str, Any] = {
    "rules": [
        {"pattern": "norm_num", "action": "pass", "premises": ["Nat.add_comm", "Nat.mul_comm"]},
        {"pattern": "omega", "action": "pass", "premises": ["Nat.add_comm"]},
        {"pattern": "linarith", "action": "pass", "premises": ["Unknown.lemma"]},
    ],
    "default": "fail",
}


def tiny_model_rules(premise: str) -> dict[str, Any]:
    """Stand-in rules for the tiny-model runs (self-play e2e, the pipeline): mathd_algebra
    statements always pass (solve rate 1: seeds for round 1); mathd_numbertheory statements pass
    when statement + proof has even length (rate about 0.5: prover training data); passing proofs
    report premises, `Nat.add_comm` and `premise` among them."""
    return {
        "rules": [
            {"field": "statement", "pattern": "theorem mathd_algebra", "action": "pass",
             "premises": ["Nat.add_comm", "Foo.bar"]},
            {"field": "text", "pattern": r"^(?=[\s\S]*theorem mathd_numbertheory)(?:[\s\S]{2})*$",
             "action": "pass", "premises": [premise]},
        ],
        "default": "fail",
    }


def write_lemmas(tmp: Path) -> Path:
    path = tmp / "lemmas.json"
    path.write_text(json.dumps(LEMMAS), encoding="utf-8")
    return path


def make_config(tmp: Path, run_name: str, extra: list[str] | None = None) -> STPConfig:
    lemmas = write_lemmas(tmp)
    overrides = [
        f'run.run_dir="{tmp / run_name}"',
        "run.seed=3",
        f'run.data_dir="{DATA_DIR}"',
        'data.selfplay=[{name="minif2f", split="valid"}]',
        f'data.lemma_dict="{lemmas}"',
        "data.allow_download=false",
        'verifier.backend="local"',
        "verifier.workers=1",
        "verifier.timeout_s=30.0",
        "selfplay.rounds=2",
        "selfplay.samples_first_round=4",
        "selfplay.samples_per_statement=8",
        "selfplay.statements_per_round=8",
        "selfplay.lemma_cap_fraction=0.5",
        "selfplay.min_conjecture_samples=1",
        "selfplay.max_conjecture_samples=3",
        "selfplay.no_lemma_floor=16",
        "sampler.shard_size=16",
    ]
    return load_config(None, overrides + (extra or []))


def _npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as z:
        return {k: z[k] for k in z.files}


def run_contents(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Comparable content of a run directory (timings, caches and metrics left out)."""
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        # checker.json names the checker's argv (a run's own check log path among its rules).
        if not path.is_file() or rel.startswith(("verify-cache", "report")) or rel in (
                "metrics.jsonl", ".stp-lock", "checker.json") or any(
                rel.startswith(s) for s in skip):
            continue
        data = path.read_bytes().replace(str(root).encode(), b"<RUN>")
        if rel.endswith(".npz"):
            out[rel] = {k: (str(v.dtype), v.shape, v.tobytes()) for k, v in _npz(data).items()}
        elif rel.endswith("manifest.json"):
            manifest = json.loads(data)
            out[rel] = {k: v["summary"] for k, v in manifest["stages"].items()}
        elif rel.endswith(".jsonl.gz"):
            out[rel] = gzip.decompress(path.read_bytes()).decode().replace(str(root), "<RUN>")
        else:
            out[rel] = data
    return out


class ScriptedSampler:
    """Completions are a pure function of (prompt, seed, sample index)."""

    def __init__(self, model: str) -> None:
        self.model = model

    def generate(self, requests: list[SampleRequest]) -> list[list[str]]:
        return [[self._one(r, j) for j in range(r.n)] for r in requests]

    def _one(self, r: SampleRequest, j: int) -> str:
        rng = np.random.default_rng([r.seed, j])
        if START_THM in r.prompt:
            if j == 2:
                return "garbage with no end tag"
            k = int(rng.integers(0, 3))
            return f"conj_{k}_{j} (x : ℕ) : x + {k} = {k} + x := by\n</hard theorem>"
        if "conj_" in r.prompt:
            return "\n  omega\n```" if j == 0 else "\n  sorry\n```"
        if "mathd" in r.prompt:
            return "\n  norm_num\n```"
        return "\n  linarith\n```" if rng.random() < 0.3 else "\n  simp\n```"

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.array([np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8)
                        for t in texts], dtype=np.float32) - 128.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def close(self) -> None:
        pass


def scripted_train(base_model: str, examples_path: str, out_dir: str, trainer_cfg: Any,
                   model_cfg: Any, **overrides: Any) -> SimpleNamespace:
    """Records what it was given; the 'checkpoint' is a file naming the examples' hash."""
    data = Path(examples_path).read_bytes()
    hf = storage.join(out_dir, "hf")
    storage.write_text(storage.join(hf, "trained.json"), json.dumps({
        "base": storage.basename(base_model), "examples": hashlib.sha256(data).hexdigest(),
        "lr": overrides.get("learning_rate")}))
    return SimpleNamespace(hf_path=hf, steps=1, losses=[2.0, 1.5], tokens=10, seconds=0.0)


def scripted_backends(sampler: Callable[[str], Any] = ScriptedSampler,
                      train: Callable[..., Any] = scripted_train) -> Backends:
    """The bundle the self-play and pipeline tests run with: a scripted sampler and trainer and
    the production verifier (its checker is the stand-in named by `lean.checker_command`)."""
    return Backends(sampler=sampler, verifier=production_verifier, train=train)


def stage_point(event: StageEvent) -> tuple[int | None, str, int | None]:
    """(round, stage, shard) of a StageEvent: how the crash tests name a point."""
    return event.round, event.stage, event.shard


class SimulatedCrash(RuntimeError):
    """Raised from the self-play hook to stand in for a kill at a stage or shard boundary."""


def run_crashing_once_everywhere(run_once: Callable[[StageHook], Any],
                                 max_restarts: int
                                 ) -> tuple[list[tuple[int | None, str, int | None]], int]:
    """Run until completion, crashing once after every (round, stage, shard) the hook sees and
    restarting each time: what a run killed at every possible point and resumed goes through.
    Returns the crash points and the number of restarts."""
    crashed: list[tuple[int | None, str, int | None]] = []

    def hook(event: StageEvent) -> None:
        point = stage_point(event)
        if point not in crashed:
            crashed.append(point)
            raise SimulatedCrash(f"simulated crash after {event}")

    restarts = 0
    while True:
        try:
            run_once(hook)
            return crashed, restarts
        except SimulatedCrash:
            restarts += 1
            assert restarts < max_restarts, "resume does not make progress"
