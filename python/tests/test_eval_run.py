"""`run`: per-request seeds, the log it writes, and resumption after an interruption.

The verifier is the real pool driving the stand-in checker; the sampler in the first tests is a
small deterministic double (completion chosen from the request seed) so the interruption point and
the expected verdicts are exact. The end-to-end test at the bottom uses the tiny real model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from standin import standin_command, with_checker

from stp.backends import Backends
from stp.config import STPConfig, load_config
from stp.data import load_dataset
from stp.eval import log as evlog
from stp.eval.loading import load_log
from stp.eval.run import (
    RunSettings,
    close_all,
    derive_seed,
    make_components,
    run_eval,
    settings_from_config,
)
from stp.eval.summarize import summarize_log
from stp.model.types import SampleRequest
from stp.verify import make_verifier

RULES = {"rules": [{"pattern": "sorry", "action": "fail"}], "default": "pass"}


def config(tmp_path: Path) -> STPConfig:
    return load_config(None, ["verifier.workers=2", "verifier.cache_dir='off'",
                              "verifier.timeout_s=20.0", f"run.run_dir='{tmp_path / 'run'}'"])


class SeedSampler:
    """Completion depends only on the request seed; optionally raises on the n-th call."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.requests: list[SampleRequest] = []
        self.fail_on_call = fail_on_call

    def generate(self, requests: Sequence[SampleRequest]) -> list[list[str]]:
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise KeyboardInterrupt("simulated interruption")
        self.requests.extend(requests)
        return [[" by simp" if r.seed % 3 == 0 else " by sorry"] for r in requests]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError("not used by evaluation")

    def close(self) -> None:
        pass


def settings(out: Path, samples: int = 4, shard_size: int = 4) -> RunSettings:
    return RunSettings(model="double", splits=["minif2f:test"], samples=samples, out=str(out),
                       seed=1, temperature=1.0, top_p=1.0, max_tokens=64, prompt_format="stp",
                       shard_size=shard_size)


def statements(data_dir: Path) -> dict:
    return {"minif2f:test": load_dataset("minif2f", data_dir, split="test")[:3]}


def test_derived_seeds_are_distinct_and_stable() -> None:
    seeds = {derive_seed(1, f"s{i}", j) for i in range(50) for j in range(200)}
    assert len(seeds) == 50 * 200
    assert derive_seed(1, "a", 0) == derive_seed(1, "a", 0) != derive_seed(2, "a", 0)
    assert all(0 <= s < 2**63 for s in seeds)


def test_interrupted_run_resumes_without_redoing_work(tmp_path: Path, data_dir: Path) -> None:
    cfg = config(tmp_path)
    stmts = statements(data_dir)
    out = tmp_path / "log"
    prompt = lambda rec: f"prove {rec.name}"  # noqa: E731
    extract = str.strip
    with make_verifier(with_checker(cfg, standin_command(RULES))) as verifier:
        first = SeedSampler(fail_on_call=3)  # 12 attempts in shards of 4: dies on shard 3
        with pytest.raises(KeyboardInterrupt):
            run_eval(settings(out), stmts, sampler=first, verifier=verifier, prompt=prompt,
                     extract=extract)
        logged = evlog.done_keys(str(out))
        assert len(logged) == 8  # shards 1 and 2 (the one in verification) were kept
        assert len(list_shards(out)) == 2

        second = SeedSampler()
        result = run_eval(settings(out), stmts, sampler=second, verifier=verifier,
                          prompt=prompt, extract=extract)
    assert (result.planned, result.skipped, result.written) == (12, 8, 4)
    assert len(second.requests) == 4  # only the missing pairs were sampled
    attempts = list(evlog.iter_attempts(str(out)))
    keys = [(a.statement_id, a.sample) for a in attempts]
    assert len(keys) == len(set(keys)) == 12
    ids = [s.id for s in stmts["minif2f:test"]]
    assert set(keys) == {(i, j) for i in ids for j in range(4)}
    for a in attempts:
        assert a.seed == derive_seed(1, a.statement_id, a.sample)
        want = "pass" if a.seed % 3 == 0 else "fail"
        assert a.status == want, a
        assert a.proof in ("by simp", "by sorry")
        assert a.split == "minif2f:test"
    # The resumed requests carried their own seeds and the eval temperature.
    assert {r.seed for r in second.requests} == {a.seed for a in attempts
                                                 if (a.statement_id, a.sample) not in logged}
    # The manifest lists the split's statements, so summarize sees the whole universe.
    loaded = load_log(out)
    [s] = summarize_log(loaded, budgets=(1, 2, 4), resamples=0)
    assert s.statements == 3 and s.attempts == 12 and s.n_min == 4
    passes = sum(a.status == "pass" for a in attempts)
    assert s.unbiased[0].mean == pytest.approx(passes / 12)


def test_resume_with_other_settings_is_refused(tmp_path: Path, data_dir: Path) -> None:
    from stp.errors import UsageError

    cfg = config(tmp_path)
    out = tmp_path / "log"
    with make_verifier(with_checker(cfg, standin_command(RULES))) as verifier:
        run_eval(settings(out, samples=1), statements(data_dir), sampler=SeedSampler(),
                 verifier=verifier, prompt=str, extract=str.strip)
        other = settings(out, samples=1)
        other.model = "another-model"
        with pytest.raises(UsageError, match="model 'double' -> 'another-model'"):
            run_eval(other, statements(data_dir), sampler=SeedSampler(), verifier=verifier,
                     prompt=str, extract=str.strip)


def test_resume_with_another_top_p_is_refused_naming_every_key_unless_allowed(
        tmp_path: Path, data_dir: Path) -> None:
    """The manifest records the sampler settings (top_p included); a resume that changes any of
    them is one line naming all changed keys, exit 2; --allow-changed-settings records the change
    with the first shard written under it."""
    from stp.settings_guard import ChangedSettingsError

    cfg = config(tmp_path)
    out = tmp_path / "log"
    with make_verifier(with_checker(cfg, standin_command(RULES))) as verifier:
        run_eval(settings(out, samples=1), statements(data_dir), sampler=SeedSampler(),
                 verifier=verifier, prompt=str, extract=str.strip)
        assert evlog.read_manifest(str(out)).top_p == 1.0
        shards = len(list_shards(out))
        other = settings(out, samples=2)
        other.top_p, other.temperature = 0.9, 0.7
        with pytest.raises(ChangedSettingsError) as refused:
            run_eval(other, statements(data_dir), sampler=SeedSampler(), verifier=verifier,
                     prompt=str, extract=str.strip)
        message = str(refused.value)
        assert refused.value.exit_code == 2 and "\n" not in message
        assert "top_p 1.0 -> 0.9" in message and "temperature 1.0 -> 0.7" in message
        assert "--allow-changed-settings" in message
        assert len(list_shards(out)) == shards  # nothing was appended
        other.allow_changed_settings = True
        sampler = SeedSampler()
        run_eval(other, statements(data_dir), sampler=sampler, verifier=verifier,
                 prompt=str, extract=str.strip)
        assert {r.top_p for r in sampler.requests} == {0.9}
    manifest = evlog.read_manifest(str(out))
    assert (manifest.top_p, manifest.temperature) == (0.9, 0.7)
    assert manifest.changes == [{"from_shard": shards, "changed": {
        "temperature": {"from": 1.0, "to": 0.7}, "top_p": {"from": 1.0, "to": 0.9}}}]


def list_shards(out: Path) -> list[str]:
    from stp import storage

    return storage.list_shards(str(out), evlog.SHARD_PREFIX)


@pytest.mark.slow
def test_end_to_end_with_the_tiny_model(tmp_path: Path, data_dir: Path, tiny_model: str) -> None:
    """Real prompts, the tiny random model on CPU, the real pool with the stand-in checker."""
    model = tiny_model
    cfg = load_config(None, ["verifier.workers=2", "verifier.cache_dir='off'",
                             f"run.run_dir='{tmp_path / 'run'}'", "sampler.backend='hf'",
                             "sampler.max_tokens=8", "eval.shard_size=3"])
    out = tmp_path / "log"
    run_settings = settings_from_config(cfg, model=model, splits=["minif2f:test"], samples=2,
                                        out=str(out))
    # The stand-in fails proofs containing "sorry" and passes the rest.
    checked = with_checker(cfg, standin_command(RULES))
    sampler, verifiers, prompt, extract = make_components(checked, run_settings,
                                                          Backends.from_config(checked))
    assert list(verifiers) == ["strict", "paper"]  # eval.profiles default
    try:
        result = run_eval(run_settings, statements(data_dir), sampler=sampler,
                          verifier=verifiers, prompt=prompt, extract=extract)
    finally:
        close_all(verifiers)
        sampler.close()
    assert (result.planned, result.written) == (6, 6)
    attempts = list(evlog.iter_attempts(str(out)))
    assert sorted((a.statement_id, a.sample) for a in attempts) == sorted(
        (s.id, j) for s in statements(data_dir)["minif2f:test"] for j in range(2))
    assert all(a.status in ("pass", "fail") for a in attempts)
    assert all(set(a.verdicts) == {"strict", "paper"} for a in attempts)
    assert len({a.seed for a in attempts}) == 6
    [s] = summarize_log(load_log(out), budgets=(1, 2), resamples=10)
    assert s.statements == 3 and s.attempts == 6


# -- verifier profiles: both verdicts from one sampling run, side by side in summarize -------

# The strict stand-in also rejects proofs using `native_decide` (an axiom the paper's check let
# through); the paper stand-in only fails `sorry`.
STRICT_RULES = {"rules": [{"pattern": "sorry", "action": "fail"},
                          {"pattern": "simp", "action": "fail", "reasons": ["axiom"]}],
                "default": "pass"}


class ProfileSampler(SeedSampler):
    def generate(self, requests: Sequence[SampleRequest]) -> list[list[str]]:
        self.requests.extend(requests)
        return [[(" by simp", " by sorry", " by norm_num")[r.seed % 3]] for r in requests]


def test_both_profiles_are_stored_and_summarized_side_by_side(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from stp.eval.__main__ import main as eval_main

    cfg = config(tmp_path)
    out = tmp_path / "log"
    sampler = ProfileSampler()
    with make_verifier(with_checker(cfg, standin_command(STRICT_RULES))) as strict, \
            make_verifier(with_checker(config(tmp_path), standin_command(RULES))) as paper:
        result = run_eval(settings(out), statements(data_dir), sampler=sampler,
                          verifier={"strict": strict, "paper": paper}, prompt=str,
                          extract=str.strip)
    assert result.written == 12 and len(sampler.requests) == 12  # one sampling run
    attempts = list(evlog.iter_attempts(str(out)))
    want = {"by simp": ("fail", "pass"), "by sorry": ("fail", "fail"),
            "by norm_num": ("pass", "pass")}
    for a in attempts:
        assert (a.verdicts["strict"], a.verdicts["paper"]) == want[a.proof]
        assert a.status == a.verdicts["strict"]
        if a.proof == "by simp":
            assert a.reasons == {"strict": ["axiom"]}
    simp = sum(a.proof == "by simp" for a in attempts)
    assert simp > 0
    code = eval_main(["summarize", "--log", str(out), "--json",
                      "--set", "eval.budgets=[1, 2, 4]", "--set", "eval.bootstrap_samples=0"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and set(payload["profiles"]) == {"strict", "paper"}
    rows = {p: payload["profiles"][p]["minif2f:test"]["pass_at_k"] for p in ("strict", "paper")}
    passes = {p: sum(a.verdicts[p] == "pass" for a in attempts) for p in ("strict", "paper")}
    for p in ("strict", "paper"):
        assert rows[p][0]["k"] == 1 and rows[p][0]["unbiased"]["mean"] == pytest.approx(
            passes[p] / 12)
    rej = payload["rejections"]["minif2f:test"]
    assert rej["attempts"] == simp and rej["reasons"] == {"axiom": simp}
    eval_main(["summarize", "--log", str(out), "--set", "eval.budgets=[1, 2, 4]",
               "--set", "eval.bootstrap_samples=0"])
    text = capsys.readouterr().out
    assert "strict (chunks)" in text and "paper (chunks)" in text
    assert f"strict rejects {simp} paper-passing attempts" in text


def test_attempts_without_a_verdict_are_not_logged_and_a_rerun_redoes_them(
        tmp_path: Path, data_dir: Path) -> None:
    from stp.verify.runner import VerificationOutage

    stmts = statements(data_dir)
    dropped = stmts["minif2f:test"][0].name
    down = {"rules": [{"pattern": rf"theorem {dropped}\b", "field": "statement",
                       "action": "error"}, *RULES["rules"]], "default": "pass"}
    out = tmp_path / "log"
    with make_verifier(with_checker(config(tmp_path), standin_command(down))) as verifier, \
            pytest.raises(VerificationOutage, match="4 of 12 attempts"):
        run_eval(settings(out), stmts, sampler=SeedSampler(), verifier=verifier,
                     prompt=str, extract=str.strip)
    assert len(evlog.done_keys(str(out))) == 8
    second = SeedSampler()
    with make_verifier(with_checker(config(tmp_path), standin_command(RULES))) as verifier:
        result = run_eval(settings(out), stmts, sampler=second, verifier=verifier,
                          prompt=str, extract=str.strip)
    assert (result.skipped, result.written, result.unverified) == (8, 4, 0)
    assert {r.seed for r in second.requests} == {
        derive_seed(1, stmts["minif2f:test"][0].id, j) for j in range(4)}


def test_def_statements_are_evaluated_like_theorems(tmp_path: Path, data_dir: Path) -> None:
    """ProofNet's `def` statements (7 of 186 in test) are loaded, prompted, verified, logged and
    counted: nothing on the Python side drops or rejects them (#13: the checker accepts them
    when the candidate declares the constant with the reference type)."""
    import re

    proofnet = load_dataset("proofnet", data_dir, split="test")
    defs = [s for s in proofnet if re.match(r"\s*(noncomputable\s+)?(def|abbrev)\b",
                                            s.statement)]
    assert len(defs) == 7
    rules = {"rules": [{"pattern": r"^\s*(noncomputable\s+)?(def|abbrev)\b", "field": "statement",
                        "action": "pass"}], "default": "fail"}
    # The defs and as many theorems, under one header (each distinct ProofNet header would start
    # its own pool of stand-ins, which only costs time here).
    import msgspec

    theorems = [s for s in proofnet if s not in defs][:7]
    chosen = [msgspec.structs.replace(s, header="") for s in proofnet
              if s in defs or s in theorems]
    out = tmp_path / "log"
    run = RunSettings(model="double", splits=["proofnet:test"], samples=1, out=str(out), seed=1,
                      temperature=1.0, top_p=1.0, max_tokens=64, prompt_format="stp",
                      shard_size=64)
    with make_verifier(with_checker(config(tmp_path), standin_command(rules))) as verifier:
        result = run_eval(run, {"proofnet:test": chosen}, sampler=SeedSampler(),
                          verifier=verifier, prompt=str, extract=str.strip)
    assert result.written == 14
    passed = {a.statement_id for a in evlog.iter_attempts(str(out)) if a.status == "pass"}
    assert passed == {s.id for s in defs}
    [s] = summarize_log(load_log(out), budgets=(1,), resamples=0)
    assert s.solved == 7


def test_statements_per_split_keeps_the_first_n_of_each_split(data_dir: Path) -> None:
    from stp.eval.run import load_splits

    full = load_splits(["minif2f"], data_dir)
    few = load_splits(["minif2f"], data_dir, limit=5)
    assert set(few) == set(full) == {"minif2f:valid", "minif2f:test"}
    for split, recs in few.items():
        assert [r.id for r in recs] == [r.id for r in full[split][:5]]


@pytest.mark.parametrize("run_dir", ["gs://bucket/runs/a", "LOCAL"])
def test_every_profile_gets_a_local_cache_of_its_own(tmp_path: Path, run_dir: str) -> None:
    """A gs:// run directory's verdict cache is local (SQLite): the paper profile's cache sits
    beside the strict one's instead of becoming a gs:// path the verifier refuses."""
    from stp.eval.run import profile_config
    from stp.verify.service import cache_directory

    run_dir = str(tmp_path / "run") if run_dir == "LOCAL" else run_dir
    cfg = load_config(None, [f"run.run_dir='{run_dir}'"])
    strict = cache_directory(profile_config(cfg, "strict"))
    paper = cache_directory(profile_config(cfg, "paper"))
    assert strict is not None and paper is not None
    assert "://" not in str(paper) and paper == strict.with_name(strict.name + "-paper")
    for off in ("off", "none", "OFF"):
        assert cache_directory(profile_config(
            load_config(None, [f"run.run_dir='{run_dir}'", f"verifier.cache_dir='{off}'"]),
            "paper")) is None
