"""Few-step student against its teacher on this CPU: ms per shower at batch 1/100/10000, PyTorch and ONNX Runtime.

The teacher's DDPM-400 costs 400 network calls per shower and is too slow to run at batch 100 here: it is timed
with DDIM over ``--teacher-steps`` calls at the same batch and scaled by 400 / steps (every sampler step is one
network call; the sampler's own arithmetic is negligible beside it), and reported as derived. The student is timed
through ``model.sample`` (PyTorch, inference mode) and through its exported ONNX graph (ONNX Runtime, CPU).

    .venv/bin/python bench/bench_fast.py --teacher T.pt --student S.pt --threads 2 --json bench_fast.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from caloforge.export import SamplingChain, example_inputs, export_onnx
from caloforge.sampling.timing import format_table, machine_description, time_model
from caloforge.train import load_model


def time_onnx(path: Path, chain: SamplingChain, steps: int, batch_sizes: list[int], repeats: int, budget_s: float,
              threads: int) -> list[dict]:
    """ms per shower of the exported graph per batch size (median of repeats after a warm-up; skipped past budget)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    rows, per_shower = [], None
    for batch in batch_sizes:
        if per_shower is not None and per_shower * batch > budget_s:
            rows.append({"batch_size": batch, "ms_per_shower": 1e3 * per_shower, "measured": False})
            continue
        feed = {n: x.numpy() for n, x in zip(names, example_inputs(chain, steps, batch=batch))}
        session.run(None, feed)
        seconds = []
        for _ in range(repeats if (per_shower or 0) * batch * repeats <= budget_s else 1):
            start = time.perf_counter()
            session.run(None, feed)
            seconds.append(time.perf_counter() - start)
        per_shower = statistics.median(seconds) / batch
        rows.append({"batch_size": batch, "ms_per_shower": 1e3 * per_shower, "measured": True})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--student", type=Path, required=True)
    parser.add_argument("--student-steps", default="1,2,4", help="consistency steps to time")
    parser.add_argument("--teacher-steps", type=int, default=10, help="DDIM calls timed to derive DDPM-400")
    parser.add_argument("--batch-sizes", default="1,100,10000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds one point may take; longer: est.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    cpu = torch.device("cpu")

    teacher, _ = load_model(args.teacher)
    calls = args.teacher_steps
    points = time_model(teacher, "teacher", {"sampler": "ddim", "steps": calls}, cpu, [100], args.repeats, args.budget)
    ddpm400_ms = points[0].ms_per_shower * 400 / calls
    student, checkpoint = load_model(args.student)
    onnx_rows = {}
    for steps in (int(s) for s in args.student_steps.split(",")):
        points += time_model(student, "student", {"sampler": "consistency", "steps": steps}, cpu, sizes, args.repeats,
                             args.budget)
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(student, checkpoint.geometry, Path(tmp) / "student.onnx", steps)
            onnx_rows[steps] = time_onnx(path, SamplingChain(student, checkpoint.geometry), steps, sizes,
                                         args.repeats, args.budget, args.threads)
    print(f"machine: {machine_description()}")
    print(format_table(points))
    print(f"\nteacher DDPM-400 at batch 100 (derived: DDIM-{calls} x {400 / calls:g}): {ddpm400_ms:.4g} ms per shower")
    print("ONNX Runtime (CPU):")
    for steps, rows in onnx_rows.items():
        cells = "  ".join(f"bs {r['batch_size']}: {r['ms_per_shower']:.3g} ms{'' if r['measured'] else ' est.'}"
                          for r in rows)
        print(f"  consistency-{steps}: {cells}")
    for p in points:
        if p.model == "student" and p.batch_size == 100:
            print(f"speed-up of student ({p.options}) over teacher DDPM-400 at batch 100: "
                  f"x{ddpm400_ms / p.ms_per_shower:.0f} (PyTorch)")
    for steps, rows in onnx_rows.items():
        for r in rows:
            if r["batch_size"] == 100:
                print(f"speed-up of student (consistency-{steps}) over teacher DDPM-400 at batch 100: "
                      f"x{ddpm400_ms / r['ms_per_shower']:.0f} (ONNX Runtime)")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_description(), "teacher_ddpm400_ms": ddpm400_ms,
                                         "torch": [p.to_dict() for p in points],
                                         "onnx": {str(k): v for k, v in onnx_rows.items()}}, indent=1))


if __name__ == "__main__":
    main()
