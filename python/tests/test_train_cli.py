"""`python -m stp.train`: bad input exits 2 naming file and line; a tiny run trains and exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    return subprocess.run([sys.executable, "-m", "stp.train", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_bad_line_exits_2_with_file_and_line(tmp_path: Path, tiny_model: str) -> None:
    model = tiny_model
    data = tmp_path / "sft.jsonl"
    data.write_text('{"prompt": "a", "target": "b"}\n{"prompt": "a", "target": "b", "weight": "x"}\n')
    proc = _run("--data", str(data), "--model", model, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert f"{data}:2" in proc.stderr and "weight" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / "out" / "settings.json").exists()


def test_other_bad_inputs_are_usage_errors(tmp_path: Path, tiny_model: str) -> None:
    from stp.errors import UsageError
    from stp.train import main

    model = tiny_model
    with pytest.raises(UsageError, match=r"missing\.jsonl"):
        main(["--data", str(tmp_path / "missing.jsonl"), "--model", model])
    data = tmp_path / "sft.jsonl"
    data.write_text('{"prompt": "a", "target": "b", "weight": -2}\n')
    with pytest.raises(UsageError, match=r"sft\.jsonl:1: field 'weight'"):
        main(["--data", str(data), "--model", model, "--out", str(tmp_path / "out")])
    data.write_text('{"prompt": "a", "target": ""}\n')
    with pytest.raises(UsageError, match=r"sft\.jsonl:1: field 'target' is empty"):
        main(["--data", str(data), "--model", model, "--out", str(tmp_path / "out")])
    data.write_text('{"prompt": "a", "target": "b"}\n')
    with pytest.raises(UsageError, match=r"base model .*no-model: no model directory"):
        main(["--data", str(data), "--model", str(tmp_path / "no-model")])


@pytest.mark.slow
def test_cli_trains_and_reruns_idempotently(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            tiny_model: str) -> None:
    from stp.train import main

    model = tiny_model
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"theorem t{i} : {i} = {i} := by",
                                        "target": "\n  rfl", "weight": 1 + i % 2}) + "\n"
                            for i in range(6)))
    argv = ["--data", str(data), "--model", model, "--out", str(tmp_path / "sft"),
            "--set", "model.dtype='float32'", "--set", "trainer.mp='p=f32,c=f32'",
            "--set", "trainer.batch_size=4", "--set", "trainer.per_device_batch_size=2",
            "--set", "trainer.max_seq_len=64", "--min-steps", "3"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["steps"] == 3 and len(first["losses"]) == 3
    assert (Path(first["hf_path"]) / "config.json").is_file()
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first
