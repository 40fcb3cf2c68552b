"""Which high-level features give a generated sample away: one linear classifier per feature group.

The high-level classifier sees every layer's energy, centres, widths and hit fraction at once and says only how well
it separates. This script asks each group alone (all 45 layers of it, with log10 E_inc): a standardised logistic
regression, 4-fold cross-validated AUC of the generated showers against the reference. A linear model is weak, so
the numbers are lower bounds on what each group gives away, but they rank the groups, in seconds. The first file
given is usually Geant4 (e.g. the pilot's ``geant4-2000.h5``): its row is the floor.

    python bench/bench_feature_groups.py runs/pilot/reference-2000.h5 runs/pilot/geant4-2000.h5 GENERATED.h5 ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from caloforge.contract import readout_threshold
from caloforge.data import open_showers
from caloforge.evaluate.features import ShowerFeatures, compute_features
from caloforge.geometry import load_geometry

GROUPS = ("e_layer", "ec_eta", "ec_phi", "width_eta", "width_phi", "ec_r", "width_r", "sparsity")


def features(path: Path, geometry_name: str) -> ShowerFeatures:
    geometry = load_geometry(geometry_name)
    return compute_features(geometry, open_showers(path, geometry).iter_chunks(), readout_threshold(geometry))


def group_auc(reference: ShowerFeatures, generated: ShowerFeatures, group: str, seed: int) -> float:
    """Cross-validated AUC of a logistic regression on one feature group (and log10 E_inc)."""
    columns = []
    for sample in (reference, generated):
        values = getattr(sample, group).astype(np.float64)
        if group == "e_layer":
            values = np.log10(values + 1e-8)
        columns.append(np.concatenate([values, np.log10(sample.e_inc)[:, None]], axis=1))
    x = np.concatenate(columns)
    y = np.r_[np.zeros(len(columns[0])), np.ones(len(columns[1]))]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed))
    return float(cross_val_score(model, x, y, cv=4, scoring="roc_auc").mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("samples", nargs="+", type=Path, help="generated (or Geant4) showers, one row each")
    parser.add_argument("--geometry", default="par04")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reference = features(args.reference, args.geometry)
    print("| sample | " + " | ".join(GROUPS) + " |")
    print("|---" * (len(GROUPS) + 1) + "|")
    for path in args.samples:
        generated = features(path, args.geometry)
        aucs = [group_auc(reference, generated, group, args.seed) for group in GROUPS]
        print(f"| {path} | " + " | ".join(f"{auc:.3f}" for auc in aucs) + " |")


if __name__ == "__main__":
    main()
