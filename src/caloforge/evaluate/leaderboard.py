"""Our measured models beside the published CaloChallenge entries: a table and the quality-versus-time plane.

An entry of ours comes from a ``metrics.json`` written by ``caloforge evaluate`` (or by ``caloforge demo``, which
adds the generation time under ``timing``). Published times are GPU times of the submissions' own hardware;
ours are measured on the machine at hand (CPU unless said otherwise): the plane shows both, labelled so.

Only like can stand beside like on the plane: an entry of ours goes there when it was scored on a 6480-voxel
dataset-2 mesh by a low-level classifier that resolves a x 1.05 distortion of Geant4 at its sample size (see
``resolution``). Every other entry goes into a separate panel, saying why; an AUC that is no quality figure is not
drawn at all.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from caloforge.errors import CaloforgeError  # noqa: E402
from caloforge.evaluate.report import html_table  # noqa: E402
from caloforge.evaluate.published import CITATION, DATASET_FOR_GEOMETRY, published_results  # noqa: E402
from caloforge.evaluate.resolution import DISTORTION, quality_auc, verdict  # noqa: E402

#: geometries on the published dataset-2 mesh (45 layers x 16 alpha x 9 r)
DS2_MESHES = ("ds2", "par04")
DS2_VOXELS = 6480


@dataclass(frozen=True)
class Entry:
    name: str
    auc_low: float | None
    auc_high: float | None
    fpd_x1e3: float | None
    ms_per_shower: float | None
    device: str
    ours: bool
    off_plane: str | None = None  # why an entry of ours may not stand beside the published ones, or None


def off_plane_reason(metrics: dict) -> str | None:
    """Why an evaluation may not go onto the plane beside the published dataset-2 entries, or None when it may."""
    geometry = metrics["geometry"]
    if geometry["name"] not in DS2_MESHES or geometry["n_voxels"] != DS2_VOXELS:
        return f"geometry {geometry['name']} ({geometry['n_voxels']} voxels), not the dataset-2 mesh"
    low = metrics.get("classifiers", {}).get("cls-low")
    if low is None:
        return "no low-level classifier"
    if verdict(low) == "unresolved":
        showers = metrics.get("settings", {}).get("classifier_showers_per_class")
        return f"its low-level classifier does not resolve x {DISTORTION} at {showers} showers per sample"
    if verdict(low) == "below-floor":
        return "its low-level AUC lies below the Geant4-vs-Geant4 floor"
    return None


def entry_from_metrics(metrics: dict, name: str | None = None) -> Entry:
    """An entry of ours from an evaluation's metrics dict."""
    classifiers = metrics.get("classifiers", {})
    timing = metrics.get("timing", {})
    label = name or metrics.get("label") or Path(metrics["files"]["generated"]["path"]).stem
    device = timing.get("device", "-") + (" (busy machine)" if timing.get("busy") else "")
    return Entry(name=label,
                 auc_low=quality_auc(classifiers.get("cls-low")),
                 auc_high=quality_auc(classifiers.get("cls-high")),
                 fpd_x1e3=metrics.get("fpd", {}).get("value_x1e3"),
                 ms_per_shower=timing.get("ms_per_shower"),
                 device=device,
                 ours=True,
                 off_plane=off_plane_reason(metrics))


def published_entries(geometry_name: str) -> list[Entry]:
    """The published entries of the CaloChallenge dataset matching a geometry (empty if none matches)."""
    found = published_results(geometry_name)
    if found is None:
        return []
    _, rows = found
    return [Entry(row.name, row.values["auc_low"], row.values["auc_high"], row.values["fpd_x1e3"],
                  row.gpu_ms_batch100, "GPU", ours=False) for row in rows]


def load_entries(paths: list[Path]) -> tuple[str, list[Entry]]:
    """(geometry name, our entries) from metrics.json files, which must share one geometry."""
    entries, geometries = [], set()
    for path in paths:
        try:
            metrics = json.loads(Path(path).read_text())
            geometries.add(metrics["geometry"]["name"])
            entries.append(entry_from_metrics(metrics))
        except (OSError, ValueError, KeyError) as err:
            raise CaloforgeError(f"{path}: not a caloforge metrics.json ({err})") from None
    if len(geometries) != 1:
        raise CaloforgeError(f"the metrics files mix geometries ({', '.join(sorted(geometries))}): one at a time")
    return geometries.pop(), entries


#: colours of our models' stars in the quality-versus-time plane (published entries are grey)
OUR_COLORS = ["tab:red", "tab:orange", "tab:purple", "tab:blue", "tab:green", "tab:brown"]


#: what still differs between our points and the published ones on the plane
PLANE_CAPTION = ("caloforge: our Par04 Geant4 showers (1-100 GeV, not the official dataset-2 files' 1 GeV-1 TeV), "
                 "quick classifier on the demo's sample size, CPU timing; published: official dataset-2 data, the "
                 "protocol's classifier (10 trainings), GPU timing on each submission's hardware")


def quality_time_plane(ours: list[Entry], published: list[Entry], dataset: str) -> Figure:
    """Low-level classifier AUC against ms per shower (log scale): published entries grey with ours that are like
    with like marked; ours that are not in a separate panel on the right, labelled with why."""
    fig, (plane, aside) = plt.subplots(1, 2, figsize=(11.5, 5.0), layout="constrained", width_ratios=(3, 2),
                                       sharey=True)
    for entry in published:
        if entry.auc_low is None or entry.ms_per_shower is None or entry.name.upper() == "GEANT4":
            continue
        plane.scatter(entry.ms_per_shower, entry.auc_low, color="0.6", s=22)
        plane.annotate(entry.name, (entry.ms_per_shower, entry.auc_low), fontsize=7, color="0.4",
                       xytext=(3, 2), textcoords="offset points")
    colors = iter(OUR_COLORS * (1 + len(ours) // len(OUR_COLORS)))
    on_plane = [e for e in ours if e.off_plane is None]
    _our_points(plane, on_plane, colors)
    drawn = _our_points(aside, [e for e in ours if e.off_plane is not None and e.auc_low is not None], colors)
    not_drawn = [f"{e.name}: {e.off_plane}" for e in ours if e.off_plane is not None and e not in drawn]
    if not_drawn:  # no quality figure to draw, only the reason
        aside.text(0.03, 0.97, "not drawn (no quality figure):\n" + "\n".join(not_drawn), transform=aside.transAxes,
                   fontsize=7, va="top", wrap=True)
    for ax in (plane, aside):
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("ms per shower at batch 100")
    times = [e.ms_per_shower for e in on_plane + published if e.ms_per_shower]
    if times:  # room on the right for the labels
        plane.set_xlim(min(times) / 2, max(times) * 20)
    plane.set_ylabel("low-level classifier AUC (0.5 = indistinguishable)")
    plane.set_ylim(min([0.45] + [e.auc_low - 0.02 for e in ours if e.auc_low is not None]), 1.02)
    plane.set_title(f"Beside CaloChallenge {dataset} (published: GPU; caloforge: CPU, other data)", fontsize=9)
    aside.set_title("caloforge, not like with like (coarse mesh or unresolved classifier)", fontsize=9)
    return fig


def _our_points(ax, entries: list[Entry], colors) -> list[Entry]:
    """Our entries as stars with a legend (one family's models often sit close together: labels would overlap)."""
    drawn = [e for e in entries if e.auc_low is not None and e.ms_per_shower is not None]
    for entry in drawn:
        ax.scatter(entry.ms_per_shower, entry.auc_low, color=next(colors), marker="*", s=160, zorder=3,
                   edgecolors="k", linewidths=0.4, label=f"caloforge {entry.name} ({entry.device})")
    if drawn:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return drawn


def _cell(value: float | None, digits: int = 3) -> str:
    return "&ndash;" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def leaderboard_table_html(ours: list[Entry], published: list[Entry]) -> str:
    """One table: ours first (marked), then the published entries by low-level AUC."""
    head = ["model", "AUC low", "AUC high", "FPD &times;10&sup3;", "ms/shower (bs 100)", "device", "on the plane"]
    rows = [[html.escape(("caloforge " if entry.ours else "") + entry.name), _cell(entry.auc_low),
             _cell(entry.auc_high), _cell(entry.fpd_x1e3), _cell(entry.ms_per_shower), html.escape(entry.device),
             "yes" if entry.off_plane is None else f"no: {html.escape(entry.off_plane)}"] for entry in ours + published]
    note = (f"<p class=\"note\">Published rows: {html.escape(CITATION)}. caloforge rows: measured here, on the data "
            "named in their metrics; an AUC is shown only where its classifier resolves a x "
            f"{DISTORTION} distortion of Geant4 at that sample size. What still differs on the plane: "
            f"{html.escape(PLANE_CAPTION)}.</p>")
    return html_table(head, rows, ["ours" if entry.ours else "" for entry in ours + published]) + note


def format_text(ours: list[Entry], published: list[Entry]) -> str:
    lines = [f"{'model':34s} {'AUC low':>8s} {'AUC high':>9s} {'FPD x1e3':>9s} {'ms/shower':>10s}  device"]
    for entry in ours + published:
        name = ("* caloforge " if entry.ours else "  ") + entry.name
        lines.append(f"{name[:34]:34s} {_cell(entry.auc_low):>8s} {_cell(entry.auc_high):>9s} "
                     f"{_cell(entry.fpd_x1e3):>9s} {_cell(entry.ms_per_shower):>10s}  {entry.device}")
    return "\n".join(lines)


def dataset_for(geometry_name: str) -> str | None:
    return DATASET_FOR_GEOMETRY.get(geometry_name)
