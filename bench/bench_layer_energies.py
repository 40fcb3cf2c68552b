"""How well a model's layer-energy model (CaloMan's flow 1: a MAF, its student or a flow matcher) draws the 45 layer
energies alone.

The layer energies carry most of the high-level features (E_layer, E_tot, and whether a faint layer at a shower's
end holds anything at all: the CaloChallenge features take log10(E_layer + 1e-8), so an empty layer lies six
decades under one with a single hit). For the incident energies of the first ``--n`` reference showers, each
checkpoint draws the layer energies (a layer under the readout threshold is empty, as the decoder's hit draw
leaves it), and a gradient-boosted classifier (5-fold, on log10 E_inc, log10(E_layer + 1e-8) and E_tot / E_inc)
tells them from the reference's; the Geant4 row is the training file's first ``--n`` showers, the floor. The
table adds how often the faint layers are empty and the median energy of those that are not. ``--without-gap`` adds
a row for each checkpoint with its fitted gap over the empty layers switched off (``layer_energy.empty_the_gap``).

    OMP_NUM_THREADS=2 python bench/bench_layer_energies.py src/caloforge/checkpoints/par04-caloman.pt \
        src/caloforge/checkpoints/par04-caloman-student.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from caloforge.data import open_showers
from caloforge.train import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"
#: the faint layers at a shower's end whose emptiness the table shows
FAINT_LAYERS = (30, 35, 40, 43)


def geant4_layers(path: Path, n: int, coding) -> tuple[torch.Tensor, torch.Tensor]:
    """Incident energies (n,) and layer energies (n, L) of a file's first ``n`` showers cut at the threshold, read
    in chunks."""
    source, energies, layers = open_showers(path), [], []
    for start in range(0, min(n, source.n), 2000):
        e, x = (torch.as_tensor(a).float() for a in source.read(slice(start, min(n, source.n, start + 2000))))
        energies.append(e.reshape(-1))
        layers.append(coding.layer_energies(coding.cut(x)))
    return torch.cat(energies), torch.cat(layers)


def features(energies: torch.Tensor, layers: torch.Tensor) -> np.ndarray:
    e, layers = energies.double().numpy(), layers.double().numpy()
    return np.concatenate([np.log10(e)[:, None], np.log10(layers + 1e-8), (layers.sum(1) / e)[:, None]], axis=1)


def classifier_auc(reference: np.ndarray, other: np.ndarray, seed: int) -> float:
    inputs = np.concatenate([reference, other])
    labels = np.r_[np.zeros(len(reference)), np.ones(len(other))]
    classifier = HistGradientBoostingClassifier(max_iter=300, random_state=seed)
    scores = cross_val_predict(classifier, inputs, labels, cv=5, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, scores))


def faint_layers(layers: torch.Tensor) -> str:
    """Table cells: the fraction of empty showers in each faint layer, then the median energy of the others."""
    empty = [f"{float((layers[:, i] == 0).float().mean()):.3f}" for i in FAINT_LAYERS]
    median = [f"{float(layers[:, i][layers[:, i] > 0].median()):.2g}" for i in FAINT_LAYERS]
    return " | ".join(empty + median)


def row(name: str, energies: torch.Tensor, layers: torch.Tensor, reference: np.ndarray, seed: int) -> str:
    auc = classifier_auc(reference, features(energies, layers), seed)
    return f"| {name} | {auc:.3f} | {faint_layers(layers)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--train-file", type=Path, default=DATA / "par04_e_1-100GeV_train.h5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--without-gap", action="store_true", help="also draw without the fitted empty-layer gap")
    args = parser.parse_args()
    coding = load_model(args.checkpoints[0])[0].coding
    energies, layers = geant4_layers(args.reference, args.n, coding)
    reference = features(energies, layers)
    print("| sample | AUC | " + " | ".join(f"empty L{i}" for i in FAINT_LAYERS) + " | "
          + " | ".join(f"median L{i} (MeV)" for i in FAINT_LAYERS) + " |")
    print("|---" * (2 + 2 * len(FAINT_LAYERS)) + "|")
    print(f"| Geant4 reference | – | {faint_layers(layers)} |")
    print(row("Geant4 (training file, the floor)", *geant4_layers(args.train_file, args.n, coding), reference,
              args.seed))
    for path in args.checkpoints:
        model = load_model(path)[0].eval()
        gaps = {"": model.layer_flow.gap}
        if args.without_gap and model.layer_flow.gap is not None:
            gaps[" without its gap"] = None
        for label, gap in gaps.items():
            model.layer_flow.gap = gap
            with torch.no_grad():
                drawn = model.sample_layers(energies, torch.Generator().manual_seed(args.seed))
            empty = torch.where(drawn < model.coding.threshold, 0.0, drawn)
            print(row(f"{path}{label}", energies, empty, reference, args.seed), flush=True)


if __name__ == "__main__":
    main()
