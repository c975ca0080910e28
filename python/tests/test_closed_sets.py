"""Each closed set of values is written once (issue #23): two `Literal[...]` with the same
values in python/stp mean two definitions that can drift apart (a profile added to one of them
only). Module-level aliases and inline annotations both count; a set used in several places is
imported from its one definition."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stp"


def _literal_sets() -> dict[frozenset[str], list[str]]:
    found: dict[frozenset[str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                    and node.value.id == "Literal"):
                continue
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            values = [e.value for e in elts if isinstance(e, ast.Constant)]
            if len(values) >= 2 and all(isinstance(v, str) for v in values):
                found[frozenset(values)].append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_each_closed_set_is_defined_once() -> None:
    twice = {tuple(sorted(k)): v for k, v in _literal_sets().items() if len(v) > 1}
    assert not twice, f"closed sets written more than once (import the one definition): {twice}"
