"""Fetching public dataset files into the data directory (cached; a clear error offline).

Benchmark files come from plain HTTPS URLs (checked against a SHA-256 when the registry knows
it); the STP-released datasets come from the Hugging Face Hub through `huggingface_hub`. A file
already present is never fetched again. Tests exercise the failure path by pointing the URLs or
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

from stp.data.registry import DataFile, DatasetInfo
from stp.errors import UsageError

TIMEOUT_S = 60.0
# Overridable Hub endpoint (mirrors); None = huggingface_hub's default / $HF_ENDPOINT.
HF_ENDPOINT: str | None = os.environ.get("HF_ENDPOINT") or None


class DatasetMissingError(UsageError, FileNotFoundError):
    """A dataset file is absent and could not (or may not) be downloaded."""


class DownloadError(DatasetMissingError):
    """The download itself failed (offline, HTTP error, hash mismatch)."""


def fetch_url(url: str, dest: Path, sha256: str = "") -> Path:
    """Download `url` to `dest` atomically; verify `sha256` when given."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            raise DownloadError(
                f"downloaded {url} but its SHA-256 is {digest.hexdigest()}, expected {sha256}; "
                "the upstream file changed: place a known-good copy at " + str(dest)
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise DownloadError(
            f"cannot download {url} ({err}); are you offline? Place the file at {dest} by hand"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def ensure_file(info: DatasetInfo, data_file: DataFile, data_dir: Path, *,
                allow_download: bool = True) -> Path:
    """Local path of one dataset file, downloading it when absent and allowed."""
    path = data_dir / data_file.filename
    if path.is_file():
        return path
    if not data_file.url:
        raise DatasetMissingError(f"{info.name}: {path} not found and no download URL is known")
    if not allow_download:
        raise DatasetMissingError(
            f"{info.name}: {path} not found (downloads disabled; fetch {data_file.url})"
        )
    return fetch_url(data_file.url, path, data_file.sha256)


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
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DatasetMissingError(
            f"{info.name}: downloading needs huggingface_hub (pip install huggingface_hub), "
            f"or place the dataset files under {local}"
        ) from None
    try:
        snapshot_download(repo_id=info.hf_repo, repo_type="dataset", local_dir=str(local),
                          endpoint=HF_ENDPOINT, allow_patterns=["*.json", "*.jsonl", "*.gz",
                                                                "*.parquet", "*.md"])
    except Exception as err:  # huggingface_hub raises many types; all mean "not available"
        shutil.rmtree(local, ignore_errors=True)
        raise DownloadError(
            f"cannot download {info.hf_repo} from the Hugging Face Hub "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
            f"are you offline? Place the files under {local}"
        ) from None
    marker.write_text("ok\n", encoding="utf-8")
    return local
