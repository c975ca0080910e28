"""Accelerator phases hand over on CPU (issue #21): with `model.phase_isolation = "process"`
sampling and training each run in a phase process of their own, one owner at a time, and the
memory a phase held is released (its process is gone) before the next phase starts; the driver
never loads a model itself. The same code path owns a GPU or TPU in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stp.model.phases import PhaseError, isolated, run_isolated


def _driver_script(tiny: str, data: str, out: str) -> str:
    return textwrap.dedent(f"""
        import json, os, sys, psutil
        from stp.model.config import ModelConfig, SamplerConfig, TrainerConfig
        from stp.model.sampling import make_sampler
        from stp.model.training import train_weighted
        from stp.model.types import SampleRequest

        model = ModelConfig(dtype="float32", max_prompt_tokens=64, max_model_len=96,
                            phase_isolation="process")
        sampler_cfg = SamplerConfig(backend="hf", max_tokens=8)
        trainer = TrainerConfig(batch_size=4, per_device_batch_size=2, min_steps=2,
                                warmup_steps=1, max_seq_len=96, mp="p=f32,c=f32",
                                learning_rate=1e-3, checkpoint_every_steps=100)
        events = []

        def sample(path):
            s = make_sampler(path, model, sampler_cfg)
            pid = s.pid
            rss = psutil.Process(pid).memory_info().rss
            out = s.generate([SampleRequest(prompt="theorem t : 1 = 1 := by", seed=1, n=2,
                                            max_tokens=8)])
            emb = s.embed(["theorem a : True", "theorem b : 2 = 2"])
            s.close()
            events.append({{"phase": "sample", "pid": pid, "rss": rss,
                           "alive_after": psutil.pid_exists(pid), "n": len(out[0]),
                           "emb": list(emb.shape)}})
            return pid

        def phase_children():  # spawn's resource tracker is not a phase
            return [c for c in psutil.Process().children()
                    if "resource_tracker" not in " ".join(c.cmdline())]

        def train(prev_pid, out_dir):
            children_before = {{c.pid for c in phase_children()}}
            result = train_weighted({tiny!r}, {data!r}, out_dir, trainer, model)
            events.append({{"phase": "train", "prev_alive_at_start": prev_pid in children_before,
                           "steps": result.steps, "hf": result.hf_path,
                           "children_after": len(phase_children())}})
            return result.hf_path

        p1 = sample({tiny!r})
        m1 = train(p1, {out!r} + "/r0")
        p2 = sample(m1)
        train(p2, {out!r} + "/r1")
        events.append({{"driver_modules": sorted(m for m in ("torch", "jax", "transformers")
                                                 if m in sys.modules)}})
        print(json.dumps(events))
    """)


@pytest.mark.slow
def test_sampling_and_training_phases_hand_over(tiny_model: str, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"theorem t{i} : {i} = {i} := by",
                                        "target": "\n  rfl", "weight": 1.0}) + "\n"
                            for i in range(8)))
    script = _driver_script(tiny_model, str(data), str(tmp_path / "train"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = json.loads(proc.stdout.strip().splitlines()[-1])
    samples = [e for e in events if e.get("phase") == "sample"]
    trains = [e for e in events if e.get("phase") == "train"]
    assert len(samples) == 2 and len(trains) == 2
    for s in samples:
        assert s["pid"] != os.getpid() and s["n"] == 2 and s["emb"][0] == 2
        assert s["rss"] > 50 * 2**20  # the phase process held the model ...
        assert s["alive_after"] is False  # ... and is gone (memory released) after close()
    assert samples[0]["pid"] != samples[1]["pid"]
    for t in trains:
        assert t["prev_alive_at_start"] is False  # one owner at a time
        assert t["steps"] == 2 and t["children_after"] == 0  # the training process ended too
    # The second sampling phase loaded the first training phase's export.
    assert Path(trains[0]["hf"]).is_dir()
    # The driver itself never imported a framework that could open the accelerator.
    assert events[-1]["driver_modules"] == []


def _fails() -> None:
    from stp.errors import InputFormatError

    raise InputFormatError("data.jsonl:3: field 'target' is empty")


def _dies() -> None:
    os._exit(9)


def test_phase_errors_come_back_as_themselves() -> None:
    """An STPError in a phase stays that error (one line from the CLI); a phase process that
    dies is a PhaseError naming its exit status, never a hang."""
    from stp.errors import InputFormatError

    with pytest.raises(InputFormatError, match="field 'target' is empty"):
        run_isolated(_fails)
    with pytest.raises(PhaseError, match="exit status 9"):
        run_isolated(_dies)
    assert run_isolated(divmod, 17, 5) == (3, 2)


def test_auto_isolation_follows_the_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    import stp.model.phases as phases

    monkeypatch.setattr(phases, "has_accelerator", lambda: True)
    assert isolated("auto") and isolated("process") and not isolated("inline")
    monkeypatch.setattr(phases, "has_accelerator", lambda: False)
    assert not isolated("auto") and isolated("process")
