"""Up-sampling a file of coarse showers: K fine variations of every coarse shower, written in chunks.

This is SuperCalo's second use beside the full chain: coarse showers from anywhere (a coarse model, or Geant4
showers coarse-grained) are turned into fine ones, and many fine showers can be drawn from fewer coarse ones. The
K variations of coarse shower n are rows n K .. n K + K - 1 of the output, with its incident energy. It runs
through ``caloforge generate``'s loop: batch b draws its noise from a generator seeded by (seed, b).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from caloforge.data import open_showers
from caloforge.errors import CaloforgeError
from caloforge.models.supercalo.model import SuperCalo
from caloforge.sampling.generate import write_showers


@torch.no_grad()
def upsample_file(model: SuperCalo, coarse_path: str | Path, out: str | Path, *, variations: int = 1,
                  n: int | None = None, batch_size: int = 100, seed: int = 0, device: torch.device | str = "cpu",
                  attrs: dict | None = None, progress: bool = True) -> Path:
    """Write ``variations`` fine showers per coarse shower of ``coarse_path`` (its first ``n``, default all) to
    ``out``; returns ``out``."""
    if variations < 1:
        raise CaloforgeError(f"variations must be at least 1, got {variations}")
    device = torch.device(device)
    model = model.to(device).eval()
    handle = open_showers(coarse_path, model.voxelisation.coarse)
    n = handle.n if n is None else min(n, handle.n)
    record = {**(attrs or {}), "source": str(coarse_path), "variations": variations, "seed": seed,
              "batch_size": batch_size, "geometry": model.voxelisation.fine.name}

    def draw(chunk: tuple[np.ndarray, np.ndarray], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        energies = torch.from_numpy(chunk[0]).to(device).repeat_interleave(variations)
        coarse = torch.from_numpy(chunk[1]).to(device).repeat_interleave(variations, dim=0)
        return energies, model.upsample(energies, coarse, generator=generator)

    return write_showers(Path(out), model.voxelisation.fine.n_voxels, record,
                         enumerate(handle.iter_chunks(batch_size, stop=n)), -(-n // batch_size), draw, seed=seed,
                         device=device, progress=progress)
