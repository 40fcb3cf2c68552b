"""caloforge's one checkpoint format: tensors plus a JSON header, loadable without running any code.

The file is a ``torch.save`` of a dict holding only tensors, numbers and strings, read back with
``torch.load(weights_only=True)``: a file that smuggles pickled objects (code) is refused. The JSON header holds
everything needed to rebuild the model: family, geometry, hyper-parameters, fitted preprocessing, caloforge version.
Writes go to a temporary name and are renamed when complete, so a killed run never leaves a broken checkpoint.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from caloforge import __version__
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry

FORMAT = "caloforge-checkpoint-v1"


def geometry_to_dict(geometry: Geometry) -> dict:
    return {"name": geometry.name, "layer_ids": list(geometry.layer_ids), "n_alpha": list(geometry.n_alpha),
            "r_edges": [list(map(float, e)) for e in geometry.r_edges], "particle": geometry.particle,
            "parent": geometry.parent,
            "parent_layers": [list(g) for g in geometry.parent_layers] if geometry.parent_layers else None}


def geometry_from_dict(values: dict) -> Geometry:
    return Geometry(name=values["name"], layer_ids=tuple(values["layer_ids"]), n_alpha=tuple(values["n_alpha"]),
                    r_edges=tuple(np.asarray(e) for e in values["r_edges"]), particle=values.get("particle", ""),
                    parent=values.get("parent"),
                    parent_layers=tuple(tuple(g) for g in values["parent_layers"]) if values.get("parent_layers") else None)


@dataclass
class Checkpoint:
    header: dict
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None = None
    optimizer: dict | None = None
    scheduler: dict | None = None
    rng: torch.Tensor | None = None

    @property
    def geometry(self) -> Geometry:
        return geometry_from_dict(self.header["geometry"])


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"format": FORMAT, "header": json.dumps({**checkpoint.header, "caloforge_version": __version__}),
                               "model": checkpoint.model}
    for key in ("ema", "optimizer", "scheduler", "rng"):
        if getattr(checkpoint, key) is not None:
            payload[key] = getattr(checkpoint, key)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CaloforgeError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unsafe content"
        raise CaloforgeError(f"{path}: refused: the file holds objects that would run code on loading, "
                             f"not only tensors ({first})") from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise CaloforgeError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CaloforgeError(f"{path}: not a caloforge checkpoint (no '{FORMAT}' marker)")
    return Checkpoint(header=json.loads(payload["header"]), model=payload["model"], ema=payload.get("ema"),
                      optimizer=payload.get("optimizer"), scheduler=payload.get("scheduler"), rng=payload.get("rng"))


def build_model(checkpoint: Checkpoint, use_ema: bool = True) -> nn.Module:
    """The model of a checkpoint, in eval mode, with its EMA weights when present."""
    from caloforge.models import get_family
    from caloforge.train.config import from_dict

    family = get_family(checkpoint.header["family"])
    config = from_dict(family.config, checkpoint.header["model_config"], "checkpoint model_config")
    model = family.build(config, checkpoint.geometry, checkpoint.header["fitted"])
    weights = checkpoint.ema if (use_ema and checkpoint.ema is not None) else checkpoint.model
    model.load_state_dict(weights)
    return model.eval()


def load_model(path: str | Path, use_ema: bool = True, map_location: str = "cpu") -> tuple[nn.Module, Checkpoint]:
    checkpoint = load_checkpoint(path, map_location)
    return build_model(checkpoint, use_ema), checkpoint


def load_family_checkpoint(path: str | Path, family: str) -> Checkpoint:
    """A checkpoint that must be of ``family`` (a distillation teacher, say)."""
    checkpoint = load_checkpoint(path)
    if checkpoint.header["family"] != family:
        raise CaloforgeError(f"{path}: expected a {family} checkpoint, not {checkpoint.header['family']}")
    return checkpoint


@cache
def load_frozen_model(path: str, family: str) -> nn.Module:
    """The model of a ``family`` checkpoint (EMA weights), frozen, in eval mode, loaded once per path and process.

    Students hold their teacher through this cache rather than as a submodule, so the teacher never enters the
    student's state_dict or checkpoint, and the student samples without the teacher's file.
    """
    return build_model(load_family_checkpoint(path, family)).requires_grad_(False)


def slim(checkpoint: Checkpoint, half: bool = False) -> Checkpoint:
    """The checkpoint to ship: averaged (EMA) weights only, no optimiser state.

    ``half`` stores floating-point weights as float16, half the file: ``load_state_dict`` copies them back into the
    float32 model, which then computes as before (the shipped CaloMan and CaloFlow student, stored so, scored as
    their float32 originals; a CaloMan's voxels moved by 2e-4 relative, median).
    """
    weights = checkpoint.ema if checkpoint.ema is not None else checkpoint.model
    if half:
        weights = {key: value.half() if value.is_floating_point() else value for key, value in weights.items()}
    return Checkpoint(header=checkpoint.header, model=weights)
