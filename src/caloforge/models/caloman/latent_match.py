"""CaloMan's latent density by conditional flow matching, in place of its coupling RQS flow.

The latent points of the frozen encoder (standardised by its moment penalty) are the end of a straight path from
Gaussian noise; a residual MLP of the point, the flow time and the shower condition (E_inc and the layer energies)
regresses the path's velocity, as CaloDREAM's energy and shape models do (``caloforge.models.flowmatch``). A
coupling flow must fit the latent's density with a few invertible blocks; the velocity network carries no such
constraint, and sampling it costs a few passes of one MLP (Heun's method: 2 x steps - 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from caloforge.models.flowmatch.network import TIME_FREQUENCIES, ResidualMLP, time_features
from caloforge.models.flowmatch.path import Velocity, integrate, straight_path


class LatentMatch(nn.Module):
    """p(z | context) by flow matching: ``loss`` trains it, ``sample`` integrates its ODE by ``steps`` of
    ``sampler`` (one of ``caloforge.sampling``'s)."""

    def __init__(self, latent: int, context: int, width: int, depth: int, sampler: str, steps: int):
        super().__init__()
        self.latent, self.sampler, self.steps = latent, sampler, steps
        self.network = ResidualMLP(latent + 2 * TIME_FREQUENCIES + context, latent, width, depth)

    def velocity(self, context: Tensor) -> Velocity:
        return lambda z_t, t: self.network(torch.cat([z_t, time_features(t), context], dim=1))

    def loss(self, z: Tensor, context: Tensor) -> Tensor:
        """Mean squared error of the velocity on the straight path to ``z`` (noise and time from torch's
        generator)."""
        z_t, t, target = straight_path(z)
        return F.mse_loss(self.velocity(context)(z_t, t), target)

    def sample(self, context: Tensor, generator: torch.Generator | None = None, sampler: str | None = None,
               steps: int | None = None) -> Tensor:
        """One latent point per row of ``context``, by ``steps`` of ``sampler`` (default: the model's own)."""
        return integrate(self.velocity(context), (len(context), self.latent), sampler or self.sampler,
                         steps or self.steps, generator)
