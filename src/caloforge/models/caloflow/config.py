"""CaloFlow's hyper-parameters (Krause & Shih, arXiv:2106.05285, 2110.11377; ds1 settings of 2210.14245)."""

from __future__ import annotations

from dataclasses import dataclass, field

from caloforge.errors import CaloforgeError


@dataclass
class CaloFlowConfig:
    """The teacher: flow 1 (layer energies) and flow 2 (voxels), both MAF-RQS, trained jointly by likelihood."""

    #: flow 1: MADE blocks and the hidden layers of each
    layer_transforms: int = 6
    layer_hidden: list[int] = field(default_factory=lambda: [64, 64])
    #: flow 2: MADE blocks and the hidden layers of each
    transforms: int = 8
    hidden: list[int] = field(default_factory=lambda: [256])
    #: spline bins of both flows
    bins: int = 8
    #: flow 2's autoregressive passes: voxels fall in this many groups (random ones in each block), and sampling
    #: the teacher costs passes x transforms network evaluations; None: one group per voxel (a plain MADE, whose
    #: sampling on CPU costs minutes per thousand showers)
    passes: int | None = 16
    #: iCaloFlow's factorisation for ds2-sized geometries: flow 2 is one flow over a single layer's voxels, shared
    #: by all layers and conditioned on the previous layer too (regular geometries only); False: one flow over all
    #: voxels (ds1-sized geometries)
    layerwise: bool = False
    #: logit offset of both flows' variables
    alpha: float = 1e-6
    #: seed of flow 2's random voxel orders
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.transforms, self.layer_transforms, self.bins) < 1 or self.passes is not None and self.passes < 1:
            raise CaloforgeError("caloflow: transforms, layer_transforms, bins and passes must be >= 1")


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
