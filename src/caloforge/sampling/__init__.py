"""Generation: samplers for diffusion models and the one path that writes any model's showers to disk."""

from caloforge.sampling.generate import generate, incident_energies, merge_shards

__all__ = ["generate", "incident_energies", "merge_shards"]
