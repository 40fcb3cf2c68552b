"""Convolutions on a (layer, alpha, r) cylinder: periodic in alpha, zero-padded in layer and r.

Images have the layout (N, C, layer, alpha, r). The angular axis closes on itself, so a kernel at alpha bin 0 must
see bin n-1 as its neighbour: both convolutions pad alpha periodically (Amram & Pedro's cylindrical convolutions)
and pad the open axes, layer and r, with zeros. Sizes need not be even: the strided convolution pads so that every
axis of size n comes out as ceil(n / stride), and the transposed one returns exactly stride * n, which the U-Net
crops back to the size of its skip connection.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ALPHA = -2  # the angular axis of an (N, C, layer, alpha, r) image


def circular_pad(x: Tensor, before: int, after: int) -> Tensor:
    """Pad the alpha axis periodically; unlike ``F.pad(mode="circular")`` it may wrap more than once (alpha = 1)."""
    if before == after == 0:
        return x
    n = x.shape[ALPHA]
    if max(before, after) > n:
        index = torch.arange(-before, n + after, device=x.device) % n
        return x.index_select(ALPHA, index)
    # slices and one concatenation: several times faster than the gather on CPU
    return torch.cat([x.narrow(ALPHA, n - before, before), x, x.narrow(ALPHA, 0, after)], dim=ALPHA)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding that gives ceil(size / stride) outputs, centred like TensorFlow's "SAME"."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class CylindricalConv3d(nn.Conv3d):
    """Conv3d with periodic alpha padding and zero layer/r padding; output size ceil(input / stride) per axis."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int, int] = 3,
                 stride: int | tuple[int, int, int] = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        pl, pa, pr = (same_padding(n, k, s) for n, k, s in zip(x.shape[2:], self.kernel_size, self.stride))
        x = circular_pad(x, *pa)
        if pl[0] == pl[1] and pr[0] == pr[1]:
            # symmetric zero padding is done inside the convolution, saving a copy of the activations
            return F.conv3d(x, self.weight, self.bias, self.stride, padding=(pl[0], 0, pr[0]))
        return F.conv3d(F.pad(x, (*pr, 0, 0, *pl)), self.weight, self.bias, self.stride)


class CylindricalConvTranspose3d(nn.ConvTranspose3d):
    """Transposed convolution that multiplies every axis by ``stride`` exactly, periodic in alpha.

    The input is padded periodically by ``c`` alpha bins on each side, so that outputs at the alpha seam receive
    contributions from both ends, and the convolution then crops ``c * stride + (kernel - stride) / 2`` outputs from
    each side of alpha (and ``(kernel - stride) / 2`` of layer and r): what remains is stride * n bins.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2):
        if (kernel_size - stride) % 2:
            raise ValueError("kernel_size - stride must be even for an exact stride * n output")
        overlap = (kernel_size - stride) // 2
        self.wrap = math.ceil(overlap / stride)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=(overlap, self.wrap * stride + overlap, overlap))

    def forward(self, x: Tensor, size: tuple[int, int, int]) -> Tensor:
        """Upsample, then crop to ``size`` (layer, alpha, r): the size before the matching downsampling."""
        y = super().forward(circular_pad(x, self.wrap, self.wrap))
        return y[..., : size[0], : size[1], : size[2]]
