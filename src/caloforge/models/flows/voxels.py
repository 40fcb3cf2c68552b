"""CaloFlow's voxel variables: each voxel's share of its layer's energy, logit (alpha = 1e-6), standardised per voxel.

Training showers are cut at the readout threshold; a likelihood model then dequantises them: uniform noise in
[0, threshold) on every voxel, so that empty voxels (half of Par04's) are no point mass for the likelihood to chase
to infinity and no layer energy is zero. (CaloMan's autoencoder, fitted by reconstruction, takes the cut showers
as they are: noise it could not reconstruct would only blur it; an empty layer's shares are all zero.) Decoding
renormalises each layer's shares to the layer energy it is given (from flow 1) and zeroes voxels under the
threshold, which turns the noise of empty voxels back into zeros (``decode_cut`` does the same for a model of cut
showers, and keeps the layer energies).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from caloforge.data.transforms import Logit, Standardize, transform_from_dict
from caloforge.geometry import Geometry
from caloforge.models.flows.hit_counts import HitCountLaw, draw_counted_hits


def cut(showers: Tensor, threshold: float) -> Tensor:
    """Voxels under the readout ``threshold`` set to zero."""
    return torch.where(showers < threshold, torch.zeros_like(showers), showers)


def dequantise(showers: Tensor, threshold: float, generator: torch.Generator | None = None) -> Tensor:
    """Showers ``cut`` at ``threshold``, then uniform noise in [0, threshold) added to every voxel."""
    noise = torch.rand(showers.shape, generator=generator, device=showers.device, dtype=showers.dtype)
    return cut(showers, threshold) + threshold * noise


def layer_sums(showers: Tensor, voxel_layer: Tensor, n_layers: int) -> Tensor:
    """(N, voxels) -> (N, n_layers): the energy of each layer; ``voxel_layer`` is each voxel's layer index.
    (``shape[0]``, not ``len``: the ONNX tracer records the one as a graph value and freezes the other.)"""
    if torch.jit.is_tracing():
        # torch.onnx writes index_add_ as a scatter that keeps one of the voxels sharing a layer, not their sum
        return showers @ F.one_hot(voxel_layer, n_layers).to(showers.dtype)
    return showers.new_zeros(showers.shape[0], n_layers).index_add_(1, voxel_layer, showers)


def shares(showers: Tensor, layers: Tensor, voxel_layer: Tensor) -> Tensor:
    """Each voxel's share of its layer's energy (zero in an empty layer)."""
    return showers / layers.clamp_min(torch.finfo(layers.dtype).tiny)[:, voxel_layer]


def noisy_layer_sums(showers: Tensor, voxel_layer: Tensor, n_layers: int, threshold: float, per_layer: bool,
                     generator: torch.Generator | None = None) -> Tensor:
    """Dequantised layer energies: those of the ``dequantise``d showers, or with ``per_layer`` those of the
    ``cut`` showers plus one uniform draw in [0, threshold) per layer. The second keeps empty layers apart from
    the rest (a layer with a hit holds at least the threshold), where the noise of a whole layer's voxels (its
    spread grows as their number's square root) hides the faint layers at a shower's end."""
    if not per_layer:
        return layer_sums(dequantise(showers, threshold, generator), voxel_layer, n_layers)
    layers = layer_sums(cut(showers, threshold), voxel_layer, n_layers)
    return layers + threshold * torch.rand(layers.shape, generator=generator, device=layers.device, dtype=layers.dtype)


def fit_voxel_coding(showers: Tensor, layers: Tensor, voxel_layer: Tensor, threshold: float, alpha: float,
                     layer_noise: str = "voxel") -> dict:
    """The per-voxel standardisation of the logit shares of (cut or dequantised) training showers; ``layer_noise``
    ("voxel" or "layer") says how the layer energies the coding is given were dequantised (``noisy_layer_sums``)."""
    y = Logit(alpha).forward(shares(showers, layers, voxel_layer), None)
    return {"threshold": threshold, "alpha": alpha, "standardize": Standardize(per_feature=True).fit(y, None).to_dict(),
            "layer_noise": layer_noise}


def gamma_fractions(shape: int | Tensor, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draws of Gamma(k) / k (mean 1, variance 1 / k) shaped as ``like``: for an integer k the mean of k exponential
    draws; for a tensor of shapes (any k >= 1) Wilson and Hilferty's cube of a normal draw, k (1 - c + z sqrt(c))^3
    with c = 1 / (9k), close to the gamma law from k = 1 on (there its median is within 0.03 of the exponential
    law's ln 2; the few negative cubes, under 0.5 %, are set to zero). Uniform and normal draws: torch's gamma
    sampler takes no generator."""
    if isinstance(shape, int):
        return sum(torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)
                   .neg_().log1p_().neg_() for _ in range(shape)) / shape
    c = 1 / (9 * shape)
    z = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    return (1 - c + z * c.sqrt()).clamp_min(0) ** 3


def draw_hits(probabilities: Tensor, certain: Tensor, voxel_layer: Tensor, n_layers: int,
              generator: torch.Generator | None = None) -> Tensor:
    """(N, voxels) hits, each voxel hit with its probability, independently; in the layers marked ``certain``
    ((N, n_layers)) given that at least one voxel is hit.

    The conditional draw in one pass, without redrawing: the first hit voxel k of a layer has probability
    p_k prod_{j<k} (1 - p_j) / (1 - prod_j (1 - p_j)); the voxels before it are missed and those after it drawn
    freely. A layer whose probabilities are all zero stays empty. Voxels of a layer must be contiguous (the
    CaloChallenge order: layer, then angle, then radius).
    """
    p = probabilities.double().clamp(0, 1 - 1e-12)
    free = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p
    start = torch.searchsorted(voxel_layer, voxel_layer)  # each voxel's layer's first voxel

    def within_layer(cumulative: Tensor, values: Tensor) -> Tensor:
        """Inclusive sums within each layer from the inclusive sums along the row."""
        return cumulative - (cumulative - values)[:, start]

    log_miss = p.neg().log1p()
    none_before = (within_layer(log_miss.cumsum(1), log_miss) - log_miss).exp()
    first = p * none_before  # the probability that voxel k is the layer's first hit
    up_to = within_layer(first.cumsum(1), first)
    total = up_to.new_zeros(len(p), n_layers).index_add_(1, voxel_layer, first)  # 1 - P(no hit)
    pick = (torch.rand(total.shape, generator=generator, dtype=p.dtype, device=p.device) * total)[:, voxel_layer]
    is_first = (up_to - first < pick) & (up_to >= pick) & (first > 0)
    after = up_to - first >= pick
    conditional = is_first | (after & free)
    return torch.where(certain[:, voxel_layer], conditional, free)


class VoxelCoding(nn.Module):
    """Showers (MeV) <-> standardised logit layer shares, given the layer energies."""

    voxel_layer: Tensor
    noise_voxels: Tensor

    def __init__(self, geometry: Geometry, fitted: dict):
        super().__init__()
        self.n_layers = geometry.n_layers
        self.threshold = fitted["threshold"]
        self.logit = Logit(fitted["alpha"])
        self.standardize = transform_from_dict(fitted["standardize"])
        voxel_layer = torch.as_tensor(geometry.voxel_layer, dtype=torch.long)
        if (voxel_layer.diff() < 0).any():
            raise ValueError(f"{geometry.name}: the voxels of a layer must be contiguous (CaloChallenge order)")
        self.register_buffer("voxel_layer", voxel_layer, persistent=False)
        # codings fitted before layer_noise existed dequantised every voxel
        self.per_layer_noise = fitted.get("layer_noise", "voxel") == "layer"
        noise_voxels = torch.ones(self.n_layers) if self.per_layer_noise else geometry.voxels_per_layer
        self.register_buffer("noise_voxels", torch.as_tensor(noise_voxels, dtype=torch.float32), persistent=False)
        # fitted for CaloMan's cut showers since 2026-12-05 (``fit_preprocessing``)
        self.hit_counts = HitCountLaw(fitted["hit_counts"]) if "hit_counts" in fitted else None

    def cut(self, showers: Tensor) -> Tensor:
        return cut(showers, self.threshold)

    def dequantise(self, showers: Tensor) -> Tensor:
        return dequantise(showers, self.threshold)

    def layer_energies(self, showers: Tensor) -> Tensor:
        return layer_sums(showers, self.voxel_layer, self.n_layers)

    def noisy_layer_energies(self, showers: Tensor) -> Tensor:
        """The layer energies flow 1 models, dequantised as this coding was fitted."""
        return noisy_layer_sums(showers, self.voxel_layer, self.n_layers, self.threshold, self.per_layer_noise)

    def encode(self, showers: Tensor, layers: Tensor) -> Tensor:
        return self.standardize.forward(self.logit.forward(shares(showers, layers, self.voxel_layer), None), None)

    def layer_shares(self, y: Tensor) -> Tensor:
        """Standardised logit shares -> shares renormalised to sum to one in every layer."""
        fractions = self.logit.inverse(self.standardize.inverse(y, None), None)
        return fractions / self.layer_energies(fractions).clamp_min(torch.finfo(y.dtype).tiny)[:, self.voxel_layer]

    def decode(self, y: Tensor, layers: Tensor) -> Tensor:
        """Showers whose layers hold ``layers`` (before the threshold cut), voxels under the threshold zeroed."""
        return self.cut(self.layer_shares(y) * layers[:, self.voxel_layer])

    def decode_cut(self, y: Tensor, layers: Tensor, hit_probabilities: Tensor | None = None,
                   generator: torch.Generator | None = None, hit_shape: int | None = None,
                   energies: Tensor | None = None, hit_deposit: float | None = None) -> Tensor:
        """``decode`` for a model of cut showers (CaloMan's autoencoder), given dequantised layer energies.

        Less their expected noise (half the threshold on every voxel, or once per layer), ``layers`` are the
        energies of the cut layers. A reconstruction spreads small shares over voxels that are empty in Geant4;
        they fall under the threshold and each layer is rescaled to its energy again, which the cut alone would
        lower. With ``hit_probabilities`` (as the voxels) the hits are drawn: the shares are expected values over
        hit and miss, so a voxel that is hit holds its share divided by its probability, and one that is missed
        nothing; with ``hit_shape`` k a hit holds the threshold plus a gamma draw of shape k (the sum of k
        exponential draws over k), their sum of that mean (a hit is a deposit above the threshold: an unshifted
        draw would lose the low ones to the cut and pull the layer's energy into its core). k = 1 is the
        exponential law, whose mode at the threshold lights too many faint hits (``CaloManConfig.hit_energy``).
        With ``hit_deposit`` e (MeV) the shape grows with the excess x, k = max(hit_shape, x / e): the excess is the
        sum of about x / e deposits, so a bright voxel scatters by 1 / sqrt(k) of its energy, not by all of it
        (``gamma_fractions``).
        A layer whose energy is clear of the dequantisation noise must hold a hit: its hits are drawn given that
        at least one passes the threshold (``draw_hits``). Deep layers hold a few MeV in one or two voxels, whose
        hit probabilities are small: drawn freely, a tenth of them would hold no hit. A layer none of whose voxels
        can hold a hit keeps its expected shares. Given the incident ``energies`` (N,), a layer's number of hits is
        drawn from the fitted law of Geant4's given its energy (``hit_counts``) and the hits are the decoder's most
        likely voxels under logistic noise (``draw_counted_hits``).
        """
        target = (layers - 0.5 * self.threshold * self.noise_voxels).clamp_min(0)
        fractions = self.layer_shares(y)
        spread = target[:, self.voxel_layer]
        showers = self.cut(fractions * spread)
        if hit_probabilities is not None:
            energy = fractions / hit_probabilities.clamp_min(1e-3) * spread
            # uniform draws: torch's bernoulli_ and exponential_ cost several times as much on a CPU
            if hit_shape is not None:
                excess = (energy - self.threshold).clamp_min(0)
                shape = hit_shape if hit_deposit is None else (excess / hit_deposit).clamp_min(hit_shape)
                energy = self.threshold + excess * gamma_fractions(shape, excess, generator)
            passing = torch.where(energy >= self.threshold, hit_probabilities, 0.0)
            # three standard deviations of the dequantisation noise in a layer's energy: below, it may be empty
            certain = target > 3 * self.threshold * (self.noise_voxels / 12).sqrt()
            if energies is None:
                hit = draw_hits(passing, certain, self.voxel_layer, self.n_layers, generator)
            else:
                counts = self.hit_counts.draw(energies, torch.where(target > self.threshold, target, 0.0), generator)
                hit = draw_counted_hits(passing, counts, self.voxel_layer, generator)
            drawn = torch.where(hit, energy, 0.0)
            lost = certain & (self.layer_energies(drawn) == 0)
            showers = torch.where(lost[:, self.voxel_layer], showers, drawn)
        kept = self.layer_energies(showers)
        scale = torch.where(kept > 0, target / kept.clamp_min(torch.finfo(y.dtype).tiny), torch.zeros_like(kept))
        return showers * scale[:, self.voxel_layer]  # a layer left with no voxel stays empty
