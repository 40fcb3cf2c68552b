"""Hyper-parameters of consistency distillation; the architecture itself is the teacher's (stored in ``fitted``)."""

from __future__ import annotations

from dataclasses import dataclass

from caloforge.errors import CaloforgeError


@dataclass
class ConsistencyConfig:
    #: the calodiffusion checkpoint to distil; read while training only (generation needs the student file alone)
    teacher: str = ""
    #: N: the teacher's schedule is cut into N intervals; each training step is one teacher DDIM step across one
    #: (100 in the CaloDiffusion repo, 30 for its later ds1 photons; fewer intervals learn faster, less exactly)
    n_intervals: int = 30
    #: EMA decay of the target network (Song et al. 2023's mu; 0.95 in the CaloDiffusion repo, 0: the student itself)
    target_decay: float = 0.95

    def __post_init__(self) -> None:
        if not self.teacher:
            raise CaloforgeError("calodiffusion-student: set model.teacher to a calodiffusion checkpoint")
        if self.n_intervals < 1:
            raise CaloforgeError(f"calodiffusion-student n_intervals {self.n_intervals}: need >= 1")
        if not 0 <= self.target_decay < 1:
            raise CaloforgeError(f"calodiffusion-student target_decay {self.target_decay}: need 0 <= mu < 1")
