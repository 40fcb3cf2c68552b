"""CaloDiffusion's denoising network: a conditional 3D U-Net over (layer, alpha, r) images.

Each resolution level runs two ResNet blocks and a linear attention; levels are joined by strided cylindrical
convolutions on the way down and transposed ones on the way up, with the down path's outputs concatenated into
the up path (skip connections). The conditions, the shower's (the incident energy, and with a layer-energy model
the layer variables) and the noise level, are embedded by small MLPs into one vector that every ResNet block adds
as a per-channel bias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from caloforge.models.diffusion.cylindrical import CylindricalConv3d, CylindricalConvTranspose3d


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 8 groups, or as many as divide the channels (tiny test widths)."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ConditionEmbedding(nn.Sequential):
    """Conditions (N, features) -> (N, width): Linear(features, width/2), GELU, Linear(width/2, width), GELU, Linear."""

    def __init__(self, width: int = 64, features: int = 1):
        super().__init__(nn.Linear(features, width // 2), nn.GELU(), nn.Linear(width // 2, width), nn.GELU(),
                         nn.Linear(width, width))


class ResBlock(nn.Module):
    """Two (conv, GroupNorm, SiLU) units with the condition added in between, plus a residual path."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int):
        super().__init__()
        self.conv1, self.norm1 = CylindricalConv3d(in_channels, out_channels), _norm(out_channels)
        self.cond = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, out_channels))
        self.conv2, self.norm2 = CylindricalConv3d(out_channels, out_channels), _norm(out_channels)
        self.skip = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        h = h + self.cond(cond)[:, :, None, None, None]
        h = F.silu(self.norm2(self.conv2(h)))
        return h + self.skip(x)


class LinearAttention(nn.Module):
    """One-head attention in time linear in the number of voxels (Shen et al., "Efficient Attention", 2018).

    Keys are normalised over positions and queries over features, so the (features x features) context
    ``k v^T`` replaces the (positions x positions) attention matrix: global mixing even for ds3's 40,500 voxels.
    """

    def __init__(self, channels: int, dim: int = 32):
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.qkv = nn.Conv3d(channels, 3 * dim, 1, bias=False)
        self.out = nn.Sequential(nn.Conv3d(dim, channels, 1), nn.GroupNorm(1, channels))
        self.scale = dim**-0.5

    def forward(self, x: Tensor) -> Tensor:
        n, _, *shape = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).chunk(3, dim=1)  # each (N, dim, positions)
        q = q.softmax(dim=1) * self.scale
        k = k.softmax(dim=2)
        context = torch.einsum("ndp,nep->nde", k, v)
        h = torch.einsum("nde,ndp->nep", context, q)
        return x + self.out(h.reshape(n, -1, *shape))


class Stage(nn.Module):
    """The work done at one resolution: two ResNet blocks, then (optionally) linear attention."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, attention: bool):
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels, cond_dim)
        self.block2 = ResBlock(out_channels, out_channels, cond_dim)
        self.attention = LinearAttention(out_channels) if attention else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.attention(self.block2(self.block1(x, cond), cond))


class UNet(nn.Module):
    """(N, in_channels, layer, alpha, r) image, shower condition (N,) or (N, conditions) and noise level (N,)
    -> (N, out_channels, layer, alpha, r).

    ``channels[0]`` is the width of the input convolution and ``channels[i]`` that of level ``i`` (so
    ``[16, 16, 16, 32]`` has three levels and compresses every axis 4x). Each level after the first halves every
    axis, rounding up, so any (layer, alpha, r) size works, odd ones included; the up path crops back to its
    skip's size. Going up, a level's blocks narrow to the width of the level above, whose skip they meet next.
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (16, 16, 16, 32), embed_dim: int = 64,
                 attention: bool = True, conditions: int = 1, out_channels: int = 1):
        super().__init__()
        if len(channels) < 2:
            raise ValueError("channels needs the input width and at least one level")
        cond_dim = 2 * embed_dim
        widths = list(zip(channels[:-1], channels[1:]))  # (in, out) of every level
        self.energy_embedding = ConditionEmbedding(embed_dim, conditions)
        self.noise_embedding = ConditionEmbedding(embed_dim)
        self.stem = CylindricalConv3d(in_channels, channels[0])
        self.encoder = nn.ModuleList(Stage(c_in, c, cond_dim, attention) for c_in, c in widths)
        # kernel 4, stride 2 down and up alike: a coarse voxel sits midway between the two fine ones it covers
        self.downsample = nn.ModuleList(CylindricalConv3d(c, c, 4, stride=2) for _, c in widths[:-1])
        self.middle1 = ResBlock(channels[-1], channels[-1], cond_dim)
        self.middle_attention = LinearAttention(channels[-1]) if attention else nn.Identity()
        self.middle2 = ResBlock(channels[-1], channels[-1], cond_dim)
        self.decoder = nn.ModuleList(Stage(2 * c, c_in, cond_dim, attention) for c_in, c in widths)
        self.upsample = nn.ModuleList(CylindricalConvTranspose3d(c_in, c_in) for c_in, _ in widths[1:])
        self.head = ResBlock(channels[0], channels[0], cond_dim)
        self.out = nn.Conv3d(channels[0], out_channels, 1)
        # a zero output at initialisation is the trivial prediction (eps = 0, x0 = c_skip x), whose loss is ~1; a
        # random one costs more than that, many times more through GLaM's decoder, which sums hull voxels
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, condition: Tensor, noise_level: Tensor) -> Tensor:
        shower = condition.reshape(condition.shape[0], -1)  # (N,) incident energy alone, or (N, conditions)
        cond = torch.cat([self.energy_embedding(shower), self.noise_embedding(noise_level[:, None])], dim=1)
        h = self.stem(x)
        skips = []
        for level, stage in enumerate(self.encoder):
            h = stage(h, cond)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.middle2(self.middle_attention(self.middle1(h, cond)), cond)
        for level in reversed(range(len(self.decoder))):
            h = self.decoder[level](torch.cat([h, skips[level]], dim=1), cond)
            if level > 0:
                h = self.upsample[level - 1](h, skips[level - 1].shape[2:])
        return self.out(self.head(h, cond))
