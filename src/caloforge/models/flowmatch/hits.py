"""Analog-bit coding of a layer token: which voxels are hit, and how the layer's energy divides among them.

Each voxel slot of a token becomes two numbers: its hit bit as +1 or -1 (analog bits, Chen, Zhang and Hinton 2022,
arXiv:2208.04202) and, for a hit, its log share of the layer's energy, standardised per voxel over the hits of the
fitted showers (0 for an empty voxel). The sign of a drawn bit decides the hit, and a hit's share is one unimodal
number, where the logit-share coding (``VoxelCoding``) makes an empty voxel one point far below every hit, which the
shape model smears into hits of a few keV. On Par04 at equal CPU time this coding is still far behind that one: its
drawn bits are not yet near +-1 and it lights too many voxels (see the README's pilot).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: fewest hits in the fitted showers for a voxel's own log-share statistics; rarer voxels take the layer's
MIN_HITS = 20


def fit_hit_coding(tokens: Tensor, layers: Tensor, slots: Tensor) -> dict:
    """Per-slot mean and spread of the log shares of hits, from cut showers as layer tokens (N, L, V) and their
    layer energies (N, L); ``slots`` (L, V) marks the real voxels."""
    hit = (tokens > 0) & slots.bool()
    logs = torch.where(hit, (tokens / layers.clamp_min(1e-30)[..., None]).clamp_min(1e-30).log(), 0.0)
    count = hit.sum(0)
    mean = logs.sum(0) / count.clamp_min(1)
    spread = (torch.where(hit, (logs - mean) ** 2, 0.0).sum(0) / count.clamp_min(1)).sqrt()
    layer_count = count.sum(1, keepdim=True).clamp_min(1)
    layer_mean = logs.sum((0, 2))[:, None] / layer_count
    layer_spread = ((torch.where(hit, (logs - layer_mean) ** 2, 0.0).sum((0, 2))[:, None] / layer_count).sqrt())
    own = count >= MIN_HITS
    mean = torch.where(own, mean, layer_mean.expand_as(mean))
    spread = torch.where(own, spread, layer_spread.expand_as(spread)).clamp_min(0.1)
    return {"mean": mean.tolist(), "std": spread.tolist()}


class HitCoding(nn.Module):
    """Layer tokens of voxel energies (N, L, V) <-> analog-bit tokens (N, L, 2V): bits, then standardised log
    shares."""

    mean: Tensor
    std: Tensor
    slots: Tensor

    def __init__(self, fitted: dict, slots: Tensor, threshold: float):
        super().__init__()
        self.register_buffer("mean", torch.tensor(fitted["mean"]), persistent=False)
        self.register_buffer("std", torch.tensor(fitted["std"]), persistent=False)
        self.register_buffer("slots", slots.bool(), persistent=False)
        self.threshold = threshold

    def encode(self, tokens: Tensor, layers: Tensor) -> Tensor:
        """Cut showers as tokens (N, L, V) with their layer energies (N, L) -> (N, L, 2V); padding slots are 0."""
        hit = (tokens > 0) & self.slots
        bits = torch.where(hit, 1.0, -1.0) * self.slots
        logs = (tokens / layers.clamp_min(1e-30)[..., None]).clamp_min(1e-30).log()
        return torch.cat([bits, torch.where(hit, (logs - self.mean) / self.std, 0.0)], dim=2)

    def decode(self, code: Tensor, layers: Tensor) -> Tensor:
        """Tokens of showers (N, L, V) in MeV whose layers hold ``layers`` (N, L) among their hits.

        A layer with energy above the threshold but no positive bit keeps its likeliest voxel, so that the energy
        model's energy is never dropped; hits under the threshold are cut and the layer is rescaled to its energy
        again."""
        bits, logs = code.chunk(2, dim=2)
        bits = bits.masked_fill(~self.slots, -torch.inf)
        hit = bits > 0
        missing = ~hit.any(2, keepdim=True) & (layers[..., None] > self.threshold)
        hit = hit | (missing & (bits == bits.amax(2, keepdim=True)))
        weights = torch.where(hit, (logs * self.std + self.mean).clamp(max=0).exp(), 0.0)
        tiny = torch.finfo(code.dtype).tiny
        energy = weights / weights.sum(2, keepdim=True).clamp_min(tiny) * layers[..., None]
        energy = torch.where(energy < self.threshold, 0.0, energy)
        kept = energy.sum(2, keepdim=True)
        return energy * torch.where(kept > 0, layers[..., None] / kept.clamp_min(tiny), 0.0)
