"""The CaloChallenge classifiers at a few thousand showers a side, and where the voxel one sees a model.

The protocol's MLP in float64 over 6480 voxels and 10,000 showers a side takes hours on two CPU cores; in float32 at
4,000 a side (the sample size at which #17's bars are set) it takes 3 minutes, and its floor, Geant4 against Geant4,
is measured beside it by passing the training file as a sample. For each sample: ``cls-low`` and ``cls-high`` as the
protocol trains them (isotonic calibration, 60/20/20 split, best epoch on the "test" part), against the reference's
first ``--n`` showers. ``--skip k`` reads showers k to k + n - 1 of every file instead: a sample generated for all
the reference's energies (``caloforge generate --energies REF``) then meets Geant4 showers that no choice made
with the first n ever saw (on Par04, ``--skip 6000``: showers 6,000-9,999 of the reference). ``--regions`` adds
the voxel MLP on parts of the showers: ``L:a:b`` layers a..b-1, ``R:a:b`` radial bins a..b-1 of every layer,
``Lsum:a:b`` the angle-summed radial profiles of layers a..b-1 (regular geometries). ``--trees`` adds
gradient-boosted trees (5-fold) on each layer's largest voxel share for layers 5-14, the sorted shares of the 16
wedges around the axis, and the angle-summed radial shares.

    OMP_NUM_THREADS=2 python bench/bench_voxel_classifier.py GEN.h5 ../shared/data/par04/par04_e_1-100GeV_train.h5 \\
        --repeats 2 --regions L:0:5,L:5:15,L:15:25,L:25:45,R:0:3,R:3:9,Lsum:0:45 --trees
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from caloforge.contract import readout_threshold
from caloforge.data import open_showers
from caloforge.evaluate.classifier import PROTOCOL, classifier_test
from caloforge.evaluate.classifier_inputs import LabelledSamples
from caloforge.evaluate.features import compute_features
from caloforge.geometry import load_geometry

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"
CHUNK = 2000


def read(path: Path, n: int, threshold: float, skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Incident energies (n,) and thresholded voxels (n, voxels) of a file's showers ``skip`` to ``skip + n - 1``."""
    energies, voxels = open_showers(path).read(slice(skip, skip + n))
    if len(energies) < n:
        raise SystemExit(f"{path}: {len(energies)} showers from shower {skip} on, {n} wanted")
    voxels = np.asarray(voxels, dtype=np.float32)
    voxels[voxels < threshold] = 0
    return np.asarray(energies, dtype=np.float64).reshape(-1), voxels


def high_level(geometry, energies: np.ndarray, voxels: np.ndarray, threshold: float) -> np.ndarray:
    chunks = ((energies[a:a + CHUNK], voxels[a:a + CHUNK]) for a in range(0, len(energies), CHUNK))
    return compute_features(geometry, chunks, threshold).high_level_vector()


def region(voxels: np.ndarray, shape: tuple[int, int, int], spec: str) -> np.ndarray:
    kind, begin, end = spec.split(":")
    image = voxels.reshape(len(voxels), *shape)
    part = {"L": lambda: image[:, int(begin):int(end)],
            "R": lambda: image[:, :, :, int(begin):int(end)],
            "Lsum": lambda: image[:, int(begin):int(end)].sum(2)}[kind]()
    return np.ascontiguousarray(part.reshape(len(voxels), -1))


def tree_auc(reference: np.ndarray, generated: np.ndarray) -> float:
    inputs = np.concatenate([reference, generated])
    labels = np.repeat([1.0, 0.0], [len(reference), len(generated)])
    scores = cross_val_predict(HistGradientBoostingClassifier(max_iter=200), inputs, labels, cv=5,
                               method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def tree_features(energies: np.ndarray, voxels: np.ndarray, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Per layer 5-14: the largest voxel's share of the layer, the sorted wedge shares at r = 0, the radial shares."""
    image = voxels.reshape(len(voxels), *shape)[:, 5:15]
    layers = np.maximum(image.sum((2, 3)), 1e-9)
    core = image[:, :, :, 0]
    log_e = np.log10(energies)[:, None]
    return {
        "largest voxel share": np.hstack([log_e, image.reshape(*image.shape[:2], -1).max(2) / layers]),
        "sorted wedge shares at r=0": np.hstack([log_e, (-np.sort(-core, axis=2) / np.maximum(
            core.sum(2, keepdims=True), 1e-9)).reshape(len(voxels), -1)]),
        "radial shares": np.hstack([log_e, (image.sum(2) / layers[..., None]).reshape(len(voxels), -1)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("samples", nargs="+", type=Path, help="generated files, or a Geant4 file for the floor")
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--geometry", default="par04")
    parser.add_argument("--n", type=int, default=4000, help="showers a side")
    parser.add_argument("--skip", type=int, default=0, help="start at this shower in every file")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--regions", default="", help="comma-separated L:a:b, R:a:b, Lsum:a:b")
    parser.add_argument("--trees", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    geometry = load_geometry(args.geometry)
    threshold = readout_threshold(geometry)
    settings = replace(PROTOCOL, dtype="float32", name="protocol-float32")
    ref_e, ref_x = read(args.reference, args.n, threshold, args.skip)
    ref_high = high_level(geometry, ref_e, ref_x, threshold)
    for path in args.samples:
        gen_e, gen_x = read(path, args.n, threshold, args.skip)
        rows = []
        tests = [("cls-low", gen_x, ref_x, geometry), ("cls-high", None, None, geometry)]
        for spec in filter(None, args.regions.split(",")):
            gen_part, ref_part = region(gen_x, geometry.shape, spec), region(ref_x, geometry.shape, spec)
            part_geometry = SimpleNamespace(n_voxels=gen_part.shape[1], n_layers=1,
                                            voxel_layer=np.zeros(gen_part.shape[1], dtype=np.int64))
            tests.append((f"cls-low {spec}", gen_part, ref_part, part_geometry))
        for name, gen_v, ref_v, test_geometry in tests:
            if name == "cls-high":
                data = LabelledSamples.join((gen_e, None, high_level(geometry, gen_e, gen_x, threshold)),
                                            (ref_e, None, ref_high))
            else:
                data = LabelledSamples.join((gen_e, gen_v, None), (ref_e, ref_v, None))
            summary, runs = classifier_test(name.split()[0], data, test_geometry, settings, args.repeats, args.seed)
            spread = f" (runs {', '.join(f'{r.auc:.3f}' for r in runs)})" if args.repeats > 1 else ""
            rows.append(f"| {name} | {summary['auc']:.3f} +- {summary['auc_err']:.3f}{spread} |")
        if args.trees:
            gen_t, ref_t = tree_features(gen_e, gen_x, geometry.shape), tree_features(ref_e, ref_x, geometry.shape)
            rows += [f"| trees: {name} | {tree_auc(ref_t[name], gen_t[name]):.3f} |" for name in gen_t]
        showers = f"showers {args.skip}-{args.skip + args.n - 1}" if args.skip else f"{args.n} a side"
        print(f"\n{path} against {args.reference.name}, {showers}\n\n| classifier | AUC |\n|---|---|")
        print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
