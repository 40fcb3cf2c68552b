"""CaloDiffusion's hyper-parameters; the defaults are the paper's ds1/ds2 settings (Amram & Pedro 2023)."""

from __future__ import annotations

from dataclasses import dataclass, field

from caloforge.errors import CaloforgeError

OBJECTIVES = ("eps", "hybrid")


@dataclass
class CaloDiffusionConfig:
    #: width of the U-Net's input convolution, then of each level (ds3: [32, 32, 32, 32])
    channels: list[int] = field(default_factory=lambda: [16, 16, 16, 32])
    #: linear attention at every level
    attention: bool = True
    #: "eps" (noise prediction, ds1/ds2) or "hybrid" (EDM-weighted x0 prediction, ds3)
    objective: str = "eps"
    #: steps of the cosine noise schedule
    n_steps: int = 400
    #: incident-energy range (MeV) mapped onto the condition log10(E / e_min) / log10(e_max / e_min)
    e_min: float = 1e3
    e_max: float = 1e6
    #: voxels are divided by voxel_scale * E_inc before the logit; None: 2.0 (regular) or 3.1 (irregular geometry)
    voxel_scale: float | None = None
    #: offset of the logit (x -> logit(alpha + (1 - 2 alpha) x)), the paper's 1e-6. It sets how far above an empty
    #: voxel's value the readout threshold lies: at Par04's 15 keV and 90 GeV that is 0.05 standard deviations with
    #: 1e-6 (every slightly high prediction lights a voxel) and 0.7 with 1e-8
    logit_alpha: float = 1e-6
    #: map the voxels onto the geometry's regular hull (GLaM); None: exactly when the geometry is irregular
    glam: bool | None = None
    #: width of each condition's embedding (energy, noise level); the two are concatenated
    embed_dim: int = 64
    #: seed of the noise added to GLaM's initial maps
    seed: int = 0
    #: a layer-energy flow (CaloFlow's flow 1, trained jointly) samples every layer's energy first; the U-Net is
    #: conditioned on them and its showers are rescaled to them (CaloDiffusion's later versions, CaloDREAM)
    layer_energy: bool = False
    #: the layer-energy flow's MADE blocks and their hidden layers (CaloFlow's flow-1 defaults)
    layer_transforms: int = 6
    layer_hidden: list[int] = field(default_factory=lambda: [64, 64])
    #: cut the (layer, alpha, r) mesh into patches of this many voxels per axis, each patch one position of the
    #: U-Net with prod(patch) channels (``patches.py``): prod(patch) times fewer positions to convolve, nothing lost;
    #: every axis must divide. None: one voxel a position, as in the paper
    patch: list[int] | None = None

    def __post_init__(self) -> None:
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise CaloforgeError(f"calodiffusion channels {self.channels}: need the input width and >= 1 level")
        if self.objective not in OBJECTIVES:
            raise CaloforgeError(f"calodiffusion objective '{self.objective}': use one of {', '.join(OBJECTIVES)}")
        if self.n_steps < 1 or not 0 < self.e_min < self.e_max:
            raise CaloforgeError("calodiffusion: need n_steps >= 1 and 0 < e_min < e_max")
        if self.patch is not None and (len(self.patch) != 3 or min(self.patch) < 1):
            raise CaloforgeError(f"calodiffusion patch {self.patch}: need three sizes >= 1 (layer, alpha, r)")
        if not 0 < self.logit_alpha < 0.5:
            raise CaloforgeError(f"calodiffusion logit_alpha {self.logit_alpha}: need 0 < alpha < 0.5")
        if self.voxel_scale is not None and self.voxel_scale <= 0:
            raise CaloforgeError(f"calodiffusion voxel_scale {self.voxel_scale}: must be positive (or null)")
