"""The Levanter weighted trainer on CPU with a tiny model: the loss formula against a hand
computation, the effect of weights on loss and gradient, training, resume, export, sampling."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from stp.data.records import TrainingExample
from stp.model.config import ModelConfig, SamplerConfig, TrainerConfig
from stp.model.training.data import tokenize_examples
from stp.model.training.packing import plan_steps

EXAMPLES = [
    TrainingExample(prompt=f"theorem t{i} (x : ℕ) (h₀ : x = {i}) : x + {i} = {2 * i} := by",
                    target=["\n  subst h₀\n  norm_num", "\n  omega", "\n  simp [h₀]"][i % 3],
                    weight=[1.0, 0.5, 2.0, 0.25][i % 4])
    for i in range(16)
]


@pytest.fixture(scope="module")
def tiny(tiny_model: str) -> str:
    return tiny_model


@pytest.fixture(scope="module")
def tokenizer(tiny: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


def _torch_ce_sums(model_path: str, toks) -> tuple[np.ndarray, np.ndarray]:
    """Per example (Σ_t CE over target tokens incl. EOS, |target|), each example alone."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32).eval()
    sums, counts = [], []
    for i in range(len(toks)):
        ids = torch.tensor(toks.example(i), dtype=torch.long)[None]
        with torch.no_grad():
            logits = model(ids).logits[0]
        ce = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")
        n = int(toks.n_target[i])
        sums.append(float(ce[-n:].sum()))
        counts.append(n)
    return np.array(sums), np.array(counts)


class _LevanterBatchLoss:
    """Loss and gradient of one optimizer step holding `examples`, via the trainer's own code."""

    def __init__(self, model_path: str, tokenizer) -> None:
        import jax.numpy as jnp
        from levanter.trainer import TrainerConfig as LevanterTrainerConfig

        from stp.model.training.levanter_trainer import _converter

        self.tokenizer = tokenizer
        self._fn = None
        self.lev = LevanterTrainerConfig(require_accelerator=False)
        conv = _converter(model_path, tokenizer)
        cfg = conv.default_config
        with self._context(self.lev.parameter_axis_mapping):
            self.model = conv.load_pretrained(cfg.model_type, ref=model_path, config=cfg,
                                              dtype=jnp.float32)

    def _context(self, mapping):
        import contextlib

        import haliax as hax

        stack = contextlib.ExitStack()
        stack.enter_context(hax.partitioning.set_mesh(self.lev.device_mesh))
        stack.enter_context(hax.axis_mapping(mapping))
        return stack

    def __call__(self, toks, weights, micro_steps: int = 1):
        with self._context(self.lev.compute_axis_mapping):
            return self._loss(toks, weights, micro_steps)

    def _loss(self, toks, weights, micro_steps: int):
        import equinox as eqx
        from levanter.data.loader import stack_tree

        from stp.model.training.levanter_trainer import make_row, weighted_loss

        toks.weights = np.asarray(weights, dtype=np.float64)
        plan = plan_steps(toks, steps=1, batch_size=len(toks), max_seq_len=128, packing=True,
                          row_multiple=1, seed=0)
        rows = [make_row(toks, plan, r, self.tokenizer.pad_token_id, micro_steps)
                for r in range(plan.rows_per_step)]
        batch = stack_tree("batch", rows)
        if self._fn is None:
            self._fn = eqx.filter_jit(eqx.filter_value_and_grad(
                lambda m, b: weighted_loss(m, b)[0]))
        loss, grads = self._fn(self.model, batch)
        return float(loss), np.asarray(grads.lm_head.weight.array)


def test_loss_and_gradient_follow_the_weighted_formula(tiny: str, tokenizer) -> None:
    exs = EXAMPLES[:5]
    toks = tokenize_examples(exs, tokenizer, max_seq_len=128)
    sums, counts = _torch_ce_sums(tiny, toks)
    lev = _LevanterBatchLoss(tiny, tokenizer)
    w = np.array([ex.weight for ex in exs])

    # Σ wᵢ Σ_t CEᵢₜ / Σ wᵢ|targetᵢ| on packed rows == the same on each example alone (torch).
    loss, grad = lev(toks, w)
    assert loss == pytest.approx(float((w * sums).sum() / (w * counts).sum()), rel=1e-4)
    # Scaling every weight changes nothing; micro-batch scaling is undone by the averaging.
    loss2, grad2 = lev(toks, 2 * w)
    assert loss2 == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(grad2, grad, rtol=1e-4, atol=1e-7)
    assert lev(toks, w, micro_steps=2)[0] == pytest.approx(2 * loss, rel=1e-5)
    # Up-weighting example 0 pulls the loss toward its mean CE.
    heavy = w.copy()
    heavy[0] *= 20
    mean0 = sums[0] / counts[0]
    assert abs(lev(toks, heavy)[0] - mean0) < abs(loss - mean0)
    # The gradient is the (wᵢ|targetᵢ|)-weighted mix of the single-example gradients.
    singles = []
    for i in range(len(exs)):
        one = np.zeros(len(exs))
        one[i] = 1.0
        li, gi = lev(toks, one)
        assert li == pytest.approx(sums[i] / counts[i], rel=1e-4)
        singles.append(gi)
    mix = sum(w[i] * counts[i] * singles[i] for i in range(len(exs))) / (w * counts).sum()
    np.testing.assert_allclose(grad, mix, rtol=1e-3, atol=1e-6)
    # A zero-weight example contributes nothing.
    zero = w.copy()
    zero[1] = 0.0
    mix0 = sum(zero[i] * counts[i] * singles[i] for i in range(len(exs))) / (zero * counts).sum()
    np.testing.assert_allclose(lev(toks, zero)[1], mix0, rtol=1e-3, atol=1e-6)


def _write(path: Path, examples: list[TrainingExample]) -> str:
    path.write_text("".join(json.dumps({"prompt": e.prompt, "target": e.target,
                                        "weight": e.weight}) + "\n" for e in examples))
    return str(path)


TRAINER = TrainerConfig(batch_size=8, per_device_batch_size=2, min_steps=8, warmup_steps=1,
                        max_seq_len=128, mp="p=f32,c=f32", learning_rate=3e-3,
                        checkpoint_every_steps=4)
MODEL = ModelConfig(dtype="float32", max_prompt_tokens=96, max_model_len=128)


@pytest.mark.slow
def test_train_resume_export_and_sample(tiny: str, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from stp.model.training import train_weighted
    from stp.model.training.levanter_trainer import TrainingSettingsMismatch

    data = _write(tmp_path / "train.jsonl", EXAMPLES)
    out = tmp_path / "run"
    first = train_weighted(tiny, data, str(out), TRAINER, MODEL)
    assert first.steps == 8 and len(first.losses) == 8 and first.examples == 16
    assert first.tokens > 0 and first.truncated_examples == 0
    # The loss falls (step 0 runs at learning rate 0 during the one warm-up step).
    assert np.mean(first.losses[-2:]) < 0.8 * first.losses[0]
    assert first.losses[-1] < first.losses[1] < first.losses[0] + 1e-3
    weights = load_file(str(Path(first.hf_path) / "model.safetensors"))
    base = load_file(str(Path(tiny) / "model.safetensors"))
    assert not np.allclose(weights["lm_head.weight"], base["lm_head.weight"])

    # Idempotent: a finished run returns its result at once.
    began = time.monotonic()
    again = train_weighted(tiny, data, str(out), TRAINER, MODEL)
    assert again == first and time.monotonic() - began < 2
    # A rerun with other settings is refused rather than mixed into this run.
    with pytest.raises(TrainingSettingsMismatch, match="learning_rate"):
        train_weighted(tiny, data, str(out), TRAINER, MODEL, learning_rate=1e-4)

    # Resume: drop the export (as if the process died after the step-4 checkpoint) and rerun;
    # training continues from the checkpoint and ends with the same weights.
    import shutil

    (out / "train_result.json").unlink()
    shutil.rmtree(out / "hf")
    shutil.rmtree(out / "checkpoints" / "stp" / "step-8", ignore_errors=True)
    resumed = train_weighted(tiny, data, str(out), TRAINER, MODEL)
    assert 0 < resumed.resumed_from_step < 8
    assert resumed.losses == pytest.approx(first.losses, rel=1e-5)
    again_w = load_file(str(Path(resumed.hf_path) / "model.safetensors"))
    for name, value in weights.items():
        np.testing.assert_allclose(again_w[name], value, rtol=1e-5, atol=1e-6)

    # The export loads in the CPU sampler: distinct seeds give distinct samples, equal seeds equal.
    from stp.model.sampling import make_sampler
    from stp.model.types import SampleRequest

    sampler = make_sampler(resumed.hf_path, MODEL, SamplerConfig(backend="hf", max_tokens=12))
    try:
        prompt = EXAMPLES[0].prompt
        reqs = [SampleRequest(prompt=prompt, seed=s, n=1, max_tokens=12) for s in (1, 2, 3, 1)]
        outs = [o[0] for o in sampler.generate(reqs)]
        assert len(set(outs[:3])) == 3 and outs[3] == outs[0]
    finally:
        sampler.close()
