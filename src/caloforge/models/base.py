"""The contract between a model family and caloforge's one trainer and one generation path.

A family is a hyper-parameter dataclass plus two functions:

- ``fit(config, geometry, energies, showers) -> dict``: what the model learns from the training data before any
  gradient step (fitted preprocessing); JSON-serialisable, stored in the checkpoint header.
- ``build(config, geometry, fitted) -> ShowerModel``: the network, rebuilt identically from a checkpoint.

A ``ShowerModel`` is an ``nn.Module`` whose ``forward(energies, showers)`` returns the scalar training loss (so
DistributedDataParallel synchronises its gradients) and whose ``sample(energies, generator, **options)`` returns
showers in MeV. Both take raw data: incident energies (N,) and voxel energies (N, voxels) in MeV; preprocessing
lives inside the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from caloforge.geometry import Geometry


@runtime_checkable
class ShowerModel(Protocol):
    def forward(self, energies: Tensor, showers: Tensor) -> Tensor: ...

    def sample(self, energies: Tensor, generator: torch.Generator | None = None, **options: Any) -> Tensor: ...


@dataclass(frozen=True)
class Family:
    """A registered model family."""

    name: str
    config: type
    fit: Callable[[Any, Geometry, Tensor, Tensor], dict]
    build: Callable[[Any, Geometry, dict], nn.Module]
    #: generation options used when the user gives none (e.g. sampler and steps)
    sample_defaults: dict = field(default_factory=dict)
    description: str = ""
