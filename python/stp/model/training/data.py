"""Weighted SFT examples -> token ids with a target mask (docs/reference.md §2.9.4, §8.4).

Differences from the original's `weighted_lm.py`, all deliberate (§11 item 8):
- The prompt/target boundary comes from the tokenizer's character offsets on the *joint* text,
  not from tokenising the target separately (which disagrees with the joint tokenisation whenever
  a token straddles the boundary). A straddling token counts as target.
- Every target token is trained, the first one included (the original's mask skipped it), and
  the appended EOS is trained (it is a distinct token even when the tokenizer's pad equals EOS,
  because padding is described by weights, not by token ids).
- Over-long examples keep BOS (when the tokenizer adds one) and the last `max_seq_len - 1`
  tokens, as the original did; they are counted and reported rather than truncated silently.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from dataclasses import dataclass

import numpy as np

from stp import storage
from stp.data.records import TrainingExample
from stp.errors import InputFormatError

logger = logging.getLogger(__name__)


class ExampleError(InputFormatError):
    """A training file or one of its records is unusable; the message names file and line.

    An `STPError`: every command that trains (stp.train, the pipeline's stages, self-play's
    train stage) ends with this one line, not a traceback, without translating it."""


def load_examples(path: str) -> list[TrainingExample]:
    """Read `{prompt, target, weight}` records from JSONL (.jsonl / .jsonl.gz) or a JSON array
    (the original's `train_ds.json`). A bad line raises naming file, line and field."""
    if not storage.exists(path):
        raise FileNotFoundError(f"training data not found: {path}")
    if path.endswith(".json"):
        try:
            records = storage.read_json(path, type=list[TrainingExample])
        except storage.CorruptRecordError as err:
            raise ExampleError(str(err)) from None
        located = [(f"{path}: record {i}", r) for i, r in enumerate(records, start=1)]
    else:
        located = []
        lineno = 0
        try:
            for lineno, rec in enumerate(storage.iter_jsonl(path, type=TrainingExample), 1):
                located.append((f"{path}:{lineno}", rec))
        except storage.CorruptRecordError as err:
            raise ExampleError(str(err)) from None
    for where, rec in located:
        if not (math.isfinite(rec.weight) and rec.weight >= 0):
            raise ExampleError(f"{where}: field 'weight' must be a finite number >= 0, "
                               f"got {rec.weight!r}")
        if not rec.target:
            raise ExampleError(f"{where}: field 'target' is empty")
    if not located:
        raise ExampleError(f"{path}: no training examples")
    if all(rec.weight == 0 for _, rec in located):
        raise ExampleError(f"{path}: every example has weight 0; nothing would be trained")
    return [rec for _, rec in located]


@dataclass
class TokenizedExamples:
    """All examples as one flat token array. Example i is tokens[offsets[i]:offsets[i+1]]; its
    last n_target[i] tokens are the target (EOS included), the rest is the prompt."""

    tokens: np.ndarray  # int32
    offsets: np.ndarray  # int64, len n+1
    n_target: np.ndarray  # int32
    weights: np.ndarray  # float64
    truncated: int

    def __len__(self) -> int:
        return len(self.n_target)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def example(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, tokens=self.tokens, offsets=self.offsets, n_target=self.n_target,
                 weights=self.weights, truncated=np.array(self.truncated))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenizedExamples:
        with np.load(io.BytesIO(data)) as z:
            return cls(z["tokens"], z["offsets"], z["n_target"], z["weights"],
                       int(z["truncated"]))


def tokenize_examples(examples: list[TrainingExample], tokenizer, max_seq_len: int,
                      batch_size: int = 1024) -> TokenizedExamples:
    """Tokenise `prompt + target` once, mark target tokens by character offsets, append EOS."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; cannot mark the end of targets")
    eos = int(tokenizer.eos_token_id)
    bos = tokenizer.bos_token_id
    chunks: list[np.ndarray] = []
    n_target = np.zeros(len(examples), dtype=np.int32)
    lengths = np.zeros(len(examples), dtype=np.int64)
    truncated = 0
    for start in range(0, len(examples), batch_size):
        batch = examples[start:start + batch_size]
        enc = tokenizer([ex.prompt + ex.target for ex in batch], add_special_tokens=True,
                        return_offsets_mapping=True)
        for j, ex in enumerate(batch):
            ids = list(enc["input_ids"][j])
            boundary = len(ex.prompt)
            # The token covering the first target character (Rust-side lookup); a token that
            # straddles the boundary is therefore a target token.
            first_target = enc.char_to_token(j, boundary)
            if first_target is None:  # character dropped by the normaliser: scan the spans
                first_target = next((k for k, (a, b) in enumerate(enc["offset_mapping"][j])
                                     if b > boundary and b > a), len(ids))
            if not ids or ids[-1] != eos:
                ids.append(eos)
            n_tgt = len(ids) - first_target
            if len(ids) > max_seq_len:
                truncated += 1
                keep_bos = bos is not None and ids[0] == bos
                head = ids[:1] if keep_bos else []
                ids = head + ids[len(ids) - (max_seq_len - len(head)):]
            # The first token of a sequence has no position before it to be predicted from.
            n_tgt = min(n_tgt, len(ids) - 1)
            i = start + j
            n_target[i] = n_tgt
            lengths[i] = len(ids)
            chunks.append(np.asarray(ids, dtype=np.int32))
    offsets = np.zeros(len(examples) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    weights = np.array([ex.weight for ex in examples], dtype=np.float64)
    if truncated:
        logger.warning("%d of %d training examples were longer than %d tokens and were "
                       "left-truncated (BOS kept)", truncated, len(examples), max_seq_len)
    return TokenizedExamples(tokens, offsets, n_target, weights, truncated)


def cache_key(examples_path: str, tokenizer_name: str, max_seq_len: int) -> str:
    """Identity of a tokenisation: file content, tokenizer, length limit."""
    h = hashlib.sha256()
    h.update(storage.read_bytes(examples_path))
    h.update(f"\0{tokenizer_name}\0{max_seq_len}\0v1".encode())
    return h.hexdigest()[:16]


def token_cache_path(examples_path: str, tokenizer_name: str, max_seq_len: int,
                     cache_dir: str) -> str:
    return storage.join(cache_dir,
                        f"tokens-{cache_key(examples_path, tokenizer_name, max_seq_len)}.npz")


def load_or_tokenize(examples_path: str, tokenizer, tokenizer_name: str, max_seq_len: int,
                     cache_dir: str, examples: list[TrainingExample] | None = None
                     ) -> TokenizedExamples:
    """Tokenise once per (file, tokenizer, length); reruns and resumed runs reuse the cache.
    `examples`, when given, are the already validated records of `examples_path`."""
    path = token_cache_path(examples_path, tokenizer_name, max_seq_len, cache_dir)
    if storage.exists(path):
        return TokenizedExamples.from_bytes(storage.read_bytes(path))
    if examples is None:
        examples = load_examples(examples_path)
    toks = tokenize_examples(examples, tokenizer, max_seq_len)
    if not storage.is_gcs(cache_dir):
        os.makedirs(cache_dir, exist_ok=True)
    storage.write_bytes(path, toks.to_bytes())
    return toks
