"""Voxel order of Geant4's Par04 example: (r, phi, z), the transpose of caloforge's (layer, alpha, r).

Par04 numbers a voxel ``r * (n_phi * n_z) + phi * n_z + z``; caloforge ``layer * (n_alpha * n_r) + alpha * n_r + r``.
Only regular geometries (one (alpha, r) grid for every layer) have a Par04 order.
"""

from __future__ import annotations

import torch
from torch import Tensor

from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry


def par04_index(geometry: Geometry) -> Tensor:
    """(voxels,) long: entry p is the caloforge index of the voxel at Par04 position p (``showers[:, index]``)."""
    if not geometry.is_regular:
        raise CaloforgeError(f"{geometry.name} is irregular: the Par04 (r, phi, z) order needs a regular geometry")
    return torch.arange(geometry.n_voxels).reshape(geometry.shape).permute(2, 1, 0).flatten()
