"""caloforge's one checkpoint format: tensors plus a JSON header, loadable without running any code.

The file is a ``torch.save`` of a dict holding only tensors, numbers and strings, read back with
``torch.load(weights_only=True)``: a file that smuggles pickled objects (code) is refused. The JSON header holds
everything needed to rebuild the model: family, geometry, hyper-parameters, fitted preprocessing, caloforge version.
Writes go to a temporary name and are renamed when complete, so a killed run never leaves a broken checkpoint.

A shipped checkpoint trained on top of another shipped one (a distilled student whose decoder is its teacher's)
may store only its own weights and name the other file as its ``base`` (file name and SHA-256): the loader reads the
rest from that file, which must sit in the same folder, so two models share their common weights on disk once.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from caloforge import __version__
from caloforge.contract.config import from_dict
from caloforge.contract.family import get_family
from caloforge.data.io import claim_target, commit_target
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
    payload: dict[str, Any] = {"format": FORMAT, "header": json.dumps({**checkpoint.header, "caloforge_version": __version__}),
                               "model": checkpoint.model}
    for key in ("ema", "optimizer", "scheduler", "rng"):
        if getattr(checkpoint, key) is not None:
            payload[key] = getattr(checkpoint, key)
    tmp = claim_target(path)
    try:
        torch.save(payload, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    commit_target(tmp, path)
    return path


#: the first bytes of a ``torch.save`` file: a zip archive (caloforge never writes torch's older bare pickles)
ZIP_MAGIC = b"PK\x03\x04"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint; anything else is refused in one line saying what the file is."""
    path = Path(path)
    payload = _load_payload(path, map_location)
    header = _header(payload)
    if header is None or not isinstance(payload.get("model"), dict):
        raise CaloforgeError(f"{path}: damaged caloforge checkpoint (its header or weights are missing)")
    model = payload["model"]
    if "base" in header:
        model = {**_base_weights(path, header, map_location), **model}
    return Checkpoint(header=header, model=model, ema=payload.get("ema"),
                      optimizer=payload.get("optimizer"), scheduler=payload.get("scheduler"), rng=payload.get("rng"))


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _base_weights(path: Path, header: dict, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    """The weights of the checkpoint ``path`` names as its base (``header["base"]``): the file of that name beside
    it, byte for byte the one it was exported against; only those its own model has a place for, since the base
    may hold parts of its own (a flagship whose flow 1 changed kind beside a fast mode that keeps its own)."""
    base = header["base"]
    base_path = path.parent / base["file"]
    if base_path.name == path.name:
        raise CaloforgeError(f"{path}: damaged caloforge checkpoint (it names itself as its base)")
    if not base_path.is_file():
        raise CaloforgeError(f"{path}: shares its other weights with {base['file']}, which must sit beside it "
                             f"in {path.parent}")
    if file_digest(base_path) != base["sha256"]:
        raise CaloforgeError(f"{path}: {base_path} is not the file it was exported against (its SHA-256 differs); "
                             "export it again against this one")
    expected = model_from_header(header, str(path)).state_dict()
    return {name: tensor for name, tensor in load_checkpoint(base_path, map_location).model.items() if name in expected}


def _header(payload: dict) -> dict | None:
    """The JSON header naming at least the family, or None."""
    try:
        header = json.loads(payload.get("header"))
    except (TypeError, ValueError):
        return None
    return header if isinstance(header, dict) and "family" in header else None


def _load_payload(path: Path, map_location: str | torch.device) -> dict:
    """The saved dict, unpickled with ``weights_only``: only tensors, numbers and strings, no code."""
    if not path.is_file():
        raise CaloforgeError(f"{path}: no such checkpoint")
    with path.open("rb") as f:
        magic = f.read(len(ZIP_MAGIC))
    if not magic:
        raise CaloforgeError(f"{path}: truncated: the file is empty")
    if magic != ZIP_MAGIC:
        raise CaloforgeError(f"{path}: not a caloforge checkpoint (not a PyTorch file)")
    if not zipfile.is_zipfile(path):
        raise CaloforgeError(f"{path}: truncated: a PyTorch file cut short (its zip directory is missing)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names the callable the pickle would have run, e.g. "unsupported GLOBAL posix.system"
        named = re.search(r"GLOBAL ([\w.]+)", str(err))
        raise CaloforgeError(f"{path}: refused: contains code ({named[1] if named else 'a pickled object'}, "
                             "which would run on loading; a checkpoint holds only tensors)") from None
    except (RuntimeError, OSError, EOFError, ValueError, KeyError) as err:
        raise CaloforgeError(f"{path}: not a caloforge checkpoint (unreadable PyTorch file: "
                             f"{(str(err).strip().splitlines() or [type(err).__name__])[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CaloforgeError(f"{path}: not a caloforge checkpoint (no '{FORMAT}' marker)")
    return payload


def model_from_header(header: dict, where: str = "checkpoint") -> nn.Module:
    """The untrained model a checkpoint header describes (its family, model config, geometry and fitted
    preprocessing); a SuperCalo chain embeds its coarse model's header the same way."""
    family = get_family(header["family"])
    config = from_dict(family.config, header["model_config"], f"{where} model_config")
    return family.build(config, geometry_from_dict(header["geometry"]), header["fitted"])


def build_model(checkpoint: Checkpoint, use_ema: bool = True, source: str | Path = "checkpoint") -> nn.Module:
    """The model of a checkpoint (read from ``source``), in eval mode, with its EMA weights when present."""
    model = model_from_header(checkpoint.header)
    load_weights(model, checkpoint.ema if (use_ema and checkpoint.ema is not None) else checkpoint.model, source)
    return model.eval()


def rebuilt_by_architecture(name: str, tensor: torch.Tensor) -> bool:
    """Whether a saved tensor follows from the model's architecture alone, so that a shipped checkpoint leaves it
    out and loading takes the rebuilt model's own: zuko's MADE masks (boolean ``mask`` buffers, derived from the
    seeded feature orders; a third of a flow checkpoint's bytes)."""
    return name.endswith(".mask") and tensor.dtype == torch.bool


def training_only(model: nn.Module) -> tuple[str, ...]:
    """The state-dict name prefixes of what ``model`` needs for training alone, so that a shipped checkpoint leaves
    them out and loading keeps the built model's own (a model declares them as ``training_only``): a consistency
    student's target network and count of updates (half its file), CaloMan's encoder once its flows train."""
    return getattr(model, "training_only", ())


def left_out_of_shipping(name: str, tensor: torch.Tensor, prefixes: tuple[str, ...] = ()) -> bool:
    """Whether a shipped checkpoint leaves a tensor out: rebuilt by the architecture, or under one of the model's
    ``training_only`` ``prefixes``."""
    return rebuilt_by_architecture(name, tensor) or name.startswith(prefixes)


def masks_of_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The MADE mask of each masked weight in ``state``, by the weight's name: zuko's masked layers compute with
    ``mask * weight``, so a weight's masked-out entries never matter."""
    return {name.removesuffix("mask") + "weight": mask for name, mask in state.items()
            if rebuilt_by_architecture(name, mask) and mask.shape == getattr(
                state.get(name.removesuffix("mask") + "weight"), "shape", None)}


def pack_masked(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each masked weight as the 1-D tensor of its entries under the mask (a quarter to a half of a flow's weights
    are masked out): what a shipped checkpoint stores. Weights packed already stay as they are."""
    return {name: tensor[masks[name]] if name in masks and tensor.shape == masks[name].shape else tensor
            for name, tensor in weights.items()}


def unpack_masked(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``pack_masked`` undone: a 1-D weight holding one entry per set mask bit goes back to the mask's shape, zeros
    where it is masked out."""
    unpacked = dict(weights)
    for name, mask in masks.items():
        tensor = weights.get(name)
        if tensor is not None and tensor.dim() == 1 and mask.dim() == 2 and tensor.numel() == int(mask.sum()):
            unpacked[name] = tensor.new_zeros(mask.shape)
            unpacked[name][mask] = tensor
    return unpacked


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: str | Path, strict: bool = True) -> None:
    """``model.load_state_dict(weights)``, with weights of other names or shapes reported in one line; what a shipped
    checkpoint leaves out (``left_out_of_shipping``) may be missing from ``weights``, and its masked weights may come
    packed (``pack_masked``).

    ``strict=False`` (a pretrained part) skips names the other side lacks, but shapes must still agree."""
    expected, prefixes = model.state_dict(), training_only(model)
    weights = {**{name: tensor for name, tensor in expected.items() if left_out_of_shipping(name, tensor, prefixes)},
               **unpack_masked(weights, masks_of_weights(expected))}
    problems = [f"{name} is {tuple(weights[name].shape)}, the model's {tuple(tensor.shape)}"
                for name, tensor in expected.items() if name in weights and weights[name].shape != tensor.shape]
    if strict:
        problems += [f"{name} missing" for name in expected if name not in weights]
        problems += [f"{name} unknown to the model" for name in weights if name not in expected]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CaloforgeError(f"{source}: weights do not fit the model: {'; '.join(problems[:3])}{more}")
    model.load_state_dict(weights, strict=strict)


def load_model(path: str | Path, use_ema: bool = True, map_location: str = "cpu") -> tuple[nn.Module, Checkpoint]:
    checkpoint = load_checkpoint(path, map_location)
    return build_model(checkpoint, use_ema, path), checkpoint


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
    return build_model(load_family_checkpoint(path, family), source=path).requires_grad_(False)


def slim(checkpoint: Checkpoint) -> Checkpoint:
    """The averaged (EMA) weights alone, no optimiser state: a run's ``best.pt`` and ``model.pt``."""
    weights = checkpoint.ema if checkpoint.ema is not None else checkpoint.model
    return Checkpoint(header=checkpoint.header, model=weights)


def shippable(checkpoint: Checkpoint, half: bool = False, base: str | Path | None = None) -> Checkpoint:
    """The checkpoint to ship (``caloforge export --weights``): ``slim``, without what the architecture rebuilds or
    only training needs (``left_out_of_shipping``), masked weights packed (``pack_masked``).

    ``base``, a shipped checkpoint this one was trained on top of: the weights equal to that file's (same name,
    type and values) are left out and the file is named in the header, to be read back from beside this one.

    ``half`` stores floating-point weights as float16, half the file: ``load_state_dict`` copies them back into the
    float32 model, which then computes as before (the shipped CaloMan and CaloFlow student, stored so, scored as
    their float32 originals; a CaloMan's voxels moved by 2e-4 relative, median).
    """
    built = model_from_header(checkpoint.header)
    prefixes = training_only(built)
    weights = pack_masked({key: value for key, value in slim(checkpoint).model.items()
                           if not left_out_of_shipping(key, value, prefixes)}, masks_of_weights(built.state_dict()))
    if half:
        weights = {key: value.half() if value.is_floating_point() else value for key, value in weights.items()}
    header = {key: value for key, value in checkpoint.header.items() if key != "base"}
    if base is not None:
        shared = load_checkpoint(base).model
        weights = {key: value for key, value in weights.items() if not _same_tensor(value, shared.get(key))}
        header["base"] = {"file": Path(base).name, "sha256": file_digest(base)}
    return Checkpoint(header=header, model=weights)


def _same_tensor(tensor: torch.Tensor, other: torch.Tensor | None) -> bool:
    return (other is not None and tensor.dtype == other.dtype and tensor.shape == other.shape
            and torch.equal(tensor, other))
