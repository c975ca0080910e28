"""`python -m stp.retrain`: the final re-training alone (the pipeline's `retrain` stage).

    python -m stp.retrain --config configs/stp-7b.toml
    python -m stp.retrain --config configs/tiny-cpu.toml --set 'retrain.merge_from=["runs/a"]'

The rules and outputs are `stp.selfplay.retrain`'s (docs/selfplay.md).
"""

from __future__ import annotations

from stp.cli import (
    EXIT_OK,
    ArgumentParser,
    add_config_arguments,
    config_from_args,
    run_main,
    setup_logging,
)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m stp.retrain",
                            description="Final re-training from the base model on the "
                                        "self-play proofs plus the Mathlib SFT set.")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)
    from stp.selfplay.retrain import run_retrain

    manifest = run_retrain(cfg)
    print(f"retrain: {manifest['data']['examples']} examples "
          f"({manifest['data']['selfplay_examples']} self-play), model {manifest['train']['model']}")
    return EXIT_OK


if __name__ == "__main__":
    run_main(main)
