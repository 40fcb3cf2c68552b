"""iCaloFlow's factorisation for ds2-sized showers (Buckley, Krause, Pang, Shih 2023): one layer at a time.

p(y | c) = prod_l p(y_l | c, y_{l-1}, l): a single flow over one layer's voxel variables, shared by every layer of
a regular geometry, conditioned on the shower condition, the previous layer's voxel variables (zeros before the
first layer) and the layer as a one-hot vector. Density evaluation runs all layers as one batch of N x L rows;
sampling runs the layers in order, each conditioned on the one just drawn. Wraps a MAF (teacher: ``encode``,
``log_prob``) or an IAF (student: ``decode``), and both ``sample``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from caloforge.models.flows.iaf import InverseAutoregressiveFlow
from caloforge.models.flows.made import standard_normal_log_prob
from caloforge.models.flows.maf import MaskedAutoregressiveFlow


def layer_context(condition: int, n_layers: int, voxels: int) -> int:
    """Context width of the per-layer flow."""
    return condition + voxels + n_layers


class LayerwiseFlow(nn.Module):
    """A flow over (N, n_layers * voxels) made of one per-layer flow ``inner`` over ``voxels`` features."""

    def __init__(self, inner: MaskedAutoregressiveFlow | InverseAutoregressiveFlow, n_layers: int, voxels: int):
        super().__init__()
        self.inner, self.n_layers, self.voxels = inner, n_layers, voxels
        self.features = n_layers * voxels

    def _context(self, condition: Tensor, previous: Tensor, layer: int) -> Tensor:
        one_hot = condition.new_zeros(len(condition), self.n_layers)
        one_hot[:, layer] = 1
        return torch.cat([condition, previous, one_hot], dim=-1)

    def _rows(self, y: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        """(N * L, voxels) layer rows of ``y`` and their contexts, every layer conditioned on the one before."""
        n = len(y)
        layers = y.reshape(n, self.n_layers, self.voxels)
        previous = torch.cat([layers.new_zeros(n, 1, self.voxels), layers[:, :-1]], dim=1)
        one_hot = torch.eye(self.n_layers, dtype=y.dtype, device=y.device).expand(n, -1, -1)
        context = torch.cat([condition.unsqueeze(1).expand(-1, self.n_layers, -1), previous, one_hot], dim=-1)
        return layers.reshape(-1, self.voxels), context.reshape(n * self.n_layers, -1)

    def encode(self, y: Tensor, condition: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """As ``MaskedAutoregressiveFlow.encode``, over whole showers (N, L * voxels)."""
        z, ladj, trail = self.inner.encode(*self._rows(y, condition))
        return (z.reshape(len(y), -1), ladj.reshape(len(y), -1).sum(1), [t.reshape(len(y), -1) for t in trail])

    def log_prob(self, y: Tensor, condition: Tensor) -> Tensor:
        z, ladj, _ = self.encode(y, condition)
        return standard_normal_log_prob(z) + ladj

    def decode(self, z: Tensor, condition: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """As ``InverseAutoregressiveFlow.decode``, layer after layer, each conditioned on the previous output."""
        previous, ladj, trails = z.new_zeros(len(z), self.voxels), z.new_zeros(len(z)), []
        for layer, noise in enumerate(z.split(self.voxels, dim=1)):
            previous, layer_ladj, trail = self.inner.decode(noise, self._context(condition, previous, layer))
            ladj = ladj + layer_ladj
            trails.append(trail)
        return torch.cat([t[-1] for t in trails], 1), ladj, [torch.cat(step, 1) for step in zip(*trails)]

    def sample(self, condition: Tensor, generator: torch.Generator | None = None) -> Tensor:
        previous, layers = condition.new_zeros(len(condition), self.voxels), []
        for layer in range(self.n_layers):
            previous = self.inner.sample(self._context(condition, previous, layer), generator)
            layers.append(previous)
        return torch.cat(layers, dim=1)
