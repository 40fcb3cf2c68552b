"""Patches of the (layer, alpha, r) mesh as channels: the U-Net convolves a coarser mesh, losing nothing.

A U-Net pass costs in proportion to the positions it convolves (56 ms a shower at Par04's 45 x 16 x 9 on this
CPU). Cutting the mesh into patches of (3, 2, 3) voxels and stacking each patch's 18 voxels as the channels of one
position ("space-to-depth", as simple diffusion does for large images; Hoogeboom et al. 2023) leaves a 15 x 8 x 3
mesh, 18 times fewer positions, and the map is a permutation: the diffusion still runs on every voxel, where a
latent autoencoder's reconstructions would bound what it can reach. A patch spans whole cells along alpha, so
rotating a shower by one patch rotates the patched image by one position: the cylinder's symmetry survives.
"""

from __future__ import annotations

from torch import Tensor


def to_patches(image: Tensor, patch: tuple[int, int, int]) -> Tensor:
    """(N, C, L, A, R) -> (N, C * prod(patch), L / p_l, A / p_a, R / p_r); every axis must divide. (The batch axis
    stays -1 in every reshape, so that an ONNX graph keeps it dynamic.)"""
    channels, (pl, pa, pr) = image.shape[1], patch
    layers, alphas, radii = (int(size) // p for size, p in zip(image.shape[2:], patch))
    split = image.reshape(-1, channels, layers, pl, alphas, pa, radii, pr)
    return split.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(-1, channels * pl * pa * pr, layers, alphas, radii)


def from_patches(patched: Tensor, patch: tuple[int, int, int]) -> Tensor:
    """The inverse of ``to_patches``: (N, C * prod(patch), *mesh) -> (N, C, *(mesh * patch))."""
    pl, pa, pr = patch
    channels = int(patched.shape[1]) // (pl * pa * pr)
    layers, alphas, radii = (int(size) for size in patched.shape[2:])
    split = patched.reshape(-1, channels, pl, pa, pr, layers, alphas, radii)
    return split.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(-1, channels, layers * pl, alphas * pa, radii * pr)
