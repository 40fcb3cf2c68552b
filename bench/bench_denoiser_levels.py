"""Where a CaloDiffusion checkpoint's denoiser goes wrong: one denoising step of noised Geant4 showers, by noise level.

A sampler is a chain of denoiser calls, so the faint hits a model generates (issue #18: 43-49 % of its hits under
1 MeV, Geant4's 2.5 %) start as single-step errors somewhere on the noise scale. In the preprocessed variables
(standardised logit of voxel / (2 E_inc)) an empty voxel sits at one point and the readout threshold (15 keV) 0.7-1.2
above it, by E_inc; both cuts used below are computed per shower. For the first ``--n`` reference showers, conditioned on their own layer energies,
this noises x0 to each ``--sigma``, denoises once and prints: the share of empty voxels sent over the threshold (into
hits) and under 1 MeV (faint hits), the share of hits sent under the threshold, and the RMS error of the estimate on
empty voxels and on hits (to compare with sigma, the error of returning x unchanged).

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_denoiser_levels.py src/caloforge/checkpoints/par04-calodiffusion.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from caloforge.data import open_showers
from caloforge.data.transforms import Threshold
from caloforge.train import load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"
FAINT_MEV = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--reference", type=Path, default=DATA / "par04_e_1-100GeV_reference.h5")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--sigma", type=float, action="append", default=[], help="noise levels (repeat the flag)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, _ = load_model(args.checkpoint)
    energies, showers = (torch.from_numpy(a).float() for a in open_showers(args.reference).read(slice(0, args.n)))
    energies = energies.reshape(-1)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.inference_mode():
        x0 = model.preprocessing.forward(showers, energies)
        condition = model.shower_condition(energies, model.training_layers(showers))
        empty = x0 <= model.x0_low + 1e-4
        cut = next(step.cut for step in model.preprocessing.steps if isinstance(step, Threshold))
        threshold, faint = (model.preprocessing.forward(torch.full_like(showers, mev), energies) for mev in (cut, FAINT_MEV))
        print("sigma  empty->hit  empty->faint  hit->empty  RMS error empty / hits")
        for sigma in args.sigma or [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]:
            noisy = x0 + sigma * torch.randn(x0.shape, generator=generator)
            estimate = model.denoise(noisy, torch.tensor(sigma), condition)
            hit = estimate >= threshold
            error = estimate - x0
            print(f"{sigma:5.2f}  {hit[empty].float().mean():10.4f}  {(hit & (estimate < faint))[empty].float().mean():12.4f}  "
                  f"{(~hit)[~empty].float().mean():10.4f}  "
                  f"{error[empty].square().mean().sqrt():8.3f} / {error[~empty].square().mean().sqrt():.3f}")


if __name__ == "__main__":
    main()
