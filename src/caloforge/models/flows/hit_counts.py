"""How many voxels of a layer are hit, tied to the layer's energy as in Geant4.

A layer's hits in Geant4 are charged particles' deposits: its energy is about its number of hits times a typical
deposit, so that given the layer energy the count scatters little (on Par04 the log count's spread about its trend
in the log energy is 0.14-0.42 over the layers, its slope at the mean 0.37-0.79). A decoder that draws each voxel's
hit independently with its probability leaves the count to the binomial draw and to its latent point (spread
0.22-0.71, slope 0.09-0.72 on the CaloMan flagship of 2026-12-05; ``bench/bench_hit_counts.py``), and the hit
energies, rescaled to the layer's, make up the difference. So the count is drawn from Geant4's own conditional
law: the quantiles of the count in cells of (log E_layer, log E_inc), fitted on the training showers, read at a
uniform draw u per layer. The u of neighbouring layers are correlated through an AR(1) Gaussian copula over the
layers, whose correlation is fitted too (a shower that lit more voxels than its energy says in one layer does so in
the next). Which voxels hold the
hits is then the decoder's: the count's top keys logit(p) + logistic noise, the independent Bernoulli draw of the
probabilities p conditioned on its total (up to a shift of all logits, which the top-n ignores).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: cells of the fitted law: layer-energy bins (quantiles of each layer's nonzero energies) x incident-energy bins
LAYER_BINS, INCIDENT_BINS = 12, 3
#: quantile levels of the count stored per cell, read with linear interpolation
LEVELS = 16
#: a cell with fewer showers takes its layer-energy bin's law over all incident energies
MIN_CELL = 20


def _quantile_edges(values: Tensor, bins: int) -> Tensor:
    edges = torch.quantile(values.double(), torch.linspace(0, 1, bins + 1, dtype=torch.float64))
    edges[0], edges[-1] = -torch.inf, torch.inf
    return edges


def _cell(edges: Tensor, values: Tensor) -> Tensor:
    """The bin of each value between ``_quantile_edges`` (a row of values per row of edges where both are 2-D)."""
    return torch.searchsorted(edges[..., 1:-1].contiguous(), values.contiguous(), right=True)


def fit_hit_counts(energies: Tensor, layers: Tensor, counts: Tensor) -> dict:
    """The conditional law of the hit counts (N, L) given the cut layer energies (N, L) and E_inc (N,), MeV:
    ``{"layer_edges", "incident_edges", "quantiles", "correlation"}``, JSON-serialisable (log energies)."""
    levels = (torch.arange(LEVELS, dtype=torch.float64) + 0.5) / LEVELS
    log_incident = energies.double().log()
    incident_edges = _quantile_edges(log_incident, INCIDENT_BINS)
    incident_cell = _cell(incident_edges, log_incident)
    n_layers = layers.shape[1]
    layer_edges = torch.zeros(n_layers, LAYER_BINS + 1, dtype=torch.float64)
    quantiles = torch.ones(n_layers, INCIDENT_BINS, LAYER_BINS, LEVELS, dtype=torch.float64)
    scores = torch.full(layers.shape, torch.nan, dtype=torch.float64)  # each count's normal score in its cell
    for j in range(n_layers):
        filled = layers[:, j] > 0
        if filled.sum() < MIN_CELL:
            continue  # a layer Geant4 never fills keeps one hit wherever a drawn energy lands in it
        log_layer = layers[filled, j].double().log()
        layer_edges[j] = _quantile_edges(log_layer, LAYER_BINS)
        bins, incident, count = _cell(layer_edges[j], log_layer), incident_cell[filled], counts[filled, j].double()
        rows = torch.nonzero(filled).squeeze(1)
        for b in range(LAYER_BINS):
            in_bin = bins == b
            for i in range(INCIDENT_BINS):
                cell = in_bin & (incident == i)
                source = cell if cell.sum() >= MIN_CELL else in_bin
                if source.any():
                    quantiles[j, i, b] = torch.quantile(count[source], levels, interpolation="lower")
                if cell.any():  # mid-ranks, ties split evenly: the counts' u, whose scores give the copula
                    ranked = count[cell].sort().values
                    below = torch.searchsorted(ranked, count[cell], right=False)
                    upto = torch.searchsorted(ranked, count[cell], right=True)
                    u = ((below + upto).double() / 2 / len(ranked)).clamp(0.5 / len(ranked), 1 - 0.5 / len(ranked))
                    scores[rows[cell], j] = torch.special.ndtri(u)
    both = ~scores[:, 1:].isnan() & ~scores[:, :-1].isnan()
    pairs = torch.stack([scores[:, 1:][both], scores[:, :-1][both]])
    correlation = float(torch.corrcoef(pairs)[0, 1]) if both.sum() > 2 else 0.0
    return {"layer_edges": layer_edges.tolist(), "incident_edges": incident_edges.tolist(),
            "quantiles": quantiles.long().tolist(), "correlation": correlation}


class HitCountLaw(torch.nn.Module):
    """``fit_hit_counts``'s law, drawn from."""

    layer_edges: Tensor
    incident_edges: Tensor
    quantiles: Tensor

    def __init__(self, fitted: dict):
        super().__init__()
        for name in ("layer_edges", "incident_edges", "quantiles"):
            self.register_buffer(name, torch.tensor(fitted[name], dtype=torch.float32), persistent=False)
        self.correlation = fitted["correlation"]

    def draw(self, energies: Tensor, layers: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(N, L) hit counts (float) of layers holding ``layers`` (MeV, cut; an empty layer gets none) in showers
        of incident ``energies`` (N,)."""
        n, n_layers = layers.shape
        noise = torch.randn(n, n_layers, generator=generator, device=layers.device, dtype=torch.float32)
        rho = self.correlation
        scores = torch.empty_like(noise)
        scores[:, 0] = noise[:, 0]
        for j in range(1, n_layers):  # AR(1) over the layers, unit variance
            scores[:, j] = rho * scores[:, j - 1] + (1 - rho * rho) ** 0.5 * noise[:, j]
        position = torch.special.ndtr(scores) * self.quantiles.shape[-1] - 0.5
        below = position.floor().clamp(0, self.quantiles.shape[-1] - 1)
        above = (below + 1).clamp(max=self.quantiles.shape[-1] - 1)
        incident = _cell(self.incident_edges, energies.float().reshape(-1).log()).unsqueeze(1).expand(-1, n_layers)
        log_layers = layers.float().clamp_min(torch.finfo(torch.float32).tiny).log()
        bins = _cell(self.layer_edges, log_layers.T).T
        table = self.quantiles[torch.arange(n_layers, device=layers.device), incident, bins]  # (N, L, LEVELS)
        low, high = table.gather(-1, below.long().unsqueeze(-1)), table.gather(-1, above.long().unsqueeze(-1))
        weight = (position - below).clamp(0, 1).unsqueeze(-1)
        counts = (low + weight * (high - low)).squeeze(-1)
        # stochastic rounding keeps the interpolated mean
        counts = (counts + torch.rand(counts.shape, generator=generator, device=counts.device)).floor()
        return torch.where(layers > 0, counts.clamp_min(1), torch.zeros_like(counts))


def draw_counted_hits(probabilities: Tensor, counts: Tensor, voxel_layer: Tensor,
                      generator: torch.Generator | None = None) -> Tensor:
    """(N, voxels) hits: in each layer the ``counts`` (N, L) voxels of highest logit(p) + logistic noise among those
    of nonzero ``probabilities`` p (fewer where fewer can be hit). Voxels of a layer must be contiguous."""
    p = probabilities.clamp(1e-12, 1 - 1e-6)
    u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device).clamp(1e-7, 1 - 1e-7)
    keys = (p.log() - p.neg().log1p() + u.log() - u.neg().log1p()).clamp(-60, 60)
    # one sort along the row orders every layer's voxels by key, the layers kept in place
    order = (voxel_layer * 1000.0 - keys).argsort(dim=1)
    start = torch.searchsorted(voxel_layer, voxel_layer)  # each voxel's layer's first voxel
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(p.shape[1], device=p.device).expand_as(order))
    rank = rank - start
    return (rank < counts[:, voxel_layer]) & (probabilities > 0)
