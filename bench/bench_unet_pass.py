"""What one pass of CaloDiffusion's cylindrical U-Net costs on this CPU, on the full Par04 mesh and on smaller grids.

Issue #18 asks for a few-step student of at most 16 ms a shower at batch 100 on two threads, so at most 4 ms a pass
for 4 passes. This times ``UNet.forward`` (inference mode, batch ``--batch``, median of ``--repeats`` after a warm-up)
for each (grid, channels) pair: the full 45 x 16 x 9 mesh at the shipped config's widths, and the latent grids a
mesh autoencoder would give (say (15, 8, 3) with C channels), where the diffusion would run instead.

    .venv/bin/python bench/bench_unet_pass.py --threads 2 \
        --case 45x16x9:1:16,16,16,32 --case 15x8x3:8:32,32,64 --case 15x8x3:8:64,64,128
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from caloforge.models.diffusion.unet import UNet


def ms_per_shower(grid: tuple[int, ...], in_channels: int, channels: list[int], batch: int, repeats: int) -> float:
    network = UNet(in_channels, channels, conditions=46).eval()  # E_inc and the 45 layer energies, as with layers
    x = torch.randn(batch, in_channels, *grid)
    condition, noise_level = torch.rand(batch, 46), torch.rand(batch)
    times = []
    with torch.inference_mode():
        network(x, condition, noise_level)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            network(x, condition, noise_level)
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", required=True,
                        help="GRID:IN_CHANNELS:WIDTHS, e.g. 15x8x3:8:32,32,64")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, {args.threads} threads, median of {args.repeats}")
    print("| grid | in channels | widths | parameters | ms a shower a pass |\n|---|---|---|---|---|")
    for case in args.case:
        grid_text, in_text, widths_text = case.split(":")
        grid = tuple(int(n) for n in grid_text.split("x"))
        widths = [int(n) for n in widths_text.split(",")]
        parameters = sum(p.numel() for p in UNet(int(in_text), widths, conditions=46).parameters())
        ms = ms_per_shower(grid, int(in_text), widths, args.batch, args.repeats)
        print(f"| {grid_text} | {in_text} | {widths_text} | {parameters:,} | {ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
