"""Which high-level features give a generated sample away: one classifier per feature group.

The high-level classifier sees every layer's energy, centres, widths and hit fraction at once and says only how well
it separates. This script asks each group alone (all 45 layers of it, with log10 E_inc), 4-fold cross-validated AUC
of the generated showers against the reference. The default classifier is a standardised logistic regression: in
seconds, a lower bound that ranks mean shifts. ``--trees`` uses gradient-boosted trees instead, which also see a
group's spread and its relation to E_inc (for instance how many voxels a layer lights at a given E_inc), and adds a
second table: the AUC of all groups but one, so a group's share of the whole can be read off. The two rankings can
differ: on the par04 flagship the linear one puts the widths first (0.76) and the trees the hit fractions (0.83).
The first file given is usually Geant4 (e.g. the pilot's ``geant4-2000.h5``): its row is the floor.

    python bench/bench_feature_groups.py runs/pilot/reference-2000.h5 runs/pilot/geant4-2000.h5 GENERATED.h5 ...
    python bench/bench_feature_groups.py ... --trees
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
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


def columns(sample: ShowerFeatures, groups: tuple[str, ...]) -> np.ndarray:
    """(N, d) the groups' values, layer energies in log10, with log10 E_inc; a layer without a centre is -9."""
    parts = [np.log10(sample.e_inc)[:, None]]
    for group in groups:
        values = getattr(sample, group).astype(np.float64)
        parts.append(np.log10(values + 1e-8) if group == "e_layer" else values)
    return np.nan_to_num(np.concatenate(parts, axis=1), nan=-9.0)


def auc(reference: ShowerFeatures, generated: ShowerFeatures, groups: tuple[str, ...], trees: bool,
        seed: int) -> float:
    """Cross-validated AUC of the generated against the reference showers on ``groups``."""
    x = np.concatenate([columns(reference, groups), columns(generated, groups)])
    y = np.r_[np.zeros(reference.n), np.ones(generated.n)]
    model = (HistGradientBoostingClassifier(max_iter=200, random_state=seed) if trees else
             make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed)))
    return float(cross_val_score(model, x, y, cv=4, scoring="roc_auc").mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("samples", nargs="+", type=Path, help="generated (or Geant4) showers, one row each")
    parser.add_argument("--geometry", default="par04")
    parser.add_argument("--trees", action="store_true", help="gradient-boosted trees, and the all-but-one table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reference = features(args.reference, args.geometry)
    samples = [(path, features(path, args.geometry)) for path in args.samples]
    tables = [("alone", lambda group: (group,))]
    if args.trees:
        tables.append(("all but", lambda group: tuple(g for g in GROUPS if g != group)))
    for title, selected in tables:
        print(f"\n{title}:\n| sample | all | " + " | ".join(GROUPS) + " |")
        print("|---" * (len(GROUPS) + 2) + "|")
        for path, generated in samples:
            aucs = [auc(reference, generated, groups, args.trees, args.seed)
                    for groups in (GROUPS, *map(selected, GROUPS))]
            print(f"| {path} | " + " | ".join(f"{value:.3f}" for value in aucs) + " |")


if __name__ == "__main__":
    main()
