"""The flow-matching model's hyper-parameters."""

from __future__ import annotations

from dataclasses import dataclass

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
    #: the energy model's residual MLP: width and residual blocks
    energy_width: int = 256
    energy_depth: int = 3
    #: logit offset of the layer-fraction and voxel-share variables
    alpha: float = 1e-6
    #: how a layer token holds its voxels: "shares" (one standardised logit share each, an empty voxel one point far
    #: below every hit) or "hits" (analog bits: hit or not, and a hit's log share; at equal CPU time far behind)
    voxels: str = "shares"

    def __post_init__(self) -> None:
        if min(self.width, self.depth, self.heads, self.mlp_ratio, self.energy_width, self.energy_depth) < 1:
            raise CaloforgeError("flowmatch: width, depth, heads, mlp_ratio, energy_width and energy_depth must be "
                                 ">= 1")
        if self.width % self.heads:
            raise CaloforgeError(f"flowmatch: width {self.width} is not divisible by heads {self.heads}")
        if self.voxels not in ("hits", "shares"):
            raise CaloforgeError(f"flowmatch: voxels must be one of hits, shares (got {self.voxels!r})")
        if not 0 < self.alpha < 0.5:
            raise CaloforgeError(f"flowmatch: alpha {self.alpha} must lie in (0, 0.5)")
