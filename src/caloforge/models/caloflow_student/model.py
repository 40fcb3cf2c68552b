"""CaloFlow's student (Krause & Shih, arXiv:2110.11377): flow 2 as an IAF, distilled from the teacher's MAF.

The student samples in one network pass per block. It learns by probability density distillation: the reverse
KL divergence of its samples from the teacher's density (both densities are single-pass on the student's
samples), helped by matching the teacher block by block: training showers mapped to noise by the teacher must be
mapped back by the student through the same intermediate values, and the student's samples mapped to noise by
the teacher must retrace the student's intermediates. Flow 1 and the preprocessing are the teacher's, frozen.

The teacher is the ``FrozenModel`` named by ``config.teacher``: loaded when the first training batch arrives and
held outside the student's submodules, so sampling does not need it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from caloforge.contract import FrozenModel
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.caloflow.teacher import CaloFlowTeacher, layer_flow, voxel_flow
from caloforge.models.caloflow_student.config import StudentConfig
from caloforge.models.flows import (
    InverseAutoregressiveFlow,
    VoxelCoding,
    distillation_loss,
    sample_in_chunks,
    shower_condition,
)

TEACHER = FrozenModel("caloflow-teacher")


class CaloFlowStudent(nn.Module):
    """The teacher's flow 1 and voxel coding with an IAF flow 2 (``fitted`` carries the teacher's architecture)."""

    def __init__(self, config: StudentConfig, geometry: Geometry, fitted: dict):
        super().__init__()
        architecture = TEACHER.config(fitted)
        self.layer_flow = layer_flow(architecture, geometry, fitted).requires_grad_(False)
        self.coding = VoxelCoding(geometry, fitted["voxels"])
        self.student_flow = voxel_flow(InverseAutoregressiveFlow, architecture, geometry)
        self.config = config
        self.n_voxels = geometry.n_voxels

    def teacher(self, device: torch.device) -> CaloFlowTeacher:
        """The teacher (loaded once, held outside this module), after checking that flow 1 came from it."""
        teacher = TEACHER.load(self.config, device)
        mine, theirs = self.layer_flow.state_dict(), teacher.layer_flow.state_dict()
        if any(not torch.equal(mine[key], theirs[key]) for key in mine):
            raise CaloforgeError(f"caloflow-student: flow 1 is not the teacher's; set train.init_from to "
                                 f"{self.config.teacher}")
        return teacher

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """The distillation loss on a batch of training showers."""
        teacher = self.teacher(showers.device)
        noisy = self.coding.dequantise(showers)
        layers = self.coding.layer_energies(noisy)
        config = self.config
        return distillation_loss(self.student_flow, teacher.voxel_flow, self.coding.encode(noisy, layers),
                                 shower_condition(energies, layers), config.kl_weight, config.data_weight,
                                 config.noise_weight)

    def sample(self, energies: Tensor, generator: torch.Generator | None = None, **options: Any) -> Tensor:
        return sample_in_chunks(self._sample, energies, generator, options, "caloflow-student")

    def _sample(self, energies: Tensor, generator: torch.Generator | None) -> Tensor:
        layers = self.layer_flow.sample(energies, generator)
        return self.coding.decode(self.student_flow.sample(shower_condition(energies, layers), generator), layers)
