"""`python -m stp.verify PATH...`: check the proofs in .lean and JSONL files.

Exit status: 0 every proof passed, 1 some proof did not pass (or a cross-check disagreed),
2 usage or environment error (bad file, malformed record, Lean or the checker missing).

The checker is `lean.checker_command` when set (`--set 'lean.checker_command=["..."]'`), else the
built `stp_check`; there is no other way to replace it.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from stp import storage
from stp.cli import (
    EXIT_FAILURES,
    EXIT_OK,
    ArgumentParser,
    UsageError,
    add_config_arguments,
    config_from_args,
    run_main,
    setup_logging,
)
from stp.metrics import Progress
from stp.verify.cache import out_of_space
from stp.verify.leanfile import TextMap, split_lean_file
from stp.verify.types import VerifyItem, VerifyResult


class ProofRecord(msgspec.Struct, kw_only=True):
    """One line of a JSONL proof file (other fields are ignored)."""

    statement: str
    proof: str
    name: str | None = None
    header: str | None = None


_record_decoder = msgspec.json.Decoder(ProofRecord)


@dataclass
class Entry:
    name: str
    source: str  # file:line
    item: VerifyItem
    text_map: TextMap | None = None


def read_jsonl(path: Path, header: str, shown: str | None = None) -> list[Entry]:
    """The records of a JSONL proof file; `shown` is the name messages use (a gs:// input's
    own path rather than its downloaded copy)."""
    shown = shown or str(path)
    entries = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = _record_decoder.decode(raw)
            except msgspec.ValidationError as err:
                raise UsageError(f"{shown}:{lineno}: {_field_message(err)}") from None
            except (msgspec.DecodeError, UnicodeDecodeError) as err:
                raise UsageError(f"{shown}:{lineno}: not valid JSON ({err})") from None
            name = rec.name or f"{storage.basename(shown)}:{lineno}"
            # a header that comes with the proof is untrusted (the checker's allow-list applies)
            item = VerifyItem(statement=rec.statement, proof=rec.proof,
                              header=rec.header if rec.header is not None else header,
                              header_trusted=rec.header is None, name=name)
            entries.append(Entry(name, f"{shown}:{lineno}", item))
    return entries


def _field_message(err: msgspec.ValidationError) -> str:
    """msgspec says "Expected `str`, got `int` - at `$.proof`": name the field first."""
    text = str(err)
    if " - at `$." in text:
        message, _, where = text.partition(" - at `$.")
        return f"field `{where.rstrip('`')}`: {message}"
    if "missing required field" in text:
        return "field " + text.split("missing required field ", 1)[1] + ": missing"
    return text


def read_lean(path: Path, shown: str | None = None) -> list[Entry]:
    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{shown}: not UTF-8 text ({err})") from None
    theorems = split_lean_file(text, shown)
    return [Entry(t.name, f"{shown}:{t.line}",
                  VerifyItem(statement=t.statement, proof=t.proof, header=t.header,
                             header_trusted=False, name=t.name),
                  t.text_map) for t in theorems]


def load_entries(paths: Sequence[str | os.PathLike[str]], header: str) -> list[Entry]:
    """Every proof of the input files, local or gs:// (read from a local copy)."""
    entries: list[Entry] = []
    for given in paths:
        name = os.fspath(given)
        suffix = Path(storage.basename(name)).suffix
        if suffix not in (".lean", ".jsonl", ".json"):
            raise UsageError(f"{name}: expected a .lean or .jsonl file")
        path = _local_input(name)
        if suffix == ".lean":
            found = read_lean(path, name)
            if not found:
                raise UsageError(f"{name}: no theorem, lemma or example to check")
        else:
            found = read_jsonl(path, header, name)
        entries.extend(found)
    return entries


def _local_input(name: str) -> Path:
    """A local file with the content of input `name`; a gs:// object is downloaded (through
    stp.storage, whose one-line errors name the missing package or credentials)."""
    if not storage.is_gcs(name):
        path = Path(name)
        if not path.is_file():
            raise UsageError(f"{name}: no such file")
        return path
    try:
        return storage.local_cache_path(name)
    except FileNotFoundError:
        raise UsageError(f"{name}: no such object in Cloud Storage") from None


def result_record(entry: Entry, result: VerifyResult) -> dict[str, Any]:
    """The --json line: the result, with message positions mapped to the file for .lean input."""
    out: dict[str, Any] = {"name": entry.name, "source": entry.source}
    out.update(msgspec.to_builtins(result))
    out["status"] = result.status
    if entry.text_map is not None:
        for kind in ("errors", "warnings"):
            for msg in out.get(kind, []):
                _map_message(entry.text_map, msg)
    return out


def _map_message(text_map: TextMap, msg: dict[str, Any]) -> None:
    msg["line"], msg["column"] = text_map.to_file(msg["line"], msg["column"])
    if msg.get("end_line") is not None:
        msg["end_line"], msg["end_column"] = text_map.to_file(msg["end_line"],
                                                              msg.get("end_column") or 0)


def first_error(record: dict[str, Any]) -> str:
    errors = record.get("errors") or []
    if errors:
        e = errors[0]
        text = e["text"].strip().splitlines()[0] if e["text"].strip() else ""
        return f"L{e['line']}:{e['column']} {text}"
    if record.get("forbidden"):
        return "forbidden: " + ", ".join(record["forbidden"])
    if record.get("reasons"):
        return ", ".join(record["reasons"])
    return record.get("detail", "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m stp.verify",
        description="Check Lean proofs: .lean files (each theorem separately, against the "
                    "file's header) and JSONL files of {name?, header?, statement, proof}.")
    # Strings, not Paths: pathlib would turn gs://bucket/x into gs:/bucket/x.
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help=".lean or .jsonl files, local or gs://")
    parser.add_argument("--json", action="store_true", help="one JSON result per line")
    parser.add_argument("--jobs", type=int, help="checker processes (verifier.workers)")
    parser.add_argument("--timeout", type=float, help="seconds per check (verifier.timeout_s)")
    parser.add_argument("--memory", type=int, help="MiB per worker (verifier.memory_mb)")
    parser.add_argument("--header", help="header for JSONL records without one (text, or @FILE)")
    parser.add_argument("--cache", metavar="DIR",
                        help="persistent result cache directory (default: none for the CLI)")
    parser.add_argument("--cross-check", action="store_true",
                        help="re-verify passing proofs with lean-interact, report disagreements")
    parser.add_argument("--no-progress", action="store_true")
    add_config_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = list(args.overrides)
    if args.jobs is not None:
        overrides.append(f"verifier.workers={args.jobs}")
    if args.timeout is not None:
        overrides.append(f"verifier.timeout_s={args.timeout}")
    if args.memory is not None:
        overrides.append(f"verifier.memory_mb={args.memory}")
    if args.cross_check:
        overrides.append("verifier.cross_check=true")
    if args.cache:
        overrides.append(f"verifier.cache_dir={json.dumps(str(args.cache))}")
    args.overrides = overrides
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level if not args.json else "WARNING")
    if not args.cache and not cfg.verifier.cache_dir:
        cfg.verifier.cache_dir = "off"  # the CLI does not litter the cwd with a run directory
    from stp.lean.config import session_header

    header = session_header(cfg.lean)
    if args.header is not None:
        header = _read_header(args.header)
    entries = load_entries(args.paths, header)
    if not entries:
        raise UsageError(f"{', '.join(map(str, args.paths))}: no proofs to check (empty input)")

    from stp.verify.service import VerifierError, make_verifier

    results: list[VerifyResult | None] = [None] * len(entries)
    disagreements: list[Any] = []
    # A full disk under --cache fails a cache write mid-run: the verdicts computed so far are
    # printed anyway, then one line says what to free (exit 2).
    cache_failure: str | None = None
    try:
        with make_verifier(cfg) as verifier:
            verifier.versions()  # a checker that cannot start: exit 2 (default header: trusted)
            with Progress(len(entries), "checking", unit="proofs",
                          enabled=False if args.no_progress else None) as bar:
                for index, result in verifier.verify(e.item for e in entries):
                    results[index] = result
                    bar.advance()
            disagreements = verifier.last_stats.disagreements
    except VerifierError as err:
        raise UsageError(str(err)) from None
    except (OSError, sqlite3.Error) as err:  # opening or writing the cache
        cache_failure = _cache_write_failure(err, cfg.verifier.cache_dir)
        if cache_failure is None:
            raise
    records = [result_record(e, r) for e, r in zip(entries, results, strict=True) if r is not None]
    if args.json:
        for rec in records:
            sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
    else:
        _print_table(records)
    for d in disagreements:
        print(f"cross-check disagreement: {d.name}: ours={d.ours} theirs={d.theirs}: {d.detail}",
              file=sys.stderr)
    if cache_failure is not None:
        raise UsageError(f"{cache_failure} ({len(records)} of {len(entries)} proofs checked and "
                         "printed above; rerun to check the rest)")
    passed = all(r["status"] == "pass" for r in records)
    return EXIT_OK if passed and not disagreements else EXIT_FAILURES


def _cache_write_failure(err: BaseException, cache_dir: str) -> str | None:
    """One line for a cache write that failed for lack of space, else None (a real bug)."""
    if not out_of_space(err):
        return None
    return (f"{cache_dir}: no space left on the device for the verdict cache; free space there "
            "(or choose another --cache) and rerun: cached verdicts are kept")


def _read_header(value: str) -> str:
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise UsageError(f"--header {value}: no such file")
        return storage.read_text(path)
    return value.replace("\\n", "\n")


def _print_table(records: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    colors = {"pass": "green", "fail": "red"}
    table = Table(show_lines=False)
    table.add_column("name", overflow="fold")
    table.add_column("verdict")
    table.add_column("time", justify="right")
    table.add_column("first error", overflow="fold")
    for rec in records:
        status = rec["status"]
        color = colors.get(status, "yellow")
        cached = " (cached)" if rec.get("cached") else ""
        table.add_row(rec["name"], f"[{color}]{status}[/{color}]{cached}",
                      f"{rec.get('seconds', 0.0):.2f}s", first_error(rec)[:160])
    console = Console()
    console.print(table)
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
    console.print(f"{len(records)} checked: " + ", ".join(f"{n} {s}" for s, n in
                                                          sorted(counts.items())))


def entry_point() -> None:
    run_main(main)
