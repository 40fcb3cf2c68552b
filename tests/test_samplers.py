"""Diffusion samplers, checked with exact denoisers: for a point mass or Gaussian data the ideal x0 estimate is known
in closed form, so every sampler's answer (and DDPM's agreement with the textbook algorithm) can be checked."""

from __future__ import annotations

import pytest
import torch

from caloforge.errors import CaloforgeError
from caloforge.models.diffusion.schedule import CosineSchedule
from caloforge.sampling import SAMPLERS, get_sampler

MU, S = 1.5, 0.5  # Gaussian data N(MU, S^2)


pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian_denoiser(x, sigma):
    """E[x0 | x0 + sigma n = x] for x0 ~ N(MU, S^2)."""
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


def prior(sigmas, n, seed=0):
    """The VP prior N(0, 1) in the scaled variable, as CaloDiffusion.sample starts from."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=generator, dtype=torch.float64) * (1 + sigmas[0] ** 2).sqrt()


@pytest.fixture(scope="module")
def schedule():
    return CosineSchedule(400)


def test_schedule_runs_from_clean_to_pure_noise(schedule):
    alpha_bar = 1 / (1 + schedule.sigma.double() ** 2)
    assert torch.all(alpha_bar[1:] < alpha_bar[:-1])
    assert alpha_bar[0] > 0.999 and alpha_bar[-1] < 1e-6
    every = schedule.sigmas()
    assert len(every) == 401 and every[-1] == 0 and torch.equal(every[:-1], schedule.sigma.flip(0))
    for steps in (1, 2, 5, 37):
        sigmas = schedule.sigmas(steps)
        assert len(sigmas) == steps + 1 and sigmas[0] == schedule.sigma[-1] and sigmas[-1] == 0
        assert torch.all(sigmas[1:] < sigmas[:-1])
    with pytest.raises(CaloforgeError, match="1 to 400"):
        schedule.sigmas(401)


@pytest.mark.parametrize("name", list(SAMPLERS))
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_every_sampler_lands_on_a_point_mass(schedule, name, steps):
    sigmas = schedule.sigmas(steps).double()
    out = get_sampler(name)(lambda x, sigma: torch.full_like(x, MU), prior(sigmas, 16), sigmas,
                            generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, torch.full_like(out, MU))


@pytest.mark.parametrize(("name", "steps"), [("ddim", 400), ("dpmpp", 20), ("heun", 20), ("ddpm", 400)])
def test_samplers_reproduce_gaussian_data(schedule, name, steps):
    sigmas = schedule.sigmas(steps).double()
    out = get_sampler(name)(gaussian_denoiser, prior(sigmas, 6000), sigmas, generator=torch.Generator().manual_seed(1))
    assert out.mean().item() == pytest.approx(MU, abs=0.02)
    assert out.std().item() == pytest.approx(S, rel=0.03)


def test_higher_order_samplers_follow_the_ode_closer_than_ddim(schedule):
    """Deterministic samplers integrate one ODE whose solution for Gaussian data is a known affine map of x_T."""
    sigmas = schedule.sigmas(10).double()
    x = prior(sigmas, 1000)
    exact = MU + S / (S**2 + sigmas[0] ** 2).sqrt() * (x - MU)
    errors = {name: (get_sampler(name)(gaussian_denoiser, x, sigmas) - exact).abs().max().item()
              for name in ("ddim", "dpmpp", "heun")}
    assert errors["dpmpp"] < errors["ddim"] / 2 and errors["heun"] < errors["ddim"] / 2


def test_ddpm_over_all_steps_is_the_textbook_algorithm(schedule):
    """Ho et al. (2020), Algorithm 2 with the posterior variance, in the VP variables, on the same random draws."""
    sigma = schedule.sigma.double()
    alpha_bar = 1 / (1 + sigma**2)
    alpha_bar_prev = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    beta = 1 - alpha_bar / alpha_bar_prev
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(64, 4, generator=generator, dtype=torch.float64)
    for t in reversed(range(len(sigma))):
        x0 = gaussian_denoiser(x / alpha_bar[t].sqrt(), sigma[t])
        eps = (x - alpha_bar[t].sqrt() * x0) / (1 - alpha_bar[t]).sqrt()
        x = (x - beta[t] / (1 - alpha_bar[t]).sqrt() * eps) / (1 - beta[t]).sqrt()
        if t > 0:
            variance = (1 - alpha_bar_prev[t]) / (1 - alpha_bar[t]) * beta[t]
            x = x + variance.sqrt() * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    sigmas = schedule.sigmas().double()
    ours = SAMPLERS["ddpm"](gaussian_denoiser, prior(sigmas, 64, seed=3), sigmas,
                            generator=_after_prior(3, (64, 4)))
    torch.testing.assert_close(ours, x, rtol=1e-6, atol=1e-6)


def _after_prior(seed, shape):
    """A generator seeded like ``prior``'s and advanced past its draw."""
    generator = torch.Generator().manual_seed(seed)
    torch.randn(shape, generator=generator, dtype=torch.float64)
    return generator


def test_stochastic_sampling_is_a_function_of_the_seed(schedule):
    sigmas = schedule.sigmas(10).double()
    runs = [SAMPLERS["ddpm"](gaussian_denoiser, prior(sigmas, 8), sigmas, generator=torch.Generator().manual_seed(s))
            for s in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_unknown_sampler_is_one_line_error():
    with pytest.raises(CaloforgeError, match="unknown sampler 'euler'.*ddpm"):
        get_sampler("euler")
