"""Generation speed of the flow families: milliseconds per shower of ``model.sample`` at several batch sizes.

Each (model, batch size) cell: one warm-up call, then timed calls until ``--repeats`` are done or ``--max-seconds``
are spent (at least one), reporting the median wall time and, beside it, the median CPU time of the process (all
its threads): on a machine shared with other jobs the wall time grows with their load, the CPU time much less.
Incident energies are log-uniform in 1-100 GeV (seeded). A teacher/student row gives the speed ratio when both
CaloFlow checkpoints are given (the par04-coarse teacher is no longer shipped: train it with
``caloforge train configs/caloflow-teacher-par04-coarse.yaml --out runs/caloflow-teacher-par04-coarse``, or restore
it as configs/caloflow-student-par04-coarse.yaml says).

    .venv/bin/python bench/bench_flows.py runs/caloflow-teacher-par04-coarse/model.pt \
        src/caloforge/checkpoints/par04-coarse-caloflow-student.pt src/caloforge/checkpoints/par04-coarse-caloman.pt --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from caloforge.train import load_model


def time_sample(model: torch.nn.Module, energies: torch.Tensor, repeats: int,
                max_seconds: float) -> tuple[float, float]:
    """Median (wall, CPU) seconds of one ``sample`` call on ``energies``."""
    with torch.no_grad():
        model.sample(energies[:100], generator=torch.Generator().manual_seed(0))
        walls: list[float] = []
        cpus: list[float] = []
        while len(walls) < repeats and (not walls or sum(walls) < max_seconds):
            wall, cpu = time.perf_counter(), time.process_time()
            model.sample(energies, generator=torch.Generator().manual_seed(len(walls)))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 100, 10_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="Time budget of the repeats of one cell.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    energies = torch.from_numpy(np.exp(rng.uniform(np.log(1e3), np.log(1e5), max(args.batches))).astype(np.float32))
    print(f"ms per shower of model.sample, median wall (CPU); {torch.get_num_threads()} thread(s), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| model | " + " | ".join(f"batch {b}" for b in args.batches) + " |")
    print("|---|" + "---|" * len(args.batches))
    rows: dict[str, list[tuple[float, float]]] = {}
    for path in args.checkpoints:
        model, checkpoint = load_model(path)
        family = checkpoint.header["family"]
        rows[family] = [tuple(1e3 * t / b for t in time_sample(model, energies[:b], args.repeats, args.max_seconds))
                        for b in args.batches]
        print(f"| {family} ({path.name}) | " + " | ".join(f"{w:.4g} ({c:.4g})" for w, c in rows[family]) + " |",
              flush=True)
    if "caloflow-teacher" in rows and "caloflow-student" in rows:
        ratios = [(t[0] / s[0], t[1] / s[1]) for t, s in zip(rows["caloflow-teacher"], rows["caloflow-student"])]
        print("| teacher / student | " + " | ".join(f"{w:.1f}x ({c:.1f}x)" for w, c in ratios) + " |")


if __name__ == "__main__":
    main()
