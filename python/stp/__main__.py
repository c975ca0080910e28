"""`stp <command> ...` (the console script) and `python -m stp <command> ...`: one entry point for
the README's commands, each run exactly as `python -m <module> ...` runs it (same arguments, exit
codes and messages), so the two spellings can never drift apart."""

from __future__ import annotations

import runpy
import sys

from stp.cli import run_main
from stp.errors import UsageError

# The README's commands and the module that implements each.
COMMANDS: dict[str, tuple[str, str]] = {
    "pipeline": ("stp.pipeline", "the whole pipeline: SFT, self-play rounds, re-training, eval, report"),
    "selfplay": ("stp.selfplay", "self-play rounds only (and `selfplay report`)"),
    "retrain": ("stp.retrain", "final re-training"),
    "train": ("stp.train", "weighted SFT on any data"),
    "verify": ("stp.verify", "check proof files with Lean"),
    "extract": ("stp.extract", "Mathlib extraction and the SFT set built from it"),
    "data": ("stp.data", "datasets present (`info`) and downloads (`download`)"),
    "eval": ("stp.eval", "evaluation: `run`, `summarize`, `plot`"),
    "model-tiny": ("stp.model.tiny", "write a tiny random CPU model"),
}
EXIT_USAGE = 2


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: stp <command> [arguments]   (= python -m <module> [arguments])", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}  [python -m {module}]"
              for name, (module, text) in COMMANDS.items()]
    lines += ["", "`stp <command> --help` shows a command's arguments."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else EXIT_USAGE
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        raise UsageError(f"stp: unknown command `{name}` (choose from {', '.join(COMMANDS)}; "
                         "`stp --help` lists them)")
    module = COMMANDS[name][0]
    sys.argv = [f"stp {name}", *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:  # the command's own exit status
        code = done.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


def entry_point() -> None:
    """The console script: errors as one line and exit 2, a closed stdout (`| head`) quiet."""
    run_main(main)


if __name__ == "__main__":
    entry_point()
