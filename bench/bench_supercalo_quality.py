"""SuperCalo's quality against the Par04 reference: the full chain's classifier AUCs, and rho for choices A and B.

Three comparisons, each through ``caloforge evaluate`` against the whole reference file:

1. the full chain (coarse model + up-sampler) generating one shower per incident energy of the reference's first
   ``--n`` showers: classifier AUCs (quick unless ``--protocol``) beside the chain's quality bars (0.75 low, 0.72 high);
2. every given up-sampler (choice A, choice B, ...) applied to the reference's own first ``--n`` showers
   coarse-grained: the up-sampling alone, and the separation power of rho (cosine of the fine-voxel vectors of
   adjacent layers) per layer pair. For a choice that merges layers, pairs inside one coarse voxel and pairs across
   a coarse-layer boundary are also averaged apart: only inside can the up-sampler correlate two layers;
3. the training file's first ``--n`` Geant4 showers: the noise floor of every number above.

A chain checkpoint also serves as an up-sampler (its own). The rho comparison needs many showers: at 2000 the noise
floor (S = 0.018) hid the difference between A and B that 10,000 showers show (0.0103 vs 0.0129, floor 0.0074).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_supercalo_quality.py \
        --chain src/caloforge/checkpoints/par04-supercalo.pt --n 2000
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_supercalo_quality.py --n 10000 \
        --upsamplers src/caloforge/checkpoints/par04-supercalo.pt src/caloforge/checkpoints/par04-supercalo-B.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from caloforge.data import open_showers, write_showers
from caloforge.evaluate import evaluate
from caloforge.models.supercalo.resample import upsample_file
from caloforge.sampling import generate
from caloforge.train import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"
CLASSIFIERS = ("cls-low", "cls-high")
RHO = "rho (n, n+1)"


def rho_summary(metrics: dict, layer_factor: int) -> dict[str, float]:
    """Mean rho separation power over all layer pairs, and (``layer_factor`` > 1) over the pairs inside one coarse
    layer and those across a coarse-layer boundary."""
    values = np.asarray(metrics["histograms"]["separation_power"][RHO]["values"], dtype=float)
    summary = {"all": float(np.nanmean(values))}
    if layer_factor > 1:
        inside = (np.arange(len(values)) + 1) % layer_factor != 0  # pair (n, n+1) shares n's coarse layer
        summary |= {"inside": float(np.nanmean(values[inside])), "across": float(np.nanmean(values[~inside]))}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", type=Path, help="a SuperCalo chain checkpoint (coarse model + up-sampler)")
    parser.add_argument("--upsamplers", nargs="*", type=Path, default=[], help="SuperCalo up-sampler checkpoints")
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--train-file", type=Path, default=DATA / "par04_e_1-100GeV_train.h5")
    parser.add_argument("--n", type=int, default=2000, help="showers generated / up-sampled per comparison")
    parser.add_argument("--protocol", action="store_true", help="the CaloChallenge classifier, not the quick one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/supercalo-quality"))
    args = parser.parse_args()
    if not (args.chain or args.upsamplers):
        parser.error("give --chain and/or --upsamplers")

    reference = open_showers(args.reference)
    energies, fine = reference.read(slice(0, min(args.n, reference.n)))

    rows, geometry = {}, None

    def judge(path: Path, name: str) -> dict:
        return evaluate(path, args.reference, geometry, metrics=("hist",) + CLASSIFIERS, out_dir=args.out / name,
                        quick=not args.protocol, seed=args.seed)

    if args.chain:
        chain, checkpoint = load_model(args.chain)
        geometry = checkpoint.geometry
        generated = generate(chain, geometry, energies, args.out / "chain" / "generated.h5", seed=args.seed,
                             batch_size=100, options=checkpoint.header.get("sample_defaults", {}))
        rows[f"full chain ({args.chain.name})"] = (judge(generated, "chain"), chain.voxelisation.layer_factor)
    for path in args.upsamplers:
        upsampler, checkpoint = load_model(path)
        geometry = checkpoint.geometry
        name = f"{path.parent.name}-{path.stem}"
        vox, folder = upsampler.voxelisation, args.out / name
        coarse = write_showers(folder / "coarse.h5", energies, vox.coarsen(torch.from_numpy(fine)).numpy())
        upsampled = upsample_file(upsampler, coarse, folder / "upsampled.h5", seed=args.seed)
        rows[f"{path} on Geant4 coarse ({vox.coarse.name})"] = (judge(upsampled, name), vox.layer_factor)
    floor_file = write_showers(args.out / "geant4.h5", *open_showers(args.train_file).read(slice(0, len(energies))))
    split = max(layer_factor for _, layer_factor in rows.values())  # the floor of the inside/across averages too
    rows["Geant4 vs Geant4 (floor)"] = (judge(floor_file, "geant4"), split)

    kind = "protocol" if args.protocol else "quick (not the protocol)"
    print(f"{len(energies)} showers each vs {reference.n} reference showers ({args.reference.name}); "
          f"classifiers: {kind}")
    print("| sample | AUC low (bar 0.75) | AUC high (bar 0.72) | S(rho) all pairs | inside coarse voxels | across |")
    print("|---|---|---|---|---|---|")
    for name, (metrics, layer_factor) in rows.items():
        aucs = [metrics["classifiers"][c]["auc"] for c in CLASSIFIERS]
        rho = rho_summary(metrics, layer_factor)
        cells = [f"{a:.3f}" for a in aucs] + [f"{rho[k]:.4f}" if k in rho else "" for k in ("all", "inside", "across")]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
