"""``caloforge demo`` and ``caloforge leaderboard``: the one-command tour, and our models beside the field."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("caloforge-demo"), "--out", "-o", help="Folder for report.html and metrics.json."),
    data: Path = typer.Option(None, "--data", help="Geant4 reference showers (default: the bundled Par04 sample)."),
    geometry: str = typer.Option(None, "--geometry", "-g", help="Geometry of --data (default: from its voxel count)."),
    checkpoints: list[Path] = typer.Option([], "--checkpoint", help="Models to show (default: the shipped ones)."),
    n: int = typer.Option(None, "--n", help="Showers per model (default: as many as the reference holds)."),
    retrain: bool = typer.Option(False, "--train", help="Retrain each model from the first half of the data "
                                 "(evaluated on the second) instead of loading the shipped weights."),
    train_steps: int = typer.Option(300, help="Optimiser steps per model with --train."),
    seed: int = typer.Option(0),
) -> None:
    """Generate showers with each model, evaluate them against Geant4, and write one report."""
    from caloforge.demo import run_demo

    run_demo(out, data, geometry, checkpoints or None, n, retrain, train_steps, seed, log=typer.echo)


def leaderboard(
    metrics: list[Path] = typer.Argument(..., help="metrics.json files of caloforge evaluate or demo runs."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write leaderboard.html and the plane as PNG here."),
) -> None:
    """Our measured models beside the published CaloChallenge entries (AUC, FPD, time per shower)."""
    import json

    from caloforge.evaluate import Section, build_page
    from caloforge.evaluate.leaderboard import (entry_from_metrics, format_text, leaderboard_table_html,
                                                load_entries, published_entries, quality_time_plane)
    from caloforge.evaluate.plots import figure_png

    demo_runs = [p for p in metrics if "models" in json.loads(Path(p).read_text())]
    if demo_runs:  # a demo's metrics.json holds one evaluation per model
        runs = [m for p in demo_runs for m in json.loads(Path(p).read_text())["models"]]
        geometry, ours = runs[0]["geometry"]["name"], [entry_from_metrics(m) for m in runs]
    else:
        geometry, ours = load_entries(metrics)
    published = published_entries("par04" if geometry == "par04-coarse" else geometry)
    typer.echo(format_text(ours, published))
    if out:
        plane = quality_time_plane(ours, published, "ds2")
        out.mkdir(parents=True, exist_ok=True)
        (out / "quality-vs-time.png").write_bytes(figure_png(plane))
        page = build_page(out, "caloforge leaderboard", f"geometry {geometry}",
                          [Section("Beside the CaloChallenge entries", leaderboard_table_html(ours, published),
                                   {"Quality versus time": plane})], name="leaderboard.html")
        typer.echo(f"wrote {page}")
