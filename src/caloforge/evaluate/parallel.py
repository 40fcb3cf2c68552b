"""Running many small numpy jobs on a few threads, each with single-threaded BLAS.

numpy releases the GIL inside its kernels, so threads parallelise well. BLAS's own threading, in contrast, is a loss
for the products used here (a few hundred rows, or many independent ones) and collapses when the machine is shared:
on two busy cores a 362 x 362 eigen-decomposition took 7x longer with two BLAS threads than with one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_threads(limit: int = 8) -> int:
    """The CPUs this process may use, at most ``limit``."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    return max(1, min(limit, available))


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS/LAPACK limited to one thread inside the block (threadpoolctl ships with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - only the speed differs
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def thread_map(function: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> list[R]:
    """``[function(item) for item in items]`` on ``threads`` threads (BLAS single-threaded), in order."""
    items = list(items)
    threads = default_threads() if threads is None else threads
    with single_threaded_blas():
        if threads <= 1 or len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(min(threads, len(items))) as pool:
            return list(pool.map(function, items))
