"""Energy first, then shape, both by conditional flow matching (the recipe of CaloDREAM, Favaro et al. 2024).

The energy model (``LayerEnergyMatch``) draws every layer's energy given E_inc, so E_tot and the layer energies
come from it alone. The shape model draws each layer's standardised logit voxel shares (``VoxelCoding``) given
E_inc and the layer energies: a ``LayerTransformer`` velocity over one token per layer. The shape model trains on
the true layer energies, as the energy model draws them. Both integrate their ODE with the same sampler and step
count (``path.py``).

The showers are dequantised voxel by voxel (the coding's fit decides, ``FlowMatchConfig.dequantise``): an empty
voxel, half of Par04's, is then a slab under the threshold, not one point, and the decoding's threshold cut turns
what lands there back into zeros. On cut showers the shape model must reproduce that point exactly, and at 3
CPU-hours of training it had spread it: 40 % of its hits held under 1 MeV (Geant4: 2.5 %). Of a model of cut
showers, the layer energies are dequantised per layer and empty layers are left out of the shape loss.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from caloforge.geometry import Geometry
from caloforge.models.flowmatch.config import FlowMatchConfig
from caloforge.models.flowmatch.energy import LayerEnergyMatch
from caloforge.models.flowmatch.network import LayerTransformer
from caloforge.models.flowmatch.path import Velocity, integrate, straight_path
from caloforge.models.flows import CHUNK, VoxelCoding, incident_condition, layer_condition


def layer_token_index(geometry: Geometry) -> tuple[Tensor, Tensor]:
    """Where each layer token's slots come from in a shower vector, and where each voxel sits among the tokens.

    Layers with fewer voxels than the widest (irregular geometries) are padded with slot ``n_voxels``, a zero
    appended to the shower; on a regular mesh the tokens are a plain reshape of the voxel order."""
    width = int(geometry.voxels_per_layer.max())
    index = np.full((geometry.n_layers, width), geometry.n_voxels)
    for layer, (start, stop) in enumerate(zip(geometry.layer_offsets[:-1], geometry.layer_offsets[1:])):
        index[layer, : stop - start] = np.arange(start, stop)
    flat = index.ravel()
    positions = np.flatnonzero(flat < geometry.n_voxels)
    return torch.as_tensor(index), torch.as_tensor(positions[np.argsort(flat[positions])])


class FlowMatch(nn.Module):
    """The energy model and the shape model, trained together."""

    token_index: Tensor
    voxel_positions: Tensor
    slots: Tensor

    def __init__(self, config: FlowMatchConfig, geometry: Geometry, fitted: dict):
        super().__init__()
        self.coding = VoxelCoding(geometry, fitted["voxels"])
        self.energy = LayerEnergyMatch(geometry.n_layers, fitted["layers"], config.energy_width, config.energy_depth)
        token_index, voxel_positions = layer_token_index(geometry)
        self.register_buffer("token_index", token_index, persistent=False)
        self.register_buffer("voxel_positions", voxel_positions, persistent=False)
        self.register_buffer("slots", (token_index < geometry.n_voxels).float(), persistent=False)
        self.shape = LayerTransformer(geometry.n_layers, token_index.shape[1], 1, 1, config.width, config.depth,
                                      config.heads, config.mlp_ratio)

    def to_tokens(self, y: Tensor) -> Tensor:
        """(N, voxels) -> (N, L, V) layer tokens, padded with zeros."""
        return torch.cat([y, y.new_zeros(len(y), 1)], dim=1)[:, self.token_index]

    def from_tokens(self, tokens: Tensor) -> Tensor:
        return tokens.flatten(1)[:, self.voxel_positions]

    def shape_velocity(self, energies: Tensor, layers: Tensor) -> Velocity:
        conditions = incident_condition(energies), layer_condition(layers)[..., None]
        return lambda x_t, t: self.shape(x_t, t, *conditions)

    @property
    def dequantised(self) -> bool:
        """Whether the coding was fitted on dequantised voxels (else on cut showers, with per-layer noise)."""
        return not self.coding.per_layer_noise

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """The energy model's flow-matching loss plus the shape model's over the lit layers."""
        if self.dequantised:
            voxels = self.coding.dequantise(showers)
            layers = voxel_layers = self.coding.layer_energies(voxels)
        else:
            voxels = self.coding.cut(showers)
            voxel_layers, layers = self.coding.layer_energies(voxels), self.coding.noisy_layer_energies(showers)
        x_t, t, target = straight_path(self.to_tokens(self.coding.encode(voxels, voxel_layers)))
        error = ((self.shape_velocity(energies, layers)(x_t, t) - target) ** 2 * self.slots).sum(2) / self.slots.sum(1)
        lit = (voxel_layers > 0).to(error.dtype)
        return (error * lit).sum() / lit.sum().clamp_min(1) + self.energy.loss(energies, layers)

    @torch.no_grad()
    def sample(self, energies: Tensor, generator: torch.Generator | None = None, sampler: str = "heun",
               steps: int = 8) -> Tensor:
        """(N, voxels) showers in MeV for (N,) incident energies: the layer energies, then the shapes given them,
        each by ``steps`` of ``sampler``, in chunks of ``CHUNK`` showers."""
        chunks = []
        for chunk in torch.as_tensor(energies, dtype=torch.float32).split(CHUNK):
            layers = self.energy.sample(chunk, generator, sampler, steps)
            x1 = integrate(self.shape_velocity(chunk, layers), (len(chunk), *self.token_index.shape), sampler, steps,
                           generator)
            decode = self.coding.decode if self.dequantised else self.coding.decode_cut
            chunks.append(decode(self.from_tokens(x1), layers))
        return torch.cat(chunks)
