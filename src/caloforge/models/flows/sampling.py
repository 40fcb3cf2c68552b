"""How the flows sample many rows: a chunk of rows at a time, so that cost per row and memory stay bounded.

The spline transforms build a dozen (batch, voxels, bins) intermediates per block; past about a thousand showers
they fall out of the CPU caches and a shower costs more than twice as much (0.8 ms against 2 ms of CPU for the
par04-coarse student), and a 10,000-shower batch of the teacher needs gigabytes. SuperCalo's up-sampler inverts one
flow on about two million coarse voxels for 10,000 showers. Both go through ``in_chunks``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from caloforge.errors import CaloforgeError
from caloforge.models.flows.maf import MaskedAutoregressiveFlow

#: showers a flow family samples at a time
CHUNK = 1000


def in_chunks(function: Callable[..., Tensor], *rows: Tensor, chunk: int) -> Tensor:
    """``function`` of successive ``chunk``-row slices of the equally long ``rows``, concatenated."""
    return torch.cat([function(*parts) for parts in zip(*(tensor.split(chunk) for tensor in rows))])


def sample_in_chunks(sample: Callable[[Tensor, torch.Generator | None], Tensor], energies: Tensor,
                     generator: torch.Generator | None, options: dict[str, Any], family: str) -> Tensor:
    """A flow family's ``sample(chunk, generator)`` over successive ``CHUNK``s of ``energies``; it takes no options."""
    if options:
        raise CaloforgeError(f"{family} takes no sampling options, got: {', '.join(options)}")
    return in_chunks(lambda chunk: sample(chunk, generator), energies, chunk=CHUNK)


def decode_in_chunks(flow: MaskedAutoregressiveFlow, context: Tensor, generator: torch.Generator | None,
                     chunk: int) -> Tensor:
    """One sample of ``flow`` per row of ``context``, inverting ``chunk`` rows at a time. The base noise is drawn at
    once, so that the result does not depend on the chunk size (beyond float rounding)."""
    return in_chunks(flow.decode, flow.base_noise(context, generator), context, chunk=chunk)
