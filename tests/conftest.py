"""Fixtures shared by the test modules: one torch thread for tiny tensors, and the bundled Par04 showers rebinned to
a smaller geometry (what most families train on in the tests)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest
import torch

from caloforge.data import open_showers, sample_path, write_showers
from caloforge.geometry import Rebinning, load_geometry


@pytest.fixture(scope="module")
def one_thread():
    """These tensors are tiny: threads gain nothing, and on a shared machine their hand-offs cost several times
    the work. Modules take it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def rebinned_sample(tmp_path_factory) -> Callable[..., tuple]:
    """``rebinned_sample(n, geometry="par04-coarse")``: the first ``n`` bundled Par04 showers rebinned to
    ``geometry`` (``par04`` keeps them as they are), as (geometry, energies, showers, file): tensors and the path of
    a file holding them, written once per session."""
    fine = load_geometry("par04")

    @cache
    def read(n: int, geometry: str = "par04-coarse") -> tuple:
        target = load_geometry(geometry)
        energies, showers = open_showers(sample_path(), fine).read(slice(0, n))
        if target is not fine:
            showers = Rebinning(fine, target)(showers)
        path = write_showers(tmp_path_factory.mktemp("data") / f"{geometry}-{n}.h5", energies, showers)
        return target, torch.from_numpy(energies), torch.from_numpy(showers), str(path)

    return read
