"""CaloDiffusion's layer-energy model: every layer's energy first, then the voxels given them.

The talk names the global properties (E_tot / E_inc, the layer energies) as the diffusion model's weak point: a
sum over hundreds of voxels accumulates each voxel's small error. CaloDiffusion's later versions and CaloDREAM
split the work: a small conditional model samples the layer energies, the shower model is conditioned on them and
its output is rescaled to them, so the global properties are exactly those of the small model. Here the small
model is CaloFlow's flow 1 (``LayerEnergyFlow``, a MAF-RQS over the layer-fraction variables), trained jointly
with the diffusion model by likelihood; the U-Net sees its standardised logit variables, which are O(1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from caloforge.contract import readout_threshold
from caloforge.geometry import Geometry
from caloforge.models.flows import LayerEnergyFlow, cut, dequantise, fit_layer_energy, layer_sums


def fit_layer_model(geometry: Geometry, energies: Tensor, showers: Tensor, seed: int = 0) -> dict:
    """Flow 1's fitted u variables, from the layer energies of dequantised training showers (no layer empty)."""
    noisy = dequantise(showers, readout_threshold(geometry), torch.Generator().manual_seed(seed))
    voxel_layer = torch.as_tensor(geometry.voxel_layer, dtype=torch.long)
    return fit_layer_energy(layer_sums(noisy, voxel_layer, geometry.n_layers), energies)


class LayerEnergyModel(nn.Module):
    """p(layer energies | E_inc), the condition it gives the U-Net, and the rescaling of showers to it."""

    voxel_layer: Tensor

    def __init__(self, geometry: Geometry, fitted: dict, transforms: int, hidden: list[int], bins: int = 8):
        super().__init__()
        self.n_layers = geometry.n_layers
        self.threshold = readout_threshold(geometry)
        self.flow = LayerEnergyFlow(geometry.n_layers, fitted, transforms, hidden, bins)
        self.register_buffer("voxel_layer", torch.as_tensor(geometry.voxel_layer, dtype=torch.long), persistent=False)

    def layer_energies(self, showers: Tensor) -> Tensor:
        """(N, L) layer energies of training showers, dequantised as flow 1 was fitted."""
        return layer_sums(dequantise(showers, self.threshold), self.voxel_layer, self.n_layers)

    def condition(self, energies: Tensor, layers: Tensor) -> Tensor:
        """(N, L) the U-Net's extra conditions: the standardised logit layer-fraction variables."""
        return self.flow.encode(self.flow.to_u(layers, energies))

    def loss(self, energies: Tensor, layers: Tensor) -> Tensor:
        """Flow 1's negative log-likelihood per layer."""
        return -self.flow.log_prob(energies, layers).mean() / self.n_layers

    def sample(self, energies: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.flow.sample(energies, generator)

    def rescale(self, showers: Tensor, layers: Tensor) -> Tensor:
        """Each layer of ``showers`` scaled to the energy in ``layers`` (an empty generated layer stays empty),
        then cut at the readout threshold again."""
        sums = layer_sums(showers, self.voxel_layer, self.n_layers)
        factor = torch.where(sums > 0, layers / sums.clamp_min(torch.finfo(sums.dtype).tiny), torch.ones_like(sums))
        return cut(showers * factor[:, self.voxel_layer], self.threshold)
