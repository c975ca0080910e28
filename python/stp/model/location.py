"""One rule for "is this model name a Hugging Face Hub id or a checkpoint on disk?".

The sampler and the trainer both accept a model as a Hub id (`org/name`), a local checkpoint
directory or a `gs://` directory. They used to decide with two different rules and disagreed on
`~/ckpt` (a Hub id to one, a directory to the other). Both now ask `is_hub_id` and expand local
names with `local_path`, so a name means the same thing everywhere.
"""

from __future__ import annotations

import os

from stp import storage


def is_hub_id(name: str) -> bool:
    """True for a Hub repository id: `name` or `org/name` that is not a path on this machine.

    Anything starting with `/`, `.` or `~`, anything with more than one `/`, anything that exists
    locally (after `~` expansion) and `gs://` URIs are checkpoint locations, never Hub ids."""
    if storage.is_gcs(name) or not name:
        return False
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        return False
    return not os.path.exists(os.path.expanduser(name))


def local_path(name: str) -> str:
    """The absolute path of a local checkpoint name (`~` expanded); libraries given a relative
    name would take it for a Hub id and go to the network."""
    return os.path.abspath(os.path.expanduser(name))


def check_model(name: str, what: str = "model") -> None:
    """Fail in one line naming the file and what is wrong when a local checkpoint is damaged
    (empty or truncated weights, a config.json or tokenizer file that is not JSON), or when a
    Hub id cannot be reached offline. The libraries that load models report these as
    tracebacks of tens of lines, sometimes after a minute of retries.

    Checks are cheap (file sizes, the safetensors header, JSON syntax); `gs://` checkpoints are
    checked when they are copied down."""
    from stp.errors import UsageError

    if storage.is_gcs(name):
        return
    if is_hub_id(name):
        _check_hub_id(name, what)
        return
    path = local_path(name)
    if not os.path.isdir(path):
        raise UsageError(f"{what} {name}: no model directory at {path}")
    problems = _checkpoint_problems(path)
    if problems:
        raise UsageError(f"{what} {name}: {problems[0]}")


def _checkpoint_problems(path: str) -> list[str]:
    import json
    import struct

    out: list[str] = []
    names = set(os.listdir(path))
    for json_name in ("config.json", "tokenizer.json", "tokenizer_config.json",
                      "generation_config.json", "model.safetensors.index.json"):
        file = os.path.join(path, json_name)
        if json_name in names:
            try:
                with open(file, encoding="utf-8") as f:
                    value = json.load(f)
            except (ValueError, UnicodeDecodeError) as err:
                out.append(f"{file}: not valid JSON ({err})")
                continue
            if not isinstance(value, dict):
                out.append(f"{file}: expected a JSON object")
            elif json_name == "config.json" and "model_type" not in value and value:
                out.append(f"{file}: no 'model_type' (not a Hugging Face model config)")
    if "config.json" not in names and "tokenizer_config.json" not in names:
        out.append(f"{path}: no config.json (not a Hugging Face checkpoint directory)")
    for weights in sorted(n for n in names if n.endswith((".safetensors", ".bin"))):
        file = os.path.join(path, weights)
        size = os.path.getsize(file)
        if size == 0:
            out.append(f"{file}: empty weights file")
            continue
        if weights.endswith(".safetensors"):
            with open(file, "rb") as f:
                head = f.read(8)
                length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
                ok = 0 < length <= size - 8
                header = f.read(length) if ok else b""
            try:
                entries = json.loads(header) if ok else None
            except (ValueError, UnicodeDecodeError):
                entries = None
            if not isinstance(entries, dict):
                out.append(f"{file}: truncated or corrupt safetensors file (bad header)")
                continue
            end = max((int(v["data_offsets"][1]) for k, v in entries.items()
                       if k != "__metadata__" and isinstance(v, dict)
                       and "data_offsets" in v), default=0)
            if 8 + length + end > size:
                out.append(f"{file}: truncated safetensors file ({size} bytes, the header "
                           f"promises {8 + length + end})")
    return out


def _check_hub_id(name: str, what: str) -> None:
    """Offline (HF_HUB_OFFLINE=1), a Hub id must already be in the local cache."""
    from stp.errors import UsageError

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on"):
        return
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return
    try:
        snapshot_download(name, local_files_only=True)
    except Exception as err:  # LocalEntryNotFoundError, RepositoryNotFoundError, ...
        raise UsageError(f"{what} {name}: not in the local Hugging Face cache and HF_HUB_OFFLINE "
                         f"is set ({type(err).__name__}); download it first or name a local "
                         "checkpoint directory") from None
