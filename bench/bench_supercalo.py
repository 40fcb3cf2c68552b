"""SuperCalo's generation speed: the full chain vs up-sampling given coarse showers, in ms per shower.

Times ``model.sample`` (coarse model, fine-layer split, up-sampling) and ``model.upsample`` of given coarse showers
(Geant4 reference showers coarse-grained) with caloforge's timing: one warm-up, ``--repeats`` timed calls, median.
A batch whose single call would run past ``--budget`` seconds (judged from the previous batch size) is not run but
extrapolated linearly and marked ``est.``. The last table gives the speed-up of up-sampling given coarse showers
over the full chain at each batch size, and both are compared with Geant4's CPU time recorded in the reference file.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_supercalo.py src/caloforge/checkpoints/par04-supercalo.pt --threads 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from caloforge.data import open_showers
from caloforge.sampling.timing import format_table, geant4_seconds_per_shower, machine_description, time_model
from caloforge.train import load_model

REFERENCE = "../shared/data/par04/par04_e_1-100GeV_reference.h5"


class GivenCoarse(nn.Module):
    """``sample`` up-samples the first n of a pool of coarse showers (with their own incident energies), so that
    caloforge's timing measures up-sampling alone."""

    def __init__(self, chain: nn.Module, energies: Tensor, coarse: Tensor):
        super().__init__()
        self.chain, self.energies, self.coarse = chain, energies, coarse

    def sample(self, energies: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n = len(energies)
        return self.chain.upsample(self.energies[:n], self.coarse[:n], generator)


def coarse_pool(chain: nn.Module, path: str, n: int) -> tuple[Tensor, Tensor]:
    """n (incident energies, coarse showers) from a fine file, coarse-grained; the file is cycled if shorter."""
    handle = open_showers(path, chain.voxelisation.fine)
    energies, showers = handle.read(torch.arange(n).remainder(handle.n).numpy())
    return torch.from_numpy(energies), chain.voxelisation.coarsen(torch.from_numpy(showers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chain", type=Path, help="a SuperCalo chain checkpoint")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 100, 10_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=600.0, help="Seconds one batch size may take in all.")
    parser.add_argument("--reference", default=REFERENCE, help="fine showers whose coarse-graining is up-sampled")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write every point as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    chain, checkpoint = load_model(args.chain)
    options = checkpoint.header.get("sample_defaults", {})
    given = GivenCoarse(chain, *coarse_pool(chain, args.reference, max(args.batches)))
    device = torch.device("cpu")
    geant4_s = geant4_seconds_per_shower(args.reference)
    points = time_model(chain, f"supercalo:{args.chain.stem}", options, device, args.batches, args.repeats,
                        args.budget, geant4_s=geant4_s)
    points += time_model(given, "supercalo:upsample-only", {}, device, args.batches, args.repeats, args.budget,
                         geant4_s=geant4_s)
    print(f"machine: {machine_description()}")
    print(format_table(points))
    full = {p.batch_size: p for p in points if p.model != "supercalo:upsample-only"}
    for p in points:
        if p.model == "supercalo:upsample-only":
            note = "" if p.measured and full[p.batch_size].measured else " (est.)"
            print(f"batch {p.batch_size}: up-sampling given coarse showers is "
                  f"{full[p.batch_size].ms_per_shower / p.ms_per_shower:.2f}x faster than the full chain{note}")
    if args.json:
        args.json.write_text(json.dumps([p.to_dict() for p in points], indent=1))


if __name__ == "__main__":
    main()
