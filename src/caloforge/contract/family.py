"""The contract between a model family and caloforge's one trainer and one generation path, and the registry.

A family is a hyper-parameter dataclass plus two functions:

- ``fit(config, geometry, energies, showers) -> dict``: what the model learns from the training data before any
  gradient step (fitted preprocessing); JSON-serialisable, stored in the checkpoint header.
- ``build(config, geometry, fitted) -> ShowerModel``: the network, rebuilt identically from a checkpoint (usually
  the model class itself).

A family trained on top of a frozen model of another family (a student on its teacher) declares that model
(``frozen``, a ``FrozenModel``) instead of ``fit``: it takes the frozen model's fitted preprocessing.

A ``ShowerModel`` is an ``nn.Module`` whose ``forward(energies, showers)`` returns the scalar training loss (so
DistributedDataParallel synchronises its gradients) and whose ``sample(energies, generator, **options)`` returns
showers in MeV. Both take raw data: incident energies (N,) and voxel energies (N, voxels) in MeV; preprocessing
lives inside the model.

A family is a package under ``caloforge.models`` whose ``__init__`` declares ``FAMILY``; registering it is one line
in ``_MODULES``. The registry imports a family's package only when the family is asked for, so this layer never
imports ``caloforge.models`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry

if TYPE_CHECKING:  # frozen.py loads checkpoints, whose loading needs this module's registry
    from caloforge.contract.frozen import FrozenModel


#: training showers a family's ``fit`` uses at most (the training set arrives shuffled): more would move a few
#: standardisation numbers by nothing that matters, and would hold several copies of a ds3 file in memory
FIT_SHOWERS = 10_000


@runtime_checkable
class ShowerModel(Protocol):
    def forward(self, energies: Tensor, showers: Tensor) -> Tensor: ...

    def sample(self, energies: Tensor, generator: torch.Generator | None = None, **options: Any) -> Tensor: ...


@dataclass(frozen=True)
class Family:
    """A registered model family."""

    name: str
    config: type
    build: Callable[[Any, Geometry, dict], nn.Module]
    fit: Callable[[Any, Geometry, Tensor, Tensor], dict] | None = None
    #: the frozen model this family trains on top of; its ``fit`` is the family's
    frozen: FrozenModel | None = None
    #: generation options used when the user gives none (e.g. sampler and steps)
    sample_defaults: dict = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if (self.fit is None) == (self.frozen is None):
            raise TypeError(f"family {self.name}: declare either fit or the frozen model it trains on top of")
        if self.frozen is not None:
            object.__setattr__(self, "fit", self.frozen.fit)


#: family name -> the package that declares its ``FAMILY``
_MODULES = {
    "calodiffusion": "caloforge.models.diffusion",
    "calodiffusion-student": "caloforge.models.distill",
    "supercalo": "caloforge.models.supercalo",
    "caloflow-teacher": "caloforge.models.caloflow",
    "caloflow-student": "caloforge.models.caloflow_student",
    "caloman": "caloforge.models.caloman",
    "flowmatch": "caloforge.models.flowmatch",
    "flowmatch-student": "caloforge.models.flowmatch_student",
}


def family_names() -> list[str]:
    return list(_MODULES)


def get_family(name: str) -> Family:
    if name not in _MODULES:
        raise CaloforgeError(f"unknown model family '{name}'; available: {', '.join(_MODULES)}")
    family = import_module(_MODULES[name]).FAMILY
    assert family.name == name, f"{_MODULES[name]}.FAMILY is named {family.name}, registered as {name}"
    return family
