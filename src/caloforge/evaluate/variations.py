"""The variation study: how different are the fine showers that SuperCalo draws from one coarse shower?

Up-sample N coarse showers K times each (``caloforge upsample COARSE.h5 --variations K``), compute per-shower
quantities that the coarse shower does not fix, and compare their spread across the K variations of one coarse
shower with their spread across coarse showers. A ratio near 0 means the fine showers are copies of each other;
a sizeable ratio is the variation that lets many fine showers be drawn from fewer coarse ones.

    python -m caloforge.evaluate.variations FINE.h5 --variations K
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from caloforge.contract import readout_threshold
from caloforge.data import open_showers
from caloforge.errors import CaloforgeError
from caloforge.evaluate.correlation import layer_correlations
from caloforge.geometry import Geometry, load_geometry


def shower_quantities(showers: np.ndarray, geometry: Geometry, threshold: float) -> dict[str, np.ndarray]:
    """(N,) values per quantity: voxels above threshold, hottest voxel's share of the energy, energy-weighted
    radial width (mm) and the mean inter-layer correlation rho."""
    showers = np.where(showers < threshold, 0.0, np.asarray(showers, dtype=np.float64))
    total = showers.sum(1).clip(min=1e-12)
    r = geometry.r_centres
    mean_r = showers @ r / total
    with np.errstate(invalid="ignore"):
        rho = np.nanmean(layer_correlations(showers, geometry), axis=1)
    return {"voxels_hit": (showers > 0).sum(1).astype(np.float64), "hottest_share": showers.max(1) / total,
            "width_r": np.sqrt(np.clip(showers @ r**2 / total - mean_r**2, 0, None)), "mean_rho": rho}


def variation_spread(values: np.ndarray) -> dict[str, float]:
    """(N coarse showers, K variations) of one quantity -> the spread across variations (mean over coarse showers
    of the standard deviation over K), across showers (standard deviation over N of the mean over K), their ratio."""
    within = float(np.nanmean(np.nanstd(values, axis=1, ddof=1)))
    between = float(np.nanstd(np.nanmean(values, axis=1), ddof=1))
    return {"across_variations": within, "across_showers": between, "ratio": within / between}


def variation_study(path: str | Path, variations: int, geometry: Geometry, threshold: float) -> dict[str, dict]:
    """Spreads of every ``shower_quantities`` quantity in a file written by ``upsample_file`` (K consecutive rows
    per coarse shower)."""
    _, showers = open_showers(path, geometry).read_all()
    if len(showers) % variations:
        raise CaloforgeError(f"{path}: {len(showers)} showers are not a multiple of {variations} variations")
    quantities = shower_quantities(showers, geometry, threshold)
    return {name: variation_spread(v.reshape(-1, variations)) for name, v in quantities.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m caloforge.evaluate.variations",
                                     description="Spread of per-shower quantities across the variations of one "
                                                 "coarse shower vs across coarse showers.")
    parser.add_argument("fine", type=Path, help="output of caloforge upsample --variations K")
    parser.add_argument("--variations", "-k", type=int, required=True)
    parser.add_argument("--geometry", default="par04")
    args = parser.parse_args(argv)
    geometry = load_geometry(args.geometry)
    result = variation_study(args.fine, args.variations, geometry, readout_threshold(geometry))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
