"""``caloforge demo``: Geant4 showers beside caloforge's, with the numbers that say how close and how fast.

For every model of ``DEMO_MODELS`` (or every model retrained with ``train=True``) the demo generates as many showers
as half the reference holds, at its incident energies, evaluates them against it with the CaloChallenge metrics
(quick classifier settings, labelled so; each classifier beside its Geant4-vs-Geant4 floor and a x 1.05 distortion,
see ``evaluate.resolution``), times generation, and writes one ``report.html`` and one ``metrics.json``.
Full-resolution models come first; models of a coarser geometry (``par04-coarse`` against Par04 data) follow in
their own section, compared with the reference rebinned onto their geometry, which the overlap matrix does exactly.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from caloforge import __version__
from caloforge.checkpoints import FOLDER as SHIPPED
from caloforge.contract import Checkpoint
from caloforge.data import ShowerWriter, open_showers, sample_path, write_showers
from caloforge.errors import CaloforgeError
from caloforge.evaluate import QUICK, Section, build_page, evaluate
from caloforge.evaluate.leaderboard import (
    DS2_VOXELS,
    PLANE_CAPTION,
    entry_from_metrics,
    leaderboard_table_html,
    published_entries,
    quality_time_plane,
)
from caloforge.evaluate.plots import average_shower_figure
from caloforge.evaluate.report import classifier_cell, html_table, resolving_power_note
from caloforge.geometry import Geometry, Rebinning, geometry_for_voxels, load_geometry
from caloforge.sampling import generate
from caloforge.sampling.timing import geant4_seconds_per_shower, machine_description, time_model
from caloforge.train import load_checkpoint, load_model, run_config_from_dict, train

DEMO_METRICS = ("hist", "cls-low", "cls-high", "fpd", "kpd", "plots")
#: the models the demo shows, full resolution first: one line per checkpoint file (see ``checkpoint_path``)
DEMO_MODELS = (
    "par04-caloman.pt",
    "par04-caloman-student.pt",
    "par04-supercalo.pt",
    "par04-coarse-caloflow-student.pt",
    "par04-coarse-caloman.pt",
)
#: the quick network in batches of 100 for 30 epochs: with the quick settings' batches of 1,000, the 1,500 showers
#: per class of the demo give 45 optimiser steps, and the low-level classifier did not resolve x 1.05 even at 2,500
#: per class; with these it does at 1,000 (see ``data/sample/SOURCE.md``)
DEMO_CLASSIFIER = replace(QUICK, batch_size=100, epochs=30, name="quick, batches of 100, 30 epochs (not the protocol)")


def checkpoint_path(name: str) -> Path | None:
    """Where a checkpoint file of ``DEMO_MODELS`` is, or None when this installation lacks it."""
    path = SHIPPED / name
    return path if path.is_file() else None


def shipped_checkpoints() -> list[Path]:
    """The demo's checkpoints this installation holds, in ``DEMO_MODELS`` order."""
    return [path for path in map(checkpoint_path, DEMO_MODELS) if path is not None]


def _is_full_resolution(metrics: dict) -> bool:
    return metrics["geometry"]["n_voxels"] == DS2_VOXELS


def _reference_on(geometry: Geometry, reference: Path, ref_geometry: Geometry, out_dir: Path) -> Path:
    """The reference file on ``geometry``: itself, or rebinned (exactly, energy-conserving) and cached."""
    if geometry.n_voxels == ref_geometry.n_voxels and geometry.name in (ref_geometry.name, "ds2", "par04"):
        return reference
    rebinning = Rebinning(ref_geometry, geometry)
    if not rebinning.conserves_energy:
        raise CaloforgeError(f"{reference}: geometry {ref_geometry.name} cannot be rebinned onto {geometry.name}")
    target = out_dir / f"reference-{geometry.name}.h5"
    if not target.exists():
        with ShowerWriter(target, geometry.n_voxels, {"source_file": str(reference), "geometry": geometry.name}) as w:
            for energies, showers in open_showers(reference, ref_geometry).iter_chunks(10_000):
                w.append(energies, rebinning(showers))
    return target


def _split(reference: Path, geometry: Geometry, out_dir: Path) -> tuple[Path, Path]:
    """Halves of the reference: the first to train on (``--train``), the second to evaluate against."""
    energies, showers = open_showers(reference, geometry).read_all()
    half = len(energies) // 2
    return (write_showers(out_dir / "train-half.h5", energies[:half], showers[:half], {"source_file": str(reference)}),
            write_showers(out_dir / "reference-half.h5", energies[half:], showers[half:],
                          {"source_file": str(reference)}))


#: the stages a CaloMan stage starts from, in order, each frozen under the next: step 2 learns densities on the
#: step-1 autoencoder, and the decoder and latent stages train on step 2's frozen encoder; a retrained model retrains
#: them first
EARLIER_STAGES = {"flow": ("autoencoder",), "decoder": ("autoencoder", "flow"), "latent": ("autoencoder", "flow")}


def _retrain(checkpoint: Checkpoint, train_file: Path, ref_geometry: Geometry, out_dir: Path, steps: int,
             log: Callable[[str], None]) -> Path:
    """The same family and hyper-parameters as a shipped model, trained for ``steps`` steps on ``train_file``."""
    run = checkpoint.header["run"]
    geometry = checkpoint.geometry
    data = _reference_on(geometry, train_file, ref_geometry, out_dir)
    values = {**run, "data": {**run["data"], "train": str(data), "limit": None},
              "train": {**run["train"], "max_steps": steps, "epochs": 10_000, "patience": 0, "init_from": None}}
    folder = out_dir / "train" / f"{geometry.name}-{run['family']}"
    for stage in EARLIER_STAGES.get(values.get("model", {}).get("stage"), ()):
        log(f"training {run['family']} ({stage} stage) on {geometry.name} for {steps} steps")
        earlier = {**values, "model": {**values["model"], "stage": stage}}
        values["train"]["init_from"] = str(train(run_config_from_dict(earlier, "demo"), folder / stage,
                                                 progress=False))
    log(f"training {run['family']} on {geometry.name} for {steps} steps")
    return train(run_config_from_dict(values, "demo"), folder, progress=False)


def _is_student(model: dict) -> bool:
    """Whether a run's model config distils a teacher: a student family names its teacher's file, CaloMan's student
    stage starts from its flow stage."""
    return "teacher" in model or model.get("stage") == "student"


def _timing(model: torch.nn.Module, name: str, options: dict, device: torch.device, geant4_s: float | None) -> dict:
    """Time at batch 100 only: the CaloChallenge column of the quality-versus-time plane (``caloforge bench`` does all)."""
    (at_100,) = time_model(model, name, options, device, batch_sizes=(100,), repeats=2, budget_s=60.0,
                           geant4_s=geant4_s)
    return {"ms_per_shower": at_100.ms_per_shower, "batch_size": at_100.batch_size, "device": str(device),
            "measured": at_100.measured, "speedup_vs_geant4": at_100.speedup_vs_geant4,
            "spread_ms": at_100.spread_ms, "threads": at_100.threads, "wall_seconds": at_100.wall_seconds,
            "cpu_seconds": at_100.cpu_seconds, "load_average": at_100.load_average, "busy": at_100.busy}


def run_demo(out_dir: str | Path = "caloforge-demo", reference: str | Path | None = None,
             geometry: str | None = None, checkpoints: list[Path] | None = None, n_showers: int | None = None,
             retrain: bool = False, train_steps: int = 300, seed: int = 0,
             log: Callable[[str], None] = print) -> Path:
    """Run the demo; returns the path of its ``report.html``."""
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = Path(reference) if reference else sample_path()
    ref_geometry = load_geometry(geometry) if geometry else geometry_for_voxels(open_showers(reference).n_voxels)
    if ref_geometry is None:
        raise CaloforgeError(f"{reference}: no built-in geometry matches its voxel count; pass --geometry")
    if not checkpoints:
        missing = [name for name in DEMO_MODELS if checkpoint_path(name) is None]
        if missing:
            log(f"not in this installation: {', '.join(missing)}")
        checkpoints = shipped_checkpoints()
    if not checkpoints:
        raise CaloforgeError("no checkpoints: this installation ships none, and none were given")
    geant4_s = geant4_seconds_per_shower(reference)  # recorded in the data's attributes, when it was
    if retrain:
        train_file, reference = _split(reference, ref_geometry, out)
        students = [c for c in checkpoints if _is_student(load_checkpoint(c).header["run"].get("model", {}))]
        for student in students:
            log(f"{student.stem}: skipped: a distilled student needs its teacher retrained first")
        checkpoints = [_retrain(load_checkpoint(c), train_file, ref_geometry, out, train_steps, log)
                       for c in checkpoints if c not in students]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results, sections = [], []
    for path in checkpoints:
        model, checkpoint = load_model(path)
        name = path.stem if not retrain else path.parent.name
        geometry_m = checkpoint.geometry
        ref_file = _reference_on(geometry_m, reference, ref_geometry, out)
        # half the reference: the classifiers compare the generated showers with one half and score their floor
        # with the other, on equally many showers each
        energies = open_showers(ref_file).energies()[:n_showers or open_showers(ref_file).n // 2]
        folder = out / name
        options = checkpoint.header.get("sample_defaults", {})
        log(f"{name}: generating {len(energies)} showers on {geometry_m.name} ({options or 'defaults'})")
        clock = time.perf_counter()
        generated = generate(model, geometry_m, energies, folder / "generated.h5", batch_size=500, seed=seed,
                             options=options, device=device, progress=False,
                             attrs={"checkpoint": str(path), "family": checkpoint.header["family"]})
        generation_s = time.perf_counter() - clock
        log(f"{name}: evaluating against {ref_file.name}")
        metrics = evaluate(generated, ref_file, geometry_m, metrics=DEMO_METRICS, out_dir=folder,
                           classifier=DEMO_CLASSIFIER, seed=seed, use_cache=False)
        log(f"{name}: timing")
        metrics["label"] = name
        metrics["family"] = checkpoint.header["family"]
        metrics["timing"] = {**_timing(model, name, options, device, geant4_s), "generation_seconds": generation_s}
        if metrics["timing"]["busy"]:
            log(f"{name}: timed on a busy machine ({metrics['timing']['busy']}): not a speed figure")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        results.append(metrics)
        ref_mean = open_showers(ref_file).read_all(len(energies))[1].mean(0)
        gen_mean = open_showers(generated).read_all()[1].mean(0)
        sections.append(Section(
            title=f"{name} ({checkpoint.header['family']}, {geometry_m.name})",
            html=f'<p><a href="{html.escape(name)}/report.html">full evaluation report</a> &middot; '
                 f"AUC low {classifier_cell(metrics['classifiers']['cls-low'])[0]}, "
                 f"high {classifier_cell(metrics['classifiers']['cls-high'])[0]}</p>",
            figures={"Average shower": average_shower_figure(geometry_m, ref_mean, gen_mean)}))
    return _write_summary(out, results, sections, reference, ref_geometry, geant4_s, started, log)


def _overview_table(results: list[dict]) -> str:
    """One row per model: each classifier's AUC where it is a quality figure, with its resolving power, and
    S(E_tot/E_inc) beside what noise alone gives."""
    head = ["model", "family", "geometry", "AUC low", "AUC high", "classifiers' resolving power",
            "FPD &times;10&sup3;", "S(E<sub>tot</sub>/E<sub>inc</sub>) (noise alone)", "ms/shower (bs 100)",
            "&times; faster than Geant4"]
    rows = []
    for m in results:
        low, high = m["classifiers"]["cls-low"], m["classifiers"]["cls-high"]
        histograms = m.get("histograms", {})
        sep = histograms.get("separation_power", {}).get("E_tot/E_inc")
        noise = histograms.get("statistical_floor", {}).get("E_tot/E_inc")
        timing = m["timing"]
        speed = timing.get("speedup_vs_geant4")
        busy = f" <b>busy machine</b>: {html.escape(timing['busy'])}" if timing.get("busy") else ""
        rows.append([html.escape(m["label"]), m["family"], m["geometry"]["name"], classifier_cell(low)[0],
                     classifier_cell(high)[0], f"low: {resolving_power_note(low)}; high: {resolving_power_note(high)}",
                     f"{m['fpd']['value_x1e3']:.3g}", _separation(sep, noise),
                     f"{timing['ms_per_shower']:.3g} ({timing['device']}){busy}",
                     "&ndash;" if not speed or busy else f"{speed:.3g}"])
    return html_table(head, rows)


def _separation(value: float | None, noise: float | None) -> str:
    if value is None:
        return "&ndash;"
    return f"{value:.3f}" + ("" if noise is None else f" ({noise:.3f})")


def _write_summary(out: Path, results: list[dict], sections: list[Section], reference: Path,
                   ref_geometry: Geometry, geant4_s: float | None, started: float,
                   log: Callable[[str], None]) -> Path:
    ours = [entry_from_metrics(m) for m in results]
    published = published_entries("par04" if ref_geometry.name in ("par04", "par04-coarse") else ref_geometry.name)
    plane = quality_time_plane(ours, published, "ds2" if published else "-")
    full = [m for m in results if _is_full_resolution(m)]
    coarse = [m for m in results if not _is_full_resolution(m)]
    showers = results[0]["settings"]["classifier_showers_per_class"]
    note = (f"<p class=\"note\">Classifier settings: {html.escape(DEMO_CLASSIFIER.name)}, {showers} generated "
            f"showers against as many of one half of the {results[0]['files']['reference']['n_showers']} reference "
            f"showers from {html.escape(reference.name)}; the other half gives the floor. An AUC is shown only where "
            "its classifier resolves the x 1.05 distortion. Geant4: "
            f"{'?' if geant4_s is None else f'{geant4_s * 1e3:.0f}'} ms per shower (recorded CPU time of the "
            f"data). Machine: {html.escape(machine_description())}.</p>")
    overview = [Section("Full resolution (6480 voxels): caloforge beside Geant4, how close, how fast",
                        _overview_table(full) + note if full else "<p>No full-resolution model was run.</p>")]
    if coarse:
        overview.append(Section("Coarse geometries: compared with the reference rebinned onto them",
                                _overview_table(coarse) + note))
    board = Section("Beside the CaloChallenge entries", leaderboard_table_html(ours, published),
                    {f"Quality versus time. Still different: {PLANE_CAPTION}": plane})
    summary = {"caloforge_version": __version__, "reference": str(reference), "geometry": ref_geometry.name,
               "geant4_ms_per_shower": None if geant4_s is None else geant4_s * 1e3,
               "machine": machine_description(), "seconds": round(time.perf_counter() - started, 1),
               "models": full + coarse}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    subtitle = (f"{len(results)} model(s) against Geant4 <b>{html.escape(reference.name)}</b> "
                f"({ref_geometry.describe()}) &middot; caloforge {__version__}")
    # each model's own section in the overview's order: full resolution first
    sections = [section for _, section in sorted(zip(results, sections), key=lambda pair: not
                                                 _is_full_resolution(pair[0]))]
    report = build_page(out, "caloforge demo", subtitle, [*overview, board, *sections])
    log(f"report: {report.resolve()}  ({summary['seconds']} s)")
    return report
