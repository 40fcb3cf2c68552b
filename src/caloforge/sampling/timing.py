"""Generation time per shower at the CaloChallenge batch sizes (1, 100, 10000), with peak memory.

Each point is timed after a warm-up, over repeated runs (median and spread). The cost of a batch is estimated
from the previous batch size assuming linear cost, an upper bound (per-call overheads shrink per shower with the
batch): a point estimated past the budget is run once, without warm-up; one estimated past four budgets is not run
and is reported as an estimate, flagged so, never as a measurement.

Beside the wall time each point records the CPU time of the process and the load average, and is marked *busy* when
the machine was shared: torch's threads spin when the cores are oversubscribed, so such a figure is worthless.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from caloforge.data import open_showers

GEANT4_ATTR = "cpu_seconds_simulation"


@dataclass
class TimingPoint:
    model: str
    options: str
    device: str
    batch_size: int
    ms_per_shower: float
    spread_ms: float | None
    repeats: int
    peak_memory_mb: float | None
    measured: bool
    speedup_vs_geant4: float | None = None
    threads: int | None = None
    wall_seconds: float | None = None  # of the timed runs together
    cpu_seconds: float | None = None  # of this process over the same runs
    load_average: float | None = None  # 1-minute, read right after the runs
    busy: str | None = None  # why the machine counted as busy, or None

    def to_dict(self) -> dict:
        return asdict(self)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # Linux: writing 5 to clear_refs resets the process's peak resident set size (VmHWM)
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def _peak_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def busy_reason(load_average: float, threads: int, wall_seconds: float, cpu_seconds: float) -> str | None:
    """Why a timing was taken on a busy machine, or None: other work ran (the load average exceeds the threads in
    use by more than its own sampling noise), or the process did not even get one core (CPU time well under the
    wall time; with several threads it may legitimately lie anywhere between 1 and ``threads`` times the wall)."""
    if load_average > threads + 0.5:
        return f"load average {load_average:.2f} above the {threads} thread(s) in use"
    if cpu_seconds < 0.8 * wall_seconds:
        return f"CPU time {cpu_seconds:.2f} s of {wall_seconds:.2f} s wall: the process did not get a core"
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_model(model: torch.nn.Module, name: str, options: dict, device: torch.device,
               batch_sizes=(1, 100, 10_000), repeats: int = 5, budget_s: float = 120.0,
               energy_range=(1e3, 1e5), seed: int = 0, geant4_s: float | None = None) -> list[TimingPoint]:
    """Time ``model.sample`` at each batch size on ``device``; energies log-uniform in ``energy_range`` (MeV)."""
    model = model.to(device).eval()
    rng = np.random.default_rng(seed)
    label = ", ".join(f"{k}={v}" for k, v in options.items())
    points: list[TimingPoint] = []
    previous_per_shower: float | None = None
    for batch_size in sorted(batch_sizes):
        energies = torch.from_numpy(np.exp(rng.uniform(*np.log(energy_range), batch_size))).float().to(device)
        generator = torch.Generator(device=device).manual_seed(seed)
        estimate = previous_per_shower * batch_size if previous_per_shower is not None else 0.0
        if estimate > 4 * budget_s:
            points.append(TimingPoint(name, label, str(device), batch_size, 1e3 * previous_per_shower, None,
                                      0, None, measured=False))
            continue
        runs = repeats if estimate * (repeats + 1) <= budget_s else 1
        if runs > 1 or previous_per_shower is None:
            model.sample(energies, generator=generator, **options)  # warm-up: allocations, lazy initialisation
        _reset_peak(device)
        seconds = []
        cpu_start = time.process_time()
        for _ in range(runs):
            _sync(device)
            start = time.perf_counter()
            model.sample(energies, generator=generator, **options)
            _sync(device)
            seconds.append(time.perf_counter() - start)
        cpu_seconds, wall_seconds, load = time.process_time() - cpu_start, sum(seconds), os.getloadavg()[0]
        threads = torch.get_num_threads()
        per_shower = [s / batch_size for s in seconds]
        previous_per_shower = statistics.median(per_shower)
        spread = 1e3 * (max(per_shower) - min(per_shower)) / 2 if runs > 1 else None
        points.append(TimingPoint(name, label, str(device), batch_size, 1e3 * previous_per_shower, spread,
                                  runs, _peak_mb(device), measured=True, threads=threads,
                                  wall_seconds=wall_seconds, cpu_seconds=cpu_seconds, load_average=load,
                                  busy=busy_reason(load, threads, wall_seconds, cpu_seconds)))
    for point in points:
        if geant4_s:
            point.speedup_vs_geant4 = geant4_s * 1e3 / point.ms_per_shower
    return points


def geant4_seconds_per_shower(path: str | Path) -> float | None:
    """The Geant4 CPU time per shower recorded in a data file's attributes (caloforge's Par04 files carry it)."""
    handle = open_showers(path)
    attrs = handle.attrs()
    seconds = attrs.get(GEANT4_ATTR)
    # a slice keeps the attributes of its source: the time refers to the source's ``n_showers``
    return float(seconds) / int(attrs.get("n_showers", handle.n)) if seconds is not None else None


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {threads} torch threads{gpu}"


def format_table(points: list[TimingPoint]) -> str:
    """A plain-text table: one row per model/options/device, one column per batch size."""
    sizes = sorted({p.batch_size for p in points})
    rows: dict[tuple, dict[int, TimingPoint]] = {}
    for p in points:
        rows.setdefault((p.model, p.options, p.device), {})[p.batch_size] = p
    model_width = max(len("model"), *(len(key[0]) for key in rows))
    options_width = max(len("options"), *(len(key[1]) for key in rows))
    header = (f"{'model':{model_width}s} {'options':{options_width}s} {'device':7s} "
              + " ".join(f"{'bs ' + str(b):>16s}" for b in sizes))
    lines = [header, "-" * len(header)]
    for (model, options, device), by_size in rows.items():
        cells = []
        for b in sizes:
            p = by_size.get(b)
            if p is None:
                cells.append(f"{'-':>16s}")
            else:
                text = f"{p.ms_per_shower:.3g} ms" + ("" if p.measured else " est.") + (" BUSY" if p.busy else "")
                if p.speedup_vs_geant4:
                    text += f" x{p.speedup_vs_geant4:.3g}"
                cells.append(f"{text:>16s}")
        lines.append(f"{model:{model_width}s} {options:{options_width}s} {device:7s} " + " ".join(cells))
    lines.append("ms per shower (median of repeats); xN: speed-up over Geant4 on its recorded CPU time; "
                 "est.: not run, extrapolated linearly from the previous batch size")
    lines += [f"BUSY {p.model} bs {p.batch_size}: {p.busy}; not a speed figure, time again on an idle machine"
              for p in points if p.busy]
    return "\n".join(lines)
