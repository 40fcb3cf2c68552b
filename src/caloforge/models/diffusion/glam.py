"""GLaM, Geometry Latent Mapping (Amram & Pedro 2023): irregular layers onto a regular cylinder and back.

Cylindrical convolutions need every layer to share one (alpha, r) grid; ds1-style geometries have different radial
and angular binnings per layer. GLaM maps each layer's voxels linearly onto ``regular_hull(geometry)`` (every
radial edge, the most angular bins), the U-Net works there, and a second per-layer map brings its output back.
Both maps are learned with the diffusion model, starting from geometry: the encoder from the exact area overlap
(a single-angle layer's voxel gives 1/n_alpha to each hull angle: the angular symmetry), plus a little seeded noise
that breaks the symmetry between equal entries; the decoder from the encoder's pseudo-inverse, so that at
initialisation decoding undoes encoding exactly. The diffusion state stays the native voxel vector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from caloforge.geometry import Geometry, Rebinning, regular_hull


class GLaM(nn.Module):
    """Per-layer, bias-free linear maps between a geometry's voxel vector and its regular hull's grid."""

    def __init__(self, geometry: Geometry, noise: float = 1e-5, seed: int = 0):
        super().__init__()
        self.hull = regular_hull(geometry)
        self.slices = [geometry.layer_slice(layer) for layer in range(geometry.n_layers)]
        rebinning = Rebinning(geometry, self.hull)
        generator = torch.Generator().manual_seed(seed)
        encoders, decoders = [], []
        for layer in range(geometry.n_layers):
            overlap = torch.from_numpy(rebinning.layer_block(layer))  # (layer voxels, hull voxels of the layer)
            encoder = overlap + noise * torch.randn(overlap.shape, generator=generator, dtype=overlap.dtype)
            encoders.append(nn.Parameter(encoder.float()))
            decoders.append(nn.Parameter(torch.linalg.pinv(encoder).float()))
        self.encoders = nn.ParameterList(encoders)
        self.decoders = nn.ParameterList(decoders)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(layers, alpha, r) of the grid the encoder maps onto."""
        return self.hull.shape

    def encode(self, x: Tensor) -> Tensor:
        """(N, voxels) -> (N, layers, alpha, r)."""
        layers = [x[:, s] @ w for s, w in zip(self.slices, self.encoders)]
        return torch.stack(layers, dim=1).reshape(x.shape[0], *self.shape)  # shape[0]: see CaloDiffusion.network

    def decode(self, grid: Tensor) -> Tensor:
        """(N, layers, alpha, r) -> (N, voxels)."""
        layers = grid.flatten(2)
        return torch.cat([layers[:, i] @ w for i, w in enumerate(self.decoders)], dim=1)
