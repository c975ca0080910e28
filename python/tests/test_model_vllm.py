"""The vLLM backend on a real GPU (skipped where no CUDA GPU is visible): same contract as the
CPU backend — per-request seeds, request order, stop strings kept, truncation, embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from stp.model.config import ModelConfig, SamplerConfig
from stp.model.sampling import make_sampler
from stp.model.tiny import create_tiny_model
from stp.model.types import SampleRequest

pytestmark = pytest.mark.gpu

PROMPT = "Complete the following Lean 4 code:\n\n```lean4\ntheorem foo (x : ℕ) : x = x := by\n"


@pytest.fixture(scope="module")
def vsampler(tmp_path_factory: pytest.TempPathFactory):
    # vLLM needs head_dim a multiple of 16/32 for its attention kernels: 4 heads x 32.
    path = create_tiny_model(tmp_path_factory.mktemp("tiny_vllm"), hidden_size=128)
    s = make_sampler(path, ModelConfig(name=path, max_prompt_tokens=48, max_model_len=128,
                                       dtype="float32"),
                     SamplerConfig(backend="vllm", gpu_memory_utilization=0.3,
                                   embed_batch_size=2))
    yield s
    s.close()


def r(seed: int, **kw: object) -> SampleRequest:
    kw.setdefault("max_tokens", 24)
    return SampleRequest(prompt=kw.pop("prompt", PROMPT), seed=seed, **kw)  # type: ignore[arg-type]


def test_vllm_seeds_order_and_n(vsampler) -> None:
    a, b, c, d = vsampler.generate([r(7, n=3), r(7, n=3), r(8, n=3), r(9, n=1)])
    assert [len(x) for x in (a, b, c, d)] == [3, 3, 3, 1]
    assert a == b and a != c and len(set(a)) > 1
    # Adjacent seeds must not share samples (vLLM derives sample j's seed as seed + j).
    assert not set(a) & set(c)
    alone = vsampler.generate([r(8, n=3)])
    assert alone[0] == c


def test_vllm_greedy_and_stop(vsampler) -> None:
    g = vsampler.generate([r(1, n=2, temperature=0.0), r(2, temperature=0.0)])
    assert g[0][0] == g[0][1] == g[1][0]
    free = vsampler.generate([r(21, max_tokens=40)])[0][0]
    stop = next(free[i:i + 2] for i in range(5, len(free) - 2)
                if free[i:i + 2].isascii() and free[i:i + 2].strip() == free[i:i + 2])
    stopped = vsampler.generate([r(21, max_tokens=40, stop=(stop,))])[0][0]
    assert stopped.endswith(stop) and stop not in stopped[:-len(stop)]


def test_vllm_truncation_and_length_cap(vsampler) -> None:
    before = vsampler.stats.truncated_prompts
    out = vsampler.generate([r(3, prompt="theorem t : True := by trivial\n" * 40,
                               max_tokens=10_000)])
    assert vsampler.stats.truncated_prompts == before + 1
    assert len(out[0]) == 1


def test_vllm_embed(vsampler) -> None:
    texts = ["theorem t : True", "theorem bar (f : ℕ → ℕ) : f 3 = f 3 := rfl", "theorem t : True"]
    v = vsampler.embed(texts)
    assert v.shape[0] == 3 and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(v[0], v[2], atol=1e-4)
    np.testing.assert_allclose(vsampler.embed(texts[:1])[0], v[0], atol=1e-4)
