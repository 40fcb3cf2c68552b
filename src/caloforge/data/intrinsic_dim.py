"""The Levina-Bickel estimate of the intrinsic dimension of showers (Levina & Bickel, NIPS 2004).

With T_j(x) the distance from x to its j-th nearest neighbour, the maximum-likelihood estimate over n points and
k neighbours is

    d_k = [ 1 / (n (k - 1)) * sum_i sum_{j < k} log(T_k(x_i) / T_j(x_i)) ]^-1,

CaloMan's choice of its latent dimension. Showers can be taken raw (MeV), scaled as E_vox / (f E_inc) with
f = 3.1, or scaled then logged (log(E' + 1e-6)), the three columns of the CaloMan talk's table. Points with an
exact duplicate (T_1 = 0) have no finite log ratio and are left out.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from caloforge.errors import CaloforgeError

PREPROCESSING = ("none", "scaled", "log")
#: f in E_vox / (f E_inc) (CaloScore's preprocessing, as in the CaloMan talk)
SCALE_FACTOR = 3.1
#: offset inside the log, so that empty voxels stay finite
LOG_OFFSET = 1e-6


def preprocess(showers: np.ndarray, energies: np.ndarray, mode: str) -> np.ndarray:
    """(N, voxels) MeV -> the representation whose dimension is estimated."""
    if mode not in PREPROCESSING:
        raise CaloforgeError(f"preprocessing '{mode}': use one of {', '.join(PREPROCESSING)}")
    if mode == "none":
        return showers
    scaled = showers / (SCALE_FACTOR * energies[:, None])
    return scaled if mode == "scaled" else np.log(scaled + LOG_OFFSET)


def levina_bickel(points: np.ndarray, k: int = 20) -> float:
    """The estimated dimension of the manifold the (n, D) ``points`` lie on, from their k nearest neighbours."""
    if k < 2 or len(points) <= k:
        raise CaloforgeError(f"intrinsic dimension: need k >= 2 and more than k points (k={k}, n={len(points)})")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    distances = distances[:, 1:]  # the first neighbour of a point is itself
    distances = distances[distances[:, 0] > 0]
    if not len(distances):
        raise CaloforgeError("intrinsic dimension: every point has an exact duplicate")
    return float(1 / np.log(distances[:, -1:] / distances[:, :-1]).mean())
