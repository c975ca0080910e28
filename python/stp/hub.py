"""Hugging Face Hub downloads, each pinned to one commit (`revision=`).

A Hub repository's `main` moves: a model or data set re-uploaded under the same name would change
what a run trains on or is evaluated with, silently. So every download names a commit: one table
here (`HUB_REVISIONS`, the single place the commits are written down), which a run can override
for one repository with `org/name@<commit>` in a model name, or for any with
`STP_HF_REVISIONS="org/name=<commit>,org/other=<commit>"`. A repository with no commit from any
of these is downloaded at the commit `main` points to at that moment, with a warning that names
the commit used and how to pin it (the snapshot directory, which runs record, carries it).

The commits of the repositories below could not be read on the machines this project was built on
(no access to the Hub), so the table's entries are empty: until they are filled in, the first
download of each uses the current `main` and says so. Refusing instead would stop the README's
user command at its first download. A revision that is given must be a 40-hex commit (a branch
or tag can move). `huggingface-cli repo info` or the repository's "Files and versions" page gives
the current commit of `main`. Local checkpoints and `gs://` directories are never looked up.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from stp.errors import UsageError

# Repository id -> 40-hex commit. Empty: not pinned here (configure it; see the module docstring).
HUB_REVISIONS: dict[str, str] = {
    # Models (Stage-1 base model of the shipped configs, the RL variant, the released STP model).
    "deepseek-ai/DeepSeek-Prover-V1.5-SFT": "",
    "deepseek-ai/DeepSeek-Prover-V1.5-RL": "",
    "kfdong/STP_model_Lean_0320": "",
    # Data sets (stp.data.registry: stp_sft, stp_0320).
    "kfdong/STP_Lean_SFT": "",
    "kfdong/STP_Lean_0320": "",
}
REVISIONS_ENV = "STP_HF_REVISIONS"
log = logging.getLogger(__name__)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class UnpinnedRevisionError(UsageError):
    """A Hub repository would be downloaded without a pinned commit."""


def split_revision(name: str) -> tuple[str, str]:
    """`org/name@<commit>` -> (`org/name`, `<commit>`); a name without `@` -> (name, '')."""
    repo, sep, revision = name.partition("@")
    return repo, revision if sep else ""


def env_revisions() -> dict[str, str]:
    """The `STP_HF_REVISIONS` overrides (`repo=commit`, comma-separated)."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in os.environ.get(REVISIONS_ENV, "").split(","))):
        repo, sep, revision = item.partition("=")
        if not sep or not repo.strip():
            raise UsageError(f"${REVISIONS_ENV}: `{item}` is not `org/name=<commit>`")
        out[repo.strip()] = revision.strip()
    return out


def pinned_revision(repo_id: str, given: str = "") -> str:
    """The commit to download `repo_id` at: `given` (from `repo@commit`), else $STP_HF_REVISIONS,
    else `HUB_REVISIONS`; a full 40-hex commit id, since a branch or tag can move."""
    source, revision = f"`{repo_id}@...`", given
    if not revision:
        source, revision = f"${REVISIONS_ENV}", env_revisions().get(repo_id, "")
    if not revision:
        source, revision = "stp.hub.HUB_REVISIONS", HUB_REVISIONS.get(repo_id, "")
    if not revision:
        return ""  # not pinned anywhere: `snapshot` takes the current main and warns
    if not _COMMIT.match(revision):
        raise UnpinnedRevisionError(
            f"{source}: revision `{revision}` of {repo_id} is not a 40-hex commit id (a branch or "
            "tag can move; pin the commit)")
    return revision


def snapshot(repo_id: str, repo_type: Literal["model", "dataset"], *, revision: str = "",
             local_dir: Path | None = None, endpoint: str | None = None,
             allow_patterns: list[str] | None = None) -> Path:
    """Download (or find in the Hub cache) `repo_id` at its pinned commit; the local directory."""
    pinned = pinned_revision(repo_id, revision)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UsageError(f"downloading {repo_id} needs huggingface_hub "
                         "(pip install huggingface_hub)") from None
    kwargs: dict[str, Any] = dict(repo_id=repo_id, repo_type=repo_type, revision=pinned or None,
                                  local_dir=str(local_dir) if local_dir else None,
                                  endpoint=endpoint, allow_patterns=allow_patterns)
    unreachable = _unreachable(repo_id, repo_type, pinned, endpoint)
    if unreachable is None:
        path = Path(snapshot_download(**kwargs))
    else:
        path = _cached_snapshot(kwargs, unreachable)
    if not pinned:
        used = path.name if _COMMIT.match(path.name) else "the current main"
        log.warning("%s is not pinned: downloaded at %s; pin it with `%s@<commit>` (model "
                    "names), %s=\"%s=<commit>\" or stp.hub.HUB_REVISIONS", repo_id, used,
                    repo_id, REVISIONS_ENV, repo_id)
    return path


def _unreachable(repo_id: str, repo_type: str, pinned: str,
                 endpoint: str | None) -> Exception | None:
    """The error of one metadata request to the Hub that got no answer, else None.

    `snapshot_download` asks the Hub for the repository's metadata with no time limit: an
    endpoint that accepts connections and never answers (a stalled proxy) hangs it for ever, and
    a network that drops packets for the kernel's two-minute connect timeout. This request is
    bounded by the library's own metadata timeout (HF_HUB_ETAG_TIMEOUT, 10 s by default), once,
    without retries. An answer of any kind (found, not found, gated) lets `snapshot_download`
    go on and say what it says; HF_HUB_OFFLINE skips the request."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        return None
    try:
        HfApi(endpoint=endpoint).repo_info(repo_id, repo_type=repo_type, revision=pinned or None,
                                           timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except HfHubHTTPError:
        return None  # the Hub answered
    except Exception as err:  # connection refused, timed out, no such host (requests or httpx)
        return err
    return None


def _cached_snapshot(kwargs: dict[str, Any], unreachable: Exception) -> Path:
    """The Hub cannot be reached: the snapshot already in the local cache, else one line."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(**kwargs, local_files_only=True))
    except LocalEntryNotFoundError:
        endpoint = kwargs["endpoint"] or constants.ENDPOINT
        raise UsageError(
            f"{kwargs['repo_type']} {kwargs['repo_id']}: the Hugging Face Hub at {endpoint} "
            f"cannot be reached ({type(unreachable).__name__}, limit "
            f"HF_HUB_ETAG_TIMEOUT={constants.HF_HUB_ETAG_TIMEOUT} s) and it is not in the local "
            f"cache {constants.HF_HUB_CACHE}; check the network (or HF_ENDPOINT), download it "
            "where the Hub is reachable, or name a local checkpoint directory") from None
    log.warning("the Hugging Face Hub cannot be reached (%s); using the cached snapshot %s of "
                "%s", type(unreachable).__name__, path, kwargs["repo_id"])
    return path


def model_snapshot(name: str) -> str:
    """A Hub model id (`org/name` or `org/name@<commit>`) as the local directory of its pinned
    snapshot, so transformers, vLLM and Levanter all open exactly that commit."""
    repo, revision = split_revision(name)
    try:
        return str(snapshot(repo, "model", revision=revision))
    except UsageError:
        raise
    except Exception as err:  # huggingface_hub raises many types; all mean "not available"
        first = str(err).splitlines()[0] if str(err) else ""
        raise UsageError(f"cannot download model {name} from the Hugging Face Hub "
                         f"({type(err).__name__}: {first}); are you offline?") from None
