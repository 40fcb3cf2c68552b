"""A model trained on top of a frozen one: a student distilled from its teacher, say.

The new family names the frozen checkpoint in one field of its config and declares ``FrozenModel(family, field)``
once; that declaration is the family's ``fit`` (it learns nothing from the data itself: it takes the frozen model's
fitted preprocessing and records its architecture) and loads the frozen model while training. The frozen model is
held in a per-process cache, outside the new model's submodules: it never enters its state_dict or checkpoint, and
the trained model generates without the frozen model's file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from caloforge.contract.checkpoint import load_family_checkpoint, load_frozen_model
from caloforge.contract.config import from_dict
from caloforge.contract.family import get_family
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry

#: the key of ``fitted`` holding the frozen model's hyper-parameters (the new model's architecture is built from
#: them; shipped checkpoints store it under this name)
FROZEN_CONFIG = "teacher_config"


@dataclass(frozen=True)
class FrozenModel:
    """The frozen checkpoint of family ``family`` named by the config field ``field``."""

    family: str
    field: str = "teacher"

    def path(self, config: Any) -> str:
        return getattr(config, self.field)

    def fit(self, config: Any, geometry: Geometry, energies: Tensor, showers: Tensor) -> dict:
        """The frozen model's fitted preprocessing and its hyper-parameters (``FROZEN_CONFIG``), refused when it
        models another geometry."""
        path = self.path(config)
        header = load_family_checkpoint(path, self.family).header
        if header["geometry"]["name"] != geometry.name:
            raise CaloforgeError(f"{path}: a {self.family} model of {header['geometry']['name']}, not of "
                                 f"{geometry.name}")
        return {**header["fitted"], FROZEN_CONFIG: header["model_config"]}

    def config(self, fitted: dict) -> Any:
        """The frozen model's hyper-parameters, as stored by ``fit``: the architecture the new model shares."""
        return from_dict(get_family(self.family).config, fitted[FROZEN_CONFIG], f"{self.family} {FROZEN_CONFIG}")

    def load(self, config: Any, device: torch.device) -> nn.Module:
        """The frozen model (EMA weights, eval mode, no gradients) on ``device``, read once per process."""
        return load_frozen_model(self.path(config), self.family).to(device)
