"""Calorimeter voxel geometries from CaloChallenge binning XMLs, and rebinning between them."""

from caloforge.geometry.binning import Geometry, parse_binning_xml, regular_hull
from caloforge.geometry.builtin import BUILTIN_GEOMETRIES, geometry_for_voxels, load_geometry
from caloforge.geometry.overlap import Rebinning, coarsen, overlap_matrix

__all__ = [
    "BUILTIN_GEOMETRIES",
    "Geometry",
    "Rebinning",
    "coarsen",
    "geometry_for_voxels",
    "load_geometry",
    "overlap_matrix",
    "parse_binning_xml",
    "regular_hull",
]
