"""Generation: samplers for diffusion models and the one path that writes any model's showers to disk."""

from caloforge.sampling.generate import generate, incident_energies, merge_shards
from caloforge.sampling.samplers import SAMPLERS, ddim, ddpm, dpmpp_2m, get_sampler, heun

__all__ = ["SAMPLERS", "ddim", "ddpm", "dpmpp_2m", "generate", "get_sampler", "heun", "incident_energies",
           "merge_shards"]
