"""The self-contained HTML report: summary on top, published numbers beside ours, then the figures.

Everything is inline (CSS, PNGs as base64), so the one file can be mailed or attached to a pull request. Reports are
composable: ``build_report`` takes the metrics, a dict of figures (PNG bytes or matplotlib figures; a key
"Group/caption" puts the figure under the heading "Group") and extra ``Section``s, so later features (a leaderboard
plot, say) add a section without touching this module. A tiny script marks on ``<body>`` how many images decoded,
which lets a headless-browser test check that the report really renders.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from caloforge.evaluate.published import CITATION, published_results
from caloforge.evaluate.resolution import DISTORTION, quality_auc, verdict

_CLASSIFIER_LABELS = {"cls-low": "AUC low-level (voxels)", "cls-high": "AUC high-level features",
                      "cls-low-normed": "AUC low-level, layer-normalised", "cls-resnet": "AUC 3D ResNet (CNN)"}
_PUBLISHED_KEY = {"cls-low": "auc_low", "cls-high": "auc_high", "cls-resnet": "auc_cnn"}


@dataclass
class Section:
    """A report section: a heading, optional HTML (trusted, made by caloforge) and figures."""

    title: str
    html: str = ""
    figures: Mapping[str, bytes | Figure] = field(default_factory=dict)


def _png(figure: bytes | Figure) -> bytes:
    if isinstance(figure, Figure):
        from caloforge.evaluate.plots import figure_png

        return figure_png(figure)
    return figure


def _img(caption: str, figure: bytes | Figure) -> str:
    data = base64.b64encode(_png(figure)).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _fmt(value, digits: int = 3, error=None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    text = f"{value:.{digits}f}"
    if error is not None and isinstance(error, float) and math.isfinite(error):
        text += f" &plusmn; {error:.{digits}f}"
    return text


def _sep(value) -> str:
    if value is None:
        return "&ndash;"
    return f"{value:.2g}" if value < 0.01 else f"{value:.3f}"


def _grade(value, good: float, bad: float) -> str:
    """A CSS class for a number where smaller is better: green below ``good``, red above ``bad``."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    return "good" if value <= good else ("bad" if value >= bad else "fair")


def _grade_separation(value, floor) -> str:
    """Green when S is within twice what noise alone gives (or below 0.01), red from 5x noise and 0.1 up."""
    floor = floor if isinstance(floor, (int, float)) else 0.0
    if value is None or not math.isfinite(value):
        return ""
    if value <= max(0.01, 2.0 * floor):
        return "good"
    return "bad" if value >= max(0.1, 5.0 * floor) else "fair"


def resolving_power_note(entry: dict) -> str:
    """The floor and the distortion's AUC of a classifier entry, in words (HTML)."""
    return (f"Geant4 vs Geant4 {_fmt(entry.get('floor_auc'), 3, entry.get('floor_auc_err'))}, "
            f"Geant4 &times; {DISTORTION} vs Geant4 {_fmt(entry.get('distorted_auc'), 3, entry.get('distorted_auc_err'))}")


def classifier_cell(entry: dict) -> tuple[str, str]:
    """(the AUC as a table cell's text, its css class): a number only where it may be read as quality."""
    state = verdict(entry)
    if state == "unresolved":
        return "not resolved", "unresolved"
    if state == "below-floor":
        return "at the floor", "unresolved"
    return _fmt(entry["auc"], 3, entry.get("auc_err")), _grade(entry["auc"], 0.55, 0.75)


def _classifier_row(kind: str, entry: dict, showers: int | None) -> tuple[str, str, str, str]:
    value, css = classifier_cell(entry)
    state = verdict(entry)
    if state == "unresolved":
        note = (f"does not resolve a &times; {DISTORTION} distortion of Geant4 at {showers} showers per sample "
                f"({resolving_power_note(entry)}): no quality claim from this classifier")
    elif state == "below-floor":
        note = (f"AUC {_fmt(entry['auc'])} lies below what Geant4 against Geant4 gives ({resolving_power_note(entry)})"
                ": noise, not quality")
    else:
        note = (f"JSD {_fmt(entry['jsd'], 3, entry.get('jsd_std'))}, {entry['repeats']} training(s); 0.5 = "
                f"indistinguishable, 1 = fully separable; resolving power: {resolving_power_note(entry)}")
    if not entry.get("protocol", False):
        note += "; <b>not the protocol's settings</b>"
    return _CLASSIFIER_LABELS.get(kind, kind), value, css, note


def summary_rows(metrics: dict) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """(classifier and distance rows, separation-power rows), each row (metric, value, css class, how to read it)."""
    showers = metrics.get("settings", {}).get("classifier_showers_per_class")
    rows = [_classifier_row(kind, entry, showers) for kind, entry in metrics.get("classifiers", {}).items()]
    for key, label in (("fpd", "FPD &times; 10&sup3;"), ("kpd", "KPD &times; 10&sup3;")):
        if key in metrics:
            result = metrics[key]
            digits = 2 if key == "fpd" else 4
            size = result["settings"].get("max_samples", result["settings"].get("batch_size"))
            protocol_size = 50_000 if key == "fpd" else 10_000
            note = f"high-level features, 0 = same distribution; resamples of up to {size} showers"
            if size < protocol_size:
                note += " (see the differences below)"
            rows.append((label, _fmt(result["value_x1e3"], digits, result["error_x1e3"]),
                         _grade(result["value_x1e3"], 50 if key == "fpd" else 0.2, 300 if key == "fpd" else 1.0),
                         note))
    separation = []
    table = metrics.get("histograms", {}).get("separation_power", {})
    floors = metrics.get("histograms", {}).get("statistical_floor", {})
    for name, entry in table.items():
        floor = floors.get(name)
        if isinstance(entry, dict):
            if entry.get("mean") is not None:
                note = f"mean of {len(entry['values'])} layers, worst {_sep(entry['max'])}"
                if isinstance(floor, dict) and floor.get("mean") is not None:
                    note += f"; noise alone &asymp; {_sep(floor['mean'])}"
                floor_mean = floor.get("mean") if isinstance(floor, dict) else None
                separation.append((html.escape(name), _sep(entry["mean"]), _grade_separation(entry["mean"], floor_mean),
                                   note))
        else:
            note = "per shower" if name != "E_voxel" else "all voxels above threshold"
            if isinstance(floor, (int, float)):
                note += f"; noise alone &asymp; {_sep(floor)}"
            separation.append((html.escape(name), _sep(entry), _grade_separation(entry, floor), note))
    return rows, separation


#: a table cell: its HTML, or its HTML and CSS class
Cell = str | tuple[str, str]


def _tag(name: str, css: str) -> str:
    return f'<{name} class="{css}">' if css else f"<{name}>"


def _cell(name: str, cell: Cell) -> str:
    content, css = cell if isinstance(cell, tuple) else (cell, "")
    return f"{_tag(name, css)}{content}</{name}>"


def html_table(head: Sequence[str] | None, rows: Sequence[Sequence[Cell]], row_classes: Sequence[str] = (), *,
               css: str = "", row_headers: bool = False) -> str:
    """Every table of the reports, from cells that are already HTML (escaped by the caller). ``head``: the header
    row (None: none); ``row_headers``: each row's first cell heads it; ``css`` and ``row_classes`` style the table
    and its rows."""
    classes = list(row_classes) + [""] * (len(rows) - len(row_classes))
    header = "" if head is None else f"<thead><tr>{''.join(_cell('th', cell) for cell in head)}</tr></thead>"
    body = "".join(_tag("tr", row_css) + "".join(_cell("th" if row_headers and i == 0 else "td", cell)
                                                 for i, cell in enumerate(row)) + "</tr>"
                   for row, row_css in zip(rows, classes))
    return f"{_tag('table', css)}{header}<tbody>{body}</tbody></table>"


def _summary_html(metrics: dict) -> str:
    main, separation = summary_rows(metrics)

    def table(rows, head):
        cells = [(name, (value, f"num {grade}"), (note, "note")) for name, value, grade, note in rows]
        return f'<div><h3>{head}</h3>{html_table(None, cells, css="summary", row_headers=True)}</div>'

    parts = []
    if main:
        parts.append(table(main, "Classifiers and distances"))
    if separation:
        parts.append(table(separation, "Separation power of the histograms (0 = identical, 1 = disjoint)"))
        parts[-1] = parts[-1].replace("</table></div>", "</table><p class=\"muted\">&ldquo;Noise alone&rdquo;: the S "
                                      "that two samples of these sizes from one distribution give on average "
                                      "(filled bins &times; (1/N<sub>gen</sub> + 1/N<sub>ref</sub>) / 4).</p></div>")
    if not parts:
        return '<p class="muted">No metric was computed.</p>'
    return f'<div class="cards">{"".join(parts)}</div>'


def _deviations_html(metrics: dict) -> str:
    notes = metrics.get("deviations") or []
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    return f'<div class="deviations"><b>Differences from the CaloChallenge protocol</b><ul>{items}</ul></div>'


def _published_html(metrics: dict) -> str:
    found = published_results(metrics["geometry"]["name"])
    if found is None:
        return (f"<p class=\"muted\">No published CaloChallenge table matches geometry "
                f"<code>{html.escape(metrics['geometry']['name'])}</code>.</p>")
    dataset, rows = found
    ours = {"auc_low": None, "auc_high": None, "auc_cnn": None, "fpd_x1e3": None, "kpd_x1e3": None}
    for kind, key in _PUBLISHED_KEY.items():
        if kind in metrics.get("classifiers", {}):
            ours[key] = quality_auc(metrics["classifiers"][kind])
    if "fpd" in metrics:
        ours["fpd_x1e3"] = metrics["fpd"]["value_x1e3"]
    if "kpd" in metrics:
        ours["kpd_x1e3"] = metrics["kpd"]["value_x1e3"]
    columns = (("auc_low", "AUC low", 3), ("auc_high", "AUC high", 3), ("auc_cnn", "AUC CNN", 3),
               ("fpd_x1e3", "FPD&times;10&sup3;", 1), ("kpd_x1e3", "KPD&times;10&sup3;", 3))
    head = ["model", *(label for _, label, _ in columns), "GPU ms/shower (batch 100)"]
    quick = "" if metrics["settings"]["protocol_exact"] else " (quick settings)"
    lines = [[f"this sample{quick}", *((_fmt(ours[key], digits), "num") for key, _, digits in columns), "&ndash;"]]
    lines += [[html.escape(row.name), *((_fmt(row.values[key], digits), "num") for key, _, digits in columns),
               (_fmt(row.gpu_ms_batch100, 1), "num")] for row in rows]
    classes = ["ours"] + ["geant4" if row.is_geant4 else "" for row in rows]
    note = ("" if metrics["geometry"]["name"] == dataset else
            f" caloforge's <code>{html.escape(metrics['geometry']['name'])}</code> data are {dataset}-like but not"
            f" {dataset}: the rows below are context, not a like-for-like comparison.")
    return (f'<p class="muted">Published CaloChallenge results for <b>{dataset}</b>, measured on the official '
            f"{dataset} data (other showers than these).{note} Source: {html.escape(CITATION)}. "
            "AUCs are means of 10 trainings with the protocol's settings.</p>"
            f'<div class="scroll">{html_table(head, lines, classes, css="published", row_headers=True)}</div>')


def _separation_details(metrics: dict) -> str:
    table = metrics.get("histograms", {}).get("separation_power", {})
    floors = metrics.get("histograms", {}).get("statistical_floor", {})
    per_layer = {k: v for k, v in table.items() if isinstance(v, dict)}
    if not per_layer:
        return ""
    layers = sorted({layer for entry in per_layer.values() for layer in entry["layers"]})
    body = []
    for name, entry in per_layer.items():
        values = dict(zip(entry["layers"], entry["values"]))
        floor = floors.get(name, {})
        noise = dict(zip(floor.get("layers", []), floor.get("values", [])))
        grades = {layer: _grade_separation(value, noise.get(layer)) for layer, value in values.items()}
        body.append([html.escape(name), *((_sep(values[layer]), f"num {grades[layer]}") if layer in values else ""
                                          for layer in layers)])
    table = html_table(["feature \\ layer", *map(str, layers)], body, css="layers", row_headers=True)
    return ("<details><summary>Separation power of every feature and layer</summary>"
            f'<div class="scroll">{table}</div></details>')


def _provenance_html(metrics: dict) -> str:
    files = metrics["files"]
    rows = [[role, f"<code>{html.escape(str(info['path']))}</code>", (str(info["n_showers"]), "num"),
             f"<code>{info['sha256']}</code>"] for role, info in files.items()]
    settings = html.escape(json.dumps(metrics["settings"], indent=1))
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in metrics.get("timings_s", {}).items())
    return (f'<div class="scroll">{html_table(["", "file", "showers", "sha256"], rows, css="files", row_headers=True)}'
            "</div>"
            f"<p class=\"muted\">caloforge {html.escape(metrics['caloforge_version'])}, "
            f"{html.escape(metrics['created_utc'])}; time: {html.escape(timings)}. Every number is in "
            "<code>metrics.json</code> beside this file.</p>"
            f"<details><summary>Settings</summary><pre>{settings}</pre></details>")


_CSS = """
:root { --fg:#1d2330; --muted:#5b6575; --line:#e3e6eb; --accent:#d7301f; --good:#1a7f37; --fair:#9a6700;
        --bad:#cf222e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); margin: 0;
       background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header .sub { color: #c9d1dc; font-size: 13px; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 10px; font-size: 12px; font-weight: 600;
         margin-left: 8px; vertical-align: middle; }
.badge.protocol { background: #1a7f37; } .badge.quick { background: #bf8700; color: #1d2330; }
main { max-width: 1380px; margin: 0 auto; padding: 8px 32px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 20px; margin: 16px 0; }
h2 { font-size: 17px; margin: 2px 0 10px; }
h3 { font-size: 13.5px; margin: 4px 0 6px; color: var(--muted); font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 8px 28px; }
table { border-collapse: collapse; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.summary th { font-weight: 600; white-space: nowrap; } table.summary td.num { font-size: 15px; font-weight: 600; }
td.note { color: var(--muted); font-size: 12.5px; }
.good { color: var(--good); } .fair { color: var(--fair); } .bad { color: var(--bad); }
.unresolved { color: var(--muted); font-style: italic; }
table.published tr.ours, tr.ours { background: #fff4e5; font-weight: 600; } table.published tr.geant4 { color: var(--muted); }
table.published th, table.published td { font-size: 13px; }
table.layers th, table.layers td { font-size: 11.5px; padding: 2px 5px; }
.scroll { overflow-x: auto; }
.deviations { background: #fff8e1; border: 1px solid #f0d48a; border-radius: 6px; padding: 8px 14px;
              margin-top: 12px; font-size: 12.5px; } .deviations ul { margin: 4px 0 0; padding-left: 20px; }
.muted { color: var(--muted); font-size: 12.5px; }
figure { margin: 10px 0 18px; } figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 2px; }
details summary { cursor: pointer; color: #0b5cad; margin: 6px 0; }
pre { background: #f6f7f9; padding: 8px; font-size: 12px; overflow-x: auto; }
code { font-size: 12px; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.querySelectorAll("img"), ok = 0;
  images.forEach(function (img) { if (img.complete && img.naturalWidth > 0) { ok += 1; } });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-images-loaded", String(ok));
});
"""


def render_html(metrics: dict, figures: Mapping[str, bytes | Figure] = (), sections: Sequence[Section] = ()) -> str:
    """The report as one HTML string."""
    figures = dict(figures)
    if not metrics["settings"]["protocol_exact"]:
        badge = '<span class="badge quick">QUICK settings &ndash; not the CaloChallenge protocol</span>'
    elif metrics.get("deviations"):
        badge = '<span class="badge quick">CaloChallenge settings, with the differences listed below</span>'
    else:
        badge = '<span class="badge protocol">CaloChallenge protocol</span>'
    files = metrics["files"]
    geometry = metrics["geometry"]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>caloforge evaluation: {html.escape(Path(files['generated']['path']).name)}</title>",
        f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>",
        f"<header><h1>caloforge evaluation {badge}</h1><div class=\"sub\">"
        f"<b>{html.escape(Path(files['generated']['path']).name)}</b> ({files['generated']['n_showers']} showers) "
        f"against Geant4 <b>{html.escape(Path(files['reference']['path']).name)}</b> "
        f"({files['reference']['n_showers']} showers) &middot; geometry {html.escape(geometry['description'])} "
        f"&middot; readout threshold {geometry['threshold_mev'] * 1e3:g} keV</div></header><main>",
        f"<section><h2>Summary</h2>{_summary_html(metrics)}{_deviations_html(metrics)}</section>",
        f"<section><h2>Published CaloChallenge results</h2>{_published_html(metrics)}</section>",
    ]
    groups: dict[str, list[str]] = {}
    for key, figure in figures.items():
        group, _, caption = key.partition("/")
        groups.setdefault(group if caption else "Figures", []).append(_img(caption or key, figure))
    for group, images in groups.items():
        parts.append(f"<section><h2>{html.escape(group)}</h2>{''.join(images)}</section>")
    details = _separation_details(metrics)
    if details:
        parts.append(f"<section><h2>Separation power per layer</h2>{details}</section>")
    parts.append(_sections_html(sections))
    parts.append(f"<section><h2>Provenance</h2>{_provenance_html(metrics)}</section></main></body></html>")
    return "".join(parts)


def _sections_html(sections: Sequence[Section]) -> str:
    parts = []
    for section in sections:
        images = "".join(_img(caption, figure) for caption, figure in section.figures.items())
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>{section.html}{images}</section>")
    return "".join(parts)


def build_page(out_dir: str | Path, title: str, subtitle: str, sections: Sequence[Section],
               name: str = "report.html") -> Path:
    """A report page made of sections only (the demo's overview of several models); written atomically."""
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body><header><h1>{html.escape(title)}</h1>"
            f"<div class=\"sub\">{subtitle}</div></header><main>{_sections_html(sections)}</main></body></html>")
    return _write_atomic(Path(out_dir), name, page)


def _write_atomic(out: Path, name: str, text: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    tmp = path.with_name(f".{name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def build_report(metrics: dict, figures: Mapping[str, bytes | Figure] = (), out_dir: str | Path = ".",
                 sections: Sequence[Section] = (), name: str = "report.html") -> Path:
    """Write ``out_dir/report.html`` (atomically) and return its path."""
    return _write_atomic(Path(out_dir), name, render_html(metrics, figures, sections))


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
