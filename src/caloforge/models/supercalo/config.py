"""SuperCalo's hyper-parameters; the defaults are those of the paper (arXiv:2308.11700, choice A), except that draws
off the simplex of shares are drawn again (``redraws``, see ``upsampler.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SuperCaloConfig:
    #: fine bins merged into one coarse voxel: choice A is (1, 2, 5), choice B (3, 4, 1)
    r_factor: int = 1
    alpha_factor: int = 2
    layer_factor: int = 5
    #: the up-sampling flow: MADE blocks, hidden layer widths and spline bins. The paper's splines span raw logits
    #: to a tail bound of 14; here the logits are standardised first and the shared blocks span [-5, 5]
    transforms: int = 8
    hidden: list[int] = field(default_factory=lambda: [128, 128, 128])
    bins: int = 8
    #: the fine-layer-energy flow (the paper's flow 1 sizes), used when a coarse voxel spans several layers
    layer_transforms: int = 8
    layer_hidden: list[int] = field(default_factory=lambda: [256, 256])
    #: logit regularisation of every energy fraction
    alpha: float = 1e-6
    #: uniform training noise added to fine voxel energies (paper: [0, 0.1 keV]) and to fine layer energies, MeV
    voxel_noise: float = 1e-4
    layer_noise: float = 5e-3
    #: energy conditions enter as log(E + floor) (MeV), standardised: empty neighbours sit at log(floor)
    energy_floor: float = 1e-3
    #: coarse voxels per shower per training step, drawn among the non-empty ones (0: all); bounds the cost of a step
    voxels_per_shower: int = 0
    #: showers used to fit the standardisations of the conditions and of the flows' variables
    fit_showers: int = 5000
    #: sampling: a coarse voxel's shares must sum to within [1 / tolerance, tolerance] or are drawn again, at most
    #: ``redraws`` times, before the renormalisation (0: renormalisation alone, as in the paper)
    redraws: int = 5
    tolerance: float = 1.5
    #: flow rows inverted at a time when sampling: bounds memory (about 0.5 GB at 2048; 4 GB at 65536, and slower);
    #: results do not depend on it (beyond float rounding)
    sample_chunk: int = 2048
    #: readout threshold applied to generated fine showers, MeV (None: the fine geometry's readout threshold)
    threshold: float | None = None
