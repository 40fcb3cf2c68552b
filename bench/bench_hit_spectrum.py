"""Hits of generated showers against Geant4's: how many a shower lights, and how much energy they hold.

A model can light the right number of voxels and still get the hits wrong: the flow-matching shape model smears the
point of the empty voxels into hits of a few keV. For the first ``--n`` reference showers' incident energies, each
``--sampler`` prints the mean hit count, the 1/10/50/90th percentiles of the hit energies (MeV), the share of hits
under 1 MeV and the mean E_tot / E_inc, beside the reference's own; a hit is a voxel at or above the readout
threshold, as the evaluation counts it (the Geant4 files keep the deposits under it).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hit_spectrum.py runs/flowmatch-par04/epoch-78.pt \\
        --sampler heun:8 --sampler heun:32 --sampler ddpm:32
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from caloforge.contract import readout_threshold
from caloforge.data import open_showers
from caloforge.train import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"


def describe(name: str, showers: np.ndarray, energies: np.ndarray, threshold: float) -> str:
    showers = np.where(showers >= threshold, showers, 0)
    hits = showers[showers > 0]
    percentiles = ", ".join(f"{value:.3g}" for value in np.percentile(hits, [1, 10, 50, 90]))
    return (f"{name:14s} hits/shower {(showers > 0).sum(1).mean():7.1f}  hit MeV p1/10/50/90 [{percentiles}]  "
            f"under 1 MeV {(hits < 1).mean():.3f}  E_tot/E_inc {(showers.sum(1) / energies).mean():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--sampler", action="append", default=[], metavar="NAME:STEPS")
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, checkpoint = load_model(args.checkpoint)
    threshold = readout_threshold(checkpoint.geometry)
    energies, showers = open_showers(args.reference).read(slice(0, args.n))
    energies = energies.reshape(-1)
    print(describe("Geant4", showers, energies, threshold))
    for spec in args.sampler or ["heun:8"]:
        name, _, steps = spec.partition(":")
        with torch.no_grad():
            generated = model.sample(torch.from_numpy(energies).float(), torch.Generator().manual_seed(args.seed),
                                     sampler=name, steps=int(steps))
        print(describe(spec, generated.numpy(), energies, threshold))


if __name__ == "__main__":
    main()
