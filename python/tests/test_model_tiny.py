"""The tiny test model: deterministic, reusable, BOS-prepending tokenizer, loadable by transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stp.model.tiny import BOS, EOS, PAD, create_tiny_model

LEAN = "theorem foo (x : ℝ) (h₀ : x ≠ 0) : x / x = 1 := by\n  field_simp ⟨h₀⟩ ∑ ∀ ∃"


@pytest.fixture(scope="module")
def tiny_path(tiny_model: str) -> str:
    return tiny_model


def test_tokenizer_special_tokens_and_round_trip(tiny_path: str) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_path)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS, EOS, PAD)
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    ids = tok(LEAN)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    # Byte-level BPE: any text, Lean unicode included, decodes back exactly.
    assert tok.decode(ids, skip_special_tokens=True) == LEAN
    # Common Lean fragments are merged, so test sequences stay short.
    assert len(ids) < len(LEAN.encode()) * 0.7


def test_model_loads_and_matches_tokenizer(tiny_path: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_path)
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers) == (64, 2)
    assert cfg.vocab_size >= 300
    logits = model(torch.tensor([[1, 5, 9]])).logits
    assert logits.shape == (1, 3, cfg.vocab_size)
    assert torch.isfinite(logits).all()


def test_deterministic_and_reused(tiny_path: str, tmp_path: Path) -> None:
    other = create_tiny_model(tmp_path / "again")
    weights = "model.safetensors"
    assert (Path(other) / weights).read_bytes() == (Path(tiny_path) / weights).read_bytes()
    # A finished directory is reused untouched; a different recipe rebuilds it.
    mtime = (Path(other) / weights).stat().st_mtime_ns
    assert create_tiny_model(other) == other
    assert (Path(other) / weights).stat().st_mtime_ns == mtime
    create_tiny_model(other, hidden_size=32)
    assert json.loads((Path(other) / "tiny_model.json").read_text())["hidden_size"] == 32
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(other).hidden_size == 32


def test_interrupted_build_is_redone(tmp_path: Path) -> None:
    out = tmp_path / "partial"
    out.mkdir()
    (out / "tiny_model.json").write_text("{not json")
    path = create_tiny_model(out, seed=1)
    assert (Path(path) / "model.safetensors").exists()
    assert json.loads((out / "tiny_model.json").read_text())["seed"] == 1


def test_tiny_model_command_writes_a_loadable_model(tmp_path) -> None:
    import subprocess
    import sys

    from transformers import AutoConfig

    out = tmp_path / "tiny"
    proc = subprocess.run([sys.executable, "-m", "stp.model.tiny", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert AutoConfig.from_pretrained(out).num_hidden_layers == 2
