"""Backend-independent pieces of sampling: model location, prompt truncation, stop strings.

Every backend tokenises prompts itself (rather than handing text to the engine) so that the
left-truncation rule, and the count of truncated prompts, is identical on CPU and GPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stp import hub, storage
from stp.errors import UsageError
from stp.model.location import is_hub_id, local_path

log = logging.getLogger(__name__)


@dataclass
class SamplerStats:
    """Counters a caller can log; they accumulate over the sampler's lifetime."""

    requests: int = 0
    completions: int = 0
    completion_tokens: int = 0
    truncated_prompts: int = 0
    # Requests whose prompt left no room in max_model_len: they get empty completions.
    no_room_prompts: int = 0


def resolve_model_path(path: str) -> str:
    """A name transformers/vLLM can open: Hub ids as their pinned snapshot, local dirs as absolute paths (see
    `stp.model.location`), gs:// dirs downloaded.

    A gs:// checkpoint directory is mirrored file by file through `storage.local_cache_path` (which
    revalidates each object's generation), so a re-exported checkpoint is picked up again.
    """
    if is_hub_id(path):  # the local snapshot at the commit pinned in stp.hub
        return hub.model_snapshot(path)
    if not storage.is_gcs(path):
        directory = local_path(path)
        if not os.path.isdir(directory):
            raise UsageError(f"no model directory at {path}")
        if not os.path.isfile(os.path.join(directory, "config.json")):
            raise UsageError(f"{path} is not a Hugging Face checkpoint (no config.json)")
        return directory
    local_dir: Path | None = None
    for name in _walk(path):
        local = storage.local_cache_path(storage.join(path, name))
        top = local
        for _ in Path(name).parts:
            top = top.parent
        local_dir = top
    if local_dir is None:
        raise FileNotFoundError(f"no model files under {path}")
    return os.fspath(local_dir)


def _walk(path: str, prefix: str = "") -> list[str]:
    names: list[str] = []
    for child in storage.listdir(storage.join(path, prefix) if prefix else path):
        rel = f"{prefix}/{child}" if prefix else child
        try:
            names.extend(_walk(path, rel))
        except FileNotFoundError:  # not a directory prefix: a file
            names.append(rel)
    return names


def truncate_prompt_ids(ids: list[int], max_tokens: int, bos_id: int | None) -> list[int]:
    """Keep the end of an over-long prompt (the part the model continues), and its BOS."""
    if len(ids) <= max_tokens:
        return ids
    if bos_id is not None and ids and ids[0] == bos_id:
        return [bos_id, *ids[len(ids) - (max_tokens - 1):]]
    return ids[len(ids) - max_tokens:]


def encode_prompt(tokenizer, prompt: str, max_prompt_tokens: int, stats: SamplerStats) -> list[int]:
    """Token ids of a prompt, left-truncated to max_prompt_tokens (BOS kept). Truncation is
    counted and logged because the original truncated silently, losing the instruction line."""
    ids = tokenizer(prompt)["input_ids"]
    if len(ids) > max_prompt_tokens:
        stats.truncated_prompts += 1
        log.warning("prompt of %d tokens left-truncated to %d (max_prompt_tokens)",
                    len(ids), max_prompt_tokens)
        ids = truncate_prompt_ids(ids, max_prompt_tokens, tokenizer.bos_token_id)
    return ids


def completion_budget(max_tokens: int, prompt_len: int, max_model_len: int) -> int:
    """New tokens a request may generate: `max_tokens`, capped by what the context leaves.

    `max_model_len` is prompt + completion, as the original's vLLM engine (`max_model_len=1024`
    with prompts left-truncated to 1024 tokens), so a long prompt leaves a short completion and a
    1024-token prompt none at all. Both backends use this one rule; <= 0 means no room."""
    return min(max_tokens, max_model_len - prompt_len)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut after the earliest stop string, keeping it (parse_conjecture needs the end tag)."""
    best: int | None = None
    for stop in stops:
        if not stop:
            continue
        i = text.find(stop)
        if i >= 0 and (best is None or i + len(stop) < best):
            best = i + len(stop)
    if best is None:
        return text, False
    return text[:best], True
