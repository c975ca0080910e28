"""`python -m stp.data info [--data-dir D] [--config F] [--set K=V] [--json] [--defects]`: what datasets are present.

Nothing is downloaded: the command reports what the data directory holds, with the statement count
per split, so a user sees at once what a run can use.
"""

from __future__ import annotations

import argparse
import json
import sys

from stp.cli import (
    EXIT_OK,
    ArgumentParser,
    UsageError,
    add_config_arguments,
    config_from_args,
    run_main,
    setup_logging,
)
from stp.config import resolve_data_dir
from stp.data.loaders import dataset_status
from stp.data.registry import get_dataset_info, list_datasets


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m stp.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="list known datasets, presence and counts per split")
    add_config_arguments(info)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--defects", action="store_true",
                      help="also list every normalisation fix and flag")
    info.add_argument("names", nargs="*", help="restrict to these datasets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)
    data_dir = resolve_data_dir(cfg.run.data_dir)
    infos = [get_dataset_info(n) for n in args.names] if args.names else list_datasets()
    if not data_dir.is_dir():
        raise UsageError(f"data directory {data_dir} does not exist (set --data-dir or "
                         "$STP_DATA_DIR)")
    rows = [(info, dataset_status(info, data_dir)) for info in infos]
    if args.json:
        out = []
        for info, st in rows:
            item = {"name": info.name, "kind": info.kind, "present": st["present"],
                    "counts": st["counts"], "path": st["path"], "licence": info.licence,
                    "source": info.source}
            if "report" in st:
                item["defects"] = [
                    {"id": d.id, "kind": d.kind, "action": d.action, "detail": d.detail}
                    for d in st["report"].defects
                ] if args.defects else st["report"].summary_lines()
            out.append(item)
        json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return EXIT_OK
    print(f"data directory: {data_dir}")
    width = max(len(info.name) for info in infos)
    for info, st in rows:
        counts = ", ".join(f"{k} {v}" for k, v in st["counts"].items()) or "-"
        state = "present" if st["present"] else "missing"
        print(f"{info.name:<{width}}  {state:<7}  {counts:<24}  {info.description}")
        report = st.get("report")
        if report is not None and report.defects:
            for line in report.summary_lines():
                print(f"{'':<{width}}    {line}")
            if args.defects:
                for d in report.defects:
                    print(f"{'':<{width}}      [{d.action}] {d.id}: {d.kind}: {d.detail}")
        if not st["present"]:
            print(f"{'':<{width}}    source: {info.source}")
    return EXIT_OK


if __name__ == "__main__":
    run_main(main)
