"""Overlap between the voxels of two geometries, and the one rebinning built on it.

A voxel is an annular sector ``[r0, r1) x [a0, a1)``. In polar coordinates the area of the intersection of two
sectors factorises: ``(min(r1)^2 - max(r0)^2) / 2 * (min(a1) - max(a0))``, so the overlap is exact. The matrix
``M[i, j] = area(src_i & dst_j) / area(src_i)`` moves extensive quantities (energies) from ``src`` to ``dst`` by
``E_dst = E_src @ M``: it sums whole voxels when ``dst`` is coarser (SuperCalo's coarse voxels, Par04 -> coarse),
regrids nested binnings exactly, and splits by area when ``dst`` is finer (GLaM's initial embedding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from caloforge.errors import CaloforgeError
from caloforge.geometry.binning import Geometry


def resolve_layer_map(src: Geometry, dst: Geometry, layer_map: Sequence[int] | None = None) -> np.ndarray:
    """For every ``src`` layer, the ``dst`` layer that receives it (-1: dropped).

    Without an explicit map: ``dst.parent_layers`` when ``dst`` groups the layers of ``src``, else one-to-one
    when both have as many layers.
    """
    if layer_map is not None:
        result = np.asarray(layer_map, dtype=int)
        if len(result) != src.n_layers or result.max() >= dst.n_layers or result.min() < -1 or result.max() < 0:
            raise CaloforgeError(f"layer map {list(result)} does not fit {src.name} -> {dst.name}")
        return result
    if dst.parent_layers is not None and sorted(sum(dst.parent_layers, ())) == list(range(src.n_layers)):
        result = np.empty(src.n_layers, dtype=int)
        for target, group in enumerate(dst.parent_layers):
            result[list(group)] = target
        return result
    if src.n_layers == dst.n_layers:
        return np.arange(src.n_layers)
    raise CaloforgeError(
        f"cannot match the {src.n_layers} layers of {src.name} to the {dst.n_layers} of {dst.name}: give a layer map"
    )


def _sector_overlap(src_r, src_a, dst_r, dst_a) -> np.ndarray:
    """(n_src, n_dst) intersection areas of annular sectors given as (n, 2) r and alpha ranges."""
    r_low = np.maximum(src_r[:, None, 0], dst_r[None, :, 0])
    r_high = np.minimum(src_r[:, None, 1], dst_r[None, :, 1])
    a_low = np.maximum(src_a[:, None, 0], dst_a[None, :, 0])
    a_high = np.minimum(src_a[:, None, 1], dst_a[None, :, 1])
    radial = np.clip(r_high, 0, None) ** 2 - np.clip(r_low, 0, None) ** 2
    return 0.5 * np.where(r_high > r_low, radial, 0.0) * np.clip(a_high - a_low, 0, None)


def overlap_matrix(src: Geometry, dst: Geometry, layer_map: Sequence[int] | None = None) -> sp.csr_matrix:
    """Sparse (src voxels, dst voxels) matrix of the fraction of each source voxel's area inside each target voxel."""
    targets = resolve_layer_map(src, dst, layer_map)
    rows, cols, values = [], [], []
    for layer, target in enumerate(targets):
        if target < 0:
            continue
        s, d = src.layer_slice(layer), dst.layer_slice(int(target))
        area = _sector_overlap(src.voxel_r_edges[s], src.voxel_alpha_edges[s], dst.voxel_r_edges[d], dst.voxel_alpha_edges[d])
        fraction = area / src.voxel_area[s][:, None]
        i, j = np.nonzero(fraction > 1e-12)
        rows.append(i + s.start)
        cols.append(j + d.start)
        values.append(fraction[i, j])
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(src.n_voxels, dst.n_voxels)
    )


@dataclass(frozen=True, eq=False)
class Rebinning:
    """Moves voxel energies from one geometry to another through their overlap matrix."""

    src: Geometry
    dst: Geometry
    layer_map: tuple[int, ...] | None = None

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        return overlap_matrix(self.src, self.dst, self.layer_map)

    @property
    def conserves_energy(self) -> bool:
        """True when every source voxel lies wholly inside the target geometry."""
        return bool(np.allclose(np.asarray(self.matrix.sum(axis=1)).ravel(), 1.0, atol=1e-9))

    def __call__(self, showers: np.ndarray) -> np.ndarray:
        """(N, src voxels) -> (N, dst voxels), in the input's float type."""
        out = (self.matrix.T @ np.asarray(showers, dtype=np.float64).T).T
        return np.asarray(out, dtype=showers.dtype)

    def layer_block(self, src_layer: int) -> np.ndarray:
        """Dense (src voxels of the layer, dst voxels of its target layer) block: GLaM's per-layer initial map."""
        target = int(resolve_layer_map(self.src, self.dst, self.layer_map)[src_layer])
        return self.matrix[self.src.layer_slice(src_layer), self.dst.layer_slice(target)].toarray()


def coarsen(geometry: Geometry, r_factor: int = 1, alpha_factor: int = 1, layer_factor: int = 1) -> Geometry:
    """Merge ``r_factor`` radial x ``alpha_factor`` angular bins x ``layer_factor`` layers of a regular geometry.

    SuperCalo's choice A is ``coarsen(g, 1, 2, 5)``, choice B ``coarsen(g, 3, 4, 1)``.
    """
    n_layers, n_alpha, n_r = geometry.shape
    for factor, size, what in ((r_factor, n_r, "radial"), (alpha_factor, n_alpha, "angular"), (layer_factor, n_layers, "layer")):
        if factor < 1 or size % factor:
            raise CaloforgeError(f"{what} factor {factor} does not divide the {size} {what} bins of {geometry.name}")
    edges = geometry.r_edges[0][::r_factor]
    groups = tuple(tuple(range(i, i + layer_factor)) for i in range(0, n_layers, layer_factor))
    return Geometry(
        name=f"{geometry.name}-coarse-r{r_factor}a{alpha_factor}l{layer_factor}",
        layer_ids=tuple(range(len(groups))),
        r_edges=(edges,) * len(groups),
        n_alpha=(n_alpha // alpha_factor,) * len(groups),
        particle=geometry.particle,
        parent=geometry.name,
        parent_layers=groups,
    )
