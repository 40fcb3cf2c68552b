"""CaloMan's step 1: a conditional autoencoder onto a d-dimensional manifold of shower shapes.

It reconstructs CaloFlow's voxel variables (standardised logit shares of each layer's energy), so the layer
energies, drawn by flow 1 and given to encoder and decoder as conditions, are exact by construction and the
manifold only holds how energy spreads inside the layers. The loss weighs every voxel alike (squared error of the
logit shares: which voxels are hit) and by energy (divergence of the shares: where the energy goes).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from zuko.nn import MLP


def share_divergence(target: Tensor, shares: Tensor) -> Tensor:
    """KL divergence of ``shares`` from ``target`` (both (N, voxels), summing to one per layer), summed over the
    layers and averaged over showers."""
    return (torch.xlogy(target, target) - target * shares.clamp_min(1e-12).log()).sum(1).mean()


def moment_penalty(z: Tensor) -> Tensor:
    """Squared distance of each latent dimension's batch mean from 0 and batch variance from 1, averaged."""
    variance, mean = torch.var_mean(z, dim=0)
    return (mean.square() + (variance - 1).square()).mean()


class Autoencoder(nn.Module):
    """Encoder and decoder MLPs (SiLU), both conditioned on the shower condition."""

    def __init__(self, features: int, context: int, latent: int, encoder: list[int], decoder: list[int]):
        super().__init__()
        self.encoder = MLP(features + context, latent, encoder, activation=nn.SiLU)
        self.decoder = MLP(latent + context, features, decoder, activation=nn.SiLU)

    def encode(self, y: Tensor, context: Tensor) -> Tensor:
        return self.encoder(torch.cat([y, context], dim=-1))

    def decode(self, z: Tensor, context: Tensor) -> Tensor:
        return self.decoder(torch.cat([z, context], dim=-1))
