"""`python -m stp.data info|download`: what datasets are present, and fetching the larger ones.

    python -m stp.data info [--data-dir D] [--config F] [--set K=V] [--json] [--defects] [NAME...]
    python -m stp.data download [--data-dir D] [--config F] [--set K=V] [NAME...]

`info` downloads nothing: it reports the benchmark files shipped in the checkout and what the data
directory holds, with the statement count per split, so a user sees at once what a run can use.
`download` fetches the sets that are not shipped (LeanWorkbook, the Hugging Face sets) into the
data directory and checks every file against the registry's checksums; offline it fails with one
line naming the file to place by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stp.cli import (
    EXIT_OK,
    ArgumentParser,
    UsageError,
    add_config_arguments,
    config_from_args,
    run_main,
    setup_logging,
)

# Upward by design: a command entry point reads the whole config (the data directory rule).
from stp.config import resolve_data_dir
from stp.data.download import download_dataset
from stp.data.loaders import dataset_status
from stp.data.registry import get_dataset_info, list_datasets, shipped_dir


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m stp.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="list known datasets, presence and counts per split")
    add_config_arguments(info)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.add_argument("--defects", action="store_true",
                      help="also list every normalisation fix and flag")
    info.add_argument("names", nargs="*", help="restrict to these datasets")
    down = sub.add_parser("download", help="fetch datasets into the data directory and check "
                          "their checksums (default: every dataset not shipped)")
    add_config_arguments(down)
    down.add_argument("names", nargs="*", help="datasets to fetch")
    return parser


def _download(names: list[str], data_dir: Path) -> int:
    if names:
        infos = [get_dataset_info(n) for n in names]
    else:  # everything that a checkout does not already ship
        infos = [i for i in list_datasets() if not i.files or not all(f.shipped for f in i.files)]
    for info in infos:
        for line in download_dataset(info, data_dir):
            print(line, flush=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)
    data_dir = resolve_data_dir(cfg.run.data_dir)
    if args.command == "download":
        return _download(args.names, data_dir)
    infos = [get_dataset_info(n) for n in args.names] if args.names else list_datasets()
    if args.data_dir is not None and not data_dir.is_dir():
        raise UsageError(f"data directory {data_dir} (--data-dir) does not exist")
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
    shipped = shipped_dir()
    print(f"shipped benchmarks: {shipped if shipped is not None else '(none: not a checkout)'}")
    print(f"data directory: {data_dir}{'' if data_dir.is_dir() else ' (does not exist yet)'}")
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
            print(f"{'':<{width}}    source: {info.source} "
                  f"(python -m stp.data download {info.name})")
    return EXIT_OK


if __name__ == "__main__":
    run_main(main)
