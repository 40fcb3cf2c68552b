"""Energy first, then shape by conditional flow matching (the recipe of CaloDREAM, Favaro et al. 2024).

Flow 1 (CaloFlow's MAF-RQS over the layer-fraction variables) draws every layer's energy given E_inc, so E_tot and
the layer energies come from it alone. The shape model draws each layer's standardised logit voxel shares
(``VoxelCoding`` of the showers cut at the readout threshold) given E_inc and the layer energies: a velocity field
``LayerTransformer`` trained by conditional flow matching on the straight path x_t = (1 - t) noise + t x_1, whose
target velocity is x_1 - noise (rectified flow). It trains on the true layer energies; empty layers carry no
shape and are left out of the loss.

Sampling integrates the ODE with caloforge's diffusion samplers: on the straight path, x = x_t / t equals
x_1 + sigma noise with sigma = (1 - t) / t, the "variance exploding" view the samplers work in, and the denoiser
is x_1 = x_t + (1 - t) v. Euler (``ddim``), Heun and DPM-Solver++(2M) are then the usual ODE solvers of the flow.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from caloforge.geometry import Geometry
from caloforge.models.flowmatch.config import FlowMatchConfig
from caloforge.models.flowmatch.network import LayerTransformer
from caloforge.models.flows import (CHUNK, LayerEnergyFlow, VoxelCoding, incident_condition, layer_condition,
                                    layer_sums)
from caloforge.sampling.samplers import get_sampler

#: flow time where sampling starts (sigma = 999): the noise itself, to a thousandth
T_START = 1e-3


def flow_sigmas(steps: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The samplers' noise levels for ``steps`` equal steps in flow time from ``T_START`` to 1 (sigma 0)."""
    t = torch.linspace(T_START, 1, steps + 1, dtype=torch.float64)
    return ((1 - t) / t).to(dtype)


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
    """Flow 1 and the layer transformer, trained together."""

    token_index: Tensor
    voxel_positions: Tensor
    slots: Tensor

    def __init__(self, config: FlowMatchConfig, geometry: Geometry, fitted: dict):
        super().__init__()
        self.coding = VoxelCoding(geometry, fitted["voxels"])
        self.layer_flow = LayerEnergyFlow(geometry.n_layers, fitted["layers"], config.layer_transforms,
                                          config.layer_hidden)
        token_index, voxel_positions = layer_token_index(geometry)
        self.register_buffer("token_index", token_index, persistent=False)
        self.register_buffer("voxel_positions", voxel_positions, persistent=False)
        self.register_buffer("slots", (token_index < geometry.n_voxels).float(), persistent=False)
        self.velocity = LayerTransformer(geometry.n_layers, token_index.shape[1], 1, 1, config.width, config.depth,
                                         config.heads, config.mlp_ratio)

    def to_tokens(self, y: Tensor) -> Tensor:
        """(N, voxels) -> (N, L, V) layer tokens, padded with zeros."""
        return torch.cat([y, y.new_zeros(len(y), 1)], dim=1)[:, self.token_index]

    def from_tokens(self, tokens: Tensor) -> Tensor:
        return tokens.flatten(1)[:, self.voxel_positions]

    def conditions(self, energies: Tensor, layers: Tensor) -> tuple[Tensor, Tensor]:
        return incident_condition(energies), layer_condition(layers)[..., None]

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """Flow 1's negative log-likelihood per layer plus the flow-matching loss of the lit layers' shapes."""
        clean = self.coding.cut(showers)
        clean_layers = self.coding.layer_energies(clean)
        layers = self.coding.noisy_layer_energies(showers)
        x1 = self.to_tokens(self.coding.encode(clean, clean_layers))
        noise = torch.randn_like(x1)
        t = torch.rand(len(x1), device=x1.device, dtype=x1.dtype)
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * x1
        velocity = self.velocity(x_t, t, *self.conditions(energies, layers))
        lit = (clean_layers > 0).to(x1.dtype)
        error = ((velocity - (x1 - noise)) ** 2 * self.slots).sum(dim=2) / self.slots.sum(dim=1)
        shape_loss = (error * lit).sum() / lit.sum().clamp_min(1)
        return shape_loss - self.layer_flow.log_prob(energies, layers).mean() / len(clean_layers[0])

    def denoiser(self, energies: Tensor, layers: Tensor):
        """D(x, sigma) -> x_1 in the samplers' variable x = x_t / t."""
        conditions = self.conditions(energies, layers)

        def denoise(x: Tensor, sigma: Tensor) -> Tensor:
            t = 1 / (1 + sigma)
            x_t = x * t
            return x_t + (1 - t) * self.velocity(x_t, t.expand(len(x)), *conditions)
        return denoise

    @torch.no_grad()
    def sample(self, energies: Tensor, generator: torch.Generator | None = None, sampler: str = "heun",
               steps: int = 8) -> Tensor:
        """(N, voxels) showers in MeV for (N,) incident energies: layer energies from flow 1, then each shape by
        ``steps`` of ``sampler`` over the flow's ODE, in chunks of ``CHUNK`` showers."""
        run = get_sampler(sampler)
        sigmas = flow_sigmas(steps)
        chunks = []
        for chunk in torch.as_tensor(energies, dtype=torch.float32).split(CHUNK):
            layers = self.layer_flow.sample(chunk, generator)
            shape = (len(chunk), *self.token_index.shape)
            x = sigmas[0] * torch.randn(shape, generator=generator, device=chunk.device)
            x1 = run(self.denoiser(chunk, layers), x, sigmas, generator=generator)
            chunks.append(self.coding.decode_cut(self.from_tokens(x1), layers))
        return torch.cat(chunks)
