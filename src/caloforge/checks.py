"""What a user-given value may be: number ranges, choices, devices, and memory a request needs at once.

Each check is a callable ``check(name, value)`` that raises a one-line ``CaloforgeError`` naming what is allowed,
e.g. ``--batch-size: must be >= 1 (got 0)``. The same checks guard CLI options (``caloforge.cli.common.checked``)
and config fields (``caloforge.contract.checked``), so a value is refused where it enters, before any work starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from caloforge.errors import CaloforgeError

Check = Callable[[str, Any], None]


@dataclass(frozen=True)
class Range:
    """Numbers between ``low`` and ``high``, each bound inclusive unless marked open; never NaN or inf."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def __call__(self, name: str, value: Any) -> None:
        if value is None:  # an optional value left unset
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CaloforgeError(f"{name}: must be a number {self} (got {value!r})")
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        if not (above and below) or isinstance(value, float) and not math.isfinite(value):
            raise CaloforgeError(f"{name}: must be {self} (got {value})")


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of names (schedules, samplers, families)."""

    choices: tuple[str, ...]

    def __call__(self, name: str, value: Any) -> None:
        if value is not None and value not in self.choices:
            raise CaloforgeError(f"{name}: must be one of {', '.join(self.choices)} (got {value!r})")


COUNT = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1, low_open=True, high_open=True)
#: numpy's and torch's seeds are unsigned 32 / 64-bit integers: a negative or huge one fails deep inside them
SEED = Range(0, 2**32 - 1)
#: incident energies in MeV: calorimeter showers from 1 MeV (below any readout threshold) to 10 TeV
ENERGY_MEV = Range(1, 1e7)


def devices() -> list[str]:
    """The torch devices of this machine, by the names the CLI and run configs accept."""
    import torch  # only where a device is asked for: ``caloforge --help`` stays quick

    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def device(name: str, value: Any) -> None:
    """A device this machine has (``auto``: the GPU when there is one)."""
    if value is not None and value != "auto":
        OneOf(tuple(devices()))(name, value)


def memory_bytes() -> int:
    """Physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def require_memory(what: str, n_bytes: int) -> None:
    """Refuse up front a request whose arrays held at once cannot fit in this machine's memory."""
    if n_bytes > memory_bytes():
        raise CaloforgeError(f"{what} need {_size(n_bytes)} of memory at once; this machine has "
                             f"{_size(memory_bytes())}")


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            break
        n_bytes /= 1024
    return f"{n_bytes:.3g} {unit}"
