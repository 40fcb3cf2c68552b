"""Where a CaloMan loses its showers: the decoder alone, the decoder with the latent flow, the whole model.

Each part is given Geant4's answer for the parts before it, at the incident energies of Geant4 showers (the first
``--n`` of the training file), and scored with the pilot's yardstick against the first ``--n`` reference showers:

- ``reconstruction``: the autoencoder's own latent point of each Geant4 shower and its layer energies; only the
  decoder and the hit draws are the model's (an autoencoder-stage checkpoint has no more; a shipped file has no
  encoder and skips this row: ``configs/caloman-encoder-par04.yaml`` learns one back);
- ``given-layers``: a latent point from the latent flow, given the Geant4 layer energies (flow stage);
- ``model``: everything drawn by the model, as ``caloforge generate`` does (flow stage).

    OMP_NUM_THREADS=1 python bench/bench_caloman_decoding.py runs/caloman-par04/model.pt --out runs/decoding
    python bench/bench_feature_groups.py runs/decoding/reference-2000.h5 runs/decoding/*/generated.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench_pilot import CLASSIFIERS, DATA, first_showers
from caloforge.data import open_showers, write_showers
from caloforge.demo import DEMO_CLASSIFIER
from caloforge.evaluate import evaluate
from caloforge.models.flows import shower_condition
from caloforge.train import load_model

PARTS = ("reconstruction", "given-layers", "model")


def decode(model, energies: torch.Tensor, showers: torch.Tensor, part: str, generator: torch.Generator):
    """(N, voxels) showers of ``part`` for Geant4 ``showers`` at ``energies`` (MeV)."""
    coding = model.coding
    clean = coding.cut(showers)
    layers = coding.noisy_layer_energies(showers)
    if part == "model":
        layers = model.sample_layers(energies, generator)
    context = shower_condition(energies, layers)
    if part == "reconstruction":
        z = model.autoencoder.encode(coding.encode(clean, coding.layer_energies(clean)), context)
    else:
        z = model.latent_flow.sample(context, generator)
    return model.drawn_showers(*model.autoencoder.decode(z, context), layers, energies, generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--train-file", type=Path, default=DATA / "par04_e_1-100GeV_train.h5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/decoding"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model, checkpoint = load_model(args.checkpoint)
    reference = first_showers(args.reference, args.n, args.out / f"reference-{args.n}.h5")
    geant4 = first_showers(args.train_file, args.n, args.out / f"geant4-{args.n}.h5")
    energies, showers = (torch.as_tensor(a).float() for a in open_showers(geant4).read(slice(0, args.n)))
    energies = energies.reshape(-1)
    parts = PARTS if hasattr(model, "latent_flow") else PARTS[:1]
    if not any(name.startswith("autoencoder.encoder.") for name in checkpoint.model):
        # a shipped flow-stage file leaves its encoder out: the model would encode with untrained weights
        print(f"{args.checkpoint} holds no encoder: no reconstruction row (learn one back with "
              "configs/caloman-encoder-par04.yaml)")
        parts = tuple(part for part in parts if part != "reconstruction")
    print("| part | AUC low | floor | AUC high | floor |\n|---|---|---|---|---|")
    for part in parts:
        with torch.no_grad():
            generated = decode(model, energies, showers, part, torch.Generator().manual_seed(args.seed))
        folder = args.out / part
        path = write_showers(folder / "generated.h5", energies.numpy()[:, None], generated.numpy())
        metrics = evaluate(path, reference, checkpoint.geometry, metrics=("hist", *CLASSIFIERS), out_dir=folder,
                           classifier=DEMO_CLASSIFIER, seed=args.seed, floor_reference=geant4)
        cells = [f"{metrics['classifiers'][c][key]:.3f}" for c in CLASSIFIERS for key in ("auc", "floor_auc")]
        print(f"| {part} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
