"""A CaloDiffusion network trained as a consistency model (Song et al. 2023, arXiv:2303.01469) of its teacher.

The consistency function is the network's own x0 estimate ``f(x, sigma) = D(x, sigma)``: with noise (or EDM)
parametrisation ``D(x, 0) = x`` exactly, which is the boundary condition f(x, 0) = x. Training (consistency
distillation, as in the CaloDiffusion repo and CaloClouds II): draw a level index n in 1..N of the discretised
schedule ``0 = s_0 < s_1 < ... < s_N``, noise a training shower to ``x_n = x0 + s_n eps``, take one deterministic
teacher DDIM step to ``x_{n-1}``, and pull the student's ``f(x_n, s_n)`` towards the target network's
``f(x_{n-1}, s_{n-1})`` (squared distance weighted by 1 / (1 + s_n^2), see ``forward``). The target is an
exponential moving average (decay mu) of the student; both start as copies of the teacher. The student's network
and x0 estimate are the teacher's own (``CaloDiffusion.network`` and ``denoise``, clamp included).

The target network and the update count live in the module (``targets.py``): at the first training batch the
student copies the teacher (no ``train.init_from`` needed). The teacher itself is the ``FrozenModel`` named by
``config.teacher``.

Sampling (Song et al. Algorithm 1): ``x0 = f(sigma_max z)``, then per further level s: ``x0 = f(x0 + s z')``.
All noise is drawn up front from the generator and passed to ``decode``, a deterministic function of it, which
``caloforge export`` turns into one ONNX graph.
"""

from __future__ import annotations

import torch
from torch import Tensor

from caloforge.contract import FrozenModel
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.diffusion import CaloDiffusion
from caloforge.models.distill.config import ConsistencyConfig
from caloforge.models.distill.targets import add_training_state, advance_target

#: the few-step sampler of the student's own ``decode`` (the VP prior; ``caloforge export`` turns it into one graph);
#: the teacher's samplers (ddim, ...) also run on the student
CONSISTENCY = "consistency"

#: the calodiffusion checkpoint a student distils
TEACHER = FrozenModel("calodiffusion")


class ConsistencyStudent(CaloDiffusion):
    """The teacher's architecture (``fitted["teacher_config"]``) with a consistency objective and sampler."""

    levels: Tensor
    updates: Tensor

    def __init__(self, config: ConsistencyConfig, geometry: Geometry, fitted: dict):
        architecture = TEACHER.config(fitted)
        super().__init__(architecture, geometry, fitted)
        if config.n_intervals > self.schedule.n_steps:
            raise CaloforgeError(f"calodiffusion-student: n_intervals {config.n_intervals} exceeds the teacher's "
                                 f"{self.schedule.n_steps} steps")
        self.config = config
        # s_0 = 0 < s_1 < ... < s_N: N evenly spaced levels of the teacher's schedule, its noisiest one last
        self.register_buffer("levels", self.schedule.sigmas(config.n_intervals).flip(0), persistent=False)
        add_training_state(self, CaloDiffusion(architecture, geometry, fitted))

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """The consistency-distillation loss of one batch: squared distance in the preprocessed space."""
        if self.training:
            advance_target(self, TEACHER, self.config)
        teacher = TEACHER.load(self.config, showers.device)
        x0 = self.preprocessing.forward(showers, energies)
        energy = self.shower_condition(energies, self.training_layers(showers))
        n = torch.randint(1, len(self.levels), (len(x0),), device=x0.device)
        sigma, previous = self.levels[n], self.levels[n - 1]
        x = x0 + sigma[:, None] * torch.randn_like(x0)
        with torch.no_grad():
            estimate = teacher.denoise(x, sigma, energy)
            x_previous = estimate + (previous / sigma)[:, None] * (x - estimate)  # one DDIM (ODE Euler) step
            target = self.target.denoise(x_previous, previous, energy)
        # weighted by abar = 1 / (1 + sigma^2): with noise prediction an x0 error is sigma times a noise error, and
        # unweighted the few levels near sigma_max (8,000) would swamp the rest; this is the error in x_t's units
        weight = torch.rsqrt(1 + sigma**2)[:, None] ** 2
        return (weight * (self.denoise(x, sigma, energy) - target) ** 2).mean()

    def sampling_levels(self, steps: int) -> Tensor:
        """(steps,) decreasing levels: the noisiest, then evenly spaced indices of the discretisation."""
        n = self.config.n_intervals
        if not 1 <= steps <= n:
            raise CaloforgeError(f"consistency sampler steps {steps}: need 1 to {n} (the student's n_intervals)")
        index = torch.round(torch.arange(steps, 0, -1, dtype=torch.float64) * n / steps).long()
        return self.levels[index]

    def decode(self, noise: Tensor, renoise: Tensor | None, energies: Tensor, layers: Tensor | None = None) -> Tensor:
        """Showers (N, voxels) in MeV from the prior draw ``noise`` (N, voxels) and, for more than one step, the
        re-noising draws ``renoise`` (steps - 1, N, voxels): the whole sampler as a function of its noise (and,
        with a layer-energy model, of the drawn layer energies (N, L))."""
        steps = 1 if renoise is None else 1 + renoise.shape[0]
        sigmas = self.sampling_levels(steps)
        energy = self.shower_condition(energies, layers)
        # the VP prior x_T ~ N(0, 1), seen in the scaled variable x_T / sqrt(abar_T)
        x0 = self.denoise(noise * (1 + sigmas[0] ** 2).sqrt(), sigmas[0], energy)
        for i in range(1, steps):
            x0 = self.denoise(x0 + sigmas[i] * renoise[i - 1], sigmas[i], energy)
        return self.to_showers(x0, energies, layers)

    @torch.inference_mode()
    def sample(self, energies: Tensor, generator: torch.Generator | None = None, sampler: str = CONSISTENCY,
               steps: int | None = None) -> Tensor:
        """(N, voxels) showers in MeV by the consistency sampler (default 1 step), or by any teacher sampler."""
        if sampler != CONSISTENCY:
            return super().sample(energies, generator, sampler=sampler, steps=steps)
        steps = steps or 1
        energies = torch.as_tensor(energies).to(device=self.levels.device, dtype=self.levels.dtype)
        noise = torch.randn(steps, len(energies), self.n_voxels, generator=generator, device=energies.device)
        layers = self.layer_model.sample(energies, generator) if self.layer_model is not None else None
        return self.decode(noise[0], noise[1:] if steps > 1 else None, energies, layers)
