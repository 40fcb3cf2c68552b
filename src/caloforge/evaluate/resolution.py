"""How much a classifier can resolve at the sample size of a run, and whether its AUC may be read as quality.

Beside a model's AUC, ``evaluate`` trains the same classifier, on as many showers, twice more: Geant4 against
Geant4 (the *floor*: what noise and a finite training give when there is nothing to find) and every voxel x 1.05
against Geant4 (a small, known distortion). A classifier *resolves* when the distortion's AUC stands clearly above
the floor's; only then does its AUC for a model say anything about the model's quality. An AUC below the floor's
uncertainty band is noise, not quality, and is not shown as such either.
"""

from __future__ import annotations

import math

#: the known distortion: every (thresholded) Geant4 voxel times this factor, i.e. a 5 % energy-scale error
DISTORTION = 1.05
#: resolving means: distorted AUC above the floor by at least this much ...
MIN_GAP = 0.05
#: ... and by more than this many combined standard errors
MIN_SIGMAS = 2.0


def resolves(entry: dict) -> bool:
    """Whether a classifier entry (``auc``, ``floor_auc``, ``distorted_auc`` and their ``*_err``) resolves x 1.05."""
    if entry.get("floor_auc") is None or entry.get("distorted_auc") is None:
        return False
    gap = entry["distorted_auc"] - entry["floor_auc"]
    sigma = math.hypot(entry.get("floor_auc_err") or 0.0, entry.get("distorted_auc_err") or 0.0)
    return gap >= MIN_GAP and gap > MIN_SIGMAS * sigma


def verdict(entry: dict) -> str:
    """What a classifier's AUC may be read as: "quality", "unresolved" (no claim) or "below-floor" (noise)."""
    if not entry.get("resolves", resolves(entry)):
        return "unresolved"
    if entry["auc"] < entry["floor_auc"] - MIN_SIGMAS * (entry.get("floor_auc_err") or 0.0):
        return "below-floor"
    return "quality"


def quality_auc(entry: dict | None) -> float | None:
    """The AUC when it may be shown as a quality figure, else None."""
    return entry["auc"] if entry is not None and verdict(entry) == "quality" else None
