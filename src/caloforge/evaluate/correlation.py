"""SuperCalo's inter-layer correlation rho, and the separation power of its distribution.

For one shower, rho between layers n and n+1 is the cosine similarity of their fine-voxel energy vectors,

    rho = e(n) . e(n+1) / (|e(n)| |e(n+1)|),

1 when two layers share one transverse pattern (arXiv:2308.11700). High-level features sum over voxels and miss it;
a model that fills each layer independently given coarse information (SuperCalo's choice B) gets it wrong.
``caloforge evaluate`` histograms rho of each layer pair on ``RHO_BINS`` equal bins of [0, 1] and scores it by
the separation power, as every other feature.
"""

from __future__ import annotations

import numpy as np

from caloforge.geometry import Geometry

#: rho of non-negative energies lies in [0, 1]
RHO_RANGE = (0.0, 1.0)
RHO_BINS = 50


def layer_correlations(showers: np.ndarray, geometry: Geometry, threshold: float = 0.0) -> np.ndarray:
    """(N, voxels) -> (N, layers - 1) rho of every adjacent layer pair; NaN where either layer is empty.

    Voxels below ``threshold`` (MeV, the readout threshold) are zeroed first. Needs a regular geometry (every
    layer has the same voxels). Works on any block of showers: call it chunk by chunk for large files.
    """
    layers = geometry.to_regular(np.asarray(showers, dtype=np.float64)).reshape(len(showers), geometry.n_layers, -1)
    layers = np.where(layers < threshold, 0.0, layers)
    dot = np.einsum("nlv,nlv->nl", layers[:, :-1], layers[:, 1:])
    norm = np.linalg.norm(layers, axis=-1)
    denominator = norm[:, :-1] * norm[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denominator > 0, dot / denominator, np.nan)
    return np.clip(rho, *RHO_RANGE)  # rounding can put identical layers a hair above 1; NaN stays NaN
