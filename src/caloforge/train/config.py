"""Typed run configuration, loaded from YAML.

A run file has four sections: which ``family`` and ``geometry``, the ``data`` to train on, the family's ``model``
hyper-parameters (checked against the family's dataclass) and the ``train`` settings shared by all families.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from caloforge.checks import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, SEED, OneOf, Range, device
from caloforge.contract import Checked, as_mapping, checked, family_names, from_dict
from caloforge.errors import CaloforgeError


def known_family(name: str, value: Any) -> None:
    """A registered model family."""
    OneOf(tuple(family_names()))(name, value)


@dataclass
class DataConfig(Checked):
    train: str = ""
    #: use only the first ``limit`` showers of the file (quick runs)
    limit: int | None = checked(COUNT, None)
    #: fraction held out for validation loss and early stopping (seeded split)
    val_fraction: float = checked(FRACTION, 0.15)
    #: replace every training shower by a random rotation or reflection of it about the beam axis (the mesh's
    #: symmetries, ``Geometry.alpha_symmetries``): up to 2g times the data for a detector symmetric in alpha
    augment: bool = False


@dataclass
class TrainConfig(Checked):
    #: 0: nothing trained; model.pt holds the init_from weights under this run's config, for a change that only
    #: sampling reads (CaloMan's hit_energy law)
    epochs: int = checked(NON_NEGATIVE, 100)
    batch_size: int = checked(COUNT, 128)
    lr: float = checked(POSITIVE, 4e-4)
    weight_decay: float = checked(NON_NEGATIVE, 0.0)
    #: "cosine" (warm-up then cosine decay over all epochs) or "plateau" (x0.1 after ``lr_patience`` flat epochs)
    schedule: str = checked(OneOf(("cosine", "plateau")), "cosine")
    warmup_steps: int = checked(NON_NEGATIVE, 200)
    lr_patience: int = checked(NON_NEGATIVE, 15)
    ema_decay: float = checked(Range(0, 1, high_open=True), 0.999)
    #: gradient norm clip (0: none)
    grad_clip: float = checked(NON_NEGATIVE, 1.0)
    #: stop when the validation loss has not improved for this many epochs (0: never)
    patience: int = checked(NON_NEGATIVE, 20)
    #: the weights ``model.pt`` holds: the "best" validation epoch's or the "last" epoch's (a loss whose value is a
    #: random draw's, like CaloMan's ``drawn_moments``, measures no progress)
    keep: str = checked(OneOf(("best", "last")), "best")
    seed: int = checked(SEED, 1234)
    #: stop after this many optimiser steps in total (0: no limit); for short CPU runs and tests
    max_steps: int = checked(NON_NEGATIVE, 0)
    #: stop once training has used this many minutes of CPU time, all threads and resumed runs together (0: no
    #: limit): budgeted pilots compare designs at equal cost
    cpu_minutes: float = checked(NON_NEGATIVE, 0.0)
    #: weights to start from (a teacher, or a pretrained part); loaded non-strictly. A list: several checkpoints in
    #: turn, each overriding the ones before where they share a weight (a student's own weights from one run and
    #: the frozen parts it works with from a later one)
    init_from: str | list[str] | None = None
    device: str = checked(device, "auto")
    #: run the model's loss through ``torch.compile`` (training and validation): the first batches pay a minute of
    #: compilation, and elementwise-heavy models gain most (the layerwise CaloFlow teacher on par04: 22 s to about
    #: 7 s per batch on two CPU threads, its spline arithmetic fused). Compiled code draws its random numbers from
    #: its own generator (seeded from the run's seed), so it does not repeat an eager run draw for draw
    compile: bool = False
    #: also keep the averaged weights of every k-th epoch as ``epoch-K.pt`` (0: none): a learning curve scored
    #: after the run (``bench/bench_pilot.py``)
    snapshot_every: int = checked(NON_NEGATIVE, 0)


@dataclass
class RunConfig(Checked):
    family: str = checked(known_family)
    geometry: str
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: generation options stored with the model (``sampler``, ``steps``, ...)
    sample: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_config_from_dict(values: dict, where: str = "config") -> RunConfig:
    values = dict(as_mapping(values, where))
    for key in ("model", "sample"):
        values[key] = as_mapping(values.get(key) or {}, f"{where}: {key}")
    data = from_dict(DataConfig, values.pop("data", {}) or {}, f"{where}: data")
    train = from_dict(TrainConfig, values.pop("train", {}) or {}, f"{where}: train")
    for key in ("family", "geometry"):
        if key not in values:
            raise CaloforgeError(f"{where}: missing '{key}'")
    return from_dict(RunConfig, {**values, "data": data, "train": train}, where)


def _override(values: dict, item: str) -> None:
    """Apply one ``--set section.key=value`` (the value in YAML) to the raw config ``values``."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise CaloforgeError(f"--set '{item}': not of the form section.key=value")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise CaloforgeError(f"--set '{item}': the value is not YAML ({' '.join(str(err).split())})") from None
    node = values
    *parents, leaf = key.split(".")
    for depth, part in enumerate(parents):
        node = as_mapping(node.setdefault(part, {}), f"--set '{item}': {'.'.join(parents[:depth + 1])}")
    node[leaf] = value


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run file; ``overrides`` like ``train.epochs=3`` or ``model.channels=[8,8]`` (YAML values)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CaloforgeError(f"{path}: cannot read YAML config ({' '.join(str(err).split())})") from None
    as_mapping(values, str(path))
    for item in overrides or []:
        _override(values, item)
    return run_config_from_dict(values, str(path))
