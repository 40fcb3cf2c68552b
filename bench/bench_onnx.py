"""A shipped student's ONNX graph against PyTorch: the same seeded inputs through both, and ONNX Runtime's speed.

Exports the checkpoint's few-step sampling chain (``caloforge export --onnx``), feeds both the graph and the PyTorch
chain the same draws at ``--batch`` showers (not the traced batch size), and prints how far they differ (voxels in
MeV; a voxel at the readout threshold may fall on either side of it in float32) and ONNX Runtime's ms a shower.

    .venv/bin/python bench/bench_onnx.py src/caloforge/checkpoints/par04-calodiffusion-student.pt --out runs/onnx
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from caloforge.export import SamplingChain, example_inputs, export_onnx
from caloforge.train import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/onnx"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    student, checkpoint = load_model(args.checkpoint)
    steps = checkpoint.header["sample_defaults"]["steps"]
    path = export_onnx(student, checkpoint.geometry, args.out / f"{args.checkpoint.stem}.onnx", steps)
    chain = SamplingChain(student.eval(), checkpoint.geometry)
    inputs = example_inputs(chain, steps, batch=args.batch, seed=1)
    with torch.inference_mode():
        expected = chain(*inputs).numpy()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {node.name: x.numpy() for node, x in zip(session.get_inputs(), inputs)}
    times = []
    for _ in range(args.repeats + 1):  # the first run warms up
        start = time.perf_counter()
        got = session.run(None, feed)[0]
        times.append(time.perf_counter() - start)
    difference = np.abs(got - expected)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB), {steps} steps, batch {args.batch}")
    print(f"max |ONNX - PyTorch| {difference.max():.4g} MeV; voxels within 0.05 MeV: {np.mean(difference <= 0.05):.6f}; "
          f"energy per shower {got.sum(1).mean():.1f} vs {expected.sum(1).mean():.1f} MeV")
    large = expected > 10
    median, p99 = np.percentile(difference[large] / expected[large], [50, 99])
    layers = checkpoint.geometry.layer_energies
    print(f"voxels over 10 MeV: relative difference median {median:.2e}, 99th percentile {p99:.3f}; hit in one and "
          f"empty in the other: {np.mean((got > 0) != (expected > 0)):.4f} of voxels; largest layer-energy difference "
          f"{np.abs(layers(got) - layers(expected)).max():.1f} MeV")
    print(f"ONNX Runtime, {args.threads} threads: {1e3 * statistics.median(times[1:]) / args.batch:.2f} ms a shower")


if __name__ == "__main__":
    main()
