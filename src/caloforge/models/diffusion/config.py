"""CaloDiffusion's hyper-parameters; the defaults are the paper's ds1/ds2 settings (Amram & Pedro 2023)."""

from __future__ import annotations

from dataclasses import dataclass, field

from caloforge.errors import CaloforgeError

OBJECTIVES = ("eps", "hybrid")
STAGES = ("autoencoder", "diffusion")


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
    #: channels C of a coarser mesh to diffuse on (the talk's "latent space" future work, ``autoencoder.py``): a
    #: U-Net pass costs in proportion to the positions it convolves. None: the voxels themselves, as in the paper
    latent_channels: int | None = None
    #: how many times coarser the latent mesh is along (layer, alpha, r); Par04's 45 x 16 x 9 -> 15 x 8 x 3
    latent_factors: list[int] = field(default_factory=lambda: [3, 2, 3])
    #: width of the mesh autoencoder's convolutions (half of it at full resolution)
    autoencoder_width: int = 32
    #: weight of the penalty holding every latent entry at zero mean and unit variance over a batch: the diffusion's
    #: noise schedule assumes data of unit scale
    latent_penalty: float = 0.1
    #: with a latent, "autoencoder" (step 1) trains the mesh autoencoder alone; "diffusion" (step 2, started from
    #: the step-1 checkpoint through train.init_from) keeps it frozen and trains the U-Net (and layer-energy flow)
    stage: str = "diffusion"

    def __post_init__(self) -> None:
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise CaloforgeError(f"calodiffusion channels {self.channels}: need the input width and >= 1 level")
        if self.objective not in OBJECTIVES:
            raise CaloforgeError(f"calodiffusion objective '{self.objective}': use one of {', '.join(OBJECTIVES)}")
        if self.n_steps < 1 or not 0 < self.e_min < self.e_max:
            raise CaloforgeError("calodiffusion: need n_steps >= 1 and 0 < e_min < e_max")
        if self.stage not in STAGES:
            raise CaloforgeError(f"calodiffusion stage '{self.stage}': use one of {', '.join(STAGES)}")
        if self.stage == "autoencoder" and not self.latent_channels:
            raise CaloforgeError("calodiffusion stage autoencoder: set latent_channels (the latent mesh's channels)")
        if len(self.latent_factors) != 3 or min(self.latent_factors) < 1:
            raise CaloforgeError(f"calodiffusion latent_factors {self.latent_factors}: need three factors >= 1 "
                                 "(layer, alpha, r)")
        if self.voxel_scale is not None and self.voxel_scale <= 0:
            raise CaloforgeError(f"calodiffusion voxel_scale {self.voxel_scale}: must be positive (or null)")
