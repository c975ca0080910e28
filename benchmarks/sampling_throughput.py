"""Sampling tokens/s of our sampler against the backend's raw API on the same model and settings.

    python benchmarks/sampling_throughput.py [--backend hf|vllm] [--model DIR_OR_HF_ID]
        [--requests 16] [--n 4] [--max-tokens 64] [--repeats 3]

hf:   `make_sampler(...).generate` vs a bare loop of `torch.manual_seed(seed)` +
      `model.generate(do_sample=True, num_return_sequences=n)` on the same model object.
vllm: the same wrapper vs `LLM.generate` called directly on the wrapper's own engine with text
      prompts and one shared `SamplingParams` (what a hand-written script would do).
Both sides use identical seeds and settings and generate the same number of tokens; the two are
timed alternately `--repeats` times and the best time of each is reported (less noise from other
processes). Without --model a random tiny Llama is created in a temp dir (CPU-sized).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from stp.metrics import describe_machine  # noqa: E402
from stp.model.config import ModelConfig, SamplerConfig  # noqa: E402
from stp.model.sampling import make_sampler  # noqa: E402
from stp.model.types import SampleRequest  # noqa: E402

PROMPT = ("Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n\n"
          "theorem t{i} (x : ℝ) (h₀ : x = {i}) : x ^ 2 = {i} * {i} := by\n")


def raw_hf(sampler, reqs: list[SampleRequest]) -> int:
    import torch

    tok, model = sampler.tokenizer, sampler.model
    tokens = 0
    for req in reqs:
        ids = torch.tensor([tok(req.prompt)["input_ids"]])
        torch.manual_seed(req.seed)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 do_sample=True, top_k=0, top_p=req.top_p,
                                 temperature=req.temperature, max_new_tokens=req.max_tokens,
                                 num_return_sequences=req.n, pad_token_id=tok.pad_token_id)
        tokens += int((out[:, ids.shape[1]:] != tok.pad_token_id).sum())
    return tokens


def raw_vllm(sampler, reqs: list[SampleRequest]) -> int:
    from vllm import SamplingParams

    r = reqs[0]
    params = SamplingParams(n=r.n, temperature=r.temperature, top_p=r.top_p,
                            max_tokens=r.max_tokens, seed=r.seed)
    outs = sampler.llm.generate([q.prompt for q in reqs], params, use_tqdm=False)
    return sum(len(c.token_ids) for o in outs for c in o.outputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--stop", action="append", default=[],
                    help="stop string for the wrapper's requests (measures the stop check's cost "
                         "when it never matches, e.g. --stop '</never>')")
    args = ap.parse_args()
    print(f"machine: {describe_machine()}", flush=True)

    model = args.model
    if model is None:
        from stp.model.tiny import create_tiny_model

        model = create_tiny_model(Path(tempfile.mkdtemp()) / "tiny", hidden_size=128)
    model_cfg = ModelConfig(name=model, dtype=args.dtype, max_prompt_tokens=1024,
                            max_model_len=2048)
    sampler = make_sampler(model, model_cfg, SamplerConfig(backend=args.backend))
    reqs = [SampleRequest(prompt=PROMPT.format(i=i), seed=1000 + i, n=args.n,
                          max_tokens=args.max_tokens, stop=tuple(args.stop)) for i in range(args.requests)]
    raw = raw_hf if args.backend == "hf" else raw_vllm
    sampler.generate(reqs[:2])  # warm-up (kernels, allocator)
    raw(sampler, reqs[:2])
    best_w = best_r = float("inf")
    tok_w = tok_r = 0
    for _ in range(args.repeats):
        before = sampler.stats.completion_tokens
        t0 = time.perf_counter()
        sampler.generate(reqs)
        best_w = min(best_w, time.perf_counter() - t0)
        tok_w = sampler.stats.completion_tokens - before
        t0 = time.perf_counter()
        tok_r = raw(sampler, reqs)
        best_r = min(best_r, time.perf_counter() - t0)
    sampler.close()
    w, r = tok_w / best_w, tok_r / best_r
    print(f"backend={args.backend} model={model} requests={args.requests} n={args.n} "
          f"max_tokens={args.max_tokens} stop={args.stop}")
    print(f"wrapper: {tok_w} tokens in {best_w:.3f} s = {w:,.0f} tokens/s")
    print(f"raw:     {tok_r} tokens in {best_r:.3f} s = {r:,.0f} tokens/s")
    print(f"wrapper overhead: {100 * (1 - w / r):+.1f}% (goal < 5%)")


if __name__ == "__main__":
    main()
