"""CaloChallenge HDF5 data: streamed reading with checks, atomic writing, official datasets, preprocessing."""

from caloforge.data.io import ShowerFile, ShowerWriter, check_values, open_showers, provenance, write_showers
from caloforge.data.registry import OFFICIAL_DATASETS, fetch
from caloforge.data.sample import sample_path

__all__ = [
    "OFFICIAL_DATASETS",
    "ShowerFile",
    "ShowerWriter",
    "check_values",
    "fetch",
    "open_showers",
    "provenance",
    "sample_path",
    "write_showers",
]
