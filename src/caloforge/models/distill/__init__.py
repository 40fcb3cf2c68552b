"""calodiffusion-student: few-step generation by consistency distillation of a calodiffusion checkpoint.

The student is the teacher's network trained to map any point of the teacher's ODE trajectory to its end (see
``student.py``); it samples in 1-4 network calls. Its checkpoint is self-contained: the teacher file is read while
training only (``model.teacher``), and ``caloforge generate`` picks the consistency sampler from the checkpoint's
sample defaults.
"""

from __future__ import annotations

from caloforge.contract import Family
from caloforge.models.distill.config import ConsistencyConfig
from caloforge.models.distill.student import CONSISTENCY, TEACHER, ConsistencyStudent

FAMILY = Family(
    name="calodiffusion-student", config=ConsistencyConfig, frozen=TEACHER, build=ConsistencyStudent,
    sample_defaults={"sampler": CONSISTENCY, "steps": 2},
    description="CaloDiffusion consistency student: 1-4 step sampling, distilled from a calodiffusion checkpoint")

__all__ = ["FAMILY", "ConsistencyConfig", "ConsistencyStudent"]
