"""`python -m stp.verify gs://...`: inputs in Cloud Storage are read, and every way of not
reaching one is one line naming the full gs:// path and what is wrong (issue #24: it was
`gs:/bucket/x.jsonl: no such file`, pathlib having eaten a slash, whatever the cause)."""

from __future__ import annotations

import json
import sys

import pytest
from standin import checker_override, standin_command

from stp import storage
from stp.cli import run_main
from stp.verify.cli import main

pytest_plugins = ["gcs_emulator"]

PROOF = {"name": "t", "statement": "theorem t : True", "proof": " := trivial"}


def verify(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int | str | None, str,
                                                                          str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_main(main, [*argv, "--json", "--no-progress",
                        "--set", checker_override(standin_command())])
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_a_proof_file_in_cloud_storage_is_checked(gcs_root: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = f"{gcs_root}/proofs.jsonl"
    storage.write_text(path, json.dumps(PROOF) + "\n")
    code, out, err = verify([path], capsys)
    assert code == 0, err
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["status"] == "pass" and record["name"] == "t"


def test_a_missing_object_names_its_full_path(gcs_root: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = f"{gcs_root}/missing.jsonl"
    code, _, err = verify([path], capsys)
    assert code == 2
    assert one_line(err) == f"error: {path}: no such object in Cloud Storage"


def test_a_bad_record_in_cloud_storage_names_the_gs_path_and_line(
        gcs_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = f"{gcs_root}/proofs.jsonl"
    storage.write_text(path, json.dumps(PROOF) + "\n" + json.dumps({"statement": 3}) + "\n")
    code, _, err = verify([path], capsys)
    assert code == 2 and one_line(err).startswith(f"error: {path}:2: field `statement`"), err


@pytest.mark.usefixtures("gcs_without_credentials")
def test_without_credentials_the_line_names_the_path_and_the_credentials(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = verify(["gs://bucket/missing.jsonl"], capsys)
    assert code == 2
    line = one_line(err)
    assert line.startswith("error: gs://bucket/missing.jsonl: ") and "credentials" in line, line


def test_without_the_cloud_storage_package_the_line_says_so(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import google.cloud

    # `from google.cloud import storage` now fails as it does where the package is missing.
    monkeypatch.delattr(google.cloud, "storage", raising=False)
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    storage.reset_gcs_client()
    try:
        code, _, err = verify(["gs://bucket/missing.jsonl"], capsys)
    finally:
        storage.reset_gcs_client()
    assert code == 2
    line = one_line(err)
    assert line.startswith("error: gs://bucket/missing.jsonl: ") and (
        "google-cloud-storage, which is not installed" in line), line
