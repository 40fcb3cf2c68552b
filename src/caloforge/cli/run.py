"""``caloforge train`` and ``caloforge generate``: the shared trainer and generation path for every family."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from caloforge.checks import COUNT, SEED, OneOf
from caloforge.cli.common import checked, device_option, known_sampler
from caloforge.errors import CaloforgeError

# torch-heavy modules are imported inside the commands, so that ``caloforge --help`` and ``data`` stay quick


def train(
    config: Path = typer.Argument(..., help="YAML run file (see configs/)."),
    out: Path = typer.Option(Path("runs/latest"), "--out", "-o", help="Run folder: checkpoints and log."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt (a killed run goes on)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set train.epochs=5."),
) -> None:
    """Train a model family from a YAML run file. Multi-GPU: torchrun --nproc-per-node N -m caloforge train ..."""
    from caloforge.train import load_run_config
    from caloforge.train import train as train_run

    final = train_run(load_run_config(config, overrides), out, resume=resume)
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(f"model: {final}")


def _parse_shard(shard: str | None) -> tuple[int, int] | None:
    if shard is None:
        return None
    try:
        index, count = (int(v) for v in shard.split("/"))
    except ValueError:
        raise CaloforgeError(f"--shard: expected i/n, e.g. 0/4 (got '{shard}')") from None
    return index, count


def generate(
    checkpoint: Path = typer.Argument(..., help="A caloforge checkpoint (model.pt)."),
    n: int = typer.Option(None, "--n", "--showers", callback=checked(COUNT), help="Number of showers (default: all "
                          "energies of --energies FILE). Under torchrun write --showers: torchrun reads --n as one of "
                          "its own options."),
    energies: str = typer.Option("log-uniform:1000:100000", help="FILE.h5 (its incident energies, in order) or "
                                 "log-uniform:LO:HI in MeV."),
    sampler: str = typer.Option(None, callback=checked(known_sampler),
                                help="ODE sampler: ddpm, ddim, dpmpp, heun, consistency (students) (default: the "
                                "checkpoint's)."),
    steps: int = typer.Option(None, callback=checked(COUNT), help="Sampler steps (default: the checkpoint's)."),
    batch_size: int = typer.Option(1000, "--batch-size", "-b", callback=checked(COUNT)),
    seed: int = typer.Option(0, callback=checked(SEED), help="Seed of the energies and of every batch's noise."),
    shard: str = typer.Option(None, help="i/n: write only shard i of n (default under torchrun: one per rank)."),
    device: str = device_option(),
    out: Path = typer.Option(Path("generated.h5"), "--out", "-o"),
) -> None:
    """Generate showers with a trained model into a CaloChallenge HDF5 file (written in chunks, atomically)."""
    from caloforge.sampling import generate as generate_showers
    from caloforge.sampling import incident_energies, merge_shards
    from caloforge.train import distributed, load_model

    given = _parse_shard(shard)
    ctx = distributed.init(device)
    model, ckpt = load_model(checkpoint, map_location="cpu")
    options = dict(ckpt.header.get("sample_defaults", {}))
    options.update({k: v for k, v in (("sampler", sampler), ("steps", steps)) if v is not None})
    part = given or (ctx.rank, ctx.world_size)
    values = incident_energies(energies, n, seed)
    path = generate_showers(model, ckpt.geometry, values, out, batch_size=batch_size, seed=seed, options=options,
                            shard=part, device=ctx.device, progress=ctx.is_main,
                            attrs={"checkpoint": str(checkpoint), "family": ckpt.header["family"], "energies": energies})
    distributed.barrier(ctx)
    if given is None and ctx.distributed and ctx.is_main:
        path = merge_shards(out, ctx.world_size)
    if ctx.is_main:
        typer.echo(json.dumps({"out": str(path if given else out), "showers": int(len(values)), **options}))
    distributed.finish(ctx)
