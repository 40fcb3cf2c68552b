"""The one generation path: any model, showers written in chunks to a CaloChallenge file.

Batch ``b`` draws its noise from a generator seeded by ``(seed, b)``, so the output does not depend on how the
work is split: ``--shard i/n`` (or one shard per torchrun rank) writes the showers of every n-th block of batches,
and the shards concatenated equal a single run. Memory is bounded by one batch.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from caloforge.checks import ENERGY_MEV, require_memory
from caloforge.data import ShowerWriter, open_showers
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry

_LOG_UNIFORM = re.compile(r"^log-uniform:([0-9.eE+-]+):([0-9.eE+-]+)$")


def incident_energies(spec: str, n: int | None, seed: int) -> np.ndarray:
    """Energies (MeV) from ``FILE.h5`` (its incident energies, in order) or ``log-uniform:LO:HI`` (MeV)."""
    match = _LOG_UNIFORM.match(spec)
    if match:
        low, high = float(match[1]), float(match[2])
        for bound, value in (("LO", low), ("HI", high)):
            ENERGY_MEV(f"--energies {spec}: {bound} (MeV)", value)
        if not low < high:
            raise CaloforgeError(f"--energies {spec}: need LO < HI (MeV)")
        if n is None:
            raise CaloforgeError("energies from a log-uniform spectrum need --n")
        # drawn in float64: uniform draws and their exponentials are held at once
        require_memory(f"--n {n}: the incident energies", 16 * n)
        rng = np.random.default_rng(seed)
        return np.exp(rng.uniform(np.log(low), np.log(high), size=n)).astype(np.float32)
    if spec.endswith((".h5", ".hdf5")):
        energies = open_showers(spec).energies()
        if n is not None and n > len(energies):
            raise CaloforgeError(f"{spec}: holds {len(energies)} incident energies, fewer than --n {n}")
        return energies[:n] if n is not None else energies
    raise CaloforgeError(f"energies '{spec}': give a CaloChallenge .h5 file or log-uniform:LO:HI (MeV)")


def batch_generator(seed: int, batch_index: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + batch_index)


def shard_batches(n_batches: int, shard: int, n_shards: int) -> range:
    """The contiguous block of batch indices of one shard."""
    if not 0 <= shard < n_shards:
        raise CaloforgeError(f"shard {shard}/{n_shards}: need 0 <= i < n")
    per = -(-n_batches // n_shards)
    return range(shard * per, min((shard + 1) * per, n_batches))


def shard_path(out: Path, shard: int, n_shards: int) -> Path:
    return out if n_shards == 1 else out.with_name(f"{out.stem}.shard{shard}of{n_shards}{out.suffix}")


@torch.no_grad()
def write_showers(out: Path, n_voxels: int, record: dict, batches: Iterable[tuple[int, Any]], n_batches: int,
                  draw: Callable[[Any, torch.Generator], tuple[torch.Tensor, torch.Tensor]], *, seed: int,
                  device: torch.device, progress: bool) -> Path:
    """The generation loop: ``draw(batch, generator)`` gives the (energies, showers) of each ``(b, batch)`` of
    ``batches``, batch b drawing its noise from ``batch_generator(seed, b)``; written to ``out`` with ``record``
    and the seconds it took."""
    started = time.perf_counter()
    with ShowerWriter(out, n_voxels, record) as writer:
        # the bar shows on a terminal only (disable=None), so that logged stderr holds just a failure's one line
        for b, batch in tqdm(batches, total=n_batches, desc=f"generating {out.name}", unit="batch",
                             disable=None if progress else True, leave=False):
            energies, showers = draw(batch, batch_generator(seed, b, device))
            writer.append(energies.cpu().numpy(), showers.float().cpu().numpy())
        writer.attrs["seconds"] = time.perf_counter() - started
    return out


@torch.no_grad()
def generate(model: torch.nn.Module, geometry: Geometry, energies: np.ndarray, out: str | Path, *,
             batch_size: int = 1000, seed: int = 0, options: dict | None = None, shard: tuple[int, int] = (0, 1),
             device: torch.device | str = "cpu", attrs: dict | None = None, progress: bool = True) -> Path:
    """Generate one shower per incident energy into ``out`` (or its shard file); returns the path written."""
    require_memory(f"--batch-size {batch_size}: the showers of one batch ({geometry.n_voxels} voxels each)",
                   4 * batch_size * geometry.n_voxels)
    device = torch.device(device)
    model = model.to(device).eval()
    n_batches = -(-len(energies) // batch_size)
    batches = shard_batches(n_batches, *shard)
    record = {**(attrs or {}), "seed": seed, "batch_size": batch_size, "shard": f"{shard[0]}/{shard[1]}",
              "geometry": geometry.name, **{f"option_{k}": str(v) for k, v in (options or {}).items()}}

    def draw(block: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        block = torch.from_numpy(block).to(device)
        return block, model.sample(block, generator=generator, **(options or {}))

    blocks = ((b, energies[b * batch_size:(b + 1) * batch_size]) for b in batches)
    return write_showers(shard_path(Path(out), *shard), geometry.n_voxels, record, blocks, len(batches), draw,
                         seed=seed, device=device, progress=progress)


def merge_shards(out: str | Path, n_shards: int, remove: bool = True) -> Path:
    """Concatenate shard files (in order) into ``out``, streamed; used by rank 0 after a torchrun generation."""
    out = Path(out)
    parts = [open_showers(shard_path(out, i, n_shards)) for i in range(n_shards)]
    with ShowerWriter(out, parts[0].n_voxels, {**parts[0].attrs(), "shard": f"merged {n_shards}"}) as writer:
        for part in parts:
            for energies, showers in part.iter_chunks(10_000):
                writer.append(energies, showers)
    if remove:
        for part in parts:
            os.remove(part.path)
    return out
