"""Hyper-parameters of consistency distillation, for every student family; the architecture itself is the teacher's
(stored in ``fitted``)."""

from __future__ import annotations

from dataclasses import dataclass

from caloforge.errors import CaloforgeError


@dataclass
class ConsistencyConfig:
    #: the checkpoint to distil; read while training only (generation needs the student file alone)
    teacher: str = ""
    #: N: the teacher's noise levels (or flow times) are cut into N intervals; each training step is one teacher ODE
    #: Euler step across one
    #: (100 in the CaloDiffusion repo, 30 for its later ds1 photons; fewer intervals learn faster, less exactly)
    n_intervals: int = 30
    #: EMA decay of the target network (Song et al. 2023's mu; 0.95 in the CaloDiffusion repo, 0: the student itself)
    target_decay: float = 0.95

    def __post_init__(self) -> None:
        if not self.teacher:
            raise CaloforgeError("consistency student: set model.teacher to the checkpoint to distil")
        if self.n_intervals < 1:
            raise CaloforgeError(f"consistency student n_intervals {self.n_intervals}: need >= 1")
        if not 0 <= self.target_decay < 1:
            raise CaloforgeError(f"consistency student target_decay {self.target_decay}: need 0 <= mu < 1")
