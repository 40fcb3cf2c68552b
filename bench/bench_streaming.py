"""Streaming-memory benchmark: peak memory of reading a CaloChallenge file must not grow with the file.

For each size it builds a synthetic Par04 file from real showers (each written shower is a real one rotated by a
random number of angular bins, possibly mirrored in alpha, and scaled with its incident energy: exact symmetries of
the mesh plus a scale, so the file looks like real data and compresses like it). The file is written block by block
with ``ShowerWriter``, so making it is bounded too. It then streams the file through
``open_showers(...).iter_chunks(chunk)``, summing the energy of every layer, and checks those sums against the ones
recorded while writing. Making and streaming each run in a fresh process, so that ``ru_maxrss`` (a high-water mark
for the whole process life) measures that step alone; ``tracemalloc`` adds the peak of Python and numpy allocations
(buffers inside HDF5 are not seen by it, only by the RSS).

Example (the run reported in the Foundation issue):

    .venv/bin/python bench/bench_streaming.py --sizes 30000 300000 --json /tmp/streaming.json

Files go to a temporary folder (``--dir`` to choose it) and are deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from caloforge.data import ShowerWriter, open_showers, sample_path  # noqa: E402
from caloforge.geometry import load_geometry  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_TRAIN = REPO.parent / "shared" / "data" / "par04" / "par04_e_1-100GeV_train.h5"
MB = 1024 * 1024


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MiB); ``ru_maxrss`` is KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """Resident memory now (MiB), where /proc tells it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# --- making the synthetic file ---------------------------------------------------------------------------------------
def perturb(showers: np.ndarray, energies: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rotate each (45, 16, 9) shower by a random number of alpha bins, mirror half of them in alpha, and scale
    shower and incident energy by one log-uniform factor in [0.8, 1.25]."""
    n, (n_layers, n_alpha, n_r) = len(showers), load_geometry("par04").shape
    image = showers.reshape(n, n_layers, n_alpha, n_r)
    shift = rng.integers(0, n_alpha, size=n)[:, None]
    alpha = (np.arange(n_alpha)[None, :] - shift) % n_alpha
    mirror = rng.random(n) < 0.5
    alpha[mirror] = n_alpha - 1 - alpha[mirror]
    moved = np.take_along_axis(image, alpha[:, None, :, None], axis=2).reshape(n, -1)
    scale = np.exp(rng.uniform(np.log(0.8), np.log(1.25), size=n)).astype(np.float32)
    moved *= scale[:, None]  # in place: one block-sized array per block, not three
    return moved, energies * scale


def make_file(path: Path, n_showers: int, source: Path, pool: int, block: int, gzip_level: int, seed: int) -> dict:
    """Write ``n_showers`` perturbed copies of the first ``pool`` source showers; memory is bounded by pool + block."""
    start = time.perf_counter()
    energies_pool, showers_pool = open_showers(source, load_geometry("par04")).read_all(limit=pool)
    rng = np.random.default_rng(seed)
    layer_sums = np.zeros(load_geometry("par04").n_layers)
    attrs = {"geometry": "par04", "synthetic_from": str(source), "seed": seed}
    with ShowerWriter(path, showers_pool.shape[1], attrs=attrs, gzip_level=gzip_level) as writer:
        for begin in range(0, n_showers, block):
            rows = rng.integers(0, len(showers_pool), size=min(block, n_showers - begin))
            showers, energies = perturb(showers_pool[rows], energies_pool[rows], rng)
            writer.append(energies, showers)
            layer_sums += showers.reshape(len(showers), layer_sums.size, -1).sum(axis=(0, 2), dtype=np.float64)
    return {"make_s": time.perf_counter() - start, "make_peak_rss_mb": peak_rss_mb(),
            "file_mb": path.stat().st_size / MB, "expected_layer_sums": layer_sums.tolist()}


# --- streaming it -----------------------------------------------------------------------------------------------------
def stream_file(path: Path, chunk: int, trace: bool) -> dict:
    """Per-layer energy sums of the whole file, read ``chunk`` showers at a time."""
    geometry = load_geometry("par04")
    handle = open_showers(path, geometry)
    baseline = peak_rss_mb()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    layer_sums = np.zeros(geometry.n_layers)
    n_read = 0
    for energies, showers in handle.iter_chunks(chunk):
        layer_sums += geometry.layer_energies(showers).sum(axis=0, dtype=np.float64)
        n_read += len(energies)
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] / MB if trace else None
    tracemalloc.stop()
    return {"n_read": n_read, "stream_s": seconds, "showers_per_s": n_read / seconds,
            "raw_mb_per_s": n_read * handle.n_voxels * 4 / MB / seconds, "rss_before_stream_mb": baseline,
            "peak_rss_mb": peak_rss_mb(), "rss_end_mb": current_rss_mb(), "tracemalloc_peak_mb": traced,
            "layer_sums": layer_sums.tolist()}


def run_worker(args: list[str]) -> dict:
    """Run one step of this script in a fresh Python process; it prints its result as one JSON line."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_size(n: int, folder: Path, opts: argparse.Namespace) -> dict:
    path = folder / f"synthetic_par04_{n}.h5"
    made = run_worker(["--worker", "make", "--file", str(path), "--n", str(n), "--source", str(opts.source),
                       "--pool", str(opts.pool), "--block", str(opts.block), "--gzip", str(opts.gzip),
                       "--seed", str(opts.seed)])
    streamed = run_worker(["--worker", "stream", "--file", str(path), "--chunk", str(opts.chunk),
                           *(["--no-tracemalloc"] if opts.no_tracemalloc else [])])
    if not opts.keep:
        path.unlink()
    expected, got = np.array(made.pop("expected_layer_sums")), np.array(streamed.pop("layer_sums"))
    return {"n_showers": n, "raw_gb": n * 6480 * 4 / 1024**3, **made, **streamed,
            "layer_sums_max_rel_diff": float(np.max(np.abs(got - expected) / np.maximum(expected, 1e-30)))}


def print_table(runs: list[dict], chunk: int) -> None:
    header = (f"{'showers':>8} {'raw GB':>7} {'file MB':>8} {'make s':>7} {'make RSS':>9} {'stream s':>9} "
              f"{'shower/s':>9} {'RSS before':>11} {'peak RSS':>9} {'+stream':>8} {'tracemalloc':>12}")
    print(f"streaming with iter_chunks({chunk}); memory in MiB")
    print(header)
    for r in runs:
        traced = "-" if r["tracemalloc_peak_mb"] is None else f"{r['tracemalloc_peak_mb']:.0f}"
        print(f"{r['n_showers']:>8} {r['raw_gb']:>7.2f} {r['file_mb']:>8.0f} {r['make_s']:>7.1f} "
              f"{r['make_peak_rss_mb']:>9.0f} {r['stream_s']:>9.1f} {r['showers_per_s']:>9.0f} "
              f"{r['rss_before_stream_mb']:>11.0f} {r['peak_rss_mb']:>9.0f} "
              f"{r['peak_rss_mb'] - r['rss_before_stream_mb']:>8.0f} {traced:>12}")
    for r in runs:
        print(f"{r['n_showers']} showers: per-layer sums match the written ones to {r['layer_sums_max_rel_diff']:.1e}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 300_000],
                        help="numbers of showers of the synthetic files (default: 30000 300000)")
    parser.add_argument("--chunk", type=int, default=10_000, help="showers per iter_chunks block (default 10000)")
    parser.add_argument("--source", type=Path, default=SHARED_TRAIN if SHARED_TRAIN.is_file() else sample_path(),
                        help="real Par04 showers to perturb (default: the shared 30k training file, else the sample)")
    parser.add_argument("--pool", type=int, default=5000, help="source showers held in memory while making")
    parser.add_argument("--block", type=int, default=5000, help="showers written per ShowerWriter.append")
    parser.add_argument("--gzip", type=int, default=1, help="gzip level of the synthetic files (default 1: fast)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the files (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the synthetic files")
    parser.add_argument("--no-tracemalloc", action="store_true", help="measure RSS only (tracemalloc off)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    # internal: one step in a fresh process
    parser.add_argument("--worker", choices=["make", "stream"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    if opts.worker == "make":
        print(json.dumps(make_file(opts.file, opts.n, opts.source, opts.pool, opts.block, opts.gzip, opts.seed)))
        return
    if opts.worker == "stream":
        print(json.dumps(stream_file(opts.file, opts.chunk, not opts.no_tracemalloc)))
        return
    folder = Path(tempfile.mkdtemp(prefix="caloforge-bench-", dir=opts.dir))
    try:
        runs = [bench_size(n, folder, opts) for n in opts.sizes]
    finally:
        if not opts.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(runs, opts.chunk)
    result = {
        "benchmark": "streaming", "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "chunk": opts.chunk, "source": str(opts.source), "gzip_level": opts.gzip,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "runs": runs,
    }
    if opts.json is not None:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results: {opts.json}")


if __name__ == "__main__":
    main()
