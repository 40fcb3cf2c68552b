"""The weights caloforge ships, all in this folder; ``manifest.json`` describes each file (family, geometry, what it
was trained on, its measured numbers, its size). The shipping budget is in this folder's README."""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path(__file__).parent
#: the shipping budget for all ``.pt`` files of ``FOLDER`` together (this folder's README says why)
BUDGET_BYTES = 60_000_000


def manifest() -> list[dict]:
    """One entry per shipped checkpoint, as ``manifest.json`` lists them."""
    return json.loads((FOLDER / "manifest.json").read_text())
