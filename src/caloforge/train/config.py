"""Typed run configuration, loaded from YAML.

A run file has four sections: which ``family`` and ``geometry``, the ``data`` to train on, the family's ``model``
hyper-parameters (checked against the family's dataclass) and the ``train`` settings shared by all families.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from caloforge.errors import CaloforgeError


@dataclass
class DataConfig:
    train: str = ""
    #: use only the first ``limit`` showers of the file (quick runs)
    limit: int | None = None
    #: fraction held out for validation loss and early stopping (seeded split)
    val_fraction: float = 0.15
    #: replace every training shower by a random rotation or reflection of it about the beam axis (the mesh's
    #: symmetries, ``Geometry.alpha_symmetries``): up to 2g times the data for a detector symmetric in alpha
    augment: bool = False


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 128
    lr: float = 4e-4
    weight_decay: float = 0.0
    #: "cosine" (warm-up then cosine decay over all epochs) or "plateau" (x0.1 after ``lr_patience`` flat epochs)
    schedule: str = "cosine"
    warmup_steps: int = 200
    lr_patience: int = 15
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    #: stop when the validation loss has not improved for this many epochs (0: never)
    patience: int = 20
    seed: int = 1234
    #: stop after this many optimiser steps in total (0: no limit); for short CPU runs and tests
    max_steps: int = 0
    #: weights to start from (a teacher, or a pretrained part); loaded non-strictly
    init_from: str | None = None
    device: str = "auto"
    #: run the model's loss through ``torch.compile`` (training and validation): the first batches pay a minute of
    #: compilation, and elementwise-heavy models gain most (the layerwise CaloFlow teacher on par04: 22 s to about
    #: 7 s per batch on two CPU threads, its spline arithmetic fused). Compiled code draws its random numbers from
    #: its own generator (seeded from the run's seed), so it does not repeat an eager run draw for draw
    compile: bool = False


@dataclass
class RunConfig:
    family: str
    geometry: str
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: generation options stored with the model (``sampler``, ``steps``, ...)
    sample: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _number(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the number a field typed ``hint`` holds. YAML 1.1 reads ``3e-4`` (no dot) as a string, and
    an int where a float goes is fine; anything else that is not a number is refused."""
    kinds = set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else {hint}
    if float not in kinds and int not in kinds or value is None or isinstance(value, bool):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CaloforgeError(f"{where}: {value!r} is not a number") from None
    if float in kinds:
        return number
    if not number.is_integer():
        raise CaloforgeError(f"{where}: {value!r} is not a whole number")
    return int(number)


def from_dict(cls: type, values: dict, where: str) -> Any:
    """Build dataclass ``cls`` from a dict, refusing unknown keys and non-numbers in numeric fields with a one-line
    error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise CaloforgeError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    values = {key: _number(value, hints[key], f"{where}: {key}") for key, value in values.items()}
    try:
        return cls(**values)
    except TypeError as err:
        raise CaloforgeError(f"{where}: {err}") from None


def run_config_from_dict(values: dict, where: str = "config") -> RunConfig:
    values = dict(values)
    data = from_dict(DataConfig, values.pop("data", {}) or {}, f"{where}: data")
    train = from_dict(TrainConfig, values.pop("train", {}) or {}, f"{where}: train")
    for key in ("family", "geometry"):
        if key not in values:
            raise CaloforgeError(f"{where}: missing '{key}'")
    return from_dict(RunConfig, {**values, "data": data, "train": train}, where)


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run file; ``overrides`` like ``train.epochs=3`` or ``model.channels=[8,8]`` (YAML values)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CaloforgeError(f"{path}: cannot read YAML config ({err})") from None
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise CaloforgeError(f"override '{item}' is not of the form section.key=value")
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return run_config_from_dict(values, str(path))
