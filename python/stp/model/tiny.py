"""A tiny random Llama with a locally trained tokenizer, for tests and the tiny config.

Nothing is downloaded: the tokenizer is a byte-level BPE learnt in milliseconds from a few KB of
Lean-like text below, so every byte sequence stays encodable (byte fallback) while the common
Lean/prompt fragments become single tokens and the sequences in tests stay short. Like the
DeepSeek tokenizer of the real base model, it prepends BOS to every encoded text, which is what
the trainer's prompt/target split and the samplers expect.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

BOS = "<s>"
EOS = "</s>"
PAD = "<pad>"

# Bump when the recipe changes so cached copies are rebuilt.
_RECIPE = "tiny-llama-v1"
# Attention heads of the tiny model; the hidden size must be a multiple of it.
NUM_HEADS = 4

_CORPUS = r"""Complete the following Lean 4 code:

```lean4
import Mathlib
import Aesop
set_option maxHeartbeats 0
open BigOperators Real Nat Topology Rat

theorem mathd_algebra_10 (x : ℝ) (h₀ : x = 2) : x ^ 2 = 4 := by
  subst h₀
  norm_num
```
<lemma>
theorem add_comm (a b : ℕ) : a + b = b + a
<easy theorem>
theorem lean_workbook_214 (x y : ℝ) : (x - y) ^ 2 ≥ 0 := by
  nlinarith [sq_nonneg (x - y), sq_nonneg (x + y)]
<hard theorem>
theorem amc12a_2019_p21 (a b c : ℤ) (h₀ : 0 < a ∧ 0 < b) (h₁ : a * b = c) : c ≠ 0 := by
  intro h
  rcases h₀ with ⟨ha, hb⟩
  have h₂ : a * b > 0 := mul_pos ha hb
  linarith
</hard theorem>
theorem imo_1959_p1 (n : ℕ) (h₀ : 0 < n) : Nat.gcd (21 * n + 4) (14 * n + 3) = 1 := by
  rw [Nat.gcd_comm]
  simp [Nat.gcd_rec]
  omega
theorem true: True := by trivial
lemma foo {α : Type*} [Field α] (x : α) (hx : x ≠ 0) : x / x = 1 := by
  field_simp
theorem bar (f : ℕ → ℕ) (hf : ∀ n, f n = 2 * n + 1) : f 3 = 7 := by
  simp [hf]
  ring_nf
  exact rfl
  aesop
  positivity
  decide
  constructor <;> linarith
  apply le_of_lt
  exact Finset.sum_range_succ _ _
  norm_num [Real.sqrt_eq_iff, abs_of_nonneg]
  induction n with
  | zero => simp
  | succ k ih => omega
  nlinarith [sq_abs x, mul_self_nonneg (a - b), h₀, h₁, h₂, h₃]
  ∑ i in Finset.range n, (i : ℝ) ≤ n ^ 2 ∣ ∈ ∉ ⊆ ∪ ∩ → ↔ ¬ ∃ ∀ λ ⌊ ⌋ √ π
def sq (x : ℤ) : ℤ := x * x
example : (2 : ℚ) + 2 = 4 := by norm_num
""" * 2


def create_tiny_model(out_dir: str | os.PathLike[str], *, hidden_size: int = 64,
                      num_layers: int = 2, vocab_size: int = 400, seed: int = 0) -> str:
    """Write a random tiny Llama + tokenizer (Hugging Face format) to `out_dir`, return its path.

    Deterministic for given arguments; a finished directory is reused as is (a marker file is
    written last, so an interrupted build is redone)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(out))
    marker = out / "tiny_model.json"
    recipe = {"recipe": _RECIPE, "hidden_size": hidden_size, "num_layers": num_layers,
              "vocab_size": vocab_size, "seed": seed}
    if marker.exists():
        try:
            if json.loads(marker.read_text()) == recipe:
                return str(out)
        except (OSError, json.JSONDecodeError):
            pass
    # Built in a temporary sibling and renamed into place, so a failure (full disk, kill) leaves
    # no half-written model behind; the marker is written last inside it.
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".stp-tmp"))
    try:
        tok = build_tokenizer(vocab_size)
        _save_model(build, tok, hidden_size=hidden_size, num_layers=num_layers, seed=seed)
        tok.save_pretrained(str(build))
        (build / marker.name).write_text(json.dumps(recipe))
        if out.exists():  # an older recipe or an interrupted copy: replace it
            shutil.rmtree(out)
        os.rename(build, out)
    except BaseException as err:
        shutil.rmtree(build, ignore_errors=True)
        from stp.storage import as_os_error

        os_error = as_os_error(err, str(out))
        if os_error is not None and os_error is not err:
            raise os_error from None
        raise
    return str(out)


def build_tokenizer(vocab_size: int = 400):  # -> PreTrainedTokenizerFast
    """Byte-level BPE with BOS prepended on encode, EOS/PAD as distinct special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BOS, EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(_CORPUS.splitlines(keepends=True), trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS,
                                   pad_token=PAD, model_max_length=4096,
                                   clean_up_tokenization_spaces=False)


def _save_model(out: Path, tok, *, hidden_size: int, num_layers: int, seed: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, torch_dtype="float32")
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(str(out), safe_serialization=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m stp.model.tiny DIR`: write the tiny model configs/tiny-cpu.toml points at."""
    # The command-line layer, imported here so the library part of this module stays below it.
    from stp.cli import ArgumentParser, add_config_arguments, config_from_args, count_arg

    parser = ArgumentParser(prog="python -m stp.model.tiny", description=main.__doc__)
    parser.add_argument("out_dir", help="directory for the model and tokenizer (reused if complete)")
    parser.add_argument("--hidden-size", type=_hidden_size, default=64,
                        help=f"a positive multiple of {NUM_HEADS} (the attention heads)")
    parser.add_argument("--layers", type=count_arg(1), default=2)
    parser.add_argument("--seed", type=count_arg(0), default=None,
                        help="weight seed (default: run.seed)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    seed = cfg.run.seed if args.seed is None else args.seed
    path = create_tiny_model(args.out_dir, hidden_size=args.hidden_size,
                             num_layers=args.layers, seed=seed)
    print(path)
    return 0


def _hidden_size(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < NUM_HEADS or value % NUM_HEADS:
        raise argparse.ArgumentTypeError(
            f"must be a positive multiple of {NUM_HEADS} (the attention heads), got {value}")
    return value


if __name__ == "__main__":
    from stp.cli import run_main

    run_main(main)
