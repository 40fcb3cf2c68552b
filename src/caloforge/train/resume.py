"""Resuming a run: a ``last.pt`` is continued only with the configuration it was trained with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from caloforge.contract import Checkpoint, from_dict, geometry_to_dict, get_family
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry


def check_resumable(state: Checkpoint, path: Path, family: str, geometry: Geometry, model_config: Any) -> None:
    """Refuse to continue a run from a checkpoint of another family, geometry or model configuration, saying
    which differs (its weights would not fit, or would silently train another model)."""
    saved = state.header
    differences = []
    if saved["family"] != family:
        differences.append(f"family {saved['family']} (config: {family})")
    if saved.get("geometry") != json.loads(json.dumps(geometry_to_dict(geometry))):
        differences.append(f"geometry {saved.get('geometry', {}).get('name')} (config: {geometry.name})")
    if not differences:
        old = dataclasses.asdict(from_dict(get_family(family).config, saved.get("model_config", {}), str(path)))
        new = dataclasses.asdict(model_config)
        differences += [f"model.{key} {old[key]} (config: {new[key]})" for key in new if old.get(key) != new[key]]
    if differences:
        raise CaloforgeError(f"{path}: cannot resume: the checkpoint's {'; '.join(differences)}; start a new run "
                             "in another folder, or resume with the config it was trained with")
