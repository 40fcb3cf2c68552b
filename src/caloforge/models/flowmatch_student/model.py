"""A flow-matching model distilled into a consistency model of its own flows: a few network passes per shower.

The student is the teacher's architecture (energy MLP and layer transformer), started from its weights, whose end
estimate x_t + (1 - t) v at any point of either ODE's trajectory is trained to agree with its target network's one
teacher Euler step further along (``path.consistency_pair``; target and update count: ``distill.targets``). Both
models distil at once, on the same flow times. It samples with the ``consistency`` sampler: the end estimate from
noise, then re-noised to a later flow time and estimated again, one pass per step; with steps dividing
``n_intervals`` every time it visits is one it was trained at.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from caloforge.contract import FrozenModel
from caloforge.geometry import Geometry
from caloforge.models.distill import ConsistencyConfig
from caloforge.models.distill.targets import add_training_state, advance_target
from caloforge.models.flowmatch.model import FlowMatch
from caloforge.models.flowmatch.path import T_START, consistency_pair

#: the flowmatch checkpoint a student distils
TEACHER = FrozenModel("flowmatch")


class FlowMatchStudent(FlowMatch):
    """The teacher's architecture (``fitted["teacher_config"]``) with a consistency objective."""

    times: Tensor
    updates: Tensor

    def __init__(self, config: ConsistencyConfig, geometry: Geometry, fitted: dict):
        architecture = TEACHER.config(fitted)
        super().__init__(architecture, geometry, fitted)
        self.config = config
        self.register_buffer("times", torch.linspace(T_START, 1, config.n_intervals + 1), persistent=False)
        add_training_state(self, FlowMatch(architecture, geometry, fitted))

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """The consistency-distillation loss of the shape model (over the lit layers) plus the energy model's."""
        if self.training:
            advance_target(self, TEACHER, self.config)
        teacher = TEACHER.load(self.config, showers.device)
        tokens, layers, lit = self.training_tokens(showers)
        models = (self, self.target, teacher)
        shape = consistency_pair(*(m.shape_velocity(energies, layers) for m in models), tokens, self.times)
        energy = consistency_pair(*(m.energy.velocity(energies) for m in models),
                                  self.energy.variables(energies, layers), self.times)
        return self.shape_error(*shape, lit) + F.mse_loss(*energy)
