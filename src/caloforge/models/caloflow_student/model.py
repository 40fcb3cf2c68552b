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
import torch.nn.functional as F
from torch import Tensor, nn

from caloforge.contract import FrozenModel
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.caloflow.teacher import CaloFlowTeacher, layer_flow, voxel_flow
from caloforge.models.caloflow_student.config import StudentConfig
from caloforge.models.flows import (InverseAutoregressiveFlow, VoxelCoding, sample_in_chunks, shower_condition,
                                    standard_normal_log_prob)

TEACHER = FrozenModel("caloflow-teacher")


def mean_squared_distance(pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    return torch.stack([F.mse_loss(a, b) for a, b in pairs]).mean()


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
        context = shower_condition(energies, layers)
        with torch.no_grad():
            *_, data_trail = teacher.voxel_flow.encode(self.coding.encode(noisy, layers), context)
        *_, back_trail = self.student_flow.decode(data_trail[-1], context)
        data_loss = mean_squared_distance(list(zip(back_trail[1:], data_trail[::-1][1:])))

        z = torch.randn_like(noisy)
        sample, student_ladj, sample_trail = self.student_flow.decode(z, context)
        teacher_z, teacher_ladj, teacher_trail = teacher.voxel_flow.encode(sample, context)
        noise_loss = mean_squared_distance(list(zip(teacher_trail[1:], sample_trail[::-1][1:])))
        kl = (standard_normal_log_prob(z) - student_ladj
              - standard_normal_log_prob(teacher_z) - teacher_ladj).mean() / self.n_voxels
        return self.config.kl_weight * kl + self.config.data_weight * data_loss + self.config.noise_weight * noise_loss

    def sample(self, energies: Tensor, generator: torch.Generator | None = None, **options: Any) -> Tensor:
        return sample_in_chunks(self._sample, energies, generator, options, "caloflow-student")

    def _sample(self, energies: Tensor, generator: torch.Generator | None) -> Tensor:
        layers = self.layer_flow.sample(energies, generator)
        return self.coding.decode(self.student_flow.sample(shower_condition(energies, layers), generator), layers)
