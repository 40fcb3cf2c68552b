"""``caloforge bench``: generation time per shower at batch 1, 100 and 10000, beside Geant4's time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from caloforge.checks import COUNT, POSITIVE, device
from caloforge.cli.common import checked, known_sampler
from caloforge.errors import CaloforgeError


def _sampler_options(spec: str) -> dict:
    """``NAME:STEPS`` as sample options, refused up front, before any model is timed."""
    name, _, steps = spec.partition(":")
    if not steps.isdigit():
        raise CaloforgeError(f"--sampler '{spec}': expected NAME:STEPS, e.g. ddim:50")
    known_sampler("--sampler", name)
    COUNT("--sampler steps", int(steps))
    return {"sampler": name, "steps": int(steps)}


def _batch_sizes(spec: str) -> list[int]:
    try:
        sizes = [int(b) for b in spec.split(",")]
    except ValueError:
        raise CaloforgeError(f"--batch-sizes: expected comma-separated counts, e.g. 1,100,10000 (got '{spec}')"
                             ) from None
    for size in sizes:
        COUNT("--batch-sizes", size)
    return sizes


def bench(
    checkpoints: list[Path] = typer.Argument(..., help="Checkpoints to time."),
    samplers: list[str] = typer.Option([], "--sampler", help="For diffusion and flow-matching models: NAME:STEPS, "
                                       "repeatable (default: the checkpoint's own sampler)."),
    batch_sizes: str = typer.Option("1,100,10000", help="Comma-separated batch sizes."),
    devices: list[str] = typer.Option([], "--device", help="cpu and/or cuda (default: cpu, plus cuda when present)."),
    repeats: int = typer.Option(5, callback=checked(COUNT),
                                help="Timed runs per point after one warm-up (median reported)."),
    budget: float = typer.Option(120.0, callback=checked(POSITIVE),
                                 help="Seconds one point may take; longer ones are extrapolated, marked est."),
    geant4: str = typer.Option(None, help="Geant4 seconds per shower, or a data file recording them "
                               "(default: the bundled Par04 sample's)."),
    threads: int = typer.Option(None, callback=checked(COUNT), help="torch CPU threads (default: all cores)."),
    json_out: Path = typer.Option(None, "--json", help="Also write every point as JSON."),
) -> None:
    """Time shower generation per model, sampler, device and batch size (warm-up, repeats, peak memory)."""
    import torch

    from caloforge.data import sample_path
    from caloforge.sampling.timing import format_table, geant4_seconds_per_shower, machine_description, time_model
    from caloforge.train import load_model

    sizes = _batch_sizes(batch_sizes)
    option_specs = [_sampler_options(s) for s in samplers]
    if threads:
        torch.set_num_threads(threads)
    for name in devices:
        device("--device", name)
    devices = devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if geant4 is None:
        geant4_s = geant4_seconds_per_shower(sample_path())
    elif os.path.exists(geant4):
        geant4_s = geant4_seconds_per_shower(geant4)
    else:
        geant4_s = float(geant4)
    points = []
    for checkpoint in checkpoints:
        model, ckpt = load_model(checkpoint)
        defaults = ckpt.header.get("sample_defaults", {})
        option_sets = option_specs if option_specs and "sampler" in defaults else [defaults]
        for options in option_sets:
            for name in devices:
                typer.echo(f"timing {checkpoint.name} {options} on {name} ...", err=True)
                points += time_model(model, f"{ckpt.header['family']}:{checkpoint.stem}", options,
                                     torch.device(name), sizes, repeats, budget, geant4_s=geant4_s)
    typer.echo(f"machine: {machine_description()}; Geant4: {geant4_s * 1e3:.0f} ms per shower")
    typer.echo(format_table(points))
    if json_out:
        json_out.write_text(json.dumps({"machine": machine_description(), "geant4_ms_per_shower": geant4_s * 1e3,
                                        "points": [p.to_dict() for p in points]}, indent=1))
