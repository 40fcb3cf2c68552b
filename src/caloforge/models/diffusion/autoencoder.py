"""The mesh autoencoder of latent CaloDiffusion: the (layer, alpha, r) image onto a coarser mesh of C channels.

The talk's "latent space" future work (and Stable Diffusion's recipe): a U-Net pass costs in proportion to the
positions it convolves, so the diffusion runs on a mesh ``factors`` times coarser per axis (Par04's 45 x 16 x 9
onto 15 x 8 x 3: 18 times fewer positions), and a small autoencoder, trained first and then frozen, maps between
the two. Both halves are cylindrical convolutions, so the angular axis stays periodic and the latent keeps the
mesh's rotations and reflections. The decoder sees the geometry images again at full resolution: where a voxel
sits is what turns one coarse cell's C numbers into its ``prod(factors)`` voxels. Unconditioned: it compresses
preprocessed images, whatever their energy, and the diffusion model alone learns what showers look like.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from caloforge.models.diffusion.cylindrical import CylindricalConv3d


class MeshAutoencoder(nn.Module):
    """(N, 1, layer, alpha, r) images <-> (N, C, *mesh) latents, mesh = (layer, alpha, r) / factors rounded up.

    Every 3 x 3 x 3 convolution runs on the coarse mesh, and nothing wider than one channel at full resolution:
    there a convolution costs ``prod(factors)`` times more a channel, and a decoder with a 16-channel
    full-resolution stage took 2.6 ms a shower at batch 100, as much as two U-Net passes it was meant to save. So
    the encoder starts with the strided convolution, and the decoder ends with a transposed one of kernel = stride
    (each position inside a cell its own linear map of the cell's features) plus a learned bias per ring. Both
    halves see the geometry images (at the coarse mesh's resolution in the decoder): convolutions are translation
    invariant, showers are not.
    """

    images: Tensor
    coarse_images: Tensor

    def __init__(self, images: Tensor, latent_channels: int, factors: tuple[int, int, int], width: int = 32):
        super().__init__()
        shape = images.shape[1:]
        mesh = tuple(math.ceil(n / f) for n, f in zip(shape, factors))
        self.register_buffer("images", images, persistent=False)
        self.register_buffer("coarse_images", F.adaptive_avg_pool3d(images, mesh), persistent=False)
        stride = tuple(factors)
        # the strided kernel spans two coarse cells' worth of alpha (which is periodic) and exactly one of the rest
        kernel = tuple(f if i != 1 or f == 1 else 2 * f for i, f in enumerate(stride))
        n_images = len(images)
        self.encoder = nn.Sequential(
            CylindricalConv3d(1 + n_images, width, kernel, stride=stride), nn.SiLU(),
            CylindricalConv3d(width, width), nn.SiLU(),
            CylindricalConv3d(width, width), nn.SiLU(),
            CylindricalConv3d(width, latent_channels))
        self.decoder = nn.Sequential(
            CylindricalConv3d(latent_channels + n_images, width), nn.SiLU(),
            CylindricalConv3d(width, width), nn.SiLU(),
            CylindricalConv3d(width, width), nn.SiLU(),
            nn.ConvTranspose3d(width, 1, stride, stride=stride))
        # one bias a (layer, r) ring, the same at every angle: the mesh's rotations stay symmetries of the decoder
        self.ring_bias = nn.Parameter(torch.zeros(shape[0], 1, shape[2]))

    @property
    def mesh(self) -> tuple[int, ...]:
        return tuple(self.coarse_images.shape[1:])

    def encode(self, image: Tensor) -> Tensor:
        """(N, C, *mesh) latents of preprocessed ``image`` (N, 1, *shape)."""
        return self.encoder(with_images(image, self.images))

    def decode(self, latent: Tensor) -> Tensor:
        """(N, 1, *shape) images from ``latent`` (cropped to the mesh where a size was rounded up)."""
        size = self.images.shape[1:]
        out = self.decoder(with_images(latent, self.coarse_images))[..., : size[0], : size[1], : size[2]]
        return out + self.ring_bias


def with_images(h: Tensor, images: Tensor) -> Tensor:
    """``h`` (N, C, *shape) with the geometry ``images`` (channels, *shape) appended as channels (the batch
    size read as ``h.shape[0]``, a graph value for the ONNX tracer, not a constant)."""
    return torch.cat([h, images.expand(h.shape[0], -1, -1, -1, -1)], dim=1)
