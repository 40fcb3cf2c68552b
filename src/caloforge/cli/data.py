"""``caloforge data``: inspect, check, fetch and rebin CaloChallenge files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from tqdm import tqdm

from caloforge.checks import COUNT, SEED, OneOf, Range
from caloforge.cli.common import GeometryOption, checked, open_with_geometry
from caloforge.contract import readout_threshold
from caloforge.data import OFFICIAL_DATASETS, ShowerFile, ShowerWriter, fetch
from caloforge.data.intrinsic_dim import PREPROCESSING, levina_bickel, preprocess
from caloforge.geometry import Rebinning, load_geometry

app = typer.Typer(help="Inspect, check, download and rebin CaloChallenge HDF5 shower files.", no_args_is_help=True)

CHUNK = typer.Option(10_000, callback=checked(COUNT), help="Showers read at a time (memory stays bounded by this).")


def _chunks(handle: ShowerFile, chunk_size: int, desc: str) -> tqdm:
    """The file's row blocks with a progress bar; the bar shows only on a terminal, so that piped or logged
    stderr holds nothing but the one-line error of a failure."""
    return tqdm(handle.iter_chunks(chunk_size), total=-(-handle.n // chunk_size), desc=desc, unit="chunk",
                leave=False, disable=None)


@app.command()
def info(file: Path, geometry: str = GeometryOption, chunk_size: int = CHUNK) -> None:
    """Summarise a file: showers, energy range, geometry, sparsity and mean deposited / incident energy."""
    handle, geo = open_with_geometry(file, geometry)
    e_min, e_max, nonzero, ratio_sum = np.inf, 0.0, 0, 0.0
    for energies, showers in _chunks(handle, chunk_size, "reading"):
        e_min, e_max = min(e_min, energies.min()), max(e_max, energies.max())
        nonzero += int(np.count_nonzero(showers))
        ratio_sum += float((showers.sum(1, dtype=np.float64) / energies).sum())
    typer.echo(f"file          {file}")
    typer.echo(f"showers       {handle.n}")
    typer.echo(f"energy range  {e_min / 1e3:.4g} - {e_max / 1e3:.4g} GeV")
    typer.echo(f"geometry      {geo.describe()}")
    typer.echo(f"sparsity      {1 - nonzero / (handle.n * geo.n_voxels):.3f} (fraction of voxels at zero)")
    typer.echo(f"E_dep/E_inc   {ratio_sum / handle.n:.4f} (mean)")


@app.command()
def check(file: Path, geometry: str = GeometryOption, chunk_size: int = CHUNK) -> None:
    """Check structure, voxel count against the geometry, and every value (NaN/inf, negative energies)."""
    handle, geo = open_with_geometry(file, geometry)
    for _ in _chunks(handle, chunk_size, "checking"):
        pass
    typer.echo(f"{file}: OK ({handle.n} showers, {geo.describe()})")


@app.command("fetch")
def fetch_command(
    datasets: list[str] = typer.Argument(None, help=f"Dataset keys: {', '.join(OFFICIAL_DATASETS)}."),
    directory: Path = typer.Option(Path("data"), "--dir", help="Where to put the files."),
    list_only: bool = typer.Option(False, "--list", help="List the official datasets and exit."),
) -> None:
    """Download official CaloChallenge files from Zenodo and verify them (MD5 where published)."""
    if list_only or not datasets:
        for entry in OFFICIAL_DATASETS.values():
            typer.echo(f"{entry.key:15s} {entry.filename:26s} {entry.geometry:12s} {entry.role:9s} {entry.url}")
        return
    for key in datasets:
        with tqdm(desc=key, unit="B", unit_scale=True, disable=None) as bar:
            def progress(done: int, total: int | None) -> None:
                bar.total = total
                bar.update(done - bar.n)
            path = fetch(key, directory, progress)
        typer.echo(f"{key}: {path}")


@app.command()
def rebin(
    file: Path,
    out: Path,
    to: str = typer.Option(..., "--to", help="Target geometry (name or XML)."),
    geometry: str = GeometryOption,
    chunk_size: int = CHUNK,
) -> None:
    """Move every shower onto another geometry through the voxel overlap matrix (e.g. par04 -> par04-coarse)."""
    handle, src = open_with_geometry(file, geometry)
    rebinning = Rebinning(src, load_geometry(to))
    attrs = {"source_file": str(file), "source_geometry": src.name, "geometry": rebinning.dst.name}
    with ShowerWriter(out, rebinning.dst.n_voxels, attrs) as writer:
        for energies, showers in _chunks(handle, chunk_size, "rebinning"):
            writer.append(energies, rebinning(showers))
    note = "" if rebinning.conserves_energy else " (target does not cover every source voxel: energy not conserved)"
    typer.echo(f"{out}: {handle.n} showers on {rebinning.dst.describe()}{note}")


@app.command("intrinsic-dim")
def intrinsic_dim(
    file: Path,
    k: int = typer.Option(20, "--k", callback=checked(Range(2)), help="Nearest neighbours per shower."),
    n: int = typer.Option(5000, "--n", callback=checked(Range(3)),
                          help="Showers drawn (seeded) from the file: neighbour search is O(n^2)."),
    preprocessing: str = typer.Option("none", "--preprocess", callback=checked(OneOf(tuple(PREPROCESSING))),
                                      help="none (MeV), scaled (E_vox / (3.1 E_inc)) or log (log(scaled + 1e-6))."),
    geometry: str = GeometryOption,
    seed: int = typer.Option(0, callback=checked(SEED), help="Seed of the subsample."),
) -> None:
    """Levina-Bickel intrinsic dimension of the showers, after the readout threshold: CaloMan's latent size."""
    handle, geo = open_with_geometry(file, geometry)
    rows = np.sort(np.random.default_rng(seed).choice(handle.n, size=min(n, handle.n), replace=False))
    energies, showers = handle.read(rows)
    showers = np.where(showers < readout_threshold(geo), 0.0, showers).astype(np.float64)
    dimension = levina_bickel(preprocess(showers, energies.astype(np.float64), preprocessing), k)
    typer.echo(f"{file}: intrinsic dimension {dimension:.1f} (Levina-Bickel, k={k}, n={len(rows)}, "
               f"preprocess={preprocessing}, {geo.name})")
