"""``caloforge distill`` and ``caloforge export``: few-step students of diffusion models, and their ONNX graphs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from caloforge.checks import COUNT, Range
from caloforge.cli.common import checked
from caloforge.errors import CaloforgeError

# torch-heavy modules are imported inside the commands, so that ``caloforge --help`` stays quick

#: training settings of a distillation run, before --set: short, since the student starts as the teacher
DISTILL_TRAIN = {"epochs": 5, "batch_size": 128, "lr": 1e-4, "schedule": "cosine", "warmup_steps": 20,
                 "ema_decay": 0.999, "patience": 0}


def distill(
    teacher: Path = typer.Argument(..., help="A calodiffusion checkpoint to distil."),
    steps: int = typer.Option(2, callback=checked(Range(1, 4)),
                              help="Consistency sampler steps the student's checkpoint generates with (1-4)."),
    n_intervals: int = typer.Option(30, callback=checked(COUNT),
                                    help="Intervals the teacher's schedule is cut into for distillation."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/TEACHER-student)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt."),
    overrides: list[str] = typer.Option([], "--set", help="Override a run value, e.g. --set train.max_steps=200."),
) -> None:
    """Distil a diffusion model into a few-step consistency student, through the shared trainer.

    Writes OUT/run.yaml (family calodiffusion-student, the teacher's geometry and training data) and trains it;
    the student checkpoint is self-contained: generating from it does not need the teacher file."""
    from caloforge.train import load_checkpoint, load_run_config
    from caloforge.train import train as train_run

    header = load_checkpoint(teacher).header
    if header["family"] != "calodiffusion":
        raise CaloforgeError(f"{teacher}: distill needs a calodiffusion checkpoint, not {header['family']}")
    out = out or Path("runs") / f"{teacher.parent.name if teacher.stem in ('best', 'model', 'last') else teacher.stem}-student"
    run = {"family": "calodiffusion-student", "geometry": header["run"]["geometry"], "data": header["run"]["data"],
           "model": {"teacher": str(teacher), "n_intervals": n_intervals},
           "train": {**DISTILL_TRAIN, "device": header["run"]["train"].get("device", "auto")},
           "sample": {"sampler": "consistency", "steps": steps}}
    out.mkdir(parents=True, exist_ok=True)
    config = out / "run.yaml"
    config.write_text(yaml.safe_dump(run, sort_keys=False))
    final = train_run(load_run_config(config, overrides), out, resume=resume)
    typer.echo(f"model: {final}")


def export(
    checkpoint: Path = typer.Argument(..., help="A trained checkpoint (ONNX: a calodiffusion-student)."),
    onnx: Path = typer.Option(None, "--onnx", help="ONNX file to write (the whole few-step sampling chain)."),
    weights: Path = typer.Option(None, "--weights", help="Checkpoint to write for shipping: averaged weights only, "
                                 "no optimiser state (any family)."),
    half: bool = typer.Option(False, "--half", help="With --weights: store the weights as float16 (half the file; "
                              "they load back into float32)."),
    base: Path = typer.Option(None, "--base", help="With --weights: a shipped checkpoint this model was trained on "
                              "top of, in the folder --weights is written to; the weights equal to its own are read "
                              "from it and not stored again."),
    steps: int = typer.Option(None, callback=checked(COUNT),
                              help="Sampler steps baked into the graph (default: the checkpoint's)."),
    par04_order: bool = typer.Option(False, "--par04-order", help="Output voxels in Geant4 Par04's (r, phi, z) "
                                     "order instead of caloforge's (layer, alpha, r); regular geometries only."),
) -> None:
    """Export a model for deployment: an ONNX graph of a few-step student, and/or a slim checkpoint to ship.

    ONNX inputs: noise (N, voxels), energy (N,) in MeV and, for steps > 1, renoise (steps-1, N, voxels), all noise
    standard normal; output: showers (N, voxels) in MeV. The batch axis is dynamic."""
    from caloforge.contract import save_checkpoint, shippable
    from caloforge.train import load_checkpoint, load_model

    if onnx is None and weights is None:
        raise CaloforgeError("export: say what to write: --onnx FILE and/or --weights FILE")
    if base is not None and (weights is None or base.resolve().parent != weights.resolve().parent):
        raise CaloforgeError(f"export: --base {base} must sit in the folder --weights is written to (it is read from "
                             "beside the shipped file)")
    if base is not None and base.resolve() == weights.resolve():
        raise CaloforgeError(f"export: --base {base} is the file --weights would overwrite; name another")
    if weights is not None:
        shipped = shippable(load_checkpoint(checkpoint), half=half, base=base)
        save_checkpoint(weights, shipped)
        typer.echo(json.dumps({"weights": str(weights), "half": half, "base": str(base) if base else None,
                               "tensors": len(shipped.model)}))
    if onnx is not None:
        from caloforge.export import export_onnx

        model, ckpt = load_model(checkpoint)
        steps = steps or ckpt.header.get("sample_defaults", {}).get("steps", 1)
        path = export_onnx(model, ckpt.geometry, onnx, steps, par04_order)
        typer.echo(json.dumps({"onnx": str(path), "steps": steps, "par04_order": par04_order,
                               "voxels": ckpt.geometry.n_voxels}))
