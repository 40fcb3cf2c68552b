"""The flow-matching model's hyper-parameters."""

from __future__ import annotations

from dataclasses import dataclass, field

from caloforge.errors import CaloforgeError


@dataclass
class FlowMatchConfig:
    #: width of the layer tokens and of the condition embedding
    width: int = 128
    #: transformer blocks over the layer tokens
    depth: int = 4
    #: attention heads (``width`` must divide by it)
    heads: int = 4
    #: hidden width of each block's MLP, as a multiple of ``width``
    mlp_ratio: int = 4
    #: flow 1 (layer energies given E_inc): MADE-RQS blocks and their hidden layers; 45 layers need more than
    #: CaloFlow's [64, 64] for 5
    layer_transforms: int = 6
    layer_hidden: list[int] = field(default_factory=lambda: [256, 256])
    #: logit offset of the layer-fraction and voxel-share variables
    alpha: float = 1e-6

    def __post_init__(self) -> None:
        if min(self.width, self.depth, self.heads, self.mlp_ratio, self.layer_transforms) < 1:
            raise CaloforgeError("flowmatch: width, depth, heads, mlp_ratio and layer_transforms must be >= 1")
        if self.width % self.heads:
            raise CaloforgeError(f"flowmatch: width {self.width} is not divisible by heads {self.heads}")
        if not 0 < self.alpha < 0.5:
            raise CaloforgeError(f"flowmatch: alpha {self.alpha} must lie in (0, 0.5)")
