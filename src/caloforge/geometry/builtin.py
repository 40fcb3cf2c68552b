"""The geometries shipped with caloforge, by name (provenance in ``binnings/SOURCE.md``)."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from importlib.resources import files
from pathlib import Path

from caloforge.errors import CaloforgeError
from caloforge.geometry.binning import Geometry, parse_binning_xml

_XML = {
    "ds1-photons": "binning_dataset_1_photons.xml",
    "ds1-pions": "binning_dataset_1_pions.xml",
    "ds2": "binning_dataset_2.xml",
    "ds3": "binning_dataset_3.xml",
    "par04": "binning_par04.xml",
    "par04-coarse": "binning_par04_coarse.xml",
}
# The Par04 layers each coarse layer sums (stated in the XML's comment and the data's README).
_PAR04_COARSE_GROUPS = ((0, 1, 2, 3), tuple(range(4, 10)), tuple(range(10, 18)), tuple(range(18, 26)),
                        tuple(range(26, 34)), tuple(range(34, 45)))

BUILTIN_GEOMETRIES = tuple(_XML)


@cache
def _builtin(name: str) -> Geometry:
    geometry = parse_binning_xml(Path(str(files("caloforge.geometry") / "binnings" / _XML[name])), name=name)
    if name == "par04-coarse":
        geometry = replace(geometry, parent="par04", parent_layers=_PAR04_COARSE_GROUPS)
    return geometry


_COARSENED = re.compile(r"^(?P<base>.+)-coarse-r(?P<r>\d+)a(?P<a>\d+)l(?P<l>\d+)$")


def load_geometry(name_or_path: str | Path) -> Geometry:
    """A built-in geometry by name (``ds1-photons``, ``ds1-pions``, ``ds2``, ``ds3``, ``par04``, ``par04-coarse``),
    a coarse-graining of a regular one (``par04-coarse-r1a2l5``: 1 radial x 2 angular bins x 5 layers merged, see
    ``coarsen``) or any CaloChallenge binning XML by path."""
    from caloforge.geometry.overlap import coarsen

    key = str(name_or_path)
    if key in _XML:
        return _builtin(key)
    if match := _COARSENED.match(key):
        return coarsen(load_geometry(match["base"]), int(match["r"]), int(match["a"]), int(match["l"]))
    if Path(key).suffix.lower() == ".xml":
        return parse_binning_xml(key)
    raise CaloforgeError(f"{key}: unknown geometry; use one of {', '.join(_XML)} or a binning XML path")


def geometry_for_voxels(n_voxels: int) -> Geometry | None:
    """The first built-in geometry with this many voxels (used to guess a file's geometry), else None."""
    for name in ("par04", "par04-coarse", "ds1-photons", "ds1-pions", "ds3"):
        if _builtin(name).n_voxels == n_voxels:
            return _builtin(name)
    return None
