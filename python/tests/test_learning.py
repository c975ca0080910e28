"""The loop learns: on a synthetic task judged exactly (learning_task.py) a tiny model trained from
scratch — Stage 1, then self-play rounds with the real sampler, checker protocol, selection and
trainer — raises its held-out solve rate by a clear margin, and the same run with the training
weights or the selection broken on purpose does not (learning_loop.py has the set-up; the curve
is in docs/selfplay.md, printed by benchmarks/learning_curve.py). `pytest -m learning` runs it.

Also, quickly: the task's logic, and the stand-in checker judging with it over the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from learning_loop import Experiment
from learning_task import HEADER, Item, all_items, judge, split_items
from standin import standin_command, with_checker

from stp.config import load_config
from stp.verify import VerifyItem, make_verifier

# Held-out pass@1 gain (rate after the last round - rate after Stage 1) the shipped loop must
# reach and no broken loop may; measured runs in docs/selfplay.md ("A loop shown to learn").
MARGIN = 0.15


def test_the_logic_accepts_exactly_the_statement_dependent_proof() -> None:
    item = Item(op=3, left="y", right="m")
    statement = item.statement("syn_1")
    assert statement == "theorem syn_1 (m y : ℕ) : min y m = min m y := by"
    assert judge(statement, item.proof()) == (True, "Nat.min_comm", "")
    for wrong in ("\n  exact Nat.min_comm m y", "\n  exact Nat.max_comm y m",
                  "\n  exact Nat.min_comm _ _", "\n  rw [Nat.min_comm]", "\n  sorry", ""):
        assert not judge(statement, wrong)[0], wrong
    # No proof of a statement outside the grammar or of a false one.
    assert not judge("theorem t (m y : ℕ) : min y m = max m y := by", item.proof())[0]
    assert not judge("theorem t (m y : ℕ) : min y m = min y m := by", item.proof())[0]
    assert not judge("theorem t : True := by", "\n  trivial")[0]
    # Every statement has exactly its own proof: no two statements share one.
    items = all_items()
    assert len({i.proof() for i in items}) == len(items) == 336
    split = split_items(96, 96, 48)
    named = [(i.op, i.left, i.right) for i in split.sft + split.pool + split.heldout]
    assert len(set(named)) == len(named)


def test_standin_judges_with_the_logic_over_the_protocol(tmp_path: Path) -> None:
    """Checks and kernel replays of the stand-in (spec default "judge") follow the logic, and a
    pass reports the lemma it used."""
    cfg = load_config(None, ['verifier.backend="local"', "verifier.workers=1",
                             f'verifier.cache_dir="{tmp_path / "cache"}"'])
    with_checker(cfg, standin_command({"default": "judge", "judge": "learning_task"}))
    item = Item(op=0, left="x", right="a")
    statement = item.statement("syn_2")
    verifier = make_verifier(cfg)
    try:
        results = verifier.verify_all([
            VerifyItem(statement=statement, proof=item.proof(), header=HEADER, premises=True),
            VerifyItem(statement=statement, proof="\n  exact Nat.add_comm a x", header=HEADER),
        ])
    finally:
        verifier.close()
    assert [r.status for r in results] == ["pass", "fail"]
    assert results[0].premises == ["Nat.add_comm"]


@pytest.mark.slow
@pytest.mark.learning
# Three runs (shipped, weights broken, selection broken) sharing one Stage-1 model: about 6 CPU
# minutes; on a loaded 2-core machine the wall clock went past the suite's default 600 s limit.
@pytest.mark.timeout(1500)
def test_the_loop_learns_and_fails_to_when_broken(tmp_path: Path) -> None:
    curves, _timings = Experiment(tmp_path).curves()
    report = {name: ([round(100 * r, 1) for r in c.rates], c.rounds)
              for name, c in curves.items()}
    shipped = curves["shipped"]
    assert shipped.gain >= MARGIN, report
    for broken in ("weights", "selection"):
        assert curves[broken].gain < MARGIN, (broken, report)
        assert shipped.rates[-1] - curves[broken].rates[-1] >= MARGIN, (broken, report)
    # The breakages took effect where they were injected, and the shipped run trained on
    # verified proofs only.
    for name in ("shipped", "selection"):
        root = tmp_path / name
        targets = [e for e in _train_examples(root) if "<hard theorem>" not in e.prompt]
        assert targets, name
        verdicts = {judge(_statement(e.prompt), e.target)[0] for e in targets}
        assert verdicts == ({True} if name == "shipped" else {False}), name


def _train_examples(root: Path) -> list:
    from stp import storage
    from stp.data.records import TrainingExample

    return [e for path in sorted(root.glob("round-*/train.jsonl.gz"))
            for e in storage.iter_jsonl(str(path), type=TrainingExample)]


def _statement(prompt: str) -> str:
    return prompt[prompt.index("theorem "):]
