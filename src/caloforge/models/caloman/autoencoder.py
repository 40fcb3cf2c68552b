"""CaloMan's step 1: a conditional autoencoder onto a d-dimensional manifold of shower shapes.

It reconstructs CaloFlow's voxel variables (standardised logit shares of each layer's energy), so the layer
energies, drawn by flow 1 and given to encoder and decoder as conditions, are exact by construction and the
manifold only holds how energy spreads inside the layers. The loss weighs every voxel alike (squared error of the
logit shares: which voxels are hit), by energy (divergence of the shares: where the energy goes) and by shape (the
squared error of each layer's centre and width: the sector-to-sector fluctuations that move a shower's centre
carry little share divergence, and an autoencoder fitted without this term shrinks them towards the mean).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from zuko.nn import MLP

from caloforge.models.flows import layer_sums


def share_divergence(target: Tensor, shares: Tensor) -> Tensor:
    """KL divergence of ``shares`` from ``target`` (both (N, voxels), summing to one per layer), summed over the
    layers and averaged over showers."""
    return (torch.xlogy(target, target) - target * shares.clamp_min(1e-12).log()).sum(1).mean()


def layer_moments(shares: Tensor, positions: Tensor, voxel_layer: Tensor, n_layers: int) -> Tensor:
    """(N, n_layers, 4): each layer's energy-weighted centre and width in eta and phi (mm), from voxel ``shares``
    (summing to one in every non-empty layer) and the voxels' (eta, phi) ``positions`` (voxels, 2)."""
    first = torch.stack([layer_sums(shares * x, voxel_layer, n_layers) for x in positions.T], dim=-1)
    second = torch.stack([layer_sums(shares * x * x, voxel_layer, n_layers) for x in positions.T], dim=-1)
    width = (second - first.square()).clamp_min(1e-6).sqrt()
    return torch.cat([first, width], dim=-1)


def population_widths(moments: Tensor, shares: Tensor, voxel_layer: Tensor, n_layers: int) -> Tensor:
    """``layer_moments`` of a shower with each width widened to the spread its hits were drawn from.

    A layer's energy-weighted variance over few hits underestimates the variance of the distribution they came
    from by the factor 1 - sum w^2 (w: the hits' shares of the layer; 1 / sum w^2 is the effective number of hits).
    The decoder's shares are that distribution, and sampling hits from them shrinks their widths by the same
    factor again, so they are fitted to the unshrunk widths.
    """
    return widened(moments, layer_sums(shares.square(), voxel_layer, n_layers))


def widened(moments: Tensor, square_sums: Tensor) -> Tensor:
    """``moments`` with each width divided by sqrt(1 - ``square_sums``) ((N, n_layers): each layer's sum w^2). A
    layer of one effective hit (factor under 0.05) keeps its measured width: its spread cannot be estimated."""
    kept = 1 - square_sums
    factor = torch.where(kept > 0.05, kept, torch.ones_like(kept)).rsqrt().unsqueeze(-1)
    centres, widths = moments.chunk(2, dim=-1)
    return torch.cat([centres, widths * factor], dim=-1)


def drawn_square_sums(shares: Tensor, probabilities: Tensor, threshold_shares: Tensor, hit_shape: int | None,
                      voxel_layer: Tensor, n_layers: int) -> Tensor:
    """(N, n_layers) the expected sum w^2 of the hits that sampling draws from a decoder's ``shares`` and hit
    ``probabilities`` (``VoxelCoding.decode_cut``): a hit holds m = share / p, or with ``hit_shape`` k the threshold
    t (``threshold_shares``, in shares of its layer) plus a gamma excess of shape k and mean m - t, whose second
    moment is m^2 + (m - t)^2 / k. With Q = sum p E[e^2] and the expected hits summing to one, E[sum w^2] is
    Q / E[(sum e)^2] to second order, E[(sum e)^2] = 1 + Q - sum share^2 (0-15 % above a direct draw in the cases
    tried, sum w^2 from 0.04 to 0.24; the first-order Q alone overshoots by up to 36 %).

    Geant4's own sum w^2 says how much its measured widths are narrowed; this one how much the drawn hits narrow
    the decoder's shares. Exponential energies scatter the hits' weights, so they narrow more than Geant4's hits:
    fitted to Geant4's factor, the drawn showers came out 0.12 standard deviations too narrow in every layer."""
    p = probabilities.clamp_min(1e-3)
    m = shares / p
    second = m.square() if hit_shape is None else m.square() + (m - threshold_shares).square() / hit_shape
    q = layer_sums(p * second, voxel_layer, n_layers)
    return q / (1 + q - layer_sums(shares.square(), voxel_layer, n_layers))


def moment_penalty(z: Tensor) -> Tensor:
    """Squared distance of each latent dimension's batch mean from 0 and batch variance from 1, averaged."""
    variance, mean = torch.var_mean(z, dim=0)
    return (mean.square() + (variance - 1).square()).mean()


class Autoencoder(nn.Module):
    """Encoder and decoder MLPs (SiLU), both conditioned on the shower condition; with ``hits`` the decoder also
    gives every voxel's logit of being hit (above the readout threshold)."""

    def __init__(self, features: int, context: int, latent: int, encoder: list[int], decoder: list[int],
                 hits: bool = False):
        super().__init__()
        self.features, self.hits = features, hits
        self.encoder = MLP(features + context, latent, encoder, activation=nn.SiLU)
        self.decoder = MLP(latent + context, features * (2 if hits else 1), decoder, activation=nn.SiLU)

    def encode(self, y: Tensor, context: Tensor) -> Tensor:
        return self.encoder(torch.cat([y, context], dim=-1))

    def decode(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor | None]:
        """(the voxel variables, the hit logits or None)."""
        out = self.decoder(torch.cat([z, context], dim=-1))
        return out[..., :self.features], (out[..., self.features:] if self.hits else None)
