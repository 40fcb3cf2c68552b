"""The published CaloChallenge results (arXiv:2410.21611), for context beside caloforge's own numbers.

The tables ship with caloforge (``published/*.csv``, provenance in ``published/SOURCE.md``). They were measured on
the official datasets, so they are context for a model on other data (Par04 is ds2-like), not a like-for-like
comparison; the report says so.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib.resources import files

#: caloforge geometry -> the results table of the matching CaloChallenge dataset
DATASET_FOR_GEOMETRY = {"ds1-photons": "ds1_photons", "ds1-pions": "ds1_pions", "ds2": "ds2", "ds3": "ds3",
                        "par04": "ds2"}
_COLUMNS = {  # our name -> CSV column (each with a " std" column beside it)
    "auc_low": "binary cls low",
    "auc_high": "binary cls high",
    "auc_cnn": "binary cls cnn",
    "fpd_x1e3": "FPD * 1e3",
    "kpd_x1e3": "KPD * 1e3",
}
CITATION = "CaloChallenge 2022 final results, arXiv:2410.21611 (CaloChallenge/homepage final_results/)"


@dataclass(frozen=True)
class PublishedRow:
    """One submission's scalar results (None where the table has no value)."""

    name: str
    values: dict[str, float | None]
    errors: dict[str, float | None]
    gpu_ms_batch100: float | None

    @property
    def is_geant4(self) -> bool:
        return self.name.upper() == "GEANT4"


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def published_results(geometry_name: str) -> tuple[str, list[PublishedRow]] | None:
    """(dataset key, rows: GEANT4 first, then by low-level AUC) for a geometry, or None if none matches."""
    dataset = DATASET_FOR_GEOMETRY.get(geometry_name)
    if dataset is None:
        return None
    text = (files("caloforge.evaluate") / "published" / f"CaloChallenge_results_{dataset}_scalars.csv").read_text()
    rows = []
    for record in csv.DictReader(text.splitlines()):
        rows.append(PublishedRow(
            name=record["submission name"],
            values={key: _number(record.get(column)) for key, column in _COLUMNS.items()},
            errors={key: _number(record.get(f"{column} std")) for key, column in _COLUMNS.items()},
            gpu_ms_batch100=_number(record.get("time GPU 100")),
        ))
    rows.sort(key=lambda r: (not r.is_geant4, r.values["auc_low"] if r.values["auc_low"] is not None else 2.0))
    return dataset, rows
