"""An inverse autoregressive flow (Kingma et al. 2016): noise -> data in one network pass per block.

The same RQS MADE blocks as ``MaskedAutoregressiveFlow``, run the other way: sampling, and the density of the
flow's own samples, are single-pass; the density of given data would take ``passes`` evaluations per block and is
never needed. Block ``k`` mirrors block ``k`` of a teacher MAF built with the same arguments, so a student can be
matched on the teacher's intermediate values (CaloFlow's student, Krause & Shih 2021).
"""

from __future__ import annotations

import torch
from torch import Tensor

from caloforge.models.flows.made import RQSFlow


class InverseAutoregressiveFlow(RQSFlow):
    """A conditional sampler over ``features`` dimensions."""

    def decode(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """(x, log|det dx/dz| (N,), [z, after the last block, ..., x]): blocks run last to first, each inverting
        the teacher block of the same index."""
        trail, ladj = [z], z.new_zeros(len(z))
        for block in reversed(self.blocks):
            z, block_ladj = block(context).call_and_ladj(z)
            ladj = ladj + block_ladj
            trail.append(z)
        return z, ladj, trail

    def sample(self, context: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One sample per row of ``context``; no Jacobians, no trail: the fast path."""
        z = self.base_noise(context, generator)
        for block in reversed(self.blocks):
            z = block(context)(z)
        return z
