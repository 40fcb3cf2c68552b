"""Diffusion samplers over one denoiser interface, in the "variance exploding" view of Karras et al. (2022).

Every sampler is a plain function ``(denoiser, x, sigmas, generator) -> x0`` where

- ``denoiser(x, sigma)`` estimates the clean sample from ``x = x0 + sigma * noise`` (sigma a 0-dim tensor);
- ``x`` is the initial state, at noise level ``sigmas[0]``;
- ``sigmas`` are the levels to visit, decreasing, the last one 0 (``len(sigmas) - 1`` steps);
- ``generator`` is the only source of randomness (stochastic samplers), so a seed fixes the result.

A variance-preserving model (DDPM, CaloDiffusion: ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``) fits this view
through ``x = x_t / sqrt(abar)`` and ``sigma = sqrt((1 - abar) / abar)``: the samplers need not know its schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from caloforge.errors import CaloforgeError

Denoiser = Callable[[Tensor, Tensor], Tensor]
Sampler = Callable[..., Tensor]


def ddpm(denoiser: Denoiser, x: Tensor, sigmas: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Ancestral sampling (Ho et al. 2020): each step draws from the posterior q(x_next | x, x0 = D(x, sigma)).

    Between levels the forward process adds independent noise, ``x = x_next + sqrt(sigma^2 - next^2) n``, so the
    posterior is Gaussian with mean ``x0 + (next / sigma)^2 (x - x0)`` and variance ``next^2 (1 - (next /
    sigma)^2)``; over all T levels of a schedule this is DDPM's sampler with the posterior variance beta-tilde.
    """
    for sigma, nxt in zip(sigmas[:-1], sigmas[1:]):
        x0 = denoiser(x, sigma)
        ratio = float(nxt / sigma) ** 2
        x = x0 + ratio * (x - x0)
        if nxt > 0:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + float(nxt) * math.sqrt(1 - ratio) * noise
    return x


def ddim(denoiser: Denoiser, x: Tensor, sigmas: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Deterministic DDIM (Song et al. 2021, eta = 0): keep the current noise estimate, rescaled to the next level.

    ``x_next = x0 + (next / sigma) (x - x0)``: an Euler step of the probability-flow ODE ``dx/dsigma = (x - D) /
    sigma``.
    """
    for sigma, nxt in zip(sigmas[:-1], sigmas[1:]):
        x0 = denoiser(x, sigma)
        x = x0 + float(nxt / sigma) * (x - x0)
    return x


def dpmpp_2m(denoiser: Denoiser, x: Tensor, sigmas: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in the data prediction, in lambda = -log sigma.

    The ODE solution ``x_next = (next / sigma) x + (1 - next / sigma) x0`` is exact for an x0 estimate constant
    over the step; 2M replaces it by the linear extrapolation ``x0 + (h / 2 h_prev) (x0 - x0_prev)`` through the
    previous step's estimate (``h`` the step in lambda). The first step has no history and the last one, to sigma
    0, returns the estimate itself: both first order.
    """
    previous: tuple[Tensor, float] | None = None  # the last estimate and its step in lambda
    for sigma, nxt in zip(sigmas[:-1], sigmas[1:]):
        x0 = denoiser(x, sigma)
        if nxt == 0:
            x = x0
            continue
        h = math.log(float(sigma / nxt))
        estimate = x0 if previous is None else x0 + (h / (2 * previous[1])) * (x0 - previous[0])
        ratio = float(nxt / sigma)
        x = ratio * x + (1 - ratio) * estimate
        previous = (x0, h)
    return x


def heun(denoiser: Denoiser, x: Tensor, sigmas: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """EDM's deterministic Heun sampler (Karras et al. 2022, Algorithm 1 without churn).

    An Euler step of ``dx/dsigma = (x - D(x, sigma)) / sigma``, corrected by the slope at its end point (trapezoid
    rule). Two steps stay Euler: the last, to sigma 0 where the slope is undefined, and the first. A schedule's top
    level (8,000 for the 400-step cosine one) lies far above the data's scale, where the trajectory is a straight
    line and Euler exact, while the end-point slope, taken where it already bends, would be weighted over the
    whole long step: over ten steps of the cosine schedule, unit Gaussian data come out with 16 times their
    spread with that first correction and 0.4 % off without (EDM avoids the issue by starting at sigma = 80).
    K steps cost 2K - 2 evaluations (1 for K = 1).
    """
    for i, (sigma, nxt) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        slope = (x - denoiser(x, sigma)) / sigma
        x_next = x + (nxt - sigma) * slope
        if i > 0 and nxt > 0:
            slope_next = (x_next - denoiser(x_next, nxt)) / nxt
            x_next = x + (nxt - sigma) * (slope + slope_next) / 2
        x = x_next
    return x


def consistency(denoiser: Denoiser, x: Tensor, sigmas: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1): at each level the denoiser's estimate, noised
    afresh to the next level. For a denoiser trained as a consistency function, which maps any point of the ODE
    trajectory to its end; one evaluation per level."""
    for sigma, nxt in zip(sigmas[:-1], sigmas[1:]):
        x = denoiser(x, sigma)
        if nxt > 0:
            x = x + nxt * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x


#: samplers by the name ``caloforge generate --sampler`` takes
SAMPLERS: dict[str, Sampler] = {"ddpm": ddpm, "ddim": ddim, "dpmpp": dpmpp_2m, "heun": heun,
                                "consistency": consistency}


def get_sampler(name: str) -> Sampler:
    if name not in SAMPLERS:
        raise CaloforgeError(f"unknown sampler '{name}'; available: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]
