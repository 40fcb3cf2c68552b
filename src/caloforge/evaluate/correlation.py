"""SuperCalo's inter-layer correlation rho, and the separation power of its distribution.

For one shower, rho between layers n and n+1 is the cosine similarity of their fine-voxel energy vectors,

    rho = e(n) . e(n+1) / (|e(n)| |e(n+1)|),

1 when two layers share one transverse pattern (arXiv:2308.11700). High-level features sum over voxels and miss it;
a model that fills each layer independently given coarse information (SuperCalo's choice B) gets it wrong. A sample
is compared with the reference by the separation power of the rho histograms of each layer pair,

    S = 1/2 sum_bins (p - q)^2 / (p + q),

p and q normalised to unit sum: 0 for identical distributions, 1 for disjoint ones.
"""

from __future__ import annotations

import numpy as np

from caloforge.geometry import Geometry

#: rho of non-negative energies lies in [0, 1]
RHO_RANGE = (0.0, 1.0)


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


def separation_power(generated: np.ndarray, reference: np.ndarray, edges: np.ndarray) -> float:
    """S of two samples histogrammed on ``edges`` (NaN entries ignored); NaN when either has no entry."""
    p = np.histogram(generated[np.isfinite(generated)], edges)[0].astype(np.float64)
    q = np.histogram(reference[np.isfinite(reference)], edges)[0].astype(np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    both = (p + q) > 0
    return float(0.5 * np.sum((p[both] - q[both]) ** 2 / (p[both] + q[both])))


def correlation_separation(generated_rho: np.ndarray, reference_rho: np.ndarray, bins: int = 50) -> np.ndarray:
    """(layers - 1,) separation power of the rho distribution of every adjacent layer pair, on ``bins`` equal
    bins of [0, 1]; the rho arrays are ``layer_correlations`` of the two samples."""
    edges = np.linspace(*RHO_RANGE, bins + 1)
    return np.array([separation_power(generated_rho[:, k], reference_rho[:, k], edges)
                     for k in range(generated_rho.shape[1])])
