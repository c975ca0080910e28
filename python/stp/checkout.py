"""The source checkout this package was imported from, if any.

An editable install (`pip install -e .`, the README's way) imports `stp` from
`<checkout>/python/stp`, so the checkout's shipped benchmark files (`data/benchmarks/`) and its Lake
workspace (`lakefile.lean`) can be found from the package itself, whatever the current directory.
A wheel installed into site-packages has no checkout: callers then fall back to their configured
directories. Bottom layer: imports nothing from stp.
"""

from __future__ import annotations

from pathlib import Path

# Files that only the STP repository root holds together.
CHECKOUT_MARKERS = ("pyproject.toml", "lakefile.lean")


def checkout_root() -> Path | None:
    """`<checkout>` when this package lives at `<checkout>/python/stp`, else None."""
    root = Path(__file__).resolve().parents[2]
    if all((root / marker).is_file() for marker in CHECKOUT_MARKERS):
        return root
    return None
