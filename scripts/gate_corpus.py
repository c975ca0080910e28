#!/usr/bin/env python
"""Classify a corpus of real Lean 4 proofs against the gate's allow-list and print how many of
them the allow-list would reject.

    python scripts/gate_corpus.py                       # estimate on the shipped sample
    python scripts/gate_corpus.py --json                # the same, as one JSON object
    python scripts/gate_corpus.py --extract --kimina DIR --internlm DIR \\
        --out lean/gate/corpus_sample.jsonl             # rebuild the sample from the sources
    python scripts/gate_corpus.py --exact --kimina DIR --internlm DIR   # needs Lean + stp_check

Two modes (lean/gate/ALLOWLIST_SOURCES.md says where the corpus comes from):

* **estimate** (default, no Lean): every proof of the sample is a list of the tactic keywords
  found in tactic position (first word of a tactic step). A keyword is admitted when it is the
  keyword of a reviewed kind in lean/STP/GateAllowList.lean, or a macro of
  lean/gate/keywords.tsv whose expansion keywords are all admitted. A proof is *rejected by the
  allow-list* when one of its keywords is a known tactic that is not admitted, and *refused on
  purpose* when one is a `policy` keyword (`native_decide`, `polyrith`, ...). Words in tactic
  position that are no tactic at all (case tags, pattern names) are listed, not counted. This is
  an estimate: it sees tactic names, not the syntax kinds of terms, structural nodes or macro
  expansions.
* **exact** (a machine with Lean and a built `stp_check`): every proof of the raw corpus goes
  through the real checker (`stp.verify`, strict profile); a proof counts as rejected when its
  verdict carries reason `forbidden`, and the `forbidden` entries (syntax kinds, constants) are
  tallied, so a kind missing from the allow-list shows up by name.

Exit status 0; 2 on unreadable input (one line naming the file and the problem).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ALLOWLIST = REPO / "lean" / "STP" / "GateAllowList.lean"
KEYWORDS = REPO / "lean" / "gate" / "keywords.tsv"
SAMPLE = REPO / "lean" / "gate" / "corpus_sample.jsonl"


class CorpusError(Exception):
    """Unreadable input: reported as one line, exit status 2."""


# --- The allow-list, as the estimator sees it ---------------------------------------------

ENTRY = re.compile(r'\(`((?:«[^»]*»|[^\s,()«])+),\s*"((?:[^"\\]|\\.)*)"\)')


def allowed_keywords(path: Path = ALLOWLIST) -> dict[str, list[str]]:
    """Keyword -> kinds of the reviewed entries `(`kind, "keyword")` of GateAllowList.lean (the
    first word of the keyword; entries whose keyword is a description, such as `(…)`, are kept
    under that description and never match a tactic word)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CorpusError(f"{path}: cannot read: {err.strerror}") from None
    out: dict[str, list[str]] = {}
    for kind, keyword in ENTRY.findall(text):
        word = keyword.split()[0] if keyword.split() else keyword
        out.setdefault(word, []).append(kind)
    if not out:
        raise CorpusError(f"{path}: no (`kind, \"keyword\") entries found")
    return out


@dataclass
class KeywordTable:
    allowed: dict[str, list[str]]
    macros: dict[str, list[str]] = field(default_factory=dict)
    policy: dict[str, str] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)

    def status(self, word: str, _seen: frozenset[str] = frozenset()) -> str:
        """`policy`, `allowed`, `refused` (a tactic that is not admitted) or `other` (no
        tactic). Policy wins over the allow-list: `trace "msg"` and Mathlib's `trace <term>`
        share their keyword, and the gate refuses the pair (a `choice` node)."""
        if word in self.policy:
            return "policy"
        if word in self.allowed:
            return "allowed"
        if word in self.macros:
            if word in _seen:
                return "allowed"  # a macro that expands to itself (repeat, trivial)
            inner = {self.status(w, _seen | {word}) for w in self.macros[word]}
            return "allowed" if inner <= {"allowed"} else "refused"
        if word in self.known:
            return "refused"
        return "other"


def load_table(allowlist: Path = ALLOWLIST, keywords: Path = KEYWORDS) -> KeywordTable:
    table = KeywordTable(allowed=allowed_keywords(allowlist))
    try:
        lines = keywords.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise CorpusError(f"{keywords}: cannot read: {err.strerror}") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 4 or cols[1] not in {"macro", "policy", "known"}:
            raise CorpusError(f"{keywords}:{lineno}: expected 4 tab-separated columns "
                              "(keyword, macro|policy|known, expansion, source)")
        word, status, expansion, note = cols
        if status == "macro":
            table.macros[word] = expansion.split()
        elif status == "policy":
            table.policy[word] = note
        else:
            table.known.add(word)
    return table


# --- Tactic words of a proof --------------------------------------------------------------

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_'!?.₀-₉]*|<;>|·|=>|:=|[()\[\]{}⟨⟩;|,]|\S")
OPENERS, CLOSERS = set("([⟨"), set(")]⟩")
# After these tokens the next word is a tactic.
TACTIC_START = {"by", "<;>", ";", "·", "=>", "{", "try", "all_goals", "any_goals", "repeat",
                "focus", "iterate", "first"}
# A line ending in one of these continues a term on the next line.
CONTINUES = {":=", ",", "+", "-", "*", "/", "=", "<", ">", "≤", "≥", "→", "↔", "∧", "∨", "(",
             "[", "⟨", "^", "∣", "%"}


def strip_comments_and_strings(text: str) -> str:
    """Comments and string literals blanked (nested `/- -/`, raw strings and char literals
    included), so neither is mistaken for code: the verifier's own Lean-file scanner
    (`stp.verify.leanfile`), not a second copy of it."""
    if str(REPO / "python") not in sys.path:
        sys.path.insert(0, str(REPO / "python"))
    from stp.verify.leanfile import mask_comments_and_strings

    return mask_comments_and_strings(text)


def proof_body(text: str) -> str | None:
    """The text after the `:=` of the first theorem/lemma/example (None when there is none)."""
    m = re.search(r"^[ \t]*(theorem|lemma|example)\b", text, re.M)
    if not m:
        return None
    rest = text[m.start():]
    j = rest.find(":=")
    return rest[j + 2:] if j >= 0 else None


def tactic_words(body: str) -> list[str]:
    """Words in tactic position, in order: the first word of each line at bracket depth 0
    (unless the previous line continues a term), and the word after `by`, `<;>`, `;`, `·`,
    `=>`, `{`, `try`, `first |`, ... . Lines of a `calc` block are terms, not tactics."""
    words: list[str] = []
    depth = 0
    expect = False
    prev = ""
    calc_indent: int | None = None
    for line in body.split("\n"):
        indent = len(line) - len(line.lstrip())
        toks = TOKEN.findall(line)
        if not toks:
            continue
        if calc_indent is not None and indent <= calc_indent:
            calc_indent = None
        if depth == 0 and calc_indent is None and prev not in CONTINUES:
            expect = True
        for tok in toks:
            if tok in OPENERS:
                depth += 1
            elif tok in CLOSERS:
                depth = max(0, depth - 1)
            if expect and tok not in {"·", ".", "{", "}", "(", ")", "|"}:
                if re.match(r"[A-Za-z_]", tok):
                    words.append(tok)
                    if tok == "calc":
                        calc_indent = indent
                expect = False
            if tok in TACTIC_START or (tok == "(" and expect) or (tok == "|" and prev == "first"):
                expect = True
            prev = tok
    return words


# --- The corpus ---------------------------------------------------------------------------

@dataclass
class Proof:
    source: str
    name: str
    text: str  # statement + proof (raw corpus only; empty in the shipped sample)
    header: str = ""
    statement: str = ""


def read_kimina(root: Path) -> Iterator[Proof]:
    """Kimina-Prover-Preview `minif2f_test_solved/minif2f-test-solved.jsonl`: `correct_proof`
    is a whole file (imports, options, `open`s, the theorem and its proof)."""
    path = root / "minif2f-test-solved.jsonl" if root.is_dir() else root
    for lineno, rec in _jsonl(path):
        code = rec.get("correct_proof")
        if not isinstance(code, str):
            raise CorpusError(f"{path}:{lineno}: field 'correct_proof' missing or not a string")
        m = re.search(r"^[ \t]*(theorem|lemma)\b", code, re.M)
        if not m:
            continue
        header, decl = code[:m.start()], code[m.start():]
        j = decl.find(":=")
        statement = decl[:j + 2] if j >= 0 else decl
        yield Proof("kimina-minif2f-test", str(rec.get("name", lineno)), decl, header, statement)


def read_internlm(root: Path) -> Iterator[Proof]:
    """InternLM-Math `minif2f/output.zip` (unpacked): `results__*.json` files whose successful
    `attempt_results` carry a list of tactic steps (LeanDojo search) for the statement in
    `example.statement`. Duplicate (theorem, steps) pairs are counted once."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    files = sorted(root.rglob("*.json")) if root.is_dir() else [root]
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise CorpusError(f"{path}: cannot read JSON: {err}") from None
        for res in data.get("results", []) if isinstance(data, dict) else []:
            for att in res.get("attempt_results", []) or []:
                if not att.get("success"):
                    continue
                steps = att.get("proof")
                steps = [steps] if isinstance(steps, str) else list(steps or [])
                key = (str(att.get("theorem")), tuple(steps))
                if key in seen:
                    continue
                seen.add(key)
                statement = str(res.get("example", {}).get("statement", "")) + " :="
                body = " by\n  " + "\n  ".join(s.replace("\n", "\n  ") for s in steps)
                yield Proof("internlm2-minif2f-test", key[0], statement + body, "", statement)


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise CorpusError(f"{path}: cannot read: {err.strerror}") from None
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{path}:{lineno}: invalid JSON: {err}") from None
        if not isinstance(rec, dict):
            raise CorpusError(f"{path}:{lineno}: a line must be a JSON object")
        yield lineno, rec


def raw_corpus(args: argparse.Namespace) -> list[Proof]:
    proofs: list[Proof] = []
    for root in args.kimina or []:
        proofs.extend(read_kimina(Path(root)))
    for root in args.internlm or []:
        proofs.extend(read_internlm(Path(root)))
    if not proofs:
        raise CorpusError("no raw corpus given (--kimina DIR and/or --internlm DIR)")
    return proofs


def words_of(proof: Proof) -> list[str]:
    body = proof_body(strip_comments_and_strings(proof.text))
    return tactic_words(body) if body is not None else []


def load_sample(path: Path = SAMPLE) -> list[tuple[str, str, list[str]]]:
    out = []
    for lineno, rec in _jsonl(path):
        tactics = rec.get("tactics")
        if not isinstance(tactics, list) or not all(isinstance(t, str) for t in tactics):
            raise CorpusError(f"{path}:{lineno}: field 'tactics' must be a list of strings")
        out.append((str(rec.get("source", "")), str(rec.get("name", "")), tactics))
    if not out:
        raise CorpusError(f"{path}: empty sample")
    return out


# --- Estimate -----------------------------------------------------------------------------

def estimate(sample: Iterable[tuple[str, str, list[str]]], table: KeywordTable) -> dict[str, Any]:
    total = 0
    rejected: list[str] = []
    policy: list[str] = []
    refused_words: Counter[str] = Counter()
    policy_words: Counter[str] = Counter()
    other_words: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for source, name, words in sample:
        total += 1
        sources[source] += 1
        statuses = {w: table.status(w) for w in set(words)}
        ref = sorted(w for w, s in statuses.items() if s == "refused")
        pol = sorted(w for w, s in statuses.items() if s == "policy")
        refused_words.update(ref)
        policy_words.update(pol)
        other_words.update(w for w, s in statuses.items() if s == "other")
        if pol:
            policy.append(f"{source}:{name}")
        elif ref:
            rejected.append(f"{source}:{name}")
    return {
        "mode": "estimate",
        "proofs": total,
        "sources": dict(sources),
        "rejected_by_allowlist": len(rejected),
        "rejection_rate": len(rejected) / total if total else 0.0,
        "refused_on_purpose": len(policy),
        "refused_words": dict(refused_words.most_common()),
        "policy_words": dict(policy_words.most_common()),
        "not_tactics": dict(other_words.most_common(20)),
        "rejected": rejected,
    }


def print_report(r: dict[str, Any]) -> None:
    print(f"corpus: {r['proofs']} proofs ({', '.join(f'{k} {v}' for k, v in r['sources'].items())})")
    print(f"mode: {r['mode']}")
    print(f"rejected by the allow-list: {r['rejected_by_allowlist']} "
          f"({100 * r['rejection_rate']:.2f}%)")
    print(f"refused on purpose (policy): {r['refused_on_purpose']} "
          f"({100 * r['refused_on_purpose'] / max(1, r['proofs']):.2f}%) "
          f"{r['policy_words']}")
    if r["refused_words"]:
        print(f"refused keywords: {r['refused_words']}")
    if r.get("not_tactics"):
        print(f"words in tactic position that are no tactic (not counted): {r['not_tactics']}")
    for item in r["rejected"]:
        print(f"  rejected: {item}")


# --- Exact (needs Lean) -------------------------------------------------------------------

def exact(proofs: list[Proof], args: argparse.Namespace) -> dict[str, Any]:
    """Every proof through the real checker (strict profile, the configured pool)."""
    sys.path.insert(0, str(REPO / "python"))
    from stp.config import load_config
    from stp.lean.toolchain import checker_command
    from stp.verify import VerifyItem, make_verifier

    cfg = load_config(args.config, ['verifier.cache_dir="off"', *args.set])
    if args.checker_command:
        cfg.lean.checker_command = shlex.split(args.checker_command)
    checker_command(cfg.lean)  # exit 2 with the fix when Lean or the checker is missing
    items = [VerifyItem(statement=p.statement, proof=p.text[len(p.statement):],
                        header=p.header, name=f"{p.source}:{p.name}") for p in proofs]
    with make_verifier(cfg) as verifier:
        results = verifier.verify_all(items)
    rejected, entries, verdicts = [], Counter(), Counter()
    for item, res in zip(items, results, strict=True):
        verdicts[res.status] += 1
        if "forbidden" in res.reasons:
            rejected.append(item.name)
            entries.update(res.forbidden)
    total = len(items)
    return {"mode": "exact", "proofs": total,
            "sources": dict(Counter(p.source for p in proofs)),
            "rejected_by_allowlist": len(rejected),
            "rejection_rate": len(rejected) / total if total else 0.0,
            "refused_on_purpose": 0, "policy_words": {}, "verdicts": dict(verdicts),
            "refused_words": dict(entries.most_common()), "rejected": rejected}


# --- CLI ----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="shipped sample (JSONL)")
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    parser.add_argument("--keywords", type=Path, default=KEYWORDS)
    parser.add_argument("--kimina", action="append", help="Kimina minif2f_test_solved dir")
    parser.add_argument("--internlm", action="append", help="InternLM-Math minif2f output dir")
    parser.add_argument("--extract", action="store_true", help="write the sample from raw data")
    parser.add_argument("--out", type=Path, default=SAMPLE)
    parser.add_argument("--exact", action="store_true", help="run the real checker (Lean)")
    parser.add_argument("--config", type=Path, default=None, help="TOML config (exact mode)")
    parser.add_argument("--set", action="append", default=[], help="config override")
    parser.add_argument("--checker-command", default=None,
                        help="run this command instead of the built checker (self-tests)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        if args.extract:
            proofs = raw_corpus(args)
            lines = [json.dumps({"source": p.source, "name": p.name,
                                 "tactics": list(dict.fromkeys(words_of(p)))},
                                ensure_ascii=False) for p in proofs]
            tmp = args.out.with_suffix(args.out.suffix + ".tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tmp.replace(args.out)
            print(f"wrote {len(lines)} proofs to {args.out}")
            return 0
        if args.exact:
            report = exact(raw_corpus(args), args)
        else:
            report = estimate(load_sample(args.sample), load_table(args.allowlist, args.keywords))
    except CorpusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
