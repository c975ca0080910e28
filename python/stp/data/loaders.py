"""Reading the dataset files into `Statement` / `TrainingExample` records.

Every row goes through the same normalisation (stp.data.normalize); the changes are collected in a
`DefectReport` that callers can print (`python -m stp.data info --defects`). A missing file, a
corrupt line or a row lacking a field is an error naming the file, the line and the field.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from stp.data import normalize as nz
from stp.data.config import resolve_data_dir
from stp.data.download import ensure_file, ensure_hf_dataset, hf_local_dir, locate_file
from stp.data.records import Statement, TrainingExample, statement_key
from stp.data.registry import DataFile, DatasetInfo, get_dataset_info
from stp.errors import UsageError

log = logging.getLogger(__name__)


class DatasetFormatError(UsageError, ValueError):
    """A dataset file is corrupt or a row lacks a field; the message names file and line."""


def _open_bytes(path: Path) -> Any:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


_AT_BYTE = re.compile(r"\(byte (\d+)\)")


def decode_json(data: bytes, path: Path | str, lineno: int = 1, what: str = "JSON") -> Any:
    """One strict JSON decoder for every dataset file (msgspec, as the run directory's own files
    are read): what `stp.data info` accepts, self-play can read. It refuses what Python's `json`
    lets through and a later stage would crash on: a lone surrogate escape (`"\\ud800"`), bytes
    that are not UTF-8, nesting deep enough to exhaust the stack. The error names the file and
    the line (`lineno` is the line `data` starts on)."""
    where = f"{path}:{lineno}"
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as err:
        text = str(err)
        at = _AT_BYTE.search(text)
        # No byte position: the input ended early, so the problem is on its last line.
        stop = int(at.group(1)) if at else len(data.rstrip())
        line = lineno + data[:stop].count(b"\n")
        where = f"{path}:{line}"
        try:  # what msgspec calls "truncated" is often an escape that is not valid Unicode
            json.loads(data)
            text = "a string escape that is not valid Unicode (a lone surrogate such as \\ud800)"
        except (ValueError, RecursionError):
            pass
        raise DatasetFormatError(f"{where}: corrupt {what} ({text})") from None
    except UnicodeDecodeError as err:
        line = lineno + data[:err.start].count(b"\n")
        raise DatasetFormatError(f"{path}:{line}: not UTF-8 text (byte {err.start})") from None
    except RecursionError:
        raise DatasetFormatError(f"{where}: JSON nested too deeply") from None


def iter_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for a JSON list or a JSONL file; line numbers are 1-based. For a JSON
    list the number is the record's index + 1 (the parse error itself reports the exact line)."""
    try:
        with _open_bytes(path) as fh:
            if fmt == "jsonl":
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    row = decode_json(line, path, lineno, "JSON line")
                    if not isinstance(row, dict):
                        raise DatasetFormatError(f"{path}:{lineno}: expected a JSON object")
                    yield lineno, row
                return
            data = decode_json(fh.read(), path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DatasetFormatError(f"{path}: truncated or corrupt gzip stream ({err})") from None
    if not isinstance(data, list):
        raise DatasetFormatError(f"{path}:1: expected a JSON list of records")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DatasetFormatError(f"{path}: record {index + 1}: expected a JSON object")
        yield index + 1, row


def _field(path: Path | str, lineno: int, row: dict[str, Any], key: str, kind: type,
           optional: bool = False) -> Any:
    value = row.get(key)
    if value is None:
        if optional:
            return None
        raise DatasetFormatError(f"{path}:{lineno}: missing field {key!r}")
    if not isinstance(value, kind):
        raise DatasetFormatError(
            f"{path}:{lineno}: field {key!r} should be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _statement_from_row(info: DatasetInfo, data_file: DataFile, path: Path, lineno: int,
                        row: dict[str, Any], report: nz.DefectReport) -> Statement:
    raw_split = _field(path, lineno, row, "split", str)
    split = data_file.splits.get(raw_split)
    if split is None:
        known = ", ".join(repr(s) for s in data_file.splits)
        raise DatasetFormatError(
            f"{path}:{lineno}: field 'split' has unknown value {raw_split!r} (known: {known})"
        )
    text = _field(path, lineno, row, "formal_statement", str)
    raw_name = _field(path, lineno, row, "name", str, optional=True)
    informal = _field(path, lineno, row, "informal_prefix", str, optional=True) or ""
    header = nz.canonical_header(_field(path, lineno, row, "header", str, optional=True))
    tags = _field(path, lineno, row, "tags", list, optional=True) or []
    where = f"{path.name}:{lineno}"
    # Provisional id for the report; the final id is fixed once names are known to be unique.
    rid = f"{info.name}/{split}/{raw_name or nz.declared_name(text) or where}"

    leaked = nz.split_leaked_docstring(text)
    if leaked is not None:
        prose, text = leaked
        informal = informal if informal.strip() not in ("", "/-- null-/") else ""
        informal = (informal + "\n" if informal else "") + f"/-- {prose} -/"
        report.add(info.name, rid, "leaked_docstring", "fixed",
                   f"{where}: prose before '-/' moved from the statement to `informal`")

    text, stripped = nz.strip_trailing_sorry(text)
    if stripped:
        report.add(info.name, rid, "trailing_sorry", "fixed", f"{where}: trailing sorry removed")
    if "sorry" in text:
        report.add(info.name, rid, "sorry_in_statement", "flagged",
                   f"{where}: 'sorry' occurs inside the statement")
    try:
        text, change = nz.normalise_ending(text, info.ending)
    except ValueError:
        text = text.rstrip() + (" := by" if info.ending == "by" else " :=")
        change = "no ':=' ending; one was appended"
    if change:
        report.add(info.name, rid, "ending", "fixed", f"{where}: {change}")

    declared = nz.declared_name(text)
    name = raw_name
    if declared is None:
        report.add(info.name, rid, "no_declared_name", "flagged",
                   f"{where}: no theorem name could be read from the statement")
        name = raw_name or f"{info.name}_{split}_{lineno}"
    elif raw_name is None:
        name = declared
    elif raw_name != declared:
        report.add(info.name, rid, "name_mismatch", "fixed",
                   f"{where}: name {raw_name!r} replaced by the declared name {declared!r}")
        name = declared
    if header:
        report.add(info.name, rid, "custom_header", "flagged",
                   f"{where}: own header kept ({len(header.splitlines())} lines)")
    return Statement(id=f"{info.name}/{split}/{name}", dataset=info.name, split=split,
                     name=name, statement=text, header=header, informal=informal,
                     tags=[str(t) for t in tags])


def _disambiguate(records: list[Statement], report: nz.DefectReport) -> list[Statement]:
    """Make ids unique: records sharing (split, name) get a suffix from their statement hash,
    which depends on the statement alone, so ids do not move when rows are reordered."""
    by_id: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        by_id[rec.id].append(i)
    out = list(records)
    for rid, idxs in by_id.items():
        if len(idxs) == 1:
            continue
        used: set[str] = set()
        for i in idxs:
            rec = records[i]
            suffix = nz.short_hash("\x00".join(statement_key(rec.statement, rec.header)))
            new_id = f"{rid}~{suffix}"
            n = 2
            while new_id in used:
                new_id = f"{rid}~{suffix}-{n}"
                n += 1
            used.add(new_id)
            out[i] = Statement(**{**_as_dict(rec), "id": new_id})
            report.add(rec.dataset, new_id, "duplicate_name", "flagged",
                       f"{len(idxs)} records named {rec.name!r} in split {rec.split!r}; "
                       f"id suffixed with the statement hash")
    seen: dict[tuple[str, str], str] = {}
    for rec in out:
        key = statement_key(rec.statement, rec.header)
        if key in seen:
            report.add(rec.dataset, rec.id, "duplicate_statement", "flagged",
                       f"same statement (ignoring whitespace) as {seen[key]}")
        else:
            seen[key] = rec.id
    return out


def _as_dict(rec: Statement) -> dict[str, Any]:
    return {f: getattr(rec, f) for f in rec.__struct_fields__}


def load_dataset(name: str, data_dir: str | Path | None = None, split: str | None = None, *,
                 report: nz.DefectReport | None = None,
                 allow_download: bool = True) -> list[Statement]:
    """Normalised statements of a dataset (one split or all), in file order.

    `data_dir` defaults to $STP_DATA_DIR (see `resolve_data_dir`). Pass a `DefectReport` to
    receive every fix and flag; without one, a one-line summary is logged."""
    info = get_dataset_info(name)
    if info.kind != "statements":
        raise UsageError(f"dataset {name!r} holds training examples; use load_examples()")
    if split is not None and split not in info.splits:
        raise UsageError(f"dataset {name!r} has no split {split!r}; splits: "
                         + ", ".join(info.splits))
    root = resolve_data_dir(cli_value=str(data_dir) if data_dir is not None else None)
    own_report = report if report is not None else nz.DefectReport()
    records: list[Statement] = []
    for data_file in info.files:
        if split is not None and split not in data_file.splits.values():
            continue
        path = ensure_file(info, data_file, root, allow_download=allow_download)
        for lineno, row in iter_rows(path, data_file.fmt):
            records.append(_statement_from_row(info, data_file, path, lineno, row, own_report))
    records = _disambiguate(records, own_report)
    if split is not None:
        records = [r for r in records if r.split == split]
    if report is None and own_report.defects:
        log.info("%s: normalisation made %d fixes and %d flags (python -m stp.data info "
                 "--defects shows them)", name,
                 sum(d.action == "fixed" for d in own_report.defects),
                 sum(d.action == "flagged" for d in own_report.defects))
    return records


def _hf_rows(local: Path, split: str) -> Iterator[dict[str, Any]]:
    """Rows of one split of a local copy of a Hugging Face dataset repository.

    `datasets.load_dataset` on the folder does what the Hub does with the repository: it honours
    the dataset card's `configs:` (which files make which split) or, without one, its file-naming
    conventions, and it converts the files once into a memory-mapped Arrow cache kept beside the
    data (`.arrow_cache/`), so later loads neither re-parse nor hold a second copy in memory."""
    try:
        import datasets
    except ImportError:
        raise UsageError(
            "reading the Hugging Face data sets needs the `datasets` package: "
            "pip install -e '.[hfdata]'"
        ) from None
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(str(local), split=split, cache_dir=str(local / ".arrow_cache"))
    except ValueError as err:  # an unknown split: datasets names the ones it found
        raise UsageError(f"{local}: cannot load split {split!r}: "
                         f"{str(err).splitlines()[0]}") from None
    except (datasets.exceptions.DataFilesNotFoundError, FileNotFoundError) as err:
        raise UsageError(f"{local}: no data files for split {split!r} "
                         f"({str(err).splitlines()[0]})") from None
    for batch in ds.iter(batch_size=4096):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            yield dict(zip(keys, values, strict=True))


def load_examples(name: str, data_dir: str | Path | None = None, split: str = "train", *,
                  allow_download: bool = True) -> list[TrainingExample]:
    """Training examples {prompt, target, weight} of an STP-released dataset."""
    info = get_dataset_info(name)
    if info.kind != "examples":
        raise UsageError(f"dataset {name!r} holds statements; use load_dataset()")
    if split not in info.splits:
        raise UsageError(f"dataset {name!r} has no split {split!r}; splits: "
                         + ", ".join(info.splits))
    root = resolve_data_dir(cli_value=str(data_dir) if data_dir is not None else None)
    local = ensure_hf_dataset(info, root, allow_download=allow_download)
    out: list[TrainingExample] = []
    where = f"{local} [split {split}] row"
    for index, row in enumerate(_hf_rows(local, split), 1):
        prompt = _field(where, index, row, "prompt", str)
        target = _field(where, index, row, "target", str)
        weight = row.get("weight")
        out.append(TrainingExample(prompt=prompt, target=target,
                                   weight=float(weight) if weight is not None else 1.0))
    return out


def dataset_status(info: DatasetInfo, data_dir: Path) -> dict[str, Any]:
    """Presence and per-split counts, without downloading anything."""
    if info.kind == "examples":
        local = hf_local_dir(info, data_dir)
        present = (local / ".complete").is_file()
        counts: dict[str, int] = {}
        if present:
            for split in info.splits:
                counts[split] = len(load_examples(info.name, data_dir, split,
                                                  allow_download=False))
        return {"name": info.name, "present": present, "path": str(local), "counts": counts}
    found = [locate_file(f, data_dir) for f in info.files]
    present = all(p is not None for p in found)
    paths = [p if p is not None else data_dir / f.filename for p, f in zip(found, info.files,
                                                                           strict=True)]
    counts = {}
    report = nz.DefectReport()
    if present:
        for rec in load_dataset(info.name, data_dir, report=report, allow_download=False):
            counts[rec.split] = counts.get(rec.split, 0) + 1
    return {"name": info.name, "present": present, "path": ", ".join(str(p) for p in paths),
            "counts": counts, "report": report}
