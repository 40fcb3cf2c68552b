"""An inverse autoregressive flow (Kingma et al. 2016): noise -> data in one network pass per block.

The same RQS MADE blocks as ``MaskedAutoregressiveFlow``, run the other way: sampling, and the density of the
flow's own samples, are single-pass; the density of given data would take ``passes`` evaluations per block and is
never needed. Block ``k`` mirrors block ``k`` of a teacher MAF built with the same arguments, so a student can be
matched on the teacher's intermediate values (CaloFlow's student, Krause & Shih 2021).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from caloforge.models.flows.made import RQSFlow, standard_normal_log_prob
from caloforge.models.flows.maf import MaskedAutoregressiveFlow


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


def mean_squared_distance(pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    return torch.stack([F.mse_loss(a, b) for a, b in pairs]).mean()


def distillation_loss(student: InverseAutoregressiveFlow, teacher: MaskedAutoregressiveFlow, x: Tensor,
                      context: Tensor, kl_weight: float = 1.0, data_weight: float = 1.0,
                      noise_weight: float = 1.0) -> Tensor:
    """Probability density distillation of a MAF ``teacher`` into an IAF ``student`` built with the same arguments
    (CaloFlow's student, Krause & Shih 2021), on training points ``x`` (N, features) at ``context``.

    The reverse KL divergence of the student's samples from the teacher density, per dimension (both densities are
    single-pass on the student's samples), helped by matching the teacher block by block: ``x`` mapped to noise by
    the teacher must be mapped back by the student through the same intermediate values, and the student's samples
    mapped to noise by the teacher must retrace the student's intermediates.
    """
    with torch.no_grad():
        *_, data_trail = teacher.encode(x, context)
    *_, back_trail = student.decode(data_trail[-1], context)
    data_loss = mean_squared_distance(list(zip(back_trail[1:], data_trail[::-1][1:])))

    z = torch.randn_like(x)
    sample, student_ladj, sample_trail = student.decode(z, context)
    teacher_z, teacher_ladj, teacher_trail = teacher.encode(sample, context)
    noise_loss = mean_squared_distance(list(zip(teacher_trail[1:], sample_trail[::-1][1:])))
    kl = (standard_normal_log_prob(z) - student_ladj
          - standard_normal_log_prob(teacher_z) - teacher_ladj).mean() / x.shape[1]
    return kl_weight * kl + data_weight * data_loss + noise_weight * noise_loss
