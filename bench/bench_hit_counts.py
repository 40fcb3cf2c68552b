"""Hit counts and widths of generated showers against Geant4's, layer by layer: what the high-level classifier sees.

The CaloChallenge's high-level vector holds each layer's energy, hit fraction (sparsity), centres and widths. For
every file (its first ``--n`` showers, cut at the threshold) and the reference, per layer:

- ``slope`` and ``spread`` of log(hit count) about a quadratic in log(E_layer) over the showers that light the layer:
  in Geant4 a layer's energy is about its hits times a typical deposit, so the count follows the energy closely;
- ``width shift`` and ``width sd``: the mean of the eta, phi and r widths in standard deviations of the reference's,
  and the ratio of their standard deviations, averaged over the three.

With ``--trees``, each file is also told from the reference by gradient-boosted trees (3-fold) on the high-level
vector's log E_inc and layer energies plus one group: the eta and phi widths, or the hit fractions.

    OMP_NUM_THREADS=2 python bench/bench_hit_counts.py runs/flow-quality/par04-caloman/generated.h5 \
        ../shared/data/par04/par04_e_1-100GeV_train.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from caloforge.contract import readout_threshold
from caloforge.data import open_showers
from caloforge.evaluate.features import ShowerFeatures, compute_features
from caloforge.geometry import load_geometry

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"
LAYERS = (0, 2, 5, 8, 11, 14, 17, 20, 25, 30, 35, 40)


def features(path: Path, n: int, geometry) -> ShowerFeatures:
    source = open_showers(path, geometry)
    chunks = ((np.asarray(e).reshape(-1), np.asarray(x)) for e, x in
              (source.read(slice(start, min(n, source.n, start + 2000))) for start in range(0, min(n, source.n), 2000)))
    return compute_features(geometry, chunks, readout_threshold(geometry))


def count_law(sample: ShowerFeatures, layer: int, voxels: int) -> tuple[float, float]:
    """(slope, residual spread) of log(hit count) on a quadratic in log(E_layer), lit showers only."""
    energy = sample.e_layer[:, layer].astype(np.float64)
    lit = energy > 0
    x, y = np.log(energy[lit]), np.log((1 - sample.sparsity[lit, layer]) * voxels)
    design = np.c_[np.ones_like(x), x, x * x]
    coefficients = np.linalg.lstsq(design, y, rcond=None)[0]
    slope = coefficients[1] + 2 * coefficients[2] * x.mean()  # at the mean log energy
    return float(slope), float(np.std(y - design @ coefficients))


def widths(sample: ShowerFeatures, reference: ShowerFeatures, layer: int) -> tuple[float, float]:
    """(mean shift in reference standard deviations, ratio of standard deviations) of the eta, phi and r widths,
    averaged, over the showers that light the layer."""
    shifts, ratios = [], []
    for name in ("width_eta", "width_phi", "width_r"):
        ours = getattr(sample, name)[sample.e_layer[:, layer] > 0, layer]
        theirs = getattr(reference, name)[reference.e_layer[:, layer] > 0, layer]
        shifts.append((ours.mean() - theirs.mean()) / theirs.std())
        ratios.append(ours.std() / theirs.std())
    return float(np.mean(shifts)), float(np.mean(ratios))


def tree_aucs(sample: ShowerFeatures, reference: ShowerFeatures, n_layers: int) -> str:
    """AUCs of trees on [log E_inc, log E_layer] plus the widths, then plus the hit fractions."""
    ours, theirs = sample.high_level_vector(), reference.high_level_vector()
    energy = list(range(1 + n_layers))
    groups = {"widths": range(1 + 3 * n_layers, 1 + 5 * n_layers),  # after E_layer and the centres
              "hit fractions": range(2 + 5 * n_layers, 2 + 6 * n_layers)}  # after log E_tot
    labels = np.r_[np.zeros(len(theirs)), np.ones(len(ours))]
    cells = []
    for name, group in groups.items():
        columns = energy + list(group)
        inputs = np.nan_to_num(np.concatenate([theirs[:, columns], ours[:, columns]]))
        scores = cross_val_predict(HistGradientBoostingClassifier(max_iter=200, random_state=0), inputs, labels, cv=3,
                                   method="predict_proba")[:, 1]
        cells.append(f"E_layer + {name} {roc_auc_score(labels, scores):.3f}")
    return ", ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--trees", action="store_true", help="also the gradient-boosted trees' AUCs")
    args = parser.parse_args()
    geometry = load_geometry("par04")
    reference = features(args.reference, args.n, geometry)
    voxels = geometry.voxels_per_layer
    print("| file | " + " | ".join(f"L{j}" for j in LAYERS) + " |")
    print("|---" * (len(LAYERS) + 1) + "|")
    trees = []
    for path in [args.reference, *args.files]:
        sample = reference if path == args.reference else features(path, args.n, geometry)
        name = path.parent.name if path.name == "generated.h5" else path.name
        laws = [count_law(sample, j, voxels[j]) for j in LAYERS]
        print(f"| {name} count slope / spread | " + " | ".join(f"{s:.2f} / {r:.2f}" for s, r in laws) + " |")
        if path != args.reference:
            moved = [widths(sample, reference, j) for j in LAYERS]
            print(f"| {name} width shift / sd ratio | " + " | ".join(f"{m:+.2f} / {r:.2f}" for m, r in moved)
                  + " |", flush=True)
            if args.trees:
                trees.append(f"{name}: {tree_aucs(sample, reference, geometry.n_layers)}")
    print("\n".join(trees))


if __name__ == "__main__":
    main()
