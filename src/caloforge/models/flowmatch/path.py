"""The straight path of conditional flow matching, and its ODE through caloforge's diffusion samplers.

Training draws x_t = (1 - t) noise + t x_1 at a uniform time t; the velocity network regresses x_1 - noise
(rectified flow, Liu et al. 2022; Lipman et al. 2022). On this path x = x_t / t equals x_1 + sigma noise with
sigma = (1 - t) / t: the "variance exploding" view of ``caloforge.sampling.samplers``, whose denoiser is
x_1 = x_t + (1 - t) v. Euler (``ddim``), Heun and DPM-Solver++(2M) are then ODE solvers of the flow, at any step
count.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from caloforge.sampling.samplers import Denoiser, get_sampler

#: v(x_t, t) with t of shape (N,)
Velocity = Callable[[Tensor, Tensor], Tensor]

#: flow time where sampling starts (sigma = 999): the noise itself, to a thousandth
T_START = 1e-3


def straight_path(x1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(x_t, t, target velocity) for data ``x1`` (N, ...), noise and times drawn from torch's generator."""
    noise = torch.randn_like(x1)
    t = torch.rand(len(x1), device=x1.device, dtype=x1.dtype)
    return _column(1 - t, x1) * noise + _column(t, x1) * x1, t, x1 - noise


def x1_estimate(velocity: Velocity, x_t: Tensor, t: Tensor) -> Tensor:
    """The path's end seen from x_t at times ``t`` (N,): x_t + (1 - t) v, a straight line to the end."""
    return x_t + _column(1 - t, x_t) * velocity(x_t, t)


def consistency_pair(student: Velocity, target: Velocity, teacher: Velocity, x1: Tensor, times: Tensor
                     ) -> tuple[Tensor, Tensor]:
    """Consistency distillation on the flow (Song et al. 2023): the student's end estimate at a point x_t of the
    path of data ``x1``, and the target network's from the point that one teacher Euler step carries x_t to, at
    the next of the increasing flow ``times``. The student learns to give one end to every point of a trajectory."""
    n = torch.randint(0, len(times) - 1, (len(x1),), device=x1.device)
    t, t_next = times[n], times[n + 1]
    x_t = _column(1 - t, x1) * torch.randn_like(x1) + _column(t, x1) * x1
    with torch.no_grad():
        x_next = x_t + _column(t_next - t, x1) * teacher(x_t, t)
        goal = x1_estimate(target, x_next, t_next)
    return x1_estimate(student, x_t, t), goal


def _column(values: Tensor, like: Tensor) -> Tensor:
    """(N,) values shaped to broadcast against ``like`` (N, ...)."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def flow_sigmas(steps: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The samplers' noise levels for ``steps`` equal steps in flow time from ``T_START`` to 1 (sigma 0)."""
    t = torch.linspace(T_START, 1, steps + 1, dtype=torch.float64)
    return ((1 - t) / t).to(dtype)


def denoiser(velocity: Velocity) -> Denoiser:
    """D(x, sigma) -> x_1 in the samplers' variable x = x_t / t."""
    def denoise(x: Tensor, sigma: Tensor) -> Tensor:
        t = (1 / (1 + sigma)).expand(len(x))
        return x1_estimate(velocity, x * _column(t, x), t)
    return denoise


def integrate(velocity: Velocity, shape: tuple[int, ...], sampler: str, steps: int,
              generator: torch.Generator | None = None) -> Tensor:
    """x_1 of shape ``shape``: noise carried along the flow's ODE by ``steps`` of ``sampler``."""
    sigmas = flow_sigmas(steps)
    x = sigmas[0] * torch.randn(shape, generator=generator)
    return get_sampler(sampler)(denoiser(velocity), x, sigmas, generator=generator)
