"""The report's figures (matplotlib, Agg, mplhep step histograms): Geant4 always grey and filled, generated in colour.

Each function returns a ``Figure``; ``figure_png`` turns one into PNG bytes for the report. Figures with one panel
per layer show every layer of small geometries and an evenly spaced selection (always including the first and last
energetic layer) of large ones, so that a ds2/ds3 report stays readable; the separation-power map shows all layers.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: before pyplot is imported anywhere

import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from caloforge.evaluate.features import DECADE_EDGES_MEV, ShowerFeatures  # noqa: E402
from caloforge.evaluate.histograms import LAYER_GROUPS, Histogram, energy_label  # noqa: E402
from caloforge.geometry import Geometry  # noqa: E402

GEANT4 = dict(color="#8c8c8c", alpha=0.45, label="Geant4")
GENERATED = dict(color="#d7301f", label="generated")
STYLE = {"font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.25, "axes.spines.top": False,
         "axes.spines.right": False, "figure.dpi": 100}
MAX_PANELS = 8
_LOG_Y = {"E_layer", "E_voxel", "EC_eta", "EC_phi", "width_eta", "width_phi", "EC_r", "width_r"}


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """PNG bytes of a figure (closed afterwards, so figures do not pile up in memory)."""
    buffer = io.BytesIO()
    # zlib level 3: about a third of the default's encoding time for files a few per cent larger
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white", pil_kwargs={"compress_level": 3})
    plt.close(fig)
    return buffer.getvalue()


def select_layers(n_layers: int, energetic: np.ndarray, limit: int = MAX_PANELS) -> np.ndarray:
    """All layers, or ``limit`` evenly spaced ones from the first to the last energetic layer."""
    if n_layers <= limit:
        return np.arange(n_layers)
    active = np.flatnonzero(energetic)
    first, last = (active[0], active[-1]) if len(active) else (0, n_layers - 1)
    return np.unique(np.round(np.linspace(first, last, limit)).astype(int))


def _energetic(geometry: Geometry, mean_shower: np.ndarray) -> np.ndarray:
    per_layer = geometry.layer_energies(mean_shower[None])[0]
    return per_layer > 1e-3 * per_layer.max(initial=0.0)


def _ratio_axes(fig: Figure, spec) -> tuple[plt.Axes, plt.Axes]:
    inner = spec.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.06)
    top = fig.add_subplot(inner[0])
    bottom = fig.add_subplot(inner[1], sharex=top)
    top.tick_params(labelbottom=False)
    return top, bottom


def _title(ax: plt.Axes, text: str, pad: float = 0.02) -> None:
    """A title as plain text above the axes: ``set_title`` re-measures every axis to place it, which is a third
    of the drawing time of a grid of small panels."""
    ax.text(0.5, 1 + pad, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=STYLE["axes.titlesize"])


def _no_minor_ticks(*axes: plt.Axes) -> None:
    """Minor ticks of log axes are most of a grid figure's drawing time (thousands of tick objects)."""
    for ax in axes:
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())


def _draw_ratio(ax: plt.Axes, edges: np.ndarray, reference: np.ndarray, generated: np.ndarray) -> None:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(reference > 0, generated / reference, np.nan)
    ax.axhline(1.0, color=GEANT4["color"], lw=1)
    ax.stairs(ratio, edges, color=GENERATED["color"], lw=1.2)
    ax.set_ylim(0.5, 1.5)
    ax.set_ylabel("gen/G4", fontsize=7.5)


def _histogram_panel(fig: Figure, spec, hist: Histogram, legend: bool, xlabel: str | None = None) -> None:
    top, bottom = _ratio_axes(fig, spec)
    ref = hist.reference / max(hist.reference.sum(), 1)
    gen = hist.generated / max(hist.generated.sum(), 1)
    mplhep.histplot(ref, hist.edges, ax=top, histtype="fill", **GEANT4)
    mplhep.histplot(gen, hist.edges, ax=top, histtype="step", lw=1.4, **GENERATED)
    if hist.group in _LOG_Y and ref.max(initial=0) > 0:
        top.set_yscale("log")
    if hist.log_x:
        top.set_xscale("log")
    name = hist.group if hist.layer is None else f"layer {hist.layer}"
    _title(top, f"{name}   (S = {hist.separation:.2g})" if np.isfinite(hist.separation) else name)
    top.set_ylabel("fraction")
    if legend:
        top.legend(loc="best", frameon=False)
    _draw_ratio(bottom, hist.edges, ref, gen)
    bottom.set_xlabel(xlabel or (f"{hist.group} [{hist.unit}]" if hist.unit else hist.group))
    bottom.set_xlim(hist.edges[0], hist.edges[-1])
    _no_minor_ticks(top, bottom)


def histogram_grid(hists: list[Histogram], title: str, columns: int = 4, xlabel: str | None = None) -> Figure:
    """A grid of histograms with ratio panels (one feature group, or the per-shower features)."""
    rows = -(-len(hists) // columns)
    columns = min(columns, len(hists))
    height = 2.9 * rows + 0.5
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(3.3 * columns + 0.3, height))
        grid = fig.add_gridspec(rows, columns, hspace=0.5, wspace=0.32, left=0.25 / columns, right=0.98,
                                top=1 - 0.62 / height, bottom=0.45 / height)
        for i, hist in enumerate(hists):
            _histogram_panel(fig, grid[i // columns, i % columns], hist, legend=(i == 0), xlabel=xlabel)
        fig.suptitle(title, fontsize=11, fontweight="bold", y=1 - 0.12 / height)
    return fig


def feature_figures(geometry: Geometry, hists: list[Histogram], reference: ShowerFeatures) -> dict[str, Figure]:
    """One figure for the per-shower features and one per per-layer group (a selection of layers)."""
    figures = {}
    overall = [h for h in hists if h.layer is None]
    if overall:
        figures["Shower-level features"] = histogram_grid(overall, "Total energy and voxel spectrum", columns=3)
    shown = {geometry.layer_ids[i] for i in select_layers(geometry.n_layers, _energetic(geometry,
                                                                                        reference.mean_shower))}
    for label in LAYER_GROUPS:
        group = [h for h in hists if h.group == label and h.layer in shown]
        if group:
            figures[label] = histogram_grid(group, f"{label} per layer")
    return figures


def separation_map(table: dict, geometry: Geometry) -> Figure:
    """Separation power of every per-layer feature and layer, as a colour map (log scale)."""
    groups = [label for label in LAYER_GROUPS if label in table]
    values = np.full((len(groups), geometry.n_layers), np.nan)
    position = {lid: i for i, lid in enumerate(geometry.layer_ids)}
    for row, label in enumerate(groups):
        for layer, value in zip(table[label]["layers"], table[label]["values"]):
            values[row, position[layer]] = np.nan if value is None else value
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(min(2.5 + 0.22 * geometry.n_layers, 13), 0.35 * len(groups) + 1.4))
        image = ax.imshow(np.clip(values, 1e-5, 1), aspect="auto", cmap="magma_r", interpolation="nearest",
                          norm=LogNorm(1e-5, 1))
        ax.set_yticks(range(len(groups)), groups)
        step = max(1, geometry.n_layers // 23)
        ax.set_xticks(range(0, geometry.n_layers, step), [str(geometry.layer_ids[i])
                                                          for i in range(0, geometry.n_layers, step)])
        ax.set_xlabel("layer")
        ax.grid(False)
        fig.colorbar(image, ax=ax, label="separation power", pad=0.01)
        _title(ax, "Separation power per layer (0 = identical, 1 = disjoint)")
        fig.subplots_adjust(left=0.1, right=1.0, bottom=0.8 / fig.get_figheight(), top=1 - 0.45 / fig.get_figheight())
    return fig


def _polar_layer(ax: plt.Axes, geometry: Geometry, layer: int, values: np.ndarray, norm, cmap: str, pixels: int = 161):
    """A layer as rings (one per radial bin, equally wide so that every bin is visible) and sectors (angular
    bins), rasterised here: a few numpy operations instead of thousands of curved polygons."""
    n_alpha, n_r = geometry.n_alpha[layer], int(geometry.n_r[layer])
    grid = values.reshape(n_alpha, n_r)  # voxel order: alpha slow, r fast
    y, x = np.mgrid[-1:1:pixels * 1j, -1:1:pixels * 1j]
    ring = np.floor(np.hypot(x, y) * n_r).astype(int)
    sector = np.clip(np.floor((np.arctan2(y, x) + np.pi) / (2 * np.pi) * n_alpha).astype(int), 0, n_alpha - 1)
    inside = ring < n_r
    image = np.full(x.shape, np.nan)
    image[inside] = grid[sector[inside], ring[inside]]
    mesh = ax.imshow(np.ma.masked_invalid(image), origin="lower", extent=(-1, 1, -1, 1), norm=norm, cmap=cmap,
                     interpolation="nearest")
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, lw=0.8, color="#333333"))
    ax.set_xlim(-1.03, 1.03)
    ax.set_ylim(-1.03, 1.03)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return mesh


def average_shower_figure(geometry: Geometry, reference: np.ndarray, generated: np.ndarray) -> Figure:
    """Average voxel energies of selected layers: Geant4, generated and their ratio."""
    layers = select_layers(geometry.n_layers, _energetic(geometry, reference), limit=8)
    top = max(reference.max(initial=0.0), generated.max(initial=0.0), 1e-12)
    norm = LogNorm(top * 1e-5, top)
    ratio_norm = LogNorm(0.5, 2.0)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(3, len(layers), figsize=(1.55 * len(layers) + 1.4, 5.3), squeeze=False)
        for column, layer in enumerate(layers):
            sl = geometry.layer_slice(layer)
            ref, gen = reference[sl], generated[sl]
            with np.errstate(divide="ignore", invalid="ignore"):
                # ratios of voxels far below the peak are mostly noise: left blank
                ratio = np.where(ref > top * 1e-4, gen / ref, np.nan)
            energy_mesh = _polar_layer(axes[0, column], geometry, layer, np.where(ref > 0, ref, np.nan), norm,
                                       "viridis")
            _polar_layer(axes[1, column], geometry, layer, np.where(gen > 0, gen, np.nan), norm, "viridis")
            ratio_mesh = _polar_layer(axes[2, column], geometry, layer, ratio, ratio_norm, "RdBu_r")
            _title(axes[0, column], f"layer {geometry.layer_ids[layer]}", pad=0.06)
        for row, name in enumerate(("Geant4", "generated", "gen / Geant4")):
            axes[row, 0].text(-0.12, 0.5, name, transform=axes[row, 0].transAxes, rotation=90, va="center",
                              ha="center", fontsize=9, fontweight="bold")
        fig.subplots_adjust(left=0.06, right=0.86, top=0.9, bottom=0.03, wspace=0.08, hspace=0.12)
        fig.colorbar(energy_mesh, cax=fig.add_axes([0.885, 0.4, 0.018, 0.48]), label="mean energy [MeV]")
        ratio_bar = fig.colorbar(ratio_mesh, cax=fig.add_axes([0.885, 0.05, 0.018, 0.26]), label="ratio")
        ratio_bar.set_ticks([0.5, 0.7, 1.0, 1.4, 2.0], labels=["0.5", "0.7", "1", "1.4", "2"])
        ratio_bar.ax.yaxis.set_minor_locator(NullLocator())
        fig.suptitle("Average shower per layer (rings: radial bins, sectors: angular bins)", fontsize=11,
                     fontweight="bold")
    return fig


def _radial_profile(geometry: Geometry, mean_shower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean energy per mm of radius on the union of all layers' radial edges (any geometry)."""
    edges = np.unique(np.concatenate(geometry.r_edges))
    energy = np.zeros(len(edges) - 1)
    low, high = geometry.voxel_r_edges.T
    # spread each voxel's energy over the union bins it covers, in proportion to the radius covered
    for i in range(len(edges) - 1):
        overlap = np.clip(np.minimum(high, edges[i + 1]) - np.maximum(low, edges[i]), 0, None) / (high - low)
        energy[i] = np.sum(mean_shower * overlap)
    return edges, energy / np.diff(edges)


def _profile_panel(fig, spec, x_edges, ref, gen, xlabel, ylabel, title, legend, log_y=True):
    top, bottom = _ratio_axes(fig, spec)
    mplhep.histplot(ref, x_edges, ax=top, histtype="fill", **GEANT4)
    mplhep.histplot(gen, x_edges, ax=top, histtype="step", lw=1.4, **GENERATED)
    if log_y and ref.max(initial=0) > 0:
        top.set_yscale("log")
    top.set_ylabel(ylabel)
    _title(top, title)
    if legend:
        top.legend(frameon=False)
    _draw_ratio(bottom, x_edges, ref, gen)
    bottom.set_xlabel(xlabel)
    bottom.set_xlim(x_edges[0], x_edges[-1])
    _no_minor_ticks(top, bottom)


def profiles_figure(geometry: Geometry, reference: ShowerFeatures, generated: ShowerFeatures) -> Figure:
    """Longitudinal (mean E per layer) and radial (mean E per mm) profiles of the average shower, per energy decade.

    The first column is the whole sample; then one column per incident-energy decade present in the reference.
    """
    decades = [d for d in range(len(reference.decade_counts)) if reference.decade_counts[d] > 0]
    columns = [None] + decades if len(decades) > 1 else [None]
    layer_edges = np.arange(geometry.n_layers + 1) - 0.5
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(3.4 * len(columns), 6.2))
        grid = fig.add_gridspec(2, len(columns), hspace=0.42, wspace=0.3, left=0.07, right=0.98, top=0.9,
                                bottom=0.08)
        for column, decade in enumerate(columns):
            if decade is None:
                ref_mean, gen_mean, label = reference.mean_shower, generated.mean_shower, "all energies"
            else:
                ref_mean = reference.decade_sums[decade] / reference.decade_counts[decade]
                count = generated.decade_counts[decade]
                gen_mean = generated.decade_sums[decade] / count if count else np.zeros_like(ref_mean)
                low, high = DECADE_EDGES_MEV[decade], DECADE_EDGES_MEV[decade + 1]
                label = f"E_inc {energy_label(low)} - {energy_label(high)}"
            _profile_panel(fig, grid[0, column], layer_edges, geometry.layer_energies(ref_mean[None])[0],
                           geometry.layer_energies(gen_mean[None])[0], "layer", "mean energy [MeV]", label,
                           legend=(column == 0))
            r_edges, ref_r = _radial_profile(geometry, ref_mean)
            _, gen_r = _radial_profile(geometry, gen_mean)
            _profile_panel(fig, grid[1, column], r_edges, ref_r, gen_r, "r [mm]", "mean energy [MeV / mm]", label,
                           legend=False)
        fig.suptitle("Average shower: longitudinal and radial profiles, overall and per incident-energy decade",
                     fontsize=11, fontweight="bold")
    return fig


def response_figure(reference: ShowerFeatures, generated: ShowerFeatures) -> Figure:
    """E_tot / E_inc against E_inc: mean and 16-84 % band in log-energy bins, with the ratio of the means."""
    low, high = float(reference.e_inc.min()), float(reference.e_inc.max())
    edges = np.logspace(np.log10(low), np.log10(high * 1.0001), 16) if high > low else np.array([low, low * 1.01])
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(6.4, 4.6))
        top, bottom = _ratio_axes(fig, fig.add_gridspec(1, 1, left=0.12, right=0.97, top=0.9, bottom=0.12)[0])
        means = {}
        for features, style in ((reference, GEANT4), (generated, GENERATED)):
            index = np.digitize(features.e_inc, edges) - 1
            stats = np.full((3, len(edges) - 1), np.nan)
            for b in range(len(edges) - 1):
                values = features.e_ratio[index == b]
                if len(values) >= 5:
                    stats[:, b] = [values.mean(), *np.percentile(values, [16, 84])]
            centres = np.sqrt(edges[:-1] * edges[1:])
            if style is GEANT4:
                top.fill_between(centres, stats[1], stats[2], color=style["color"], alpha=0.3,
                                 label="Geant4 16-84 %")
                top.plot(centres, stats[0], color=style["color"], lw=2, label="Geant4 mean")
            else:
                top.errorbar(centres, stats[0], yerr=[stats[0] - stats[1], stats[2] - stats[0]], fmt="o", ms=3.5,
                             color=style["color"], capsize=2, lw=1, label="generated mean, 16-84 %")
            means[style["label"]] = (centres, stats[0])
        top.set_xscale("log")
        top.set_ylabel("E_tot / E_inc")
        top.legend(frameon=False, fontsize=7.5)
        top.set_title("Energy response against incident energy")
        centres, ref_mean = means["Geant4"]
        bottom.axhline(1.0, color=GEANT4["color"])
        ratio = means["generated"][1] / ref_mean
        bottom.plot(centres, ratio, "o-", ms=3, color=GENERATED["color"])
        deviation = np.nanmax(np.abs(ratio - 1.0), initial=0.0)
        span = max(0.05, 1.25 * deviation) if np.isfinite(deviation) else 0.05
        bottom.set_ylim(1.0 - span, 1.0 + span)
        bottom.set_ylabel("gen/G4", fontsize=7.5)
        bottom.set_xlabel("E_inc [MeV]")
    return fig


def classifier_figure(outputs: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> Figure:
    """Calibrated classifier outputs on the "val" set per class, one panel per classifier (first training)."""
    edges = np.linspace(0, 1, 41)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(outputs), figsize=(3.6 * len(outputs), 3.2), squeeze=False)
        for ax, (name, (labels, probabilities, auc)) in zip(axes[0], outputs.items()):
            ref = np.histogram(probabilities[labels == 1], edges)[0]
            gen = np.histogram(probabilities[labels == 0], edges)[0]
            mplhep.histplot(ref / max(ref.sum(), 1), edges, ax=ax, histtype="fill", **GEANT4)
            mplhep.histplot(gen / max(gen.sum(), 1), edges, ax=ax, histtype="step", lw=1.4, **GENERATED)
            ax.axvline(0.5, color="k", lw=0.6, ls=":")
            ax.set_yscale("log")
            ax.set_title(f"{name}   AUC = {auc:.3f}")
            ax.set_xlabel("calibrated p(Geant4)")
            ax.set_ylabel("fraction")
            ax.legend(frameon=False)
        fig.tight_layout()
    return fig
