"""calodiffusion-student: few-step generation by consistency distillation of a calodiffusion checkpoint.

The student is the teacher's network trained to map any point of the teacher's ODE trajectory to its end (see
``student.py``); it samples in 1-4 network calls. Its checkpoint is self-contained: the teacher file is read while
training only (``model.teacher``), and ``caloforge generate`` picks the consistency sampler from the checkpoint's
sample defaults.
"""

from __future__ import annotations

from torch import Tensor

from caloforge.contract import Family
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.distill.config import ConsistencyConfig
from caloforge.models.distill.student import CONSISTENCY, TEACHER_FAMILY, ConsistencyStudent
from caloforge.contract import load_family_checkpoint


def fit(config: ConsistencyConfig, geometry: Geometry, energies: Tensor, showers: Tensor) -> dict:
    """The teacher's fitted preprocessing and architecture: the student learns nothing from the data itself."""
    header = load_family_checkpoint(config.teacher, TEACHER_FAMILY).header
    if header["geometry"]["name"] != geometry.name:
        raise CaloforgeError(f"calodiffusion-student: the teacher {config.teacher} is for "
                             f"{header['geometry']['name']}, not {geometry.name}")
    return {**header["fitted"], "teacher_config": header["model_config"]}


def build(config: ConsistencyConfig, geometry: Geometry, fitted: dict) -> ConsistencyStudent:
    return ConsistencyStudent(config, geometry, fitted)


FAMILY = Family(
    name="calodiffusion-student",
    config=ConsistencyConfig,
    fit=fit,
    build=build,
    sample_defaults={"sampler": CONSISTENCY, "steps": 2},
    description="CaloDiffusion consistency student: 1-4 step sampling, distilled from a calodiffusion checkpoint",
)

__all__ = ["FAMILY", "ConsistencyConfig", "ConsistencyStudent", "build", "fit"]
