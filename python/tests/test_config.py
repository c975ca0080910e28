"""Configuration: shipped configs load, and every failure path names the file and the key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from stp import cli
from stp.config import (
    DATA_DIR_ENV,
    ConfigError,
    STPConfig,
    load_config,
    parse_override,
    resolve_data_dir,
    to_toml,
)
from stp.storage import CorruptRecordError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.toml"))


def _write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_round_trips(path: Path, tmp_path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, STPConfig)
    # The rendered config (recorded in each run dir) loads back to the same settings.
    again = load_config(_write(tmp_path, to_toml(cfg)))
    assert again == cfg


def test_shipped_configs_present_and_meaningful() -> None:
    assert {p.name for p in CONFIGS} >= {"tiny-cpu.toml", "stp-7b.toml"}
    tiny = load_config(REPO / "configs" / "tiny-cpu.toml")
    assert tiny.sampler.backend == "hf"
    assert tiny.selfplay.rounds == 2
    assert tiny.selfplay.samples_per_statement == 4
    assert [(d.name, d.split) for d in tiny.data.selfplay] == [("minif2f", "valid")]
    assert tiny.verifier.workers == 2
    paper = load_config(REPO / "configs" / "stp-7b.toml")
    assert paper.model.name == "deepseek-ai/DeepSeek-Prover-V1.5-SFT"
    assert paper.sampler.backend == "vllm"
    assert (paper.selfplay.rounds, paper.selfplay.samples_first_round,
            paper.selfplay.samples_per_statement) == (12, 64, 32)
    assert (paper.trainer.batch_size, paper.trainer.learning_rate) == (2048, 5e-5)
    assert paper.retrain.trainer.learning_rate == 1e-4
    assert [d.name for d in paper.data.selfplay] == ["lean_workbook", "minif2f", "proofnet"]
    assert paper.eval.samples_per_statement == 3200


def test_defaults_without_a_file() -> None:
    assert load_config() == STPConfig()


def test_typo_key_is_named_with_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "[trainer]\nlearning_rat = 1e-4\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key `trainer.learning_rat`" in message
    assert "did you mean `learning_rate`?" in message


def test_empty_profile_and_dataset_lists_fail_at_load() -> None:
    # Both were re-checked at run time (evaluation after the Lean check, self-play after the
    # cluster start); the types now refuse them when the config loads, naming the key.
    with pytest.raises(ConfigError, match=r"eval\.profiles"):
        load_config(None, ["eval.profiles=[]"])
    with pytest.raises(ConfigError, match=r"data\.selfplay"):
        load_config(None, ["data.selfplay=[]"])


def test_typo_section_and_nested_list_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key `trainr` \(did you mean `trainer`\?\)"):
        load_config(_write(tmp_path, "[trainr]\nbatch_size = 8\n"))
    text = '[data]\nselfplay = [{ name = "minif2f", wieght = 2 }]\n'
    with pytest.raises(ConfigError, match=r"unknown key `data\.selfplay\[0\]\.wieght`"):
        load_config(_write(tmp_path, text))


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, '[trainer]\nbatch_size = "big"\n')
    with pytest.raises(ConfigError, match=r"c\.toml: `trainer\.batch_size`: Expected `int`, got `str`"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"`data\.allow_download`: Expected `bool`"):
        load_config(overrides=["data.allow_download=yes"])


def test_missing_file_and_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.toml"):
        load_config(tmp_path / "nope.toml")
    path = _write(tmp_path, "[run]\nname = \"x\"\n[trainer\n")
    with pytest.raises(ConfigError, match=r"c\.toml: .*line 3"):
        load_config(path)


def test_overrides_scalar_nested_and_strings(tmp_path: Path) -> None:
    path = _write(tmp_path, "[trainer]\nlearning_rate = 1e-5\n")
    cfg = load_config(path, [
        "trainer.learning_rate=5e-5",
        "selfplay.rounds=3",
        'data.selfplay=[{ name = "minif2f", split = "test" }]',
        "run.name=bare words",
        "eval.budgets=[1, 8]",
        "verifier.cross_check=true",
    ])
    assert cfg.trainer.learning_rate == 5e-5  # override wins over the file
    assert cfg.selfplay.rounds == 3
    assert [(d.name, d.split) for d in cfg.data.selfplay] == [("minif2f", "test")]
    assert cfg.run.name == "bare words"
    assert cfg.eval.budgets == [1, 8]
    assert cfg.verifier.cross_check is True
    assert parse_override(" sampler.top_p = 0.9 ") == (["sampler", "top_p"], 0.9)


@pytest.mark.parametrize("text", ["noequals", "=1", "a..b=1", ".a=1", "a.=1"])
def test_bad_override_syntax(text: str) -> None:
    with pytest.raises(ConfigError, match=r"must look like section\.key=value"):
        load_config(overrides=[text])


def test_override_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--set overrides\): unknown key `sampler\.temprature`"):
        load_config(overrides=["sampler.temprature=0.5"])
    path = _write(tmp_path, '[run]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"run\.name is a value, not a section"):
        load_config(path, ["run.name.first=1"])


def test_resolve_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir("", None) == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "cfg"), None) == tmp_path / "cfg"
    assert resolve_data_dir(str(tmp_path / "cfg"), str(tmp_path / "cli")) == tmp_path / "cli"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert resolve_data_dir() == Path("~/.cache/stp/data").expanduser()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir("~/d") == tmp_path / "d"


def test_cli_config_arguments(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_config_arguments(parser)
    config = REPO / "configs" / "tiny-cpu.toml"
    weird = str(tmp_path / 'da"ta\\dir')
    args = parser.parse_args(["--config", str(config), "--set", "selfplay.rounds=5",
                              "--data-dir", weird])
    cfg = cli.config_from_args(args)
    assert cfg.selfplay.rounds == 5
    assert cfg.run.data_dir == weird
    assert resolve_data_dir(cfg.run.data_dir) == Path(weird)


def test_run_main_maps_errors_to_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    def bad_config(argv: list[str] | None) -> int:
        load_config(overrides=["trainer.batchsize=1"])
        return 0

    def usage(argv: list[str] | None) -> int:
        raise cli.UsageError("lake not found: install elan")

    def corrupt_input(argv: list[str] | None) -> int:
        raise CorruptRecordError("in.jsonl", 7, "malformed JSON")

    for main, expected in [(bad_config, "unknown key `trainer.batchsize`"),
                           (usage, "lake not found"),
                           (corrupt_input, "in.jsonl:7: malformed JSON")]:
        with pytest.raises(SystemExit) as exit_info:
            cli.run_main(main, [])
        assert exit_info.value.code == cli.EXIT_USAGE
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err
        assert err.count("\n") == 1  # one line
    with pytest.raises(SystemExit) as exit_info:
        cli.run_main(lambda argv: cli.EXIT_FAILURES, [])
    assert exit_info.value.code == 1
