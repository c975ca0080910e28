"""Tokenisation, masking, truncation, packing and the schedule of the weighted trainer (no JAX)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stp.data.records import TrainingExample
from stp.model.training import schedule
from stp.model.training.data import ExampleError, load_examples, tokenize_examples
from stp.model.training.packing import build_row, example_order, plan_steps


@pytest.fixture(scope="module")
def tokenizer(tiny_model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_steps_and_warmup() -> None:
    # The paper's per-round update: 1 epoch, batch 2048, at least 5 steps, warm-up min(steps-1, 5).
    assert schedule.num_train_steps(100_000, 1.0, 2048, 5) == 48
    assert schedule.num_train_steps(3000, 1.0, 2048, 5) == 5
    assert schedule.num_train_steps(10, 2.0, 4, 1) == 5
    assert schedule.num_train_steps(10, 0.5, 4, 0) == 1
    assert schedule.warmup_steps(5, 5) == 4
    assert schedule.warmup_steps(1, 5) == 0
    assert schedule.warmup_steps(48, 5) == 5
    lrs = [schedule.learning_rate_at(s, learning_rate=1.0, steps=5, warmup=5) for s in range(5)]
    assert lrs == [0.0, 0.25, 0.5, 0.75, 1.0]
    # The optax schedule handed to Levanter agrees (Levanter's own `warmup=1` would mean 100%).
    sched = schedule.optax_schedule(learning_rate=1.0, steps=5, warmup=5)
    assert [float(sched(s)) for s in range(7)] == pytest.approx([*lrs, 1.0, 1.0])
    one = schedule.optax_schedule(learning_rate=2.0, steps=10, warmup=1)
    assert [float(one(s)) for s in range(3)] == [0.0, 2.0, 2.0]
    with pytest.raises(ValueError):
        schedule.num_train_steps(0, 1.0, 8, 1)


def test_target_mask_trains_first_target_token_and_eos(tokenizer) -> None:
    ex = TrainingExample(prompt="theorem foo : True := by", target="\n  trivial", weight=2.0)
    toks = tokenize_examples([ex], tokenizer, max_seq_len=512)
    ids = toks.example(0).tolist()
    joint = tokenizer(ex.prompt + ex.target)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert ids[:-1] == joint
    n_t = int(toks.n_target[0])
    # The target tokens decode to exactly the target (+ EOS); the prompt part to the prompt.
    assert tokenizer.decode(ids[-n_t:-1]) == ex.target
    assert tokenizer.decode(ids[1:-n_t]) == ex.prompt
    assert toks.weights[0] == 2.0 and toks.truncated == 0


def test_boundary_token_straddling_prompt_and_target_counts_as_target(tokenizer) -> None:
    # "theorem" is one token of the tiny vocabulary: split it between prompt and target.
    ex = TrainingExample(prompt="the", target="orem")
    toks = tokenize_examples([ex], tokenizer, max_seq_len=64)
    ids = toks.example(0).tolist()
    assert len(ids) == 3  # BOS, "theorem", EOS
    assert int(toks.n_target[0]) == 2


def test_left_truncation_keeps_bos_and_the_end(tokenizer) -> None:
    ex = TrainingExample(prompt="x + " * 200, target="\n  norm_num [foo]")
    full = tokenize_examples([ex], tokenizer, max_seq_len=10_000)
    cut = tokenize_examples([ex], tokenizer, max_seq_len=32)
    ids = cut.example(0)
    assert cut.truncated == 1 and len(ids) == 32
    assert ids[0] == tokenizer.bos_token_id
    assert ids[1:].tolist() == full.example(0)[-31:].tolist()
    assert cut.n_target[0] == full.n_target[0]
    # A target longer than the window keeps only what fits (and never the position-0 token).
    long = TrainingExample(prompt="p", target=" simp" * 100)
    t = tokenize_examples([long], tokenizer, max_seq_len=16)
    assert int(t.n_target[0]) == 15


def test_load_examples_reports_file_line_and_field(tmp_path: Path) -> None:
    good = {"prompt": "a", "target": "b", "weight": 0.5}
    path = tmp_path / "ex.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({"prompt": "a"}) + "\n")
    with pytest.raises(ExampleError, match=r"ex\.jsonl:2.*target"):
        load_examples(str(path))
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(ExampleError, match=r"ex\.jsonl:2"):
        load_examples(str(path))
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "weight": -1}) + "\n")
    with pytest.raises(ExampleError, match=r"ex\.jsonl:2: field 'weight'"):
        load_examples(str(path))
    # A denormal weight passed "finite and >= 0" and gave an infinite loss; a huge one overflows.
    for tiny in (5e-324, 1e-31, 1e31):
        path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "weight": tiny}) + "\n")
        with pytest.raises(ExampleError, match=r"ex\.jsonl:2: field 'weight' must be 0 or "):
            load_examples(str(path))
    path.write_text(json.dumps({**good, "weight": 1e-30}) + "\n")
    assert load_examples(str(path))[0].weight == 1e-30
    path.write_text(json.dumps({**good, "weight": 0}) + "\n")
    with pytest.raises(ExampleError, match="weight 0"):
        load_examples(str(path))
    path.write_text("\n")
    with pytest.raises(ExampleError, match="no training examples"):
        load_examples(str(path))
    path.write_text(json.dumps({"prompt": "a", "target": "b"}) + "\n")
    assert load_examples(str(path)) == [TrainingExample(prompt="a", target="b", weight=1.0)]
    # The original's train_ds.json (a JSON array) is accepted too.
    arr = tmp_path / "train_ds.json"
    arr.write_text(json.dumps([good, good]))
    assert len(load_examples(str(arr))) == 2
    with pytest.raises(FileNotFoundError):
        load_examples(str(tmp_path / "missing.jsonl"))


def test_plan_packs_examples_and_normalises_weights(tokenizer) -> None:
    exs = [TrainingExample(prompt="theorem t : True := by", target="\n  trivial" * (1 + i % 3),
                           weight=1.0 + i) for i in range(10)]
    toks = tokenize_examples(exs, tokenizer, max_seq_len=64)
    plan = plan_steps(toks, steps=3, batch_size=4, max_seq_len=64, packing=True,
                      row_multiple=2, seed=0)
    assert plan.steps == 3 and plan.rows_per_step % 2 == 0
    # Each step holds exactly batch_size examples; together they cover one shuffled epoch first.
    assert all(len(ids) == 4 for ids in plan.step_examples)
    assert sorted(np.concatenate(plan.step_examples)[:10].tolist()) == list(range(10))
    for s, ids in enumerate(plan.step_examples):
        rows = plan.rows[s * plan.rows_per_step:(s + 1) * plan.rows_per_step]
        assert sorted(i for r in rows for i in r) == sorted(ids.tolist())
        assert all(toks.lengths[r].sum() <= 64 for r in rows if r)
        assert len([r for r in rows if r]) < 4  # really packed
        assert plan.denominators[s] == pytest.approx(
            sum(toks.weights[i] * toks.n_target[i] for i in ids))
        # Σ over the step's rows of token weights = micro_steps * Σ wᵢ|tᵢ| / D = micro_steps.
        total = sum(build_row(toks, r, plan.seq_len, 0, 2 / plan.denominators[s])[1].sum()
                    for r in rows)
        assert total == pytest.approx(2.0, rel=1e-5)


def test_row_layout_segments_positions_and_weights(tokenizer) -> None:
    exs = [TrainingExample(prompt="a", target=" b", weight=3.0),
           TrainingExample(prompt="theorem", target=" c d", weight=1.0)]
    toks = tokenize_examples(exs, tokenizer, max_seq_len=32)
    tokens, weights, segs, pos = build_row(toks, [0, 1], 16, pad_id=7, scale=0.5)
    n0, n1 = (len(toks.example(i)) for i in (0, 1))
    assert tokens[:n0].tolist() == toks.example(0).tolist()
    assert tokens[n0:n0 + n1].tolist() == toks.example(1).tolist()
    assert (tokens[n0 + n1:] == 7).all() and (segs[n0 + n1:] == -1).all()
    assert segs[:n0].tolist() == [0] * n0 and segs[n0:n0 + n1].tolist() == [1] * n1
    assert pos[:n0].tolist() == list(range(n0)) and pos[n0:n0 + n1].tolist() == list(range(n1))
    # Position p carries the weight of predicting token p+1: target tokens (and EOS) only.
    t0, t1 = int(toks.n_target[0]), int(toks.n_target[1])
    expected = np.zeros(16)
    expected[n0 - t0 - 1:n0 - 1] = 1.5
    expected[n0 + n1 - t1 - 1:n0 + n1 - 1] = 0.5
    assert weights.tolist() == pytest.approx(expected.tolist())
    assert weights[n0 - 1] == 0  # never predicts the next example's first token


def test_example_order_is_epoch_wise_and_deterministic() -> None:
    order = example_order(5, 12, seed=3)
    assert sorted(order[:5].tolist()) == list(range(5))
    assert sorted(order[5:10].tolist()) == list(range(5))
    assert order.tolist() == example_order(5, 12, seed=3).tolist()
    assert order.tolist() != example_order(5, 12, seed=4).tolist()
