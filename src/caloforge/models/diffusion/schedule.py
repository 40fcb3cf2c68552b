"""The discrete cosine noise schedule (Nichol & Dhariwal 2021, arXiv:2102.09672) and its noise levels.

The variance-preserving forward process is ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` for t = 1..T. Every
quantity follows from the "variance exploding" noise level ``sigma_t = sqrt((1 - abar_t) / abar_t)`` of the
scaled state ``x_t / sqrt(abar_t) = x0 + sigma_t eps``, which is what the samplers work with: ``abar = 1 / (1 +
sigma^2)``. Only the sigmas are stored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from caloforge.errors import CaloforgeError


def cosine_alpha_bar(n_steps: int, offset: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """(n_steps,) abar_t for t = 1..T, float64: ``f(t) / f(0)`` with ``f(t) = cos^2((t/T + s) / (1 + s) pi/2)``.

    As in the paper, each step's beta = 1 - abar_t / abar_{t-1} is capped at ``max_beta`` (the last steps would
    otherwise reach 1) and abar is rebuilt as the product of (1 - beta).
    """
    t = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
    f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


def noise_level(sigma: Tensor) -> Tensor:
    """sqrt(1 - abar) = sigma / sqrt(1 + sigma^2): the network's noise input, in [0, 1)."""
    return sigma * torch.rsqrt(1 + sigma**2)


class CosineSchedule(nn.Module):
    """The T-step cosine schedule as a non-persistent buffer of increasing sigmas: it follows the model's device."""

    sigma: Tensor

    def __init__(self, n_steps: int = 400):
        super().__init__()
        alpha_bar = cosine_alpha_bar(n_steps)
        self.register_buffer("sigma", ((1 - alpha_bar) / alpha_bar).sqrt().float(), persistent=False)

    @property
    def n_steps(self) -> int:
        return len(self.sigma)

    def sigmas(self, steps: int | None = None) -> Tensor:
        """(steps + 1,) decreasing sigmas to sample with: ``steps`` of the T levels, then 0.

        The levels are spaced evenly from the noisiest one down ("trailing" spacing: t = T, T - T/K, ...), so the
        first always starts from the prior the model was trained for; with steps = T every level is visited.
        """
        steps = self.n_steps if steps is None else steps
        if not 1 <= steps <= self.n_steps:
            raise CaloforgeError(f"sampler steps {steps}: need 1 to {self.n_steps} (the schedule's length)")
        t = torch.round(torch.arange(steps, 0, -1, dtype=torch.float64) * self.n_steps / steps).long()
        return torch.cat([self.sigma[t - 1], self.sigma.new_zeros(1)])
