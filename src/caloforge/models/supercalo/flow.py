"""Seeded, chunked sampling of the shared MAF-RQS flows (``caloforge.models.flows``) over many rows.

Up-sampling a batch of 10,000 showers inverts one flow on about two million coarse voxels: the rows are inverted a
chunk at a time to bound memory, while the base noise is drawn at once from the caller's generator, so that the
result does not depend on the chunk size (beyond float rounding).
"""

from __future__ import annotations

import torch
from torch import Tensor

from caloforge.models.flows import MaskedAutoregressiveFlow


def sample_chunked(flow: MaskedAutoregressiveFlow, context: Tensor, generator: torch.Generator | None,
                   chunk: int) -> Tensor:
    """One sample per row of ``context``, inverting ``chunk`` rows at a time."""
    noise = torch.randn(len(context), flow.features, generator=generator, device=context.device, dtype=context.dtype)
    out = torch.empty_like(noise)
    for start in range(0, len(context), chunk):
        rows = slice(start, start + chunk)
        out[rows] = flow.decode(noise[rows], context[rows])
    return out
