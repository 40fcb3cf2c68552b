"""The teacher of a consistency student: a calodiffusion checkpoint, loaded once per process while training.

It is kept in a module-level cache, never as a submodule of the student, so it is in no state_dict and no
checkpoint of the student: a trained student samples without the teacher file.
"""

from __future__ import annotations

from functools import cache

from caloforge.errors import CaloforgeError
from caloforge.models.diffusion import CaloDiffusion
from caloforge.train.checkpoint import Checkpoint, build_model, load_checkpoint

TEACHER_FAMILY = "calodiffusion"


def teacher_checkpoint(path: str) -> Checkpoint:
    checkpoint = load_checkpoint(path)
    if checkpoint.header["family"] != TEACHER_FAMILY:
        raise CaloforgeError(f"{path}: the teacher must be a {TEACHER_FAMILY} checkpoint, "
                             f"not {checkpoint.header['family']}")
    return checkpoint


@cache
def load_teacher(path: str) -> CaloDiffusion:
    """The teacher (EMA weights), frozen, in eval mode."""
    return build_model(teacher_checkpoint(path)).requires_grad_(False)
