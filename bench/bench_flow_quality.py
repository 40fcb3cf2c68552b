"""Quality of the flow families against the Par04 reference: classifier AUCs and the CaloMan talk's six features.

For each checkpoint: one shower per incident energy of the reference (in order, seeded), then ``caloforge
evaluate`` against it (the classifiers ``--quick`` unless ``--protocol``), and one table: AUC low / low-normed /
high and the separation powers of the six features the CaloMan talk reports, each beside the talk's value (the
bar: every one below it), and the same six for a second Geant4 sample (the training file's first
showers) vs the reference: the noise floor of the comparison.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_flow_quality.py src/caloforge/checkpoints/par04-coarse-caloman.pt \
        src/caloforge/checkpoints/par04-coarse-caloflow-student.pt --out runs/flow-quality
"""

from __future__ import annotations

import argparse
from pathlib import Path

from caloforge.contract import load_checkpoint
from caloforge.data import open_showers, write_showers
from caloforge.evaluate import evaluate
from caloforge.sampling import generate
from caloforge.train import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"
#: the CaloMan talk's separation powers (latent dimension 20), in the order it lists them
TALK = {"E_tot/E_inc": 0.0483, "E_layer": 0.023, "EC_eta": 0.0323, "EC_phi": 0.0227, "width_eta": 0.1043,
        "width_phi": 0.09277}
CLASSIFIERS = ("cls-low", "cls-low-normed", "cls-high")


def six_features(metrics: dict) -> dict[str, float]:
    """The talk's six separation powers; per-layer ones as the mean over layers, as the talk averages them."""
    table = metrics["histograms"]["separation_power"]
    return {name: table[name] if isinstance(table[name], float) else table[name]["mean"] for name in TALK}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--reference", type=Path, help="default: the Par04 reference split in the first "
                        "checkpoint's geometry (par04 or par04-coarse)")
    parser.add_argument("--train-file", type=Path, help="Geant4 showers for the noise floor (its first as many as "
                        "the reference holds); default: the Par04 training split in the same geometry")
    parser.add_argument("--protocol", action="store_true", help="The CaloChallenge classifier (14 min per "
                        "training on 359 voxels on one CPU thread) instead of the quick one.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/flow-quality"))
    args = parser.parse_args()
    geometry_name = load_checkpoint(args.checkpoints[0]).header["geometry"]["name"]
    args.reference = args.reference or DATA / f"{geometry_name}_e_1-100GeV_reference.h5"
    args.train_file = args.train_file or DATA / f"{geometry_name}_e_1-100GeV_train.h5"

    reference = open_showers(args.reference)
    energies = reference.energies()
    rows = {}
    for path in args.checkpoints:  # all of the reference's geometry
        model, checkpoint = load_model(path)
        folder = args.out / path.stem
        generated = generate(model, checkpoint.geometry, energies, folder / "generated.h5", seed=args.seed,
                             options=checkpoint.header.get("sample_defaults", {}), progress=False)
        rows[path.stem] = evaluate(generated, args.reference, checkpoint.geometry,
                                   metrics=("hist",) + CLASSIFIERS, out_dir=folder, quick=not args.protocol,
                                   seed=args.seed)
    floor_file = write_showers(args.out / "geant4.h5", *open_showers(args.train_file).read(slice(0, reference.n)))
    floor = six_features(evaluate(floor_file, args.reference, checkpoint.geometry, metrics=("hist",),
                                  out_dir=args.out / "geant4", seed=args.seed))

    kind = "protocol" if args.protocol else "quick (not the protocol)"
    print(f"{reference.n} generated vs {reference.n} reference showers ({args.reference.name}); classifiers: {kind}")
    print("| model | " + " | ".join(f"AUC {c[4:]}" for c in CLASSIFIERS) + " | "
          + " | ".join(f"S({name})" for name in TALK) + " | mean |")
    print("|---|" + "---|" * (len(CLASSIFIERS) + len(TALK) + 1))
    for name, metrics in rows.items():
        aucs = [metrics["classifiers"][c]["auc"] for c in CLASSIFIERS]
        six = six_features(metrics)
        cells = [f"{six[f]:.4f}{'' if six[f] < TALK[f] else ' (over)'}" for f in TALK]
        print(f"| {name} | " + " | ".join(f"{a:.3f}" for a in aucs) + " | " + " | ".join(cells)
              + f" | {sum(six.values()) / len(six):.4f} |")
    print("| CaloMan talk (bar) | | | | " + " | ".join(f"{v:.4f}" for v in TALK.values())
          + f" | {sum(TALK.values()) / len(TALK):.4f} |")
    print("| Geant4 vs Geant4 (floor) | | | | " + " | ".join(f"{floor[f]:.4f}" for f in TALK)
          + f" | {sum(floor.values()) / len(floor):.4f} |")


if __name__ == "__main__":
    main()
