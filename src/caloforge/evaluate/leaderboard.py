"""Our measured models beside the published CaloChallenge entries: a table and the quality-versus-time plane.

An entry of ours comes from a ``metrics.json`` written by ``caloforge evaluate`` (or by ``caloforge demo``, which
adds the generation time under ``timing``). Published times are GPU times of the submissions' own hardware;
ours are measured on the machine at hand (CPU unless said otherwise): the plane shows both, labelled so.
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
from caloforge.evaluate.published import CITATION, DATASET_FOR_GEOMETRY, published_results  # noqa: E402


@dataclass(frozen=True)
class Entry:
    name: str
    auc_low: float | None
    auc_high: float | None
    fpd_x1e3: float | None
    ms_per_shower: float | None
    device: str
    ours: bool


def entry_from_metrics(metrics: dict, name: str | None = None) -> Entry:
    """An entry of ours from an evaluation's metrics dict."""
    classifiers = metrics.get("classifiers", {})
    timing = metrics.get("timing", {})
    label = name or metrics.get("label") or Path(metrics["files"]["generated"]["path"]).stem
    return Entry(name=label,
                 auc_low=classifiers.get("cls-low", {}).get("auc"),
                 auc_high=classifiers.get("cls-high", {}).get("auc"),
                 fpd_x1e3=metrics.get("fpd", {}).get("value_x1e3"),
                 ms_per_shower=timing.get("ms_per_shower"),
                 device=timing.get("device", "-"),
                 ours=True)


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


def quality_time_plane(ours: list[Entry], published: list[Entry], dataset: str) -> Figure:
    """Low-level classifier AUC against ms per shower (log scale): published entries grey, ours marked."""
    fig, ax = plt.subplots(figsize=(7.5, 5.0), layout="constrained")
    for entry in published:
        if entry.auc_low is None or entry.ms_per_shower is None or entry.name.upper() == "GEANT4":
            continue
        ax.scatter(entry.ms_per_shower, entry.auc_low, color="0.6", s=22)
        ax.annotate(entry.name, (entry.ms_per_shower, entry.auc_low), fontsize=7, color="0.4",
                    xytext=(3, 2), textcoords="offset points")
    # our models often sit close together (one family's teacher and student): a legend, not labels that overlap
    plotted = [e for e in ours if e.auc_low is not None and e.ms_per_shower is not None]
    for entry, color in zip(plotted, OUR_COLORS * (1 + len(plotted) // len(OUR_COLORS))):
        ax.scatter(entry.ms_per_shower, entry.auc_low, color=color, marker="*", s=160, zorder=3,
                   edgecolors="k", linewidths=0.4, label=f"caloforge {entry.name} ({entry.device})")
    if plotted:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.axhline(0.5, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    times = [e.ms_per_shower for e in ours + published if e.ms_per_shower]
    if times:  # room on the right for the labels
        ax.set_xlim(min(times) / 2, max(times) * 20)
    ax.set_xlabel("ms per shower at batch 100 (published: GPU, own hardware; caloforge: as measured)")
    ax.set_ylabel("low-level classifier AUC (0.5 = indistinguishable)")
    ax.set_ylim(min([0.45] + [e.auc_low - 0.02 for e in plotted]), 1.02)
    ax.set_title(f"Quality versus generation time — published: CaloChallenge {dataset} (other data)", fontsize=10)
    return fig


def _cell(value: float | None, digits: int = 3) -> str:
    return "&ndash;" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def leaderboard_table_html(ours: list[Entry], published: list[Entry]) -> str:
    """One table: ours first (marked), then the published entries by low-level AUC."""
    rows = ["<table><tr><th>model</th><th>AUC low</th><th>AUC high</th><th>FPD &times;10&sup3;</th>"
            "<th>ms/shower (bs 100)</th><th>device</th></tr>"]
    for entry in ours + published:
        style = ' style="font-weight:bold;color:#b00"' if entry.ours else ""
        name = ("caloforge " if entry.ours else "") + entry.name
        rows.append(f"<tr{style}><td>{html.escape(name)}</td><td>{_cell(entry.auc_low)}</td>"
                    f"<td>{_cell(entry.auc_high)}</td><td>{_cell(entry.fpd_x1e3)}</td>"
                    f"<td>{_cell(entry.ms_per_shower)}</td><td>{html.escape(entry.device)}</td></tr>")
    rows.append("</table>")
    note = (f"<p class=\"note\">Published rows: {html.escape(CITATION)}, measured on the official CaloChallenge "
            "data, GPU times on each submission's hardware. caloforge rows: measured here, on the data named in "
            "their metrics. Context, not a like-for-like comparison.</p>")
    return "".join(rows) + note


def format_text(ours: list[Entry], published: list[Entry]) -> str:
    lines = [f"{'model':34s} {'AUC low':>8s} {'AUC high':>9s} {'FPD x1e3':>9s} {'ms/shower':>10s}  device"]
    for entry in ours + published:
        name = ("* caloforge " if entry.ours else "  ") + entry.name
        lines.append(f"{name[:34]:34s} {_cell(entry.auc_low):>8s} {_cell(entry.auc_high):>9s} "
                     f"{_cell(entry.fpd_x1e3):>9s} {_cell(entry.ms_per_shower):>10s}  {entry.device}")
    return "\n".join(lines)


def dataset_for(geometry_name: str) -> str | None:
    return DATASET_FOR_GEOMETRY.get(geometry_name)
