#!/usr/bin/env python
"""GPU smoke check of the accelerator hand-over: sample -> train -> sample -> train on one GPU.

    python scripts/gpu_smoke.py [--out DIR] [--sampler vllm|hf] [--hidden 256] [--layers 4]

A tiny random model (stp.model.tiny) is sampled from, trained on its own samples with the real
Levanter trainer, sampled from again with the new weights and trained again, every phase in its
own phase process (`model.phase_isolation = "process"`, stp.model.phases) as on a GPU machine by
default. For each phase it prints the wall time, tokens/s and the GPU memory in use before,
during (peak seen by nvidia-smi) and after it: "after" must fall back to the level before the
phase, or the next phase would not own the device alone. Exit status 1 when it does not.
`--sampler vllm` needs the `gpu` extra; with `hf` (the default when vLLM is not installed) the
sampler is transformers on the GPU. The first thing to run on a machine with a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))


def gpu_memory_mib() -> int:
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


class PeakMemory:
    """Polls nvidia-smi every 0.2 s while a phase runs."""

    def __init__(self) -> None:
        self.peak = gpu_memory_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, gpu_memory_mib())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="", help="work directory (default: a temporary one)")
    p.add_argument("--sampler", choices=["vllm", "hf"], default="")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--samples", type=int, default=64, help="samples per sampling phase")
    p.add_argument("--tolerance-mib", type=int, default=512,
                   help="how far above the pre-phase level the memory may stay after a phase")
    args = p.parse_args()

    from stp.model.config import ModelConfig, SamplerConfig, TrainerConfig
    from stp.model.sampling import make_sampler
    from stp.model.tiny import create_tiny_model
    from stp.model.training import train_weighted
    from stp.model.types import SampleRequest

    backend = args.sampler
    if not backend:
        try:
            import vllm  # noqa: F401
            backend = "vllm"
        except ImportError:
            backend = "hf"
    work = Path(args.out or tempfile.mkdtemp(prefix="stp-gpu-smoke-"))
    model_dir = create_tiny_model(work / "tiny", hidden_size=args.hidden, num_layers=args.layers)
    model = ModelConfig(dtype="bfloat16", max_prompt_tokens=64, max_model_len=160,
                        phase_isolation="process")
    sampler_cfg = SamplerConfig(backend=backend, max_tokens=64, gpu_memory_utilization=0.5)
    trainer = TrainerConfig(batch_size=16, per_device_batch_size=16, min_steps=20,
                            warmup_steps=2, max_seq_len=160, learning_rate=1e-3,
                            checkpoint_every_steps=1000)
    prompts = [f"theorem t{i} (x : ℕ) (h : x = {i}) : x + {i} = {2 * i} := by" for i in
               range(args.samples)]
    rows: list[dict[str, object]] = []
    ok = True

    def phase(name: str, unit: str, fn):  # type: ignore[no-untyped-def]
        nonlocal ok
        before = gpu_memory_mib()
        began = time.monotonic()
        with PeakMemory() as peak:
            tokens, result = fn()
        seconds = time.monotonic() - began
        after = gpu_memory_mib()
        released = after <= before + args.tolerance_mib
        ok = ok and released
        row = {"phase": name, "seconds": round(seconds, 2), f"{unit}_per_s": round(tokens / seconds),
               "mib_before": before, "mib_peak": peak.peak, "mib_after": after,
               "released": released}
        rows.append(row)
        print(json.dumps(row), flush=True)
        return result

    def sample(path: str):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            s = make_sampler(path, model, sampler_cfg)
            try:
                reqs = [SampleRequest(prompt=pr, seed=i, n=1, max_tokens=64)
                        for i, pr in enumerate(prompts)]
                outs = s.generate(reqs)
                s.embed(prompts[:32])
            finally:
                s.close()
            data = work / f"data-{len(rows)}.jsonl"
            data.write_text("".join(json.dumps({"prompt": pr, "target": o[0] or "\n  rfl",
                                                "weight": 1.0}) + "\n"
                                    for pr, o in zip(prompts, outs, strict=True)))
            return sum(len(o[0].split()) for o in outs), str(data)
        return run

    def train(base: str, data: str, out: str):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            res = train_weighted(base, data, out, trainer, model)
            return res.tokens_processed, res.hf_path
        return run

    print(f"# gpu_smoke: sampler={backend}, tiny model hidden={args.hidden} layers={args.layers}, "
          f"work dir {work}", flush=True)
    # Sampling throughput in whitespace-separated words of completion (no tokenizer in the
    # driver: it must not load one); training throughput in tokens processed.
    d1 = phase("sample-1", "words", sample(model_dir))
    m1 = phase("train-1", "tokens", train(model_dir, d1, str(work / "train-1")))
    d2 = phase("sample-2", "words", sample(m1))
    phase("train-2", "tokens", train(m1, d2, str(work / "train-2")))
    print("# every phase released the device" if ok else
          "# FAILED: a phase left memory allocated on the device", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
