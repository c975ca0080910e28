"""Pytest fixtures serving gs:// from an in-process gcp-storage-emulator on a free local port.

The emulator speaks the JSON API google-cloud-storage uses (upload, download, listing), which
`stp.storage` reaches through the standard STORAGE_EMULATOR_HOST variable. It ignores generation
preconditions, so "create only" semantics are tested on the local backend.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest

from stp import storage

BUCKET = "stp-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """Endpoint URL of a running emulator with the bucket `stp-test`."""
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs_root(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty gs:// prefix served by the emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    storage.reset_gcs_client()
    yield f"gs://{BUCKET}/{uuid.uuid4().hex}"
    storage.reset_gcs_client()


@pytest.fixture
def gcs_without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                            ) -> Iterator[None]:
    """Cloud Storage as a machine without credentials sees it: no emulator, no key file, no
    gcloud configuration, and a metadata server on a closed local port (so the lookup fails at
    once instead of waiting for a timeout). A fresh client before and after."""
    for var in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "none")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path_factory.mktemp("no-gcloud")))
    storage.reset_gcs_client()
    yield
    storage.reset_gcs_client()
