"""``caloforge upsample``: fine showers from a file of coarse showers with a SuperCalo model."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from caloforge.checks import COUNT, SEED, require_memory
from caloforge.cli.common import checked, device_option
from caloforge.data import open_showers
from caloforge.errors import CaloforgeError
from caloforge.train import distributed, load_model


def upsample(
    coarse: Path = typer.Argument(..., help="CaloChallenge file of coarse showers, in the model's coarse geometry."),
    model: Path = typer.Option(..., "--model", "-m", help="A SuperCalo checkpoint (an up-sampler or a full chain)."),
    out: Path = typer.Option(Path("upsampled.h5"), "--out", "-o"),
    variations: int = typer.Option(1, "--variations", "-k", callback=checked(COUNT),
                                   help="Fine showers drawn per coarse shower (K); they are consecutive rows."),
    n: int = typer.Option(None, "--n", callback=checked(COUNT), help="Up-sample only the first N coarse showers "
                          "(default: all)."),
    batch_size: int = typer.Option(100, "--batch-size", "-b", callback=checked(COUNT),
                                   help="Coarse showers per batch."),
    seed: int = typer.Option(0, callback=checked(SEED), help="Seed of every batch's noise."),
    device: str = device_option(),
) -> None:
    """Up-sample coarse showers to the fine geometry: K x N fine showers from N coarse ones (SuperCalo)."""
    from caloforge.models.supercalo.resample import upsample_file  # the flow stack loads only for this command

    network, checkpoint = load_model(model)
    if checkpoint.header["family"] != "supercalo":
        raise CaloforgeError(f"{model}: a {checkpoint.header['family']} checkpoint; up-sampling needs a supercalo one")
    voxels = checkpoint.geometry.n_voxels
    require_memory(f"--batch-size {batch_size} x -k {variations}: the fine showers of one batch ({voxels} voxels "
                   "each)", 4 * batch_size * variations * voxels)
    path = upsample_file(network, coarse, out, variations=variations, n=n, batch_size=batch_size, seed=seed,
                         device=distributed.pick_device(device), attrs={"checkpoint": str(model)})
    typer.echo(json.dumps({"out": str(path), "showers": open_showers(path).n, "variations": variations}))
