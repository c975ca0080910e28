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
