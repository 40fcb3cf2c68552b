"""``caloforge evaluate``: the CaloChallenge yardstick on a generated file, as metrics.json and report.html."""

from __future__ import annotations

from pathlib import Path

import typer

from caloforge.checks import COUNT, NON_NEGATIVE, SEED
from caloforge.cli.common import GEOMETRY_HELP, checked, device_option
from caloforge.errors import CaloforgeError
from caloforge.evaluate import DEFAULT_METRICS, METRICS
from caloforge.evaluate import evaluate as run_evaluation


def _folder(name: str, value: Path) -> None:
    """A folder to write into: it may exist, but not as a file."""
    if value.exists() and not value.is_dir():
        raise CaloforgeError(f"{name}: {value} is a file; give a folder for metrics.json and report.html")


def evaluate(
    generated: Path = typer.Argument(..., help="Generated showers (CaloChallenge HDF5)."),
    reference: Path = typer.Option(None, "--reference", "-r", help="Geant4 reference showers of the same geometry."),
    geometry: str = typer.Option(None, "--geometry", "-g", help=GEOMETRY_HELP),
    metrics: str = typer.Option(",".join(DEFAULT_METRICS), "--metrics", "-m",
                                help=f"Comma-separated: {', '.join(METRICS)}, or all."),
    quick: bool = typer.Option(False, "--quick", help="Small, fast classifiers for CPU iteration (NOT the protocol; "
                                                      "labelled so in the outputs)."),
    repeats: int = typer.Option(1, "--repeats", callback=checked(COUNT),
                                help="Trainings per classifier (the paper: 10); mean and spread."),
    seed: int = typer.Option(42, "--seed", callback=checked(SEED),
                             help="Seed of every random draw (splits, initialisation, FPD/KPD)."),
    out: Path = typer.Option(Path("evaluation"), "--out", "-o", callback=checked(_folder),
                             help="Output folder for metrics.json and report.html."),
    threshold: float = typer.Option(None, "--threshold", callback=checked(NON_NEGATIVE),
                                    help="Readout threshold in MeV (default: the geometry's)."),
    chunk_size: int = typer.Option(10_000, callback=checked(COUNT),
                                   help="Showers read at a time (memory stays bounded by this)."),
    device: str = device_option(None, "Torch device of the classifiers (default: cuda if present)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the reference's features (no cache)."),
    floor_reference: Path = typer.Option(None, "--floor-reference", help="A second Geant4 file for the classifiers' "
                                         "floor (default: one half of the reference against the other)."),
) -> None:
    """Compare generated showers with Geant4 as the CaloChallenge does: histograms and separation power,
    classifier AUC/JSD, FPD/KPD and plots; writes OUT/metrics.json and a self-contained OUT/report.html."""
    result = run_evaluation(generated, reference, geometry, metrics=metrics, out_dir=out, quick=quick,
                            repeats=repeats, seed=seed, chunk_size=chunk_size, threshold=threshold, device=device,
                            use_cache=not no_cache, floor_reference=floor_reference,
                            log=lambda message: typer.echo(message, err=True))
    for kind, entry in result.get("classifiers", {}).items():
        spread = f" +- {entry['auc_std']:.4f}" if entry.get("auc_std") is not None else ""
        typer.echo(f"{kind:15s} AUC {entry['auc']:.4f}{spread}  JSD {entry['jsd']:.4f}  floor "
                   f"{entry['floor_auc']:.4f} +- {entry['floor_auc_err']:.4f}  x1.05 {entry['distorted_auc']:.4f} +- "
                   f"{entry['distorted_auc_err']:.4f}  "
                   + ("resolves" if entry["resolves"] else "DOES NOT RESOLVE x1.05: no quality claim"))
    for key in ("fpd", "kpd"):
        if key in result:
            typer.echo(f"{key.upper():15s} {result[key]['value_x1e3']:.4f} +- {result[key]['error_x1e3']:.4f} (x 1e3)")
    table = result.get("histograms", {}).get("separation_power", {})
    if "E_tot/E_inc" in table and table["E_tot/E_inc"] is not None:
        typer.echo(f"{'S(E_tot/E_inc)':15s} {table['E_tot/E_inc']:.4g}")
    typer.echo(f"report          {Path(out) / 'report.html'}")
