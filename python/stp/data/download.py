"""Fetching public dataset files into the data directory (cached; a clear error offline).

The benchmark files ship with the repository (`data/benchmarks/`) and are read from there first;
other files come from plain HTTPS URLs pinned to the STP release commit and are checked against
the registry's SHA-256 (or the release's git blob id where that is all that is known); the
STP-released datasets come from the Hugging Face Hub through `huggingface_hub`, at the commit
pinned in `stp.hub`. A file already
present is never fetched again. Tests exercise the failure path by pointing the URLs or
the Hub endpoint at a closed local port; nothing here is ever faked in product code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from stp import hub
from stp.data.registry import DataFile, DatasetInfo, shipped_dir
from stp.errors import UsageError

TIMEOUT_S = 60.0
# Overridable Hub endpoint (mirrors); None = huggingface_hub's default / $HF_ENDPOINT.
HF_ENDPOINT: str | None = os.environ.get("HF_ENDPOINT") or None


class DatasetMissingError(UsageError, FileNotFoundError):
    """A dataset file is absent and could not (or may not) be downloaded."""


class DownloadError(DatasetMissingError):
    """The download itself failed (offline, HTTP error, hash mismatch)."""


def file_digests(path: Path) -> tuple[str, str]:
    """(SHA-256, git blob id) of a local file, read once."""
    size = path.stat().st_size
    sha = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            blob.update(chunk)
    return sha.hexdigest(), blob.hexdigest()


def checksum_problem(path: Path, sha256: str = "", git_blob: str = "") -> str:
    """Empty when `path` matches the known checksums, else a sentence saying which differs."""
    if not sha256 and not git_blob:
        return ""
    got_sha, got_blob = file_digests(path)
    if sha256 and got_sha != sha256:
        return f"its SHA-256 is {got_sha}, expected {sha256}"
    if git_blob and got_blob != git_blob:
        return f"its git blob id is {got_blob}, expected {git_blob}"
    return ""


def fetch_url(url: str, dest: Path, sha256: str = "", git_blob: str = "") -> Path:
    """Download `url` to `dest` atomically; verify `sha256` / `git_blob` when given."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        problem = checksum_problem(tmp, sha256, git_blob)
        if problem:
            raise DownloadError(
                f"downloaded {url} but {problem}; the upstream file changed: place a "
                f"known-good copy at {dest}"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise DownloadError(
            f"cannot download {url} ({err}); are you offline? Place the file at {dest} by hand"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def locate_file(data_file: DataFile, data_dir: Path) -> Path | None:
    """Where a dataset file is read from: the checkout's shipped copy first (pinned by checksum,
    so every clone evaluates on the same bytes), else the data directory; None when absent."""
    shipped = shipped_dir() if data_file.shipped else None
    for folder in (shipped, data_dir):
        if folder is not None and (folder / data_file.filename).is_file():
            return folder / data_file.filename
    return None


def ensure_file(info: DatasetInfo, data_file: DataFile, data_dir: Path, *,
                allow_download: bool = True) -> Path:
    """Local path of one dataset file, downloading it into `data_dir` when absent and allowed."""
    found = locate_file(data_file, data_dir)
    if found is not None:
        return found
    path = data_dir / data_file.filename
    if not data_file.url:
        raise DatasetMissingError(f"{info.name}: {path} not found and no download URL is known")
    if not allow_download:
        raise DatasetMissingError(
            f"{info.name}: {path} not found (downloads disabled; fetch {data_file.url})"
        )
    return fetch_url(data_file.url, path, data_file.sha256, data_file.git_blob)


def download_dataset(info: DatasetInfo, data_dir: Path) -> list[str]:
    """`python -m stp.data download NAME`: fetch what is missing and check what is present.

    Returns one line per file saying where it is and how it was checked. A present file whose
    checksum differs is an error (re-downloading over a user's file is not ours to decide)."""
    if info.hf_repo:
        local = ensure_hf_dataset(info, data_dir, allow_download=True)
        revision = (local / ".complete").read_text(encoding="utf-8").strip()
        return [f"{info.name}: {local} (Hugging Face dataset {info.hf_repo} at {revision})"]
    lines: list[str] = []
    for data_file in info.files:
        found = locate_file(data_file, data_dir)
        if found is None:
            found = fetch_url(data_file.url, data_dir / data_file.filename, data_file.sha256,
                              data_file.git_blob)
            action = "downloaded"
        else:
            problem = checksum_problem(found, data_file.sha256, data_file.git_blob)
            if problem:
                raise DownloadError(
                    f"{found}: {problem}; move it away and run `python -m stp.data download "
                    f"{info.name}` again, or place the release's file there by hand"
                )
            action = "present"
        how = ("SHA-256 checked" if data_file.sha256 else
               "git blob id checked" if data_file.git_blob else "no checksum known")
        lines.append(f"{info.name}: {found} ({action}, {how})")
    return lines


def hf_local_dir(info: DatasetInfo, data_dir: Path) -> Path:
    return data_dir / "hf" / info.hf_repo.replace("/", "__")


def ensure_hf_dataset(info: DatasetInfo, data_dir: Path, *, allow_download: bool = True) -> Path:
    """Local snapshot directory of a Hugging Face dataset repo (downloaded once)."""
    local = hf_local_dir(info, data_dir)
    marker = local / ".complete"
    if marker.is_file():
        return local
    if not allow_download:
        raise DatasetMissingError(
            f"{info.name}: {local} not found (downloads disabled; source {info.source})"
        )
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise DatasetMissingError(
            f"{info.name}: downloading needs huggingface_hub (pip install huggingface_hub), "
            f"or place the dataset files under {local}"
        ) from None
    # At the commit pinned in stp.hub (the current main, with a warning, when none is configured).
    revision = hub.pinned_revision(info.hf_repo)
    try:
        hub.snapshot(info.hf_repo, "dataset", revision=revision, local_dir=local,
                     endpoint=HF_ENDPOINT,
                     allow_patterns=["*.json", "*.jsonl", "*.gz", "*.parquet", "*.md"])
    except Exception as err:  # huggingface_hub raises many types; all mean "not available"
        shutil.rmtree(local, ignore_errors=True)
        raise DownloadError(
            f"cannot download {info.hf_repo} from the Hugging Face Hub "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            f"are you offline? Place the files under {local}"
        ) from None
    marker.write_text(f"{revision}\n", encoding="utf-8")
    return local
