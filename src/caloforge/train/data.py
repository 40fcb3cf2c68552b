"""Training data: showers held in memory as tensors, served in (shuffled, rank-sharded) batches."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from caloforge.data import open_showers
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.train.config import DataConfig
from caloforge.train.distributed import Context

#: refuse to hold more than this in memory; larger files are trained on a ``limit`` (streamed training is future work)
MAX_IN_MEMORY_BYTES = 12 * 1024**3


class ShowerTensors(Dataset):
    """(energies, showers) rows; fetched a whole batch at a time (``__getitems__``) rather than row by row."""

    def __init__(self, energies: torch.Tensor, showers: torch.Tensor):
        self.energies, self.showers = energies, showers

    def __len__(self) -> int:
        return len(self.energies)

    def __getitem__(self, index: int):
        return self.energies[index], self.showers[index]

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices)
        return self.energies[index], self.showers[index]


def load_split(config: DataConfig, geometry: Geometry, seed: int) -> tuple[ShowerTensors, ShowerTensors]:
    """Read the training file (streamed, checked) and split it into train and validation sets by a seeded shuffle."""
    handle = open_showers(config.train, geometry)
    n = handle.n if config.limit is None else min(config.limit, handle.n)
    if n * geometry.n_voxels * 4 > MAX_IN_MEMORY_BYTES:
        raise CaloforgeError(f"{config.train}: {n} showers of {geometry.n_voxels} voxels exceed the in-memory "
                             f"training budget; set data.limit")
    showers = torch.empty(n, geometry.n_voxels)
    energies = torch.empty(n)
    for start, (e, s) in zip(range(0, n, 10_000), handle.iter_chunks(10_000, stop=n)):
        energies[start:start + len(e)] = torch.from_numpy(e)
        showers[start:start + len(e)] = torch.from_numpy(s)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(config.val_fraction * n)))
    val, train = order[:n_val], order[n_val:]
    return ShowerTensors(energies[train], showers[train]), ShowerTensors(energies[val], showers[val])


def alpha_augmenter(geometry: Geometry, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """showers -> each row mapped by a random one of the mesh's rotations and reflections about the beam axis.

    The draws come from torch's global generator, which the trainer seeds and checkpoints (resumable)."""
    images = torch.as_tensor(geometry.alpha_symmetries, device=device)

    def augment(showers: torch.Tensor) -> torch.Tensor:
        choice = torch.randint(len(images), (len(showers),)).to(device)
        return showers.gather(1, images[choice])
    return augment


def make_loader(dataset: ShowerTensors, batch_size: int, ctx: Context, seed: int, shuffle: bool) -> DataLoader:
    """Batches for this rank; with ``shuffle`` the order is a function of (seed, epoch): resumable and repeatable."""
    sampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed,
                                 drop_last=shuffle)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=lambda batch: batch,
                      drop_last=shuffle)
