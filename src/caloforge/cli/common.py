"""Helpers shared by the CLI modules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from caloforge.checks import Check, OneOf, device
from caloforge.data import ShowerFile, open_showers
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry, geometry_for_voxels, load_geometry

GEOMETRY_HELP = "Geometry: ds1-photons, ds1-pions, ds2, ds3, par04, par04-coarse, or a binning XML path. " \
                "Default: guessed from the voxel count."
GeometryOption = typer.Option(None, "--geometry", "-g", help=GEOMETRY_HELP)


def checked(check: Check) -> Callable[[typer.CallbackParam, Any], Any]:
    """A typer callback refusing what ``check`` refuses, named as the user wrote it (``--batch-size: ...``)."""
    def callback(param: typer.CallbackParam, value: Any) -> Any:
        check(param.opts[0] if param.opts else param.name, value)
        return value
    return callback


def known_sampler(name: str, value: str | None) -> None:
    """A sampler of ``caloforge.sampling``."""
    from caloforge.sampling import SAMPLERS

    OneOf(tuple(SAMPLERS))(name, value)


def device_option(default: str | None = "auto", help_text: str = "cpu, cuda, cuda:1, or auto (a GPU if present)."
                  ) -> Any:
    """``--device``: a torch device this machine has."""
    return typer.Option(default, "--device", help=help_text, callback=checked(device))


def open_with_geometry(path: Path, geometry: str | None) -> tuple[ShowerFile, Geometry]:
    """Open a file and resolve its geometry (given, or guessed from the voxel count)."""
    if geometry is not None:
        geo = load_geometry(geometry)
        return open_showers(path, geo), geo
    handle = open_showers(path)
    geo = geometry_for_voxels(handle.n_voxels)
    if geo is None:
        raise CaloforgeError(f"{path}: no built-in geometry has {handle.n_voxels} voxels; pass --geometry")
    return open_showers(path, geo), geo
