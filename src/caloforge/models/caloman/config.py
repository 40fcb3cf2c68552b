"""CaloMan's hyper-parameters; the defaults are the CaloMan talk's (Reyes-Gonzalez et al., arXiv:2211.15380)."""

from __future__ import annotations

from dataclasses import dataclass, field

from caloforge.errors import CaloforgeError

STAGES = ("autoencoder", "flow", "decoder", "encoder", "latent", "layers", "student")
HIT_ENERGIES = ("expected", "exponential", "gamma", "deposits")
LATENT_MODELS = ("flow", "flowmatch")
LAYER_MODELS = ("flow", "flowmatch")


@dataclass
class CaloManConfig:
    #: "autoencoder" (step 1: learn the manifold), "flow" (step 2: the densities on it; start it from the step-1
    #: checkpoint with train.init_from, which this stage keeps frozen), "decoder" (optional, after step 2: the
    #: decoder trained further with the encoder frozen, so that the latent points the flows learnt stay where they
    #: were; start it from the step-2 checkpoint), "encoder" (optional: an encoder learnt back against the frozen
    #: decoder, for a shipped flow-stage file, which leaves its encoder out: the decoder stage and the diagnosis of
    #: reconstructions need one; start it from that file), "latent" (optional: the latent density alone trained
    #: anew, ``latent_model`` free to change, everything else frozen, so flow 1 and a student distilled from it
    #: stay valid; start it from a checkpoint with an encoder), "layers" (optional: flow 1 alone trained on from the
    #: start's, or anew with another ``layer_model``, everything else frozen: the latent density and the decoder
    #: learnt on Geant4's layer energies, not on flow 1's, so they stay valid) or "student" (step 3, optional: a MAF
    #: flow 1 distilled into an IAF that samples in one pass a block instead of one a layer, CaloFlow's student; start
    #: it from the step-2 checkpoint, whose flow 1 it learns from and leaves out of the shipped file)
    stage: str = "autoencoder"
    #: dimension d of the manifold: ``caloforge data intrinsic-dim`` estimates it
    latent: int = 20
    encoder: list[int] = field(default_factory=lambda: [512, 512, 512])
    decoder: list[int] = field(default_factory=lambda: [512, 512, 512])
    #: weight of the energy-weighted reconstruction term (the KL divergence of the reconstructed from the true
    #: energy shares, summed over layers) beside the mean squared error of the logit shares, which weighs every
    #: voxel alike: shower shapes (centres, widths) live in the voxels that hold the energy, and alone the logit
    #: error pulls reconstructions to log-space means (too compact showers)
    share_weight: float = 10.0
    #: weight of the squared error (mm^2) of each layer's energy-weighted centre and width in eta and phi
    moment_weight: float = 0.0
    #: fit the decoder's widths to the population widths of the drawn hits (``population_widths``) rather than
    #: to each shower's measured ones: with ``hits``, drawing hits from the shares narrows them again
    population_widths: bool = False
    #: with ``hits`` and ``population_widths``: widen by the narrowing the decoder's own hit draw causes (its hit
    #: probabilities and ``hit_energy`` law, ``drawn_square_sums``) rather than by Geant4's hits' narrowing
    drawn_widths: bool = False
    #: with ``hits``: fit the moments of the decoder's drawn showers (one hit draw a shower, ``decode_cut`` as
    #: sampling does it, its value passed straight through to the shares' moments) to Geant4's measured ones.
    #: Their expectation is then Geant4's, where ``drawn_widths`` matches the expected square of a width: the
    #: drawn width's mean falls short of its root (0.03-0.17 standard deviations too narrow on Par04)
    drawn_moments: bool = False
    #: with ``hits``: draw each layer's number of hits from Geant4's law given its energy and E_inc (fitted with the
    #: preprocessing, ``flows.hit_counts``), the hits themselves from the decoder's probabilities given that count;
    #: drawn independently, the count hardly follows the layer energy
    counted_hits: bool = False
    #: the decoder also predicts each voxel's probability of a hit (above the readout threshold), fitted by binary
    #: cross-entropy with weight ``hit_weight``, and sampling draws the hits: Geant4 leaves voxels empty at random,
    #: which a deterministic decoder cannot (it lights nearly every voxel a little)
    hits: bool = False
    hit_weight: float = 1.0
    #: what a drawn hit holds: "expected" (its expected share over its hit probability) or "exponential" (an
    #: exponential draw of that mean). Geant4's deposit in a small voxel scatters about what the latent point
    #: predicts, and a few stray hits set the centres of a shower's first layers: at Par04 resolution the trained
    #: model's EC separation powers fell from 0.024 to 0.011 with "exponential". par04-coarse's voxels sum many
    #: deposits, and there "exponential" made them worse (0.011 to 0.016, low-level AUC 0.53 to 0.73). "gamma":
    #: the threshold plus a gamma draw of shape ``hit_shape`` (1 is "exponential"): a charged particle's deposit
    #: peaks well above the threshold, where the exponential law's mode sits at it. "deposits": about the exponential
    #: law for a faint hit, and for a bright one a gamma law of shape excess / ``hit_deposit`` (MeV; the excess as the
    #: sum of deposits of about that size), whose spread shrinks as 1 / sqrt(shape). With "exponential" the 16
    #: wedges around the Par04 shower axis scattered so much that the brightest held 0.18 of its layer at the
    #: shower maximum where Geant4's holds 0.12 (median, layer 5): gradient-boosted trees told the brightest
    #: voxel's share apart at AUC 0.95.
    hit_energy: str = "expected"
    hit_shape: int = 2
    hit_deposit: float = 15.0
    #: weight of the penalty that holds each latent dimension at zero mean and unit variance over a batch, so that
    #: the latent flow's splines (on [-5, 5]) cover the manifold's coordinates
    latent_penalty: float = 0.1
    #: the latent density: "flow" (the talk's coupling RQS flow, ``flow_transforms`` blocks with residual hidden
    #: layers ``flow_hidden``) or "flowmatch" (conditional flow matching, ``latent_match.py``: a residual MLP of
    #: ``match_width`` x ``match_depth`` blocks, sampled by ``match_steps`` of ``match_sampler``)
    latent_model: str = "flow"
    flow_transforms: int = 4
    flow_hidden: list[int] = field(default_factory=lambda: [256, 256, 256])
    match_width: int = 512
    match_depth: int = 3
    match_sampler: str = "heun"
    match_steps: int = 8
    #: spline bins of both flows
    bins: int = 8
    #: flow 1, the layer energies given E_inc: "flow" (CaloFlow's MAF-RQS, ``layer_transforms`` blocks of
    #: ``layer_hidden``, one network pass a layer and block when sampling) or "flowmatch" (conditional flow matching
    #: on the same variables, CaloDREAM's energy model, ``flowmatch.LayerEnergyMatch``: a residual MLP of
    #: ``layer_width`` x ``layer_depth`` blocks, sampled by ``layer_steps`` of ``match_sampler``). On par04 the MAF
    #: over-fits its 27,000 training showers within 10 epochs; the flow matcher's error still falls after 600.
    layer_model: str = "flow"
    layer_transforms: int = 6
    layer_hidden: list[int] = field(default_factory=lambda: [64, 64])
    #: flow 1's network passes a block when sampling (``None``: autoregressive, one a layer, CaloFlow's; k: the layers
    #: in k groups, each conditioned on the groups before; 2 is a coupling flow)
    layer_passes: int | None = None
    layer_width: int = 256
    layer_depth: int = 4
    layer_steps: int = 16
    #: logit offset of the layer and voxel variables
    alpha: float = 1e-6

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise CaloforgeError(f"caloman stage '{self.stage}': use one of {', '.join(STAGES)}")
        if self.hit_energy not in HIT_ENERGIES:
            raise CaloforgeError(f"caloman hit_energy '{self.hit_energy}': use one of {', '.join(HIT_ENERGIES)}")
        if self.hit_deposit <= 0:
            raise CaloforgeError(f"caloman hit_deposit {self.hit_deposit}: a deposit's size must be positive (MeV)")
        if self.hit_energy == "deposits" and self.drawn_widths:
            raise CaloforgeError("caloman hit_energy 'deposits' and drawn_widths: the drawn widths' formula takes a "
                                 "fixed gamma shape; fit the drawn showers' moments instead (drawn_moments)")
        if self.hit_shape < 1:
            raise CaloforgeError(f"caloman hit_shape {self.hit_shape}: the gamma law's shape must be an integer >= 1")
        if self.latent_model not in LATENT_MODELS:
            raise CaloforgeError(f"caloman latent_model '{self.latent_model}': use one of {', '.join(LATENT_MODELS)}")
        if self.layer_model not in LAYER_MODELS:
            raise CaloforgeError(f"caloman layer_model '{self.layer_model}': use one of {', '.join(LAYER_MODELS)}")
        if self.stage == "student" and self.layer_model != "flow":
            raise CaloforgeError("caloman stage student distils flow 1's MAF blocks: it needs layer_model 'flow'")
        if self.drawn_widths and not (self.hits and self.population_widths):
            raise CaloforgeError("caloman drawn_widths: needs hits and population_widths (it widens by the hit draw)")
        if self.drawn_moments and (not self.hits or self.population_widths):
            raise CaloforgeError("caloman drawn_moments: needs hits, and replaces population_widths (set it false)")
        if self.counted_hits and not self.hits:
            raise CaloforgeError("caloman counted_hits: needs hits (the decoder's hit probabilities place the hits)")
        if self.latent < 2:
            raise CaloforgeError("caloman: the latent dimension must be >= 2 (the latent flow couples two halves)")

    @property
    def hit_shape_k(self) -> int | None:
        """The gamma shape of a drawn hit's excess over the threshold (``VoxelCoding.decode_cut``); None: no draw,
        the expected energy."""
        return {"expected": None, "exponential": 1, "gamma": self.hit_shape, "deposits": 1}[self.hit_energy]

    @property
    def hit_deposit_mev(self) -> float | None:
        """The deposit size that sets a bright hit's gamma shape (``VoxelCoding.decode_cut``); None: a fixed shape."""
        return self.hit_deposit if self.hit_energy == "deposits" else None
