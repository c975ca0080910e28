"""Training and sampling tokens/s of our wrappers against raw Levanter and raw transformers/vLLM.

    python benchmarks/model_throughput.py [--config configs/tiny-cpu.toml] [--model DIR]
        [--hidden 64 --layers 2] [--examples 256] [--steps 12] [--prompts 16] [--n 4]
        [--part train|sample|both]

Training: `train_weighted` (weighted loss, packing, per-segment positions, checkpoint hooks,
metrics) against a bare Levanter `Trainer` running the plain next-token loss (Levanter's
`compute_next_token_loss`, unweighted mean) on the very same packed rows. Steady-state wall time from the end of the first (compiling) step to the
end of the last; tokens are the non-padding tokens of those steps.

Sampling: `make_sampler(...).generate` against the backend's own API on the same prompts and
settings (transformers `generate` for `hf`, `vllm.LLM.generate` for `vllm`). Tokens are generated
tokens, counted by re-tokenising completions for both sides.

Without --model a random tiny Llama is created (sizes from --hidden/--layers) in a temp dir.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from stp.config import load_config  # noqa: E402
from stp.metrics import describe_machine, read_metrics  # noqa: E402
from stp.model import prompts  # noqa: E402


def make_examples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        stmt = f"theorem bench_{i} (x y : ℕ) (h₀ : x = {a}) (h₁ : y = {b}) : x + y = {a + b} := by"
        proof = "\n  subst h₀ h₁\n  norm_num" + "\n  simp [Nat.add_comm]" * rng.randint(0, 6)
        ex = prompts.prover_training_example(stmt, "", proof, weight=rng.uniform(0.1, 2.0))
        out.append({"prompt": ex.prompt, "target": ex.target, "weight": ex.weight})
    return out


def bench_train(cfg, model: str, work: Path, n_examples: int, steps: int) -> dict:
    from stp.model.training import train_weighted

    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_examples(n_examples)))
    trainer_cfg = msgspec.structs.replace(cfg.trainer, min_steps=steps,
                                          checkpoint_every_steps=10**6)
    result = train_weighted(model, str(data), str(work / "ours"), trainer_cfg, cfg.model,
                            max_steps=steps)
    recs = sorted(read_metrics(str(work / "ours" / "metrics.jsonl"), "train_step"),
                  key=lambda r: r["step"])
    recs = list({r["step"]: r for r in recs}.values())
    ours_s = recs[-1]["time"] - recs[0]["time"]
    ours_tokens = sum(r["tokens"] for r in recs[1:])
    raw_tokens, raw_s = raw_levanter(cfg, model, str(data), work / "raw", steps)
    return {"steps_timed": len(recs) - 1, "rows_per_step": result.rows_per_step,
            "seq_len": result.seq_len, "ours_tokens_per_s": ours_tokens / ours_s,
            "raw_tokens_per_s": raw_tokens / raw_s, "tokens_per_step": ours_tokens / (len(recs) - 1)}


def raw_levanter(cfg, model: str, data: str, out: Path, steps: int) -> tuple[int, float]:
    """A bare Levanter Trainer with the stock loss on the same packed rows."""
    import equinox as eqx
    import haliax as hax
    import jax
    import jax.numpy as jnp
    import numpy as np
    from levanter.compat.hf_checkpoints import load_tokenizer
    from levanter.data import AsyncDataset
    from levanter.layers.attention import AttentionMask
    from levanter.models.lm_model import LmExample
    from levanter.models.loss import maybe_fused_next_token_loss
    from levanter.trainer import Trainer

    from stp.model.training.data import load_examples, tokenize_examples
    from stp.model.training.levanter_trainer import (
        _converter,
        _initialize,
        _levanter_config,
        _optimizer,
    )
    from stp.model.training.packing import build_row, plan_steps

    tc = cfg.trainer
    tok = load_tokenizer(model)
    toks = tokenize_examples(load_examples(data), tok, tc.max_seq_len)
    lev = _initialize(_levanter_config(tc, str(out)))
    micro = lev.microbatch_size or lev.data_axis_size
    plan = plan_steps(toks, steps=steps, batch_size=tc.batch_size, max_seq_len=tc.max_seq_len,
                      packing=tc.packing, row_multiple=micro, seed=tc.seed)
    lev = dataclasses.replace(lev, train_batch_size=plan.rows_per_step, num_train_steps=steps)
    Pos = hax.Axis("position", plan.seq_len)

    class Rows(AsyncDataset):
        async def async_len(self):
            return len(plan.rows)

        async def final_length_is_known(self):
            return True

        def is_finite(self):
            return True

        async def current_len(self):
            return len(plan.rows)

        async def get_batch(self, indices):
            out = []
            for i in indices:
                t, w, seg, _ = build_row(toks, plan.rows[i], plan.seq_len, 0, 1.0)
                mask = AttentionMask.causal().with_segment_ids(hax.named(seg, Pos))
                out.append(LmExample(tokens=hax.named(t, Pos),
                                     loss_mask=hax.named((w > 0).astype(np.float32), Pos),
                                     attn_mask=mask))
            return out

    def plain_loss(model, ex, *, key=None):
        # Levanter's stock `compute_next_token_loss` (mean over the loss mask) written out: with
        # jax 0.10 its masked `hax.mean` rejects the float mask it builds ("where must be None or
        # a boolean array"), so the same computation is spelled with reduction=None here.
        act = model.activations(ex.tokens, ex.attn_mask, key=key)
        per_tok = maybe_fused_next_token_loss(model.Pos, model.Embed, model.Vocab, act,
                                              model.get_lm_head(), ex.tokens, reduction=None,
                                              dtype=jnp.float32)
        return hax.sum(per_tok * ex.loss_mask).scalar() / hax.sum(ex.loss_mask).scalar()

    conv = _converter(model, tok)
    mcfg = conv.default_config
    stamps: list[float] = []
    with Trainer(lev, _optimizer(tc, tc.learning_rate, 0).build(steps),
                 plain_loss, add_default_hooks=False) as trainer:
        model_ = conv.load_pretrained(mcfg.model_type, ref=model, config=mcfg,
                                      axis_mapping=trainer.parameter_axis_mapping,
                                      dtype=trainer.mp.param_dtype)
        state = trainer.initial_state(jax.random.PRNGKey(0), model=model_)
        trainer.add_hook(lambda info: stamps.append(time.time()), every=1)
        trainer.train(state, trainer.data_loader(Rows()).iter_from_step(0))
        eqx.clear_caches()
    stamps = stamps[:steps]
    tokens = sum(int(toks.lengths[ids].sum()) for ids in plan.step_examples[1:])
    return tokens, stamps[-1] - stamps[0]


def bench_sample(cfg, model: str, n_prompts: int, n: int) -> dict:
    from stp.model.sampling import make_sampler
    from stp.model.types import SampleRequest

    sc = cfg.sampler
    texts = [prompts.prover_prompt(f"theorem s{i} (x : ℕ) (h : x = {i}) : x + 1 = {i + 1} := by")
             for i in range(n_prompts)]
    reqs = [SampleRequest(prompt=t, seed=1000 + i, n=n, temperature=sc.temperature,
                          top_p=sc.top_p, max_tokens=sc.max_tokens) for i, t in enumerate(texts)]
    sampler = make_sampler(model, cfg.model, sc)
    try:
        sampler.generate(reqs[:1])  # warm-up
        t0 = time.perf_counter()
        outs = sampler.generate(reqs)
        ours_s = time.perf_counter() - t0
    finally:
        sampler.close()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    ours_tokens = sum(len(tok(c, add_special_tokens=False)["input_ids"]) for o in outs for c in o)
    if sc.backend == "vllm":
        raw_tokens, raw_s = raw_vllm(cfg, model, texts, n)
    else:
        raw_tokens, raw_s = raw_transformers(cfg, model, texts, n, tok)
    return {"backend": sc.backend, "prompts": n_prompts, "n": n, "max_tokens": sc.max_tokens,
            "ours_tokens_per_s": ours_tokens / ours_s, "raw_tokens_per_s": raw_tokens / raw_s,
            "ours_tokens": ours_tokens, "raw_tokens": raw_tokens}


def raw_transformers(cfg, model: str, texts: list[str], n: int, tok) -> tuple[int, float]:
    """transformers `generate` per prompt with n return sequences and the same sampling
    settings as the hf backend (which also generates one request at a time)."""
    import torch
    from transformers import AutoModelForCausalLM

    sc = cfg.sampler
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    kwargs = dict(do_sample=True, temperature=sc.temperature, top_p=sc.top_p, top_k=0,
                  num_return_sequences=n, pad_token_id=tok.pad_token_id,
                  eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    with torch.inference_mode():
        ids = torch.tensor([tok(texts[0])["input_ids"]])
        lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, **kwargs)
        t0 = time.perf_counter()
        outs: list[str] = []
        for text in texts:
            ids = torch.tensor([tok(text)["input_ids"]])
            gen = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                              max_new_tokens=sc.max_tokens, **kwargs)
            outs += tok.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)
        elapsed = time.perf_counter() - t0
    return sum(len(tok(c, add_special_tokens=False)["input_ids"]) for c in outs), elapsed


def raw_vllm(cfg, model: str, texts: list[str], n: int) -> tuple[int, float]:
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    sc = cfg.sampler
    llm = LLM(model=model, dtype=cfg.model.dtype, max_model_len=cfg.model.max_model_len,
              gpu_memory_utilization=sc.gpu_memory_utilization,
              tensor_parallel_size=sc.tensor_parallel_size)
    params = [SamplingParams(n=n, temperature=sc.temperature, top_p=sc.top_p,
                             max_tokens=sc.max_tokens, seed=1000 + i) for i in range(len(texts))]
    llm.generate(texts[:1], params[:1], use_tqdm=False)
    t0 = time.perf_counter()
    res = llm.generate(texts, params, use_tqdm=False)
    elapsed = time.perf_counter() - t0
    tok = AutoTokenizer.from_pretrained(model)
    return sum(len(tok(o.text, add_special_tokens=False)["input_ids"])
               for r in res for o in r.outputs), elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(REPO / "configs" / "tiny-cpu.toml"))
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--model", default=None, help="HF checkpoint (default: a new tiny model)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--examples", type=int, default=256)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--part", choices=("train", "sample", "both"), default="both")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)
    cfg = load_config(Path(args.config), args.overrides)
    with tempfile.TemporaryDirectory(prefix="stp-bench-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from stp.model.tiny import create_tiny_model

            model = create_tiny_model(work / "model", hidden_size=args.hidden,
                                      num_layers=args.layers)
        report: dict = {"model": args.model or f"tiny(hidden={args.hidden}, "
                                                f"layers={args.layers})"}
        if args.part in ("train", "both"):
            report["train"] = bench_train(cfg, model, work, args.examples, args.steps)
        if args.part in ("sample", "both"):
            report["sample"] = bench_sample(cfg, model, args.prompts, args.n)
    for part in ("train", "sample"):
        if part in report:
            r = report[part]
            r["wrapper_overhead_pct"] = 100 * (1 - r["ours_tokens_per_s"] / r["raw_tokens_per_s"])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
