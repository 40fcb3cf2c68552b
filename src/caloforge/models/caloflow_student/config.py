"""The CaloFlow student's hyper-parameters (Krause & Shih, arXiv:2110.11377); its architecture is its teacher's."""

from __future__ import annotations

from dataclasses import dataclass

from caloforge.errors import CaloforgeError


@dataclass
class StudentConfig:
    """The student: an IAF copy of the teacher's flow 2, trained by probability density distillation.

    Its architecture, preprocessing and flow 1 are the teacher's: ``fit`` reads the first two from the teacher's
    checkpoint header and ``train.init_from`` (naming the same checkpoint) brings flow 1's weights.
    """

    #: the teacher checkpoint; read only while training, never stored in the student's weights
    teacher: str = ""
    #: reverse KL divergence of the student's samples from the teacher density, per dimension
    kl_weight: float = 1.0
    #: mean squared distance between the student's and the teacher's intermediate values, block by block, on
    #: training showers mapped to noise by the teacher (``data``) and on the student's own samples (``noise``)
    data_weight: float = 1.0
    noise_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.teacher:
            raise CaloforgeError("caloflow-student: set model.teacher to the teacher checkpoint")
