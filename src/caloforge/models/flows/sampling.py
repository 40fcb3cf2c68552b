"""How the flow families sample: in chunks of ``CHUNK`` showers, and without options.

The spline transforms build a dozen (batch, voxels, bins) intermediates per block; past about a thousand showers
they fall out of the CPU caches and a shower costs more than twice as much (0.8 ms against 2 ms of CPU for the
par04-coarse student), and a 10,000-shower batch of the teacher needs gigabytes. Chunks keep the cost per shower
at its minimum and the memory bounded, whatever batch the caller asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from caloforge.errors import CaloforgeError

CHUNK = 1000


def sample_in_chunks(sample: Callable[[Tensor, torch.Generator | None], Tensor], energies: Tensor,
                     generator: torch.Generator | None, options: dict[str, Any], family: str) -> Tensor:
    """``sample(chunk, generator)`` over successive chunks of ``energies``, concatenated."""
    if options:
        raise CaloforgeError(f"{family} takes no sampling options, got: {', '.join(options)}")
    return torch.cat([sample(chunk, generator) for chunk in energies.split(CHUNK)])
