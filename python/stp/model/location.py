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
