"""CaloFlow's flow 1: the energy deposited in each calorimeter layer, given the incident energy.

The L layer energies become CaloFlow's u variables (``LayerFractions``): u_0 = sum E / E_inc and
u_i = E_{i-1} / (energy in layers i-1 and after), each in [0, 1] and free of the overall scale, so that the flow
learns the longitudinal profile and the sampling fraction separately. u_0 can exceed 1 (E_tot / E_inc reaches 1.46
in the Par04 training data: sampling fluctuations), so it is first divided by a fitted scale; then logit
(alpha = 1e-6) and per-variable standardisation put every variable on the spline's domain. The condition is
log10(E_inc / 33.3 GeV). Going back, the sampled layer energies sum to u_0 E_inc by construction.

Layer energies dequantised per layer (CaloMan's: an empty layer holds a uniform draw under the readout threshold)
leave a gap in the data: a layer with a hit holds at least one charged particle's deposit, 0.2 MeV and more in 99.9 %
of the Par04 training layers, while the empty ones end at the threshold, 0.015 MeV. A flow's density cannot end
sharply at the threshold, and spills the empty layers' mass just over it: layers that Geant4 leaves empty come out
holding a few tens of keV. Going back, a drawn energy in the gap therefore belongs to the nearer of its two sides,
in log scale (``fit_empty_gap``, ``empty_the_gap``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from caloforge.data.transforms import LayerFractions, Logit, Standardize, transform_from_dict
from caloforge.models.flows.conditions import incident_condition
from caloforge.models.flows.maf import MaskedAutoregressiveFlow

#: u_0 is divided by this much more than the largest E_tot / E_inc of the training data (room for the tail)
U0_HEADROOM = 1.25
#: the quantile of the training layers' nonzero energies taken as the upper side of the gap over the empty layers
LOWEST_HIT_QUANTILE = 1e-3


def fit_layer_energy(layers: Tensor, energies: Tensor, alpha: float = 1e-6) -> dict:
    """The u_0 scale and the standardisation of the logit u variables, from (N, L) training layer energies."""
    u = LayerFractions().forward(layers.double(), energies.double())
    scale = U0_HEADROOM * float(u[:, 0].max())
    y = Logit(alpha).forward(u / torch.tensor([scale] + [1.0] * (u.shape[1] - 1), dtype=u.dtype), energies)
    return {"u0_scale": scale, "alpha": alpha,
            "standardize": Standardize(per_feature=True).fit(y, energies).to_dict()}


def fit_empty_gap(layers: Tensor, threshold: float) -> dict:
    """``empty_below``: the geometric middle between the readout threshold and the ``LOWEST_HIT_QUANTILE`` of the
    nonzero energies of the (N, L) cut training layer energies (not dequantised)."""
    lowest_hit = float(torch.quantile(layers[layers > 0].double(), LOWEST_HIT_QUANTILE))
    return {"threshold": threshold, "empty_below": max(threshold, (threshold * lowest_hit) ** 0.5)}


def empty_the_gap(layers: Tensor, threshold: float, empty_below: float) -> Tensor:
    """Drawn layer energies between the threshold and ``empty_below`` moved under the threshold (scaled by
    threshold / empty_below), where the dequantised empty layers were: such a layer is empty, and what the
    models conditioned on the layer energies saw of an empty layer in training is a value under the threshold."""
    return torch.where((layers >= threshold) & (layers < empty_below), layers * (threshold / empty_below), layers)


class LayerVariables(nn.Module):
    """The layer energies' fitted variables: (N, L) MeV <-> u variables <-> standardised logit u."""

    u_scale: Tensor

    def __init__(self, n_layers: int, fitted: dict):
        super().__init__()
        self.fractions = LayerFractions()
        self.logit = Logit(fitted["alpha"])
        self.standardize = transform_from_dict(fitted["standardize"])
        self.register_buffer("u_scale", torch.tensor([fitted["u0_scale"]] + [1.0] * (n_layers - 1)), persistent=False)
        # fitted for layer energies dequantised per layer only (files fitted before 2026-12-05 have none)
        self.gap = (fitted["threshold"], fitted["empty_below"]) if "empty_below" in fitted else None

    def to_u(self, layers: Tensor, energies: Tensor) -> Tensor:
        return self.fractions.forward(layers, energies)

    def from_u(self, u: Tensor, energies: Tensor) -> Tensor:
        layers = self.fractions.inverse(u, energies)
        return layers if self.gap is None else empty_the_gap(layers, *self.gap)

    def encode(self, u: Tensor) -> Tensor:
        """u variables -> the flow's standardised logit space."""
        return self.standardize.forward(self.logit.forward(u / self.u_scale, None), None)

    def decode(self, y: Tensor) -> Tensor:
        return self.logit.inverse(self.standardize.inverse(y, None), None) * self.u_scale


class LayerEnergyFlow(LayerVariables):
    """p(E_0..E_{L-1} | E_inc) as a MAF-RQS over the standardised logit u variables. Sampling costs ``passes``
    network evaluations a block (``None``: one a layer, as CaloFlow's; 45 at Par04, most of CaloMan's time)."""

    def __init__(self, n_layers: int, fitted: dict, transforms: int, hidden: list[int], bins: int = 8,
                 passes: int | None = None):
        super().__init__(n_layers, fitted)
        self.flow = MaskedAutoregressiveFlow(n_layers, 1, transforms, hidden, bins, passes=passes)

    def log_prob(self, energies: Tensor, layers: Tensor) -> Tensor:
        """(N,) log-density of the layer energies in the flow's variables (the preprocessing's Jacobian is a
        constant of the data and is left out)."""
        return self.flow.log_prob(self.encode(self.to_u(layers, energies)), incident_condition(energies))

    def sample_u(self, energies: Tensor, generator: torch.Generator | None = None,
                 flow: nn.Module | None = None) -> Tensor:
        return self.decode((self.flow if flow is None else flow).sample(incident_condition(energies), generator))

    def sample(self, energies: Tensor, generator: torch.Generator | None = None,
               flow: nn.Module | None = None) -> Tensor:
        """(N, L) layer energies in MeV for (N,) incident energies; ``flow``: a sampler of the same variables (a
        distilled student) in place of this flow."""
        return self.from_u(self.sample_u(energies, generator, flow), energies)

    def from_noise(self, noise: Tensor, energies: Tensor) -> Tensor:
        """(N, L) layer energies in MeV from this flow's base draw ``noise`` (N, L): ``sample`` as a function of its
        noise, as an ONNX graph takes it (an input, not a draw)."""
        return self.from_u(self.decode(self.flow.decode(noise, incident_condition(energies))), energies)
