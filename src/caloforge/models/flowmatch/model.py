"""Energy first, then shape, both by conditional flow matching (the recipe of CaloDREAM, Favaro et al. 2024).

The energy model (``LayerEnergyMatch``) draws every layer's energy given E_inc, so E_tot and the layer energies
come from it alone. The shape model draws each layer's standardised logit voxel shares (``VoxelCoding``) given
E_inc and the layer energies: a ``LayerTransformer`` velocity over one token per layer. The shape model trains on
the true layer energies, as the energy model draws them. Both integrate their ODE with the same sampler and step
count (``path.py``).

A layer token holds its voxels as one standardised logit share each (``FlowMatchConfig.voxels = "shares"``, the
``VoxelCoding`` of the cut showers) or as analog bits (``"hits"``, ``hits.py``: whether each is hit, and a hit's
log share). Either way the showers are cut at the readout threshold, the layer energies dequantised per layer, and
empty layers, which carry no shape, are left out of the shape loss.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from caloforge.geometry import Geometry
from caloforge.models.flowmatch.config import FlowMatchConfig
from caloforge.models.flowmatch.energy import LayerEnergyMatch
from caloforge.models.flowmatch.hits import HitCoding
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
        # the fitted preprocessing tells which coding a checkpoint was trained with
        self.hits = HitCoding(fitted["hits"], self.slots, self.coding.threshold) if "hits" in fitted else None
        channels = 2 if self.hits is not None else 1
        self.shape = LayerTransformer(geometry.n_layers, channels * token_index.shape[1], 1, 1, config.width,
                                      config.depth, config.heads, config.mlp_ratio)

    def to_tokens(self, y: Tensor) -> Tensor:
        """(N, voxels) -> (N, L, V) layer tokens, padded with zeros."""
        return torch.cat([y, y.new_zeros(len(y), 1)], dim=1)[:, self.token_index]

    def from_tokens(self, tokens: Tensor) -> Tensor:
        return tokens.flatten(1)[:, self.voxel_positions]

    def shape_velocity(self, energies: Tensor, layers: Tensor) -> Velocity:
        conditions = incident_condition(energies), layer_condition(layers)[..., None]
        return lambda x_t, t: self.shape(x_t, t, *conditions)

    def encode(self, clean: Tensor, clean_layers: Tensor) -> Tensor:
        """Cut showers (N, voxels) and their layer energies -> the shape model's tokens."""
        if self.hits is not None:
            return self.hits.encode(self.to_tokens(clean), clean_layers)
        return self.to_tokens(self.coding.encode(clean, clean_layers))

    def decode(self, tokens: Tensor, layers: Tensor) -> Tensor:
        """The shape model's tokens and drawn (per-layer dequantised) layer energies -> showers (N, voxels) in MeV."""
        if self.hits is not None:
            return self.from_tokens(self.hits.decode(tokens, (layers - 0.5 * self.coding.threshold).clamp_min(0)))
        return self.coding.decode_cut(self.from_tokens(tokens), layers)

    def training_tokens(self, showers: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The shape model's data tokens, the layer energies it is conditioned on (dequantised per layer, as the
        energy model draws them) and which layers are lit, of a batch of showers."""
        clean = self.coding.cut(showers)
        clean_layers = self.coding.layer_energies(clean)
        return self.encode(clean, clean_layers), self.coding.noisy_layer_energies(showers), clean_layers > 0

    def shape_error(self, prediction: Tensor, target: Tensor, lit: Tensor) -> Tensor:
        """Mean squared error over the real voxel slots of the lit layers' tokens."""
        slots = self.slots.repeat(1, target.shape[2] // self.slots.shape[1])
        error = ((prediction - target) ** 2 * slots).sum(2) / slots.sum(1)
        lit = lit.to(error.dtype)
        return (error * lit).sum() / lit.sum().clamp_min(1)

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """The energy model's flow-matching loss plus the shape model's over the lit layers."""
        tokens, layers, lit = self.training_tokens(showers)
        x_t, t, target = straight_path(tokens)
        shape_loss = self.shape_error(self.shape_velocity(energies, layers)(x_t, t), target, lit)
        return shape_loss + self.energy.loss(energies, layers)

    @torch.no_grad()
    def sample(self, energies: Tensor, generator: torch.Generator | None = None, sampler: str = "heun",
               steps: int = 8) -> Tensor:
        """(N, voxels) showers in MeV for (N,) incident energies: the layer energies, then the shapes given them,
        each by ``steps`` of ``sampler``, in chunks of ``CHUNK`` showers."""
        chunks = []
        for chunk in torch.as_tensor(energies, dtype=torch.float32).split(CHUNK):
            layers = self.energy.sample(chunk, generator, sampler, steps)
            shape = (len(chunk), self.token_index.shape[0], self.shape.out.out_features)
            chunks.append(self.decode(integrate(self.shape_velocity(chunk, layers), shape, sampler, steps, generator),
                                      layers))
        return torch.cat(chunks)
