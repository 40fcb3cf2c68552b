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
