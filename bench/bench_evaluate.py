"""Benchmark of ``caloforge evaluate`` on a ds2-sized sample (CPU).

Part 1 (target: under 60 s on 2 cores, bounded memory): high-level features, histograms with separation powers, FPD
and KPD for N generated showers (default 100,000, ds2 size) against an N-shower reference whose features are cached
(the usual case after the first evaluation; its one-off feature time is reported too). The showers are built by
resampling the 10,000 Par04 reference showers (ds2 mesh, 6,480 voxels) with a little multiplicative noise, chunk by
chunk, so no 2.6 GB file has to be written; reading a real file adds its HDF5 decompression time (reported per
10,000 showers from the Par04 file itself).

Part 2: the protocol classifier (MLP 2048 x 3, float64, batch 1000) on CPU: a few timed training steps and one
evaluation pass, extrapolated to the protocol's 50 epochs on 2 x 60,000 training showers (plus the per-epoch
evaluation of the 2 x 20,000 "test" showers). Extrapolated, not measured end to end.

Usage: .venv/bin/python bench/bench_evaluate.py [--n 100000] [--chunk 10000] [--steps 5] [--torch-threads T]
       [--skip-classifier] [--skip-metrics]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from caloforge.data import open_showers, sample_path  # noqa: E402
from caloforge.data.transforms import THRESHOLDS_MEV  # noqa: E402
from caloforge.evaluate.distances import fpd, kpd  # noqa: E402
from caloforge.evaluate.features import FeatureAccumulator  # noqa: E402
from caloforge.evaluate.histograms import feature_histograms, separation_table  # noqa: E402
from caloforge.geometry import load_geometry  # noqa: E402

PAR04 = ROOT.parent / "shared" / "data" / "par04" / "par04_e_1-100GeV_reference.h5"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def resampled_chunks(energies: np.ndarray, showers: np.ndarray, n: int, chunk: int, seed: int):
    """N showers drawn with replacement from the pool, 2 % multiplicative voxel noise, in chunks."""
    rng = np.random.default_rng(seed)
    for begin in range(0, n, chunk):
        rows = rng.integers(0, len(energies), size=min(chunk, n - begin))
        block = showers[rows]
        block *= rng.normal(1.0, 0.02, size=(len(rows), 1)).astype(np.float32)
        yield energies[rows], block


def features_of(geometry, threshold, energies, showers, n, chunk, seed):
    accumulator = FeatureAccumulator(geometry, threshold)
    for e, s in resampled_chunks(energies, showers, n, chunk, seed):
        accumulator.add(e, s, inplace=True)
    return accumulator.result()


def bench_metrics(args) -> None:
    load_before = os.getloadavg()[0]
    geometry = load_geometry("par04")
    threshold = THRESHOLDS_MEV["par04"]
    path = PAR04 if PAR04.is_file() else sample_path()
    handle = open_showers(path, geometry)
    start = time.perf_counter()
    energies, showers = handle.read_all()
    read_s = time.perf_counter() - start
    print(f"pool: {handle.n} showers from {path.name}; HDF5 read + decompress {read_s:.2f} s "
          f"({read_s / handle.n * 1e4:.2f} s per 10k showers)")

    start = time.perf_counter()
    reference = features_of(geometry, threshold, energies, showers, args.n, args.chunk, seed=1)
    ref_s = time.perf_counter() - start
    print(f"reference features (one-off, then cached): {ref_s:.2f} s")

    timings: dict[str, tuple[float, float]] = {}

    def timed(name, function):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return result

    generated = timed("features (resample + threshold + features)",
                      lambda: features_of(geometry, threshold, energies, showers, args.n, args.chunk, seed=2))
    table = timed("histograms + separation powers",
                  lambda: separation_table(feature_histograms(geometry, reference, generated)))
    ref_high, gen_high = timed("high-level vectors",
                               lambda: (reference.high_level_vector(), generated.high_level_vector()))
    fpd_result = timed("FPD (10 sizes 10k-50k x 20 batches)", lambda: fpd(ref_high, gen_high))
    kpd_result = timed("KPD (10 batches of 10k)", lambda: kpd(ref_high, gen_high))
    wall = sum(t[0] for t in timings.values())
    cpu = sum(t[1] for t in timings.values())
    print(f"\n{args.n} generated showers ({geometry.n_voxels} voxels), reference features cached "
          f"(load average before: {load_before:.1f}):")
    print(f"  {'stage':45s} {'wall':>8s} {'CPU':>8s}")
    for name, (seconds, cpu_seconds) in timings.items():
        print(f"  {name:45s} {seconds:7.2f}s {cpu_seconds:7.2f}s")
    print(f"  {'TOTAL':45s} {wall:7.2f}s {cpu:7.2f}s   (target: wall < 60 s)")
    print(f"  one-off reference features: {ref_s:.1f} s")
    print(f"  peak memory (RSS) {peak_rss_gb():.2f} GB (the 10k-shower pool itself: "
          f"{showers.nbytes / 1024**3:.2f} GB)")
    print(f"  FPD x1e3 = {fpd_result.value * 1e3:.3f} +- {fpd_result.error * 1e3:.3f}; "
          f"KPD x1e3 = {kpd_result.value * 1e3:.4f} +- {kpd_result.error * 1e3:.4f}; "
          f"S(E_tot/E_inc) = {table['E_tot/E_inc']:.2e}")


def bench_classifier(args) -> None:
    import torch

    from caloforge.evaluate.classifier import MLP, PROTOCOL, QUICK

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    n_train, n_test = 120_000, 40_000  # ds2: 2 x 60k train, 2 x 20k "test" evaluated every epoch
    for settings in (PROTOCOL, QUICK):
        dtype = getattr(torch, settings.dtype)
        print(f"\n{settings.name} classifier on CPU ({torch.get_num_threads()} torch threads): width "
              f"{settings.n_hidden}, {settings.n_layer + 1} hidden layers, {settings.dtype}, batch "
              f"{settings.batch_size}, {settings.epochs} epochs, {n_train} training / {n_test} test showers:")
        for name, dim in (("cls-low (d = 6481)", 6481), ("cls-high (d = 362)", 362)):
            model = MLP(dim, settings.n_hidden, settings.n_layer).to(dtype)
            optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
            loss_fn = torch.nn.BCEWithLogitsLoss()
            x = torch.randn(settings.batch_size, dim, dtype=dtype)
            y = (torch.rand(settings.batch_size) > 0.5).to(dtype)

            def step():
                loss = loss_fn(model(x)[:, 0], y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

            step()  # warm-up
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            per_step = (time.perf_counter() - start) / args.steps
            with torch.no_grad():
                start = time.perf_counter()
                model(torch.randn(10_000, dim, dtype=dtype))
                per_eval_shower = (time.perf_counter() - start) / 10_000
            epoch = per_step * n_train / settings.batch_size + per_eval_shower * n_test
            print(f"  {name:20s} {per_step:6.2f} s per training step (measured, {args.steps} steps) -> "
                  f"{epoch / 60:6.1f} min per epoch -> {epoch * settings.epochs / 3600:6.2f} h for "
                  f"{settings.epochs} epochs (EXTRAPOLATED)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="generated (and reference) showers")
    parser.add_argument("--chunk", type=int, default=10_000, help="showers per chunk")
    parser.add_argument("--steps", type=int, default=5, help="timed classifier training steps")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch threads of part 2 (0: torch's default)")
    parser.add_argument("--skip-classifier", action="store_true")
    parser.add_argument("--skip-metrics", action="store_true")
    args = parser.parse_args()
    if not args.skip_metrics:
        bench_metrics(args)
    if not args.skip_classifier:
        bench_classifier(args)


if __name__ == "__main__":
    main()
