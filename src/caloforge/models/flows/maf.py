"""A masked autoregressive flow (Papamakarios et al. 2017): data -> noise in one network pass per block.

Fast density, slow sampling: the shape of CaloFlow's teacher, of its layer-energy flow and (with two passes) of a
coupling flow.
"""

from __future__ import annotations

import torch
from torch import Tensor

from caloforge.models.flows.made import RQSFlow, standard_normal_log_prob


class MaskedAutoregressiveFlow(RQSFlow):
    """A conditional density over ``features`` dimensions."""

    def encode(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """(z, log|det dz/dx| (N,), [x, after block 1, ..., z]): the trail is what a student is matched on."""
        trail, ladj = [x], x.new_zeros(len(x))
        for block in self.blocks:
            x, block_ladj = block(context).call_and_ladj(x)
            ladj = ladj + block_ladj
            trail.append(x)
        return x, ladj, trail

    def log_prob(self, x: Tensor, context: Tensor) -> Tensor:
        z, ladj, _ = self.encode(x, context)
        return standard_normal_log_prob(z) + ladj

    def decode(self, z: Tensor, context: Tensor) -> Tensor:
        for block in reversed(self.blocks):
            z = block(context).inv(z)
        return z

    def sample(self, context: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One sample per row of ``context``."""
        z = self.base_noise(context, generator)
        return self.decode(z, context)
