"""The velocity network: a transformer over a shower's layers, one token per layer.

Every layer's voxels (its standardised logit shares, at flow time t) are one token; the same weights serve all
layers, told apart by a learned layer embedding and by the layer's energy, so one network sees 45 examples per
Par04 shower. Attention across the tokens carries the correlations between layers (a shower's centre drifts
through all of them). The flow time and the incident energy steer every block through adaptive layer norms
(DiT's adaLN-zero: each block starts as the identity), which costs one small matrix product per shower, not per
token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: frequencies of the flow-time features sin(2 pi f t), cos(2 pi f t)
TIME_FREQUENCIES = 16


def time_features(t: Tensor) -> Tensor:
    """(N,) times in [0, 1] -> (N, 2 TIME_FREQUENCIES) Fourier features over octaves 1 .. 2^(F-1) / 8."""
    frequencies = 2.0 ** torch.arange(TIME_FREQUENCIES, device=t.device, dtype=t.dtype) / 8
    angles = 2 * math.pi * t[:, None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    """Pre-norm self-attention and MLP, each scaled, shifted and gated by the shower's condition."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))
        self.modulation = nn.Linear(width, 6 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(condition).chunk(6, dim=1)
        n, tokens, width = x.shape
        q, k, v = self.qkv(modulate(self.norm1(x), shift1, scale1)).view(n, tokens, 3, self.heads, -1).unbind(2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + gate1[:, None] * self.proj(attended.transpose(1, 2).reshape(n, tokens, width))
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class LayerTransformer(nn.Module):
    """v(x_t, t | E_inc, layer energies): (N, L, V) -> (N, L, V).

    ``shower_conditions`` (N, S) per shower (the incident energy) and ``layer_conditions`` (N, L, C) per layer
    token (its energy) are O(1) numbers (``caloforge.models.flows.conditions``)."""

    def __init__(self, n_layers: int, voxels: int, shower_conditions: int, layer_conditions: int, width: int,
                 depth: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.embed = nn.Linear(voxels + layer_conditions, width)
        self.layer_embedding = nn.Parameter(0.02 * torch.randn(n_layers, width))
        self.condition = nn.Sequential(nn.Linear(2 * TIME_FREQUENCIES + shower_conditions, width), nn.SiLU(),
                                       nn.Linear(width, width), nn.SiLU())
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, voxels)
        for layer in (self.modulation, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, t: Tensor, shower_conditions: Tensor, layer_conditions: Tensor) -> Tensor:
        condition = self.condition(torch.cat([time_features(t), shower_conditions], dim=1))
        h = self.embed(torch.cat([x, layer_conditions], dim=2)) + self.layer_embedding
        for block in self.blocks:
            h = block(h, condition)
        shift, scale = self.modulation(condition).chunk(2, dim=1)
        return self.out(modulate(self.norm(h), shift, scale))


class ResidualMLP(nn.Module):
    """in -> width -> ``depth`` pre-norm residual blocks -> out; the output layer starts at zero."""

    def __init__(self, n_in: int, n_out: int, width: int, depth: int):
        super().__init__()
        self.embed = nn.Linear(n_in, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
            for _ in range(depth))
        self.out = nn.Linear(width, n_out)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)
