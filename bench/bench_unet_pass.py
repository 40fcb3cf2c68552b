"""What one pass of CaloDiffusion's cylindrical U-Net costs on this CPU, on the full Par04 mesh and on smaller grids.

Issue #18 asks for a few-step student of at most 16 ms a shower at batch 100 on two threads, so at most 4 ms a pass
for 4 passes. This times ``UNet.forward`` (inference mode, batch ``--batch``, median of ``--repeats`` after a warm-up)
for each case: a mesh, the channels a position carries (1 voxel, or the 18 voxels of a (3, 2, 3) patch; the U-Net
also sees the 2 geometry images and returns as many channels) and the widths: the full 45 x 16 x 9 mesh at the
paper's widths, and the 15 x 8 x 3 mesh of patches that ``configs/calodiffusion-patches-par04.yaml`` convolves.

    .venv/bin/python bench/bench_unet_pass.py --threads 2 \
        --case 45x16x9:1:16,16,16,32 --case 15x8x3:18:16,16,32 --case 15x8x3:18:32,32,64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from caloforge.models.diffusion.unet import UNet

IMAGES = 2  # the geometry images (r, z) beside the state


def network(state_channels: int, widths: list[int]) -> UNet:
    """The U-Net of a state of ``state_channels`` a position, conditioned on E_inc and the 45 layer energies."""
    return UNet(state_channels + IMAGES, widths, conditions=46, out_channels=state_channels)


def ms_per_shower(grid: tuple[int, ...], state_channels: int, widths: list[int], batch: int, repeats: int) -> float:
    unet = network(state_channels, widths).eval()
    x = torch.randn(batch, state_channels + IMAGES, *grid)
    condition, noise_level = torch.rand(batch, 46), torch.rand(batch)
    times = []
    with torch.inference_mode():
        unet(x, condition, noise_level)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            unet(x, condition, noise_level)
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", required=True,
                        help="GRID:CHANNELS:WIDTHS, e.g. 15x8x3:18:32,32,64")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, {args.threads} threads, median of {args.repeats}")
    print("| grid | channels a position | widths | parameters | ms a shower a pass |\n|---|---|---|---|---|")
    for case in args.case:
        grid_text, channels_text, widths_text = case.split(":")
        grid = tuple(int(n) for n in grid_text.split("x"))
        widths = [int(n) for n in widths_text.split(",")]
        parameters = sum(p.numel() for p in network(int(channels_text), widths).parameters())
        ms = ms_per_shower(grid, int(channels_text), widths, args.batch, args.repeats)
        print(f"| {grid_text} | {channels_text} | {widths_text} | {parameters:,} | {ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
