"""What the flows are conditioned on: incident and layer energies on log scales (CaloFlow's choices).

Both are O(1) over the energies met in practice, so no fitting is needed: the incident energy as
log10(E_inc / 33.3 GeV) and each layer energy as log10((E_layer + 1 keV) / 100 GeV), the keV keeping empty layers
finite.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: incident energy (MeV) at which the condition is zero
INCIDENT_REFERENCE_MEV = 33_300.0
#: layer energy (MeV) at which a layer's condition is zero, and the offset that keeps empty layers finite
LAYER_REFERENCE_MEV = 100_000.0
LAYER_OFFSET_MEV = 1e-3


def incident_condition(energies: Tensor) -> Tensor:
    """(N,) incident energies in MeV -> (N, 1)."""
    return torch.log10(energies / INCIDENT_REFERENCE_MEV).unsqueeze(-1)


def layer_condition(layers: Tensor) -> Tensor:
    """(N, L) layer energies in MeV -> (N, L)."""
    return torch.log10((layers + LAYER_OFFSET_MEV) / LAYER_REFERENCE_MEV)


def shower_condition(energies: Tensor, layers: Tensor) -> Tensor:
    """(N, 1 + L): the condition of everything below flow 1 (voxel flows, CaloMan's decoder and latent flow)."""
    return torch.cat([incident_condition(energies), layer_condition(layers)], dim=-1)
