"""The transformers sampler on a tiny random model: seeds, settings, stop strings, truncation,
embeddings, and the backend dispatch of make_sampler."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stp import storage
from stp.errors import UsageError
from stp.model.config import ModelConfig, SamplerConfig
from stp.model.sampling import make_sampler
from stp.model.sampling.common import SamplerStats, cut_at_stop, truncate_prompt_ids
from stp.model.sampling.hf import HFSampler
from stp.model.types import Sampler, SampleRequest

pytest_plugins = ["gcs_emulator"]

PROMPT = "Complete the following Lean 4 code:\n\n```lean4\ntheorem foo (x : ℕ) : x = x := by\n"


@pytest.fixture(scope="module")
def tiny_path(tiny_model: str) -> str:
    return tiny_model


@pytest.fixture(scope="module")
def sampler(tiny_path: str) -> HFSampler:
    model_cfg = ModelConfig(name=tiny_path, max_prompt_tokens=48, max_model_len=96,
                            dtype="bfloat16")
    sampler_cfg = SamplerConfig(backend="hf", embed_batch_size=2, embed_max_tokens=64)
    s = make_sampler(tiny_path, model_cfg, sampler_cfg)
    assert isinstance(s, HFSampler)
    yield s
    s.close()


def req(seed: int, **kw: object) -> SampleRequest:
    kw.setdefault("max_tokens", 24)
    return SampleRequest(prompt=kw.pop("prompt", PROMPT), seed=seed, **kw)  # type: ignore[arg-type]


def test_make_sampler_dispatch(tiny_path: str, sampler: HFSampler) -> None:
    assert isinstance(sampler, Sampler)
    # An unknown backend fails when the config loads (a Literal), before any sampler is made.
    from stp.config import load_config
    from stp.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sampler\.backend"):
        load_config(None, ['sampler.backend="jax"'])
    with pytest.raises(ConfigError, match=r"model\.dtype"):
        load_config(None, ['model.dtype="int3"'])


def test_same_seed_same_completions_different_seed_differs(sampler: HFSampler) -> None:
    a, b, c = sampler.generate([req(7, n=3), req(7, n=3), req(8, n=3)])
    assert len(a) == 3 and a == b
    assert a != c
    # The n samples of one request are distinct draws, not copies.
    assert len(set(a)) > 1


def test_request_results_do_not_depend_on_companions(sampler: HFSampler) -> None:
    alone = sampler.generate([req(11, n=2)])
    together = sampler.generate([req(3, n=1, max_tokens=5), req(11, n=2), req(4, n=4)])
    assert [len(x) for x in together] == [1, 2, 4]
    assert together[1] == alone[0]


def test_greedy_matches_raw_transformers_and_excludes_prompt(sampler: HFSampler) -> None:
    import torch

    out = sampler.generate([req(1, n=2, temperature=0.0), req(2, n=1, temperature=0.0)])
    assert out[0][0] == out[0][1] == out[1][0]
    ids = torch.tensor([sampler.tokenizer(PROMPT)["input_ids"]])
    raw = sampler.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 do_sample=False, max_new_tokens=24,
                                 pad_token_id=sampler.tokenizer.pad_token_id)
    expected = sampler.tokenizer.decode(raw[0, ids.shape[1]:], skip_special_tokens=True)
    assert out[0][0] == expected


def test_tiny_top_p_and_tiny_temperature_are_greedy(sampler: HFSampler) -> None:
    greedy = sampler.generate([req(0, temperature=0.0)])[0][0]
    nucleus = sampler.generate([req(5, n=2, top_p=1e-6)])[0]
    cold = sampler.generate([req(6, n=2, temperature=1e-4)])[0]
    hot = sampler.generate([req(6, n=2)])[0]
    assert nucleus == [greedy, greedy]
    assert cold == [greedy, greedy]
    assert greedy not in hot


def test_max_tokens_and_model_len_cap(sampler: HFSampler) -> None:
    before = sampler.stats.completion_tokens
    sampler.generate([req(9, n=3, max_tokens=4)])
    assert 0 < sampler.stats.completion_tokens - before <= 12
    # A 40-token prompt in max_model_len=96 leaves 56 tokens whatever max_tokens asks for.
    prompt = "theorem " + "x " * 200
    ids = sampler.encode_prompt(prompt)
    before = sampler.stats.completion_tokens
    sampler.generate([req(9, n=1, max_tokens=10_000, prompt=prompt)])
    assert sampler.stats.completion_tokens - before <= 96 - len(ids)


def test_stop_string_cuts_after_first_match_and_keeps_it(sampler: HFSampler) -> None:
    free = sampler.generate([req(21, max_tokens=40)])[0][0]
    # Pick a stop string that really occurs in the free-running sample (ASCII, past the start).
    start = next(i for i in range(5, len(free) - 2) if free[i:i + 2].isascii()
                 and free[i:i + 2].strip() == free[i:i + 2])
    stop = free[start:start + 2]
    stopped = sampler.generate([req(21, max_tokens=40, stop=("never-there", stop))])[0][0]
    assert stopped.endswith(stop)
    assert stopped == free[:free.index(stop) + len(stop)]


def test_cut_at_stop_prefers_earliest_end() -> None:
    assert cut_at_stop("a```b</hard theorem>c", ["</hard theorem>", "```"]) == ("a```", True)
    assert cut_at_stop("abc", ["x", ""]) == ("abc", False)


def test_left_truncation_keeps_bos_and_the_end(sampler: HFSampler,
                                               caplog: pytest.LogCaptureFixture) -> None:
    assert truncate_prompt_ids([1, 5, 6, 7, 8], 3, bos_id=1) == [1, 7, 8]
    assert truncate_prompt_ids([5, 6, 7, 8], 3, bos_id=1) == [6, 7, 8]
    assert truncate_prompt_ids([1, 5], 3, bos_id=1) == [1, 5]
    tok = sampler.tokenizer
    prompt = "theorem foo : True := by trivial\n" * 30 + PROMPT
    full = tok(prompt)["input_ids"]
    assert len(full) > 48
    before = sampler.stats.truncated_prompts
    with caplog.at_level(logging.WARNING, logger="stp.model.sampling"):
        ids = sampler.encode_prompt(prompt)
        out = sampler.generate([req(2, prompt=prompt, max_tokens=3)])
    assert ids[0] == tok.bos_token_id and ids[1:] == full[-47:] and len(ids) == 48
    assert sampler.stats.truncated_prompts == before + 2
    assert "left-truncated" in caplog.text
    assert len(out[0]) == 1


def test_prompt_without_room_gets_empty_completions(tiny_path: str) -> None:
    s = make_sampler(tiny_path, ModelConfig(name=tiny_path, max_prompt_tokens=32,
                                            max_model_len=16), SamplerConfig(backend="hf"))
    assert s.generate([req(1, n=2, prompt="theorem " * 40)]) == [["", ""]]
    assert s.stats.no_room_prompts == 1


def test_embed_shape_norm_identity_and_padding_invariance(sampler: HFSampler) -> None:
    short = "theorem t : True"
    long = "theorem bar (f : ℕ → ℕ) (hf : ∀ n, f n = 2 * n + 1) : f 3 = 7 := by simp [hf]"
    dim = sampler.model.config.hidden_size
    vecs = sampler.embed([short, long, short, "x", long])  # batches of 2: padding differs
    assert vecs.shape == (5, dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vecs[0], vecs[2], atol=1e-5)
    np.testing.assert_allclose(vecs[1], vecs[4], atol=1e-5)
    alone = sampler.embed([short])
    np.testing.assert_allclose(alone[0], vecs[0], atol=1e-5)  # vecs[0] was padded next to `long`
    assert abs(float(vecs[0] @ vecs[1])) < 0.9999
    assert sampler.embed([]).shape == (0, dim)
    # Texts past embed_max_tokens are cut, not rejected.
    assert sampler.embed(["x " * 500]).shape == (1, dim)


def test_model_loaded_from_gcs(tiny_path: str, gcs_root: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.CACHE_DIR_ENV, str(tmp_path / "cache"))
    for f in sorted(Path(tiny_path).iterdir()):
        storage.write_bytes(storage.join(gcs_root, "ckpt", f.name), f.read_bytes())
    uri = storage.join(gcs_root, "ckpt")
    s = make_sampler(uri, ModelConfig(name=uri, max_prompt_tokens=48, max_model_len=96),
                     SamplerConfig(backend="hf"))
    local = make_sampler(tiny_path, ModelConfig(name=tiny_path, max_prompt_tokens=48,
                                                max_model_len=96), SamplerConfig(backend="hf"))
    assert s.generate([req(4, n=2)]) == local.generate([req(4, n=2)])


def test_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no model directory"):
        make_sampler(str(tmp_path / "nope"), ModelConfig(name="x"), SamplerConfig(backend="hf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"no config\.json"):
        make_sampler(str(tmp_path / "empty"), ModelConfig(name="x"), SamplerConfig(backend="hf"))


def test_vllm_seed_scrambling_separates_adjacent_seeds() -> None:
    from stp.model.sampling.vllm import engine_seed

    seeds = [engine_seed(s) for s in range(2000)]
    assert len(set(seeds)) == 2000 and all(0 <= s < 2**62 for s in seeds)
    # vLLM seeds sample j of a request with seed + j: adjacent request seeds must stay far apart.
    assert min(abs(a - b) for a, b in itertools.pairwise(seeds)) > 10_000
    assert engine_seed(5) == engine_seed(5)


def test_vllm_backend_without_vllm_is_a_usage_error(tiny_path: str) -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="needs vLLM"):
            make_sampler(tiny_path, ModelConfig(name=tiny_path), SamplerConfig(backend="vllm"))
    else:
        with pytest.raises(UsageError, match="tensor_parallel_size"):
            make_sampler(tiny_path, ModelConfig(name=tiny_path),
                         SamplerConfig(backend="vllm", tensor_parallel_size=0))


def test_ray_pool_split_keeps_order_and_balances_samples() -> None:
    from stp.model.sampling.ray_pool import split_by_samples

    reqs = [SampleRequest(prompt="p", seed=i, n=n) for i, n in enumerate([1, 1, 1, 1, 4, 1, 1, 1, 1])]
    parts = split_by_samples(reqs, 3)
    assert parts == [(0, 4), (4, 5), (5, 9)]
    assert split_by_samples(reqs[:1], 3) == [(0, 1)] and split_by_samples([], 2) == []
    for k in range(1, 6):
        s = split_by_samples(reqs, k)
        assert s[0][0] == 0 and s[-1][1] == len(reqs) and len(s) <= k
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(s))


# -- the paper's context budget, through the arguments each backend hands its engine ----------

def _paper_config() -> Any:
    from stp.config import load_config

    return load_config(Path(__file__).resolve().parents[2] / "configs" / "stp-7b.toml")


class _RecordingParams:
    """Stands in for vllm.SamplingParams: keeps the keyword arguments it was built with."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class _CountingTokenizer:
    """One token per whitespace-separated word; BOS id 1 first."""

    bos_token_id = 1
    pad_token_id = 0
    eos_token_id = 2

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [1] + [5] * len(text.split())}


def test_paper_config_budget_reaches_vllm_engine_and_sampling_params() -> None:
    from stp.model.sampling.vllm import VLLMSampler, engine_arguments

    cfg = _paper_config()
    assert engine_arguments("m", cfg.model, cfg.sampler)["max_model_len"] == 1024
    s = VLLMSampler.__new__(VLLMSampler)  # no engine: only the argument construction is tested
    s.model_cfg, s.sampler_cfg, s.stats = cfg.model, cfg.sampler, SamplerStats()
    s.tokenizer, s._SamplingParams = _CountingTokenizer(), _RecordingParams
    req = SampleRequest(prompt="w " * 299, seed=1, n=2, max_tokens=cfg.sampler.max_tokens)
    ids = s.encode_prompt(req.prompt)
    assert len(ids) == 300
    assert s._params(req, len(ids)).kwargs["max_tokens"] == 1024 - 300
    long_ids = s.encode_prompt("w " * 1500)  # left-truncated to 1024 tokens: no room left
    assert len(long_ids) == 1024 and long_ids[0] == 1 and s.stats.truncated_prompts == 1
    assert s._params(req, len(long_ids)) is None


def test_paper_config_budget_reaches_hf_generate(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    cfg = _paper_config()
    seen: dict[str, Any] = {}

    class FakeModel:
        def generate(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
            seen.update(kwargs, prompt_len=input_ids.shape[1])
            return torch.cat([input_ids, torch.full((1, 3), 7)], dim=1)

    class Tok(_CountingTokenizer):
        def decode(self, row: Any, skip_special_tokens: bool = True) -> str:
            return "x"

    s = HFSampler.__new__(HFSampler)
    s.model_cfg, s.sampler_cfg, s.stats = cfg.model, cfg.sampler, SamplerStats()
    s.tokenizer, s.model, s.device = Tok(), FakeModel(), "cpu"
    out = s.generate([SampleRequest(prompt="w " * 299, seed=1, n=1, temperature=0.0,
                                    max_tokens=cfg.sampler.max_tokens)])
    assert out == [["x"]]
    assert seen["prompt_len"] == 300 and seen["max_new_tokens"] == 1024 - 300
