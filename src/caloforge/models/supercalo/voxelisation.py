"""SuperCalo's coarse voxelisation: which fine voxels make up each coarse voxel, and who its neighbours are.

A coarse voxel merges ``r_factor`` radial x ``alpha_factor`` angular bins x ``layer_factor`` layers of a regular fine
geometry (choice A of the paper: 1 x 2 x 5, choice B: 3 x 4 x 1; any factors that divide the fine bins). The coarse
geometry and the fine -> coarse sum matrix come from the foundation (``coarsen``, i.e. the geometry that
``load_geometry("par04-coarse-r1a2l5")`` names, and ``Rebinning``); from that matrix this module derives index
tables, so that coarse-graining, gathering the fine voxels of every coarse voxel and scattering them back are plain
tensor indexing, batched over showers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry, Rebinning, coarsen

#: the six neighbours of a coarse voxel, in the order of the neighbour table's columns
NEIGHBOURS = ("alpha-1", "alpha+1", "r-1", "r+1", "layer-1", "layer+1")


@dataclass(frozen=True, eq=False)
class CoarseVoxelisation:
    """The coarse geometry of ``fine`` merged by (r, alpha, layer) factors, with index tables for batched use."""

    fine: Geometry
    r_factor: int
    alpha_factor: int
    layer_factor: int

    @cached_property
    def coarse(self) -> Geometry:
        return coarsen(self.fine, self.r_factor, self.alpha_factor, self.layer_factor)

    @property
    def voxel_size(self) -> int:
        """Fine voxels per coarse voxel: the dimension of the up-sampling flow."""
        return self.r_factor * self.alpha_factor * self.layer_factor

    @cached_property
    def members(self) -> np.ndarray:
        """(n_coarse, voxel_size) fine voxel indices of every coarse voxel, in fine (layer, alpha, r) order."""
        matrix = Rebinning(self.fine, self.coarse).matrix.tocsr()
        if not (np.all(np.diff(matrix.indptr) == 1) and np.allclose(matrix.data, 1.0)):
            raise CaloforgeError(f"{self.coarse.name}: every fine voxel must lie in exactly one coarse voxel")
        owner = matrix.indices
        counts = np.bincount(owner, minlength=self.coarse.n_voxels)
        if not np.all(counts == self.voxel_size):
            raise CaloforgeError(f"{self.coarse.name}: coarse voxels hold {set(counts.tolist())} fine voxels, "
                                 f"expected {self.voxel_size}")
        return np.argsort(owner, kind="stable").reshape(self.coarse.n_voxels, self.voxel_size)

    @cached_property
    def neighbours(self) -> np.ndarray:
        """(n_coarse, 6) index of each neighbour (columns as ``NEIGHBOURS``); ``n_coarse`` where there is none.

        Alpha is periodic; r and layer end at the calorimeter's edges, where the neighbour is empty (index
        ``n_coarse``, which points at an appended zero).
        """
        n_layers, n_alpha, n_r = self.coarse.shape
        layer, alpha, r = np.meshgrid(np.arange(n_layers), np.arange(n_alpha), np.arange(n_r), indexing="ij")
        outside = self.coarse.n_voxels

        def index(layer_, alpha_, r_):
            inside = (layer_ >= 0) & (layer_ < n_layers) & (r_ >= 0) & (r_ < n_r)
            flat = (layer_ * n_alpha + alpha_ % n_alpha) * n_r + r_
            return np.where(inside, flat, outside).ravel()

        return np.stack([index(layer, alpha - 1, r), index(layer, alpha + 1, r), index(layer, alpha, r - 1),
                         index(layer, alpha, r + 1), index(layer - 1, alpha, r), index(layer + 1, alpha, r)], axis=1)

    @cached_property
    def layer_groups(self) -> np.ndarray:
        """(coarse layers, layer_factor) fine layer indices summed by each coarse layer."""
        return np.asarray(self.coarse.parent_layers)

    def coarsen(self, fine: Tensor) -> Tensor:
        """(N, n_fine) -> (N, n_coarse) energies: each coarse voxel is the sum of its fine voxels."""
        return self.gather(fine).sum(-1)

    def gather(self, fine: Tensor) -> Tensor:
        """(N, n_fine) -> (N, n_coarse, voxel_size): the fine voxels of every coarse voxel."""
        return fine[:, torch.as_tensor(self.members, device=fine.device)]

    def scatter(self, grouped: Tensor) -> Tensor:
        """(N, n_coarse, voxel_size) -> (N, n_fine): the inverse of ``gather``."""
        fine = grouped.new_zeros(len(grouped), self.fine.n_voxels)
        fine[:, torch.as_tensor(self.members.ravel(), device=grouped.device)] = grouped.reshape(len(grouped), -1)
        return fine

    def fine_layer_energies(self, fine: Tensor) -> Tensor:
        """(N, n_fine) -> (N, fine layers) energies."""
        return fine.reshape(len(fine), self.fine.n_layers, -1).sum(-1)

    def coarse_layer_energies(self, coarse: Tensor) -> Tensor:
        """(N, n_coarse) -> (N, coarse layers) energies."""
        return coarse.reshape(len(coarse), self.coarse.n_layers, -1).sum(-1)
