"""What the up-sampling flow of coarse voxel i is conditioned on (the paper's list, in this order):

1. the incident energy;
2. the coarse voxel's energy E_coarse,i;
3. the energies of the fine layers its coarse layer spans;
4. the energies of its six neighbouring coarse voxels, alpha -/+ (periodic), r -/+ and layer -/+ (zero outside);
5. its coarse layer, one-hot;
6. its coarse radial bin, one-hot.

Energies enter as log(E + floor) in MeV, so that they span the six decades of a shower on one scale and an empty
voxel sits at log(floor); the model standardises them with constants fitted on training data. The one-hot codes are
kept as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from caloforge.models.supercalo.voxelisation import CoarseVoxelisation


def log_energy(energy: Tensor, floor: float) -> Tensor:
    return torch.log(energy.clamp_min(0) + floor)


def energy_conditions(voxelisation: CoarseVoxelisation, energies: Tensor, coarse: Tensor, fine_layers: Tensor,
                      shower: Tensor, voxel: Tensor, floor: float) -> Tensor:
    """Items 1-4, as logs, of the coarse voxels ``voxel`` of showers ``shower`` (both (M,) indices): (M, 2 +
    layer_factor + 6), from (N,) incident energies, (N, n_coarse) coarse and (N, fine layers) fine layer energies."""
    groups = torch.as_tensor(voxelisation.layer_groups, device=coarse.device)
    coarse_layer = torch.as_tensor(voxelisation.coarse.voxel_layer, device=coarse.device)
    neighbours = torch.as_tensor(voxelisation.neighbours, device=coarse.device)
    padded = F.pad(coarse, (0, 1))  # index n_coarse: the empty outside
    rows = shower[:, None]
    parts = [energies[rows], coarse[rows, voxel[:, None]], fine_layers[rows, groups[coarse_layer[voxel]]],
             padded[rows, neighbours[voxel]]]
    return log_energy(torch.cat(parts, dim=-1), floor)


def position_codes(voxelisation: CoarseVoxelisation) -> Tensor:
    """(n_coarse, coarse layers + coarse radial bins): items 5 and 6, one-hot."""
    geometry = voxelisation.coarse
    layer = F.one_hot(torch.as_tensor(geometry.voxel_layer), geometry.n_layers)
    radial = F.one_hot(torch.as_tensor(geometry.voxel_r), int(geometry.n_r[0]))
    return torch.cat([layer, radial], dim=1).float()
