"""Histograms of the high-level features with the CaloChallenge's fixed binnings, and their separation power.

Separation power (triangular discrimination, eq. 15 of arXiv:2009.03796) of unit-normalised bin contents p and q:
S = 1/2 sum (p - q)^2 / (p + q + 1e-16); 0 for identical histograms, 1 for disjoint ones. Entries outside the
binning are left out before normalising, as ``plt.hist(density=True)`` does upstream.

Binnings (upstream ``evaluate.py`` where it has one; the rest chosen for the same resolution):
- E_tot / E_inc: 100 bins over [0.5, 1.5].
- E_layer: 39 log bins from the readout threshold to the reference's largest value of that layer.
- voxel energies: 10 log bins per decade from the threshold to the reference's largest voxel (upstream: 49 over
  the same range, about 10 per decade for ds2).
- eta / phi centres: 100 bins over [-30, 30] mm (ds2, ds3 and the Par04 geometries), [-500, 500] (ds1 layers 12
  and 13) or [-100, 100] (other ds1 layers); widths 100 bins over [0, 30], [0, 400] or [0, 100].
  Centres and widths in r use the width range. Other geometries: 0.75 times the layer's outer radius.
- rho (SuperCalo's inter-layer correlation, regular geometries): 50 bins over [0, 1] for each adjacent layer pair,
  labelled by the pair's first layer; showers with either layer empty are left out.
- sparsity: 100 bins over [0, 1]; E_tot: 40 log bins over the reference's range (E_tot and sparsity are caloforge
  additions to the upstream histogram set; r and sparsity were scored in the final paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caloforge.evaluate.correlation import RHO_BINS, RHO_RANGE
from caloforge.evaluate.features import DECADE_EDGES_MEV, VOXEL_BINS_PER_DECADE, ShowerFeatures, alpha_layers
from caloforge.geometry import Geometry

#: per-layer feature groups: (attribute of ShowerFeatures, label, unit); the alpha ones exist for alpha layers only
LAYER_FEATURES = (
    ("e_layer", "E_layer", "MeV"),
    ("ec_eta", "EC_eta", "mm"),
    ("ec_phi", "EC_phi", "mm"),
    ("width_eta", "width_eta", "mm"),
    ("width_phi", "width_phi", "mm"),
    ("ec_r", "EC_r", "mm"),
    ("width_r", "width_r", "mm"),
    ("sparsity", "sparsity", ""),
)
ALPHA_FEATURES = {"ec_eta", "ec_phi", "width_eta", "width_phi"}
#: the group of the inter-layer correlation histograms; each is labelled by the first layer of its pair
RHO_GROUP = "rho (n, n+1)"
#: every per-layer group, in report order
LAYER_GROUPS = tuple(label for _, label, _ in LAYER_FEATURES) + (RHO_GROUP,)
_DS2_MESH = {"ds2", "ds3", "par04", "par04-coarse"}
_DS1 = {"ds1-photons", "ds1-pions"}
_VOXEL_COARSEN = 5  # fine spectrum bins per plotted bin: 50 per decade -> 10


@dataclass(frozen=True)
class Histogram:
    """One feature's binned reference and generated counts (``layer`` is the layer id, None for per-shower ones)."""

    group: str
    layer: int | None
    unit: str
    edges: np.ndarray
    reference: np.ndarray
    generated: np.ndarray
    log_x: bool = False

    @property
    def separation(self) -> float:
        return separation_power(self.reference, self.generated)

    @property
    def statistical_floor(self) -> float:
        """The S that sampling noise alone gives two samples of these sizes from one distribution:
        K (1/n_ref + 1/n_gen) / 4 for K filled bins (each bin adds (1/n_ref + 1/n_gen) / 4 on average)."""
        n_ref, n_gen = self.reference.sum(), self.generated.sum()
        if n_ref <= 0 or n_gen <= 0:
            return float("nan")
        filled = np.count_nonzero((self.reference + self.generated) > 0)
        return float(filled * (1.0 / n_ref + 1.0 / n_gen) / 4.0)

    @property
    def title(self) -> str:
        return self.group if self.layer is None else f"{self.group} layer {self.layer}"


def separation_power(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """S of two histograms' counts (normalised here); NaN when either holds no entry inside the binning."""
    p_counts = np.asarray(p_counts, dtype=np.float64)
    q_counts = np.asarray(q_counts, dtype=np.float64)
    if p_counts.sum() <= 0 or q_counts.sum() <= 0:
        return float("nan")
    p, q = p_counts / p_counts.sum(), q_counts / q_counts.sum()
    return float(0.5 * np.sum((p - q) ** 2 / (p + q + 1e-16)))


def centre_width_limits(geometry: Geometry, layer: int) -> tuple[float, float]:
    """(half range of centres, range of widths) in mm for a layer (index into the active layers)."""
    if geometry.name in _DS2_MESH:
        return 30.0, 30.0
    if geometry.name in _DS1:
        return (500.0, 400.0) if geometry.layer_ids[layer] in (12, 13, 14) else (100.0, 100.0)
    outer = 0.75 * float(geometry.r_edges[layer][-1])
    return outer, outer


def _log_edges(low: float, high: float, n_edges: int) -> np.ndarray | None:
    if not (np.isfinite(high) and high > low > 0):
        return None
    return np.logspace(np.log10(low), np.log10(high), n_edges)


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.histogram(values[np.isfinite(values)], bins=edges)[0]  # NaN: a feature undefined for that shower


def _layer_edges(geometry: Geometry, attribute: str, layer: int, reference: np.ndarray,
                 threshold: float) -> tuple[np.ndarray | None, bool]:
    if attribute == "e_layer":
        return _log_edges(threshold, float(reference.max(initial=0.0)), 40), True
    if attribute == "sparsity":
        return np.linspace(0.0, 1.0, 101), False
    centre, width = centre_width_limits(geometry, layer)
    if attribute in ("ec_eta", "ec_phi"):
        return np.linspace(-centre, centre, 101), False
    return np.linspace(0.0, width, 101), False


def feature_histograms(geometry: Geometry, reference: ShowerFeatures, generated: ShowerFeatures) -> list[Histogram]:
    """Every feature's histogram, in report order: per-shower ones first, then each per-layer group."""
    hists: list[Histogram] = []

    def add(group, layer, unit, edges, ref_values, gen_values, log_x=False):
        if edges is not None:
            hists.append(Histogram(group, layer, unit, edges, _counts(ref_values, edges), _counts(gen_values, edges),
                                   log_x))

    add("E_tot/E_inc", None, "", np.linspace(0.5, 1.5, 101), reference.e_ratio, generated.e_ratio)
    positive = reference.e_tot[reference.e_tot > 0]
    if len(positive):
        add("E_tot", None, "MeV", _log_edges(0.9 * float(positive.min()), 1.1 * float(positive.max()), 41),
            reference.e_tot, generated.e_tot, log_x=True)
    hists.extend(_voxel_histogram(reference, generated))
    alpha = alpha_layers(geometry)
    for attribute, label, unit in LAYER_FEATURES:
        layers = alpha if attribute in ALPHA_FEATURES else np.arange(geometry.n_layers)
        ref_all, gen_all = getattr(reference, attribute), getattr(generated, attribute)
        for column, layer in enumerate(layers):
            edges, log_x = _layer_edges(geometry, attribute, int(layer), ref_all[:, column], reference.threshold)
            add(label, geometry.layer_ids[layer], unit, edges, ref_all[:, column], gen_all[:, column], log_x)
    rho_edges = np.linspace(*RHO_RANGE, RHO_BINS + 1)
    for pair in range(reference.rho.shape[1]):
        add(RHO_GROUP, geometry.layer_ids[pair], "", rho_edges, reference.rho[:, pair], generated.rho[:, pair])
    return hists


def energy_label(mev: float) -> str:
    """1000 -> "1 GeV"."""
    for scale, unit in ((1e6, "TeV"), (1e3, "GeV")):
        if mev >= scale:
            return f"{mev / scale:g} {unit}"
    return f"{mev:g} MeV"


def response_histograms(reference: ShowerFeatures, generated: ShowerFeatures, min_showers: int = 20) -> list[Histogram]:
    """E_tot / E_inc per incident-energy decade (50 bins over [0.5, 1.5]), for decades with enough reference showers
    (upstream does this per discrete energy for ds1 with 20 bins; decades suit the continuous spectra of ds2/ds3)."""
    edges = np.linspace(0.5, 1.5, 51)
    hists = []
    for decade in range(len(DECADE_EDGES_MEV) - 1):
        low, high = DECADE_EDGES_MEV[decade], DECADE_EDGES_MEV[decade + 1]
        in_ref = (reference.e_inc >= low) & (reference.e_inc < high)
        in_gen = (generated.e_inc >= low) & (generated.e_inc < high)
        if in_ref.sum() >= min_showers and in_gen.sum() > 0:
            hists.append(Histogram(f"E_inc {energy_label(low)} - {energy_label(high)}", None, "", edges,
                                   _counts(reference.e_ratio[in_ref], edges), _counts(generated.e_ratio[in_gen],
                                                                                      edges)))
    return hists


def _voxel_histogram(reference: ShowerFeatures, generated: ShowerFeatures) -> list[Histogram]:
    """The voxel spectrum: fine counts summed in groups, cut after the reference's last filled bin."""
    filled = np.flatnonzero(reference.voxel_counts)
    if len(filled) == 0:
        return []
    n_coarse = filled[-1] // _VOXEL_COARSEN + 1
    stop = n_coarse * _VOXEL_COARSEN

    def coarse(counts: np.ndarray) -> np.ndarray:
        return counts[:stop].reshape(n_coarse, _VOXEL_COARSEN).sum(1)

    edges = reference.voxel_edges()[:stop + 1:_VOXEL_COARSEN]
    assert len(edges) == n_coarse + 1 and VOXEL_BINS_PER_DECADE % _VOXEL_COARSEN == 0
    return [Histogram("E_voxel", None, "MeV", edges, coarse(reference.voxel_counts), coarse(generated.voxel_counts),
                      log_x=True)]


def separation_table(hists: list[Histogram], statistic: str = "separation") -> dict:
    """{group: S} for per-shower features and {group: {"layers": [...], "values": [...], "mean", "max"}} per
    layer. ``statistic="statistical_floor"`` gives the same table of the noise-only expectation instead."""
    table: dict = {}
    for hist in hists:
        value = _clean(getattr(hist, statistic))
        if hist.layer is None:
            table[hist.group] = value
        else:
            entry = table.setdefault(hist.group, {"layers": [], "values": []})
            entry["layers"].append(int(hist.layer))
            entry["values"].append(value)
    for entry in table.values():
        if isinstance(entry, dict):
            finite = [v for v in entry["values"] if v is not None]
            entry["mean"] = float(np.mean(finite)) if finite else None
            entry["max"] = float(np.max(finite)) if finite else None
    return table


def _clean(value: float) -> float | None:
    """JSON has no NaN: a histogram that cannot be scored is recorded as null."""
    return None if not np.isfinite(value) else float(value)
