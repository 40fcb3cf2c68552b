"""Budgeted pilot: which full-resolution design buys the most quality per CPU-hour on Par04 (issue #17).

Every candidate trains through caloforge's one trainer on the Par04 training file for the same CPU budget
(``train.cpu_minutes``: process CPU time, so a busy machine slows a run without changing its budget) and keeps its
averaged weights every epoch (``train.snapshot_every``). A candidate of two stages (CaloMan: autoencoder, then the
flows on its frozen latent) splits the budget between them. A run folder already past its budget is not trained
again, so the long run of a design can serve as its pilot (``--reuse flowmatch=runs/flowmatch-par04``).

Then every snapshot is scored with one yardstick: one shower per incident energy of the first ``--n`` reference
showers, ``caloforge evaluate`` (classifier AUCs low and high, each with its Geant4-against-Geant4 floor at the same n,
by the demo's classifier, whose batches of 100 give it enough steps at a few thousand showers; separation powers of
all high-level features; FPD and KPD). Out: ``pilot.md`` (the table),
``pilot.json`` (every number) and ``pilot.png`` (AUC against CPU-minutes).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_pilot.py --budget 20 --out runs/pilot
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_pilot.py --candidates flowmatch --budget 190 --points 4 \
        --out runs/pilot-long --reuse flowmatch=runs/flowmatch-par04 --also runs/pilot/pilot.json
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from caloforge.data import open_showers, write_showers
from caloforge.demo import DEMO_CLASSIFIER
from caloforge.evaluate import evaluate
from caloforge.sampling import generate
from caloforge.train import load_checkpoint, load_model, load_run_config, train

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "par04"
CLASSIFIERS = ("cls-low", "cls-high")


@dataclass(frozen=True)
class Stage:
    """One training run of a candidate: its config, its share of the budget and its ``--set`` overrides
    (``{previous}`` stands for the previous stage's run folder)."""

    config: str
    share: float = 1.0
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    stages: tuple[Stage, ...]
    #: sampling options for scoring (default: the checkpoint's own)
    sample: dict = field(default_factory=dict)


CANDIDATES = {
    # (b) energy first, one layer-shared shape network by conditional flow matching; one logit share per voxel
    "flowmatch": Candidate((Stage("configs/flowmatch-par04.yaml"),)),
    # (b) with the voxels as analog bits instead
    "flowmatch-hits": Candidate((Stage("configs/flowmatch-par04.yaml", 1.0, ("model.voxels=hits",)),)),
    # (c) today's par04 CaloMan recipe, its two stages in the ratio of their recipe's CPU time
    "caloman": Candidate((Stage("configs/caloman-autoencoder-par04.yaml", 0.7),
                          Stage("configs/caloman-par04.yaml", 0.3, ("train.init_from={previous}/model.pt",)))),
    # (a) CaloDiffusion's cylindrical U-Net with the layer-energy flow (showers rescaled to its layer energies);
    # scored with DPM-Solver++ 10 steps: 400 DDPM steps of 2000 showers would take hours on a CPU
    "calodiffusion-layers": Candidate((Stage("configs/calodiffusion-par04.yaml", 1.0,
                                             ("model.layer_energy=true", "model.layer_hidden=[256,256]",
                                              "train.schedule=cosine", "train.patience=0")),),
                                      sample={"sampler": "dpmpp", "steps": 10}),
    # (a') the same U-Net on (3, 2, 3) patches of voxels as channels (issue #18), scored with its checkpoint's
    # DPM-Solver++ 20
    "calodiffusion-patches": Candidate((Stage("configs/calodiffusion-patches-par04.yaml"),)),
}


def train_candidate(name: str, candidate: Candidate, budget: float, folder: Path) -> Path:
    """Train every stage of ``candidate`` within its share of ``budget`` CPU-minutes; the last stage's folder."""
    previous = None
    for index, stage in enumerate(candidate.stages):
        run_dir = folder if len(candidate.stages) == 1 else folder / f"stage-{index}"
        overrides = [item.format(previous=previous) for item in stage.overrides]
        previous, minutes = run_dir, stage.share * budget
        if (run_dir / "last.pt").exists() and spent_minutes(run_dir) >= minutes:
            continue  # never touch a finished run (it may be a long run still writing)
        overrides += [f"train.cpu_minutes={minutes}", "train.snapshot_every=1", "train.epochs=100000"]
        print(f"{name}: training {stage.config} for {minutes:.1f} CPU-minutes into {run_dir}")
        train(load_run_config(ROOT / stage.config, overrides), run_dir, resume=True)
    return previous


def snapshots(run_dir: Path, budget: float, offset_minutes: float, points: int) -> list[tuple[float, Path]]:
    """(CPU-minutes spent when it was saved, path) of the snapshots closest to ``points`` equal fractions of the
    budget, oldest first; the first snapshot past the budget is the budget's end (its epoch crossed it)."""
    found = sorted((offset_minutes + load_checkpoint(path).header.get("cpu_seconds", 0.0) / 60, path)
                   for path in run_dir.glob("epoch-*.pt"))
    within = [item for item in found if item[0] <= budget] + [item for item in found if item[0] > budget][:1]
    return sorted({min(within, key=lambda item: abs(item[0] - budget * (i + 1) / points)) for i in range(points)})


def spent_minutes(run_dir: Path) -> float:
    return load_checkpoint(run_dir / "last.pt").header.get("cpu_seconds", 0.0) / 60


def score(path: Path, sample: dict, reference: Path, floor: Path, n: int, out: Path, seed: int) -> dict:
    """The yardstick: AUCs (with their floors), separation powers, FPD and KPD of ``n`` generated showers."""
    model, checkpoint = load_model(path)
    energies = open_showers(reference).read(slice(0, n))[0]
    options = {**checkpoint.header.get("sample_defaults", {}), **sample}
    generated = generate(model, checkpoint.geometry, energies, out / "generated.h5", seed=seed, options=options,
                         progress=False)
    metrics = evaluate(generated, reference, checkpoint.geometry, metrics=("hist", *CLASSIFIERS, "fpd", "kpd"),
                       out_dir=out, classifier=DEMO_CLASSIFIER, seed=seed, floor_reference=floor)
    powers = metrics["histograms"]["separation_power"]
    means = [value if isinstance(value, float) else value["mean"] for value in powers.values()]
    row = {"separation_mean": sum(means) / len(means), "fpd": metrics["fpd"]["value"],
           "kpd": metrics["kpd"]["value"]}
    for classifier in CLASSIFIERS:
        entry = metrics["classifiers"][classifier]
        row[classifier] = entry["auc"]
        row[f"{classifier}-floor"] = entry.get("floor_auc")
    return row


def first_showers(source: Path, n: int, out: Path) -> Path:
    """The first ``n`` showers of ``source`` in a file of their own (the yardstick's Geant4 samples)."""
    return out if out.exists() else write_showers(out, *open_showers(source).read(slice(0, n)))


def plot(rows: list[dict], path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, classifier in zip(axes, CLASSIFIERS):
        for name in dict.fromkeys(row["candidate"] for row in rows):
            mine = [row for row in rows if row["candidate"] == name]
            axis.plot([row["cpu_minutes"] for row in mine], [row[classifier] for row in mine], "o-", label=name)
        floors = [row[f"{classifier}-floor"] for row in rows if row[f"{classifier}-floor"] is not None]
        if floors:
            axis.axhline(sum(floors) / len(floors), color="grey", linestyle="--", label="Geant4 vs Geant4")
        axis.set(xlabel="training CPU-minutes", title=f"AUC {classifier}", ylim=(0.45, 1.02))
    axes[0].set_ylabel("AUC")
    axes[1].legend(loc="center right")
    figure.suptitle(f"classifier: {DEMO_CLASSIFIER.name}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def markdown_table(rows: list[dict]) -> str:
    header = ["candidate", "CPU-min", "AUC low", "floor", "AUC high", "floor", "mean sep. power", "FPD", "KPD"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["candidate"], f"{row['cpu_minutes']:.1f}"]
        for classifier in CLASSIFIERS:
            cells += [f"{row[classifier]:.3f}", "" if row[f"{classifier}-floor"] is None
                      else f"{row[f'{classifier}-floor']:.3f}"]
        cells += [f"{row['separation_mean']:.4f}", f"{row['fpd']:.4g}", f"{row['kpd']:.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=30.0, help="CPU-minutes of training per candidate")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--reuse", nargs="*", default=[], metavar="NAME=RUN_DIR",
                        help="score an existing run folder as this candidate's run (trained on if under budget)")
    parser.add_argument("--points", type=int, default=3, help="snapshots scored per candidate")
    parser.add_argument("--n", type=int, default=2000, help="showers a side in the yardstick")
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--train-file", type=Path, default=DATA / "par04_e_1-100GeV_train.h5",
                        help="Geant4 showers for the floors (its first n)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/pilot"))
    parser.add_argument("--score", nargs="*", type=Path, default=[], metavar="CHECKPOINT",
                        help="score these checkpoints instead of training candidates (each with every --sampler)")
    parser.add_argument("--sampler", action="append", default=[], metavar="NAME:STEPS",
                        help="with --score: sampler and steps (default: the checkpoint's own)")
    parser.add_argument("--also", nargs="*", type=Path, default=[], metavar="PILOT_JSON",
                        help="rows of earlier pilots (same yardstick) to tabulate and draw beside these")
    args = parser.parse_args()

    reused = dict(item.split("=", 1) for item in args.reuse)
    args.out.mkdir(parents=True, exist_ok=True)
    reference = first_showers(args.reference, args.n, args.out / f"reference-{args.n}.h5")
    floor = first_showers(args.train_file, args.n, args.out / f"geant4-{args.n}.h5")
    rows = [row for path in args.also for row in json.loads(path.read_text())]
    for path in args.score:
        minutes = load_checkpoint(path).header.get("cpu_seconds", 0.0) / 60
        for spec in args.sampler or [""]:
            name, _, steps = spec.partition(":")
            sample = {"sampler": name, "steps": int(steps)} if spec else {}
            print(f"scoring {path} {spec or '(its own sampler)'}")
            folder = args.out / path.stem / (spec.replace(":", "-") or "own")
            row = score(path, sample, reference, floor, args.n, folder, args.seed)
            rows.append({"candidate": f"{path.stem} {spec}".strip(), "snapshot": str(path),
                         "cpu_minutes": round(minutes, 1), **row})
            (args.out / "pilot.json").write_text(json.dumps(rows, indent=1))
    for name in [] if args.score else args.candidates:
        candidate = CANDIDATES[name]
        folder = Path(reused.get(name, args.out / name))
        last = train_candidate(name, candidate, args.budget, folder)
        earlier = sum(spent_minutes(folder / f"stage-{i}") for i in range(len(candidate.stages) - 1))
        for minutes, path in snapshots(last, args.budget, earlier, args.points):
            print(f"{name}: scoring {path} ({minutes:.1f} CPU-minutes)")
            row = score(path, candidate.sample, reference, floor, args.n, args.out / name / path.stem, args.seed)
            rows.append({"candidate": name, "snapshot": str(path), "cpu_minutes": round(minutes, 1), **row})
            (args.out / "pilot.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.out / "pilot.png")
    table = markdown_table(rows)
    (args.out / "pilot.md").write_text(
        f"{args.n} generated vs {args.n} reference showers; classifiers: {DEMO_CLASSIFIER.name}; "
        f"{os.environ.get('OMP_NUM_THREADS', 'all')} thread(s)\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
