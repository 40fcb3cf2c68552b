"""Stacks of zuko masked autoregressive blocks with rational-quadratic spline (RQS) transforms.

One constructor serves every flow here: the layer-energy flow and CaloFlow's voxel flow (MAF-RQS, Durkan et al.
2019), the IAF student (the same blocks used in the other direction) and CaloMan's latent flow (``passes=2``:
coupling blocks, as zuko defines them). ``passes`` groups the features: a block's conditioner sees the groups
before a feature's own, so inverting a block costs ``passes`` network evaluations (``None``: one group per feature,
a fully autoregressive MADE).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from zuko.flows.autoregressive import MaskedAutoregressiveTransform

from caloforge.models.flows.spline import MonotonicRQS

LOG_SQRT_TWO_PI = 0.5 * float(torch.log(torch.tensor(2 * torch.pi)))


def rqs_blocks(features: int, context: int, transforms: int, hidden: list[int], bins: int = 8,
               passes: int | None = None, residual: bool = False, randperm: bool = False, bound: float = 5.0,
               seed: int = 0) -> list[MaskedAutoregressiveTransform]:
    """``transforms`` MADE blocks with RQS transforms on [-bound, bound] (identity outside).

    Feature orders alternate ascending/descending, or are random permutations (seeded: a rebuilt model is
    identical) with ``randperm``; with grouped ``passes`` only random orders mix every pair of features into
    different groups in some block.
    """
    generator = torch.Generator().manual_seed(seed)
    blocks = []
    for i in range(transforms):
        if randperm:
            order = torch.randperm(features, generator=generator)
        else:
            order = torch.arange(features) if i % 2 == 0 else torch.arange(features).flip(0)
        blocks.append(MaskedAutoregressiveTransform(
            features=features, context=context, passes=passes, order=order,
            univariate=partial(MonotonicRQS, bound=bound), shapes=[(bins,), (bins,), (bins - 1,)],
            hidden_features=list(hidden), residual=residual))
    return blocks


class RQSFlow(nn.Module):
    """``rqs_blocks`` over ``features`` dimensions with a standard normal base: the MAF and the IAF run them in
    opposite directions."""

    def __init__(self, features: int, context: int, transforms: int, hidden: list[int], bins: int = 8,
                 passes: int | None = None, residual: bool = False, randperm: bool = False, seed: int = 0):
        super().__init__()
        self.features = features
        self.blocks = nn.ModuleList(rqs_blocks(features, context, transforms, hidden, bins, passes, residual,
                                               randperm, seed=seed))

    def base_noise(self, context: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One draw of the base distribution per row of ``context``, from the caller's generator (zuko's
        distributions take none)."""
        return torch.randn(len(context), self.features, generator=generator, device=context.device,
                           dtype=context.dtype)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, 1) summed over the last dimension."""
    return -(0.5 * z.square() + LOG_SQRT_TWO_PI).sum(-1)
