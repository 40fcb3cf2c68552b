"""Up-sampling a file of coarse showers: K fine variations of every coarse shower, written in chunks.

This is SuperCalo's second use beside the full chain: coarse showers from anywhere (a coarse model, or Geant4
showers coarse-grained) are turned into fine ones, and many fine showers can be drawn from fewer coarse ones. The
K variations of coarse shower n are rows n K .. n K + K - 1 of the output, with its incident energy. As in
``caloforge generate``, batch b draws its noise from a generator seeded by (seed, b).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from caloforge.data import ShowerWriter, open_showers
from caloforge.errors import CaloforgeError
from caloforge.models.supercalo.model import SuperCalo
from caloforge.sampling.generate import batch_generator


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
    started = time.perf_counter()
    record = {**(attrs or {}), "source": str(coarse_path), "variations": variations, "seed": seed,
              "batch_size": batch_size, "geometry": model.voxelisation.fine.name}
    chunks = handle.iter_chunks(batch_size, stop=n)
    with ShowerWriter(out, model.voxelisation.fine.n_voxels, record) as writer:
        for b, (energies, coarse) in enumerate(tqdm(chunks, total=-(-n // batch_size), unit="batch",
                                                    desc=f"up-sampling {Path(coarse_path).name}", leave=False,
                                                    disable=not progress)):
            energies = torch.from_numpy(energies).to(device).repeat_interleave(variations)
            coarse = torch.from_numpy(coarse).to(device).repeat_interleave(variations, dim=0)
            fine = model.upsample(energies, coarse, generator=batch_generator(seed, b, device))
            writer.append(energies.cpu().numpy(), fine.cpu().numpy())
        writer.attrs["seconds"] = time.perf_counter() - started
    return Path(out)
