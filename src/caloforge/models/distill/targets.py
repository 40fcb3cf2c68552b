"""The training state of a consistency student: its target network and the count of its updates.

Both live in the student module, so that the shared trainer runs and resumes a student unchanged: the target is a
frozen submodule (in the checkpoint; the trainer's EMA averages it with the rest, harmlessly) and ``updates`` a
buffer counting training batches. A shipped student leaves both out (``contract.training_only``).
"""

from __future__ import annotations

import torch
from torch import nn

from caloforge.contract import FrozenModel
from caloforge.errors import CaloforgeError


def add_training_state(student: nn.Module, target: nn.Module) -> None:
    """Give ``student`` its frozen ``target`` network (a fresh model of the teacher's architecture) and its count of
    training batches."""
    student.register_buffer("updates", torch.zeros((), dtype=torch.long))
    student.target = target.requires_grad_(False)
    student.training_only = ("target.", "updates")  # left out of a shipped student


def advance_target(student: nn.Module, teacher: FrozenModel, config) -> None:
    """Before a training batch of ``student`` (with submodule ``target`` and buffer ``updates``): at the first, the
    student and its target copy the teacher; at each later one the target moves towards the student, which the
    optimiser changed after the previous batch (EMA of decay ``config.target_decay``)."""
    mine = {k: v for k, v in student.state_dict().items() if not k.startswith("target.") and k != "updates"}
    with torch.no_grad():
        if int(student.updates) == 0:
            weights = teacher.load(config, student.updates.device).state_dict()
            if weights.keys() != mine.keys():
                raise CaloforgeError(f"{config.teacher} does not match the student's architecture")
            for key, value in mine.items():
                value.copy_(weights[key])
            student.target.load_state_dict(weights)
        else:
            for key, value in student.target.state_dict().items():
                if value.is_floating_point():
                    value.lerp_(mine[key], 1 - config.target_decay)
                else:  # integer buffers (a layer-energy flow's) are structure, not weights: nothing to average
                    value.copy_(mine[key])
    student.updates += 1
