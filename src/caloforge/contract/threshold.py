"""The readout threshold: the energy under which a detector reads a voxel as empty.

One rule for every part of caloforge (training preprocessing, generation, evaluation): a built-in geometry's own
threshold (``THRESHOLDS_MEV``, the CaloChallenge's), and for a geometry derived from another (``par04-coarse``,
``par04-coarse-r1a2l5``) its parent's, since summing voxels changes the binning, not the detector's readout.
"""

from __future__ import annotations

from caloforge.data.transforms import THRESHOLDS_MEV
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry


def readout_threshold(geometry: Geometry) -> float:
    """The threshold (MeV) of ``geometry``, or of the geometry it was derived from; refused if neither is known."""
    for name in (geometry.name, geometry.parent):
        if name in THRESHOLDS_MEV:
            return THRESHOLDS_MEV[name]
    raise CaloforgeError(f"geometry {geometry.name} has no known readout threshold")
