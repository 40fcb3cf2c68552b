"""The official CaloChallenge datasets (Zenodo) and their download with verification.

Sizes and MD5s are recorded where they are published; where a field is ``None`` the download is checked by
structure (``open_showers`` against the geometry) instead.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from caloforge.data.io import claim_target, commit_target, open_showers
from caloforge.errors import CaloforgeError
from caloforge.geometry import load_geometry


@dataclass(frozen=True)
class OfficialDataset:
    key: str
    filename: str
    geometry: str
    zenodo_record: str
    role: str  # "train" or "reference"
    md5: str | None = None
    n_showers: int | None = None

    @property
    def url(self) -> str:
        return f"https://zenodo.org/records/{self.zenodo_record}/files/{self.filename}?download=1"


def _entries() -> dict[str, OfficialDataset]:
    ds1 = "8099322"
    rows = [
        OfficialDataset("ds1-photons-1", "dataset_1_photons_1.hdf5", "ds1-photons", ds1, "train",
                        "005d2adeda7db034b388112661265656", 121_000),
        OfficialDataset("ds1-photons-2", "dataset_1_photons_2.hdf5", "ds1-photons", ds1, "reference",
                        "4767715ed56e99565fd9c67340661e70", 121_000),
        OfficialDataset("ds1-pions-1", "dataset_1_pions_1.hdf5", "ds1-pions", ds1, "train",
                        "6a5f52722064a1bcd8a0bc002f16515d", 120_800),
        OfficialDataset("ds1-pions-2", "dataset_1_pions_2.hdf5", "ds1-pions", ds1, "reference",
                        "fee7457b40127bc23c8ab909e2638ca0", 120_800),
        OfficialDataset("ds2-1", "dataset_2_1.hdf5", "ds2", "6366270", "train", None, 100_000),
        OfficialDataset("ds2-2", "dataset_2_2.hdf5", "ds2", "6366270", "reference", None, 100_000),
    ]
    rows += [OfficialDataset(f"ds3-{i}", f"dataset_3_{i}.hdf5", "ds3", "6366323", "train" if i <= 2 else "reference",
                             None, 50_000) for i in range(1, 5)]
    return {row.key: row for row in rows}


OFFICIAL_DATASETS = _entries()


def md5sum(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def verify(entry: OfficialDataset, path: Path) -> str | None:
    """Why ``path`` is not a good copy of ``entry`` (None when it is): its MD5 where published, else its
    structure (datasets, voxel count of the geometry, number of showers)."""
    if entry.md5 is not None:
        digest = md5sum(path)
        return None if digest == entry.md5 else f"MD5 {digest} does not match the published {entry.md5}"
    try:
        handle = open_showers(path, load_geometry(entry.geometry))
    except CaloforgeError as err:
        return str(err).removeprefix(f"{path}: ")
    if entry.n_showers is not None and handle.n != entry.n_showers:
        return f"{handle.n} showers, expected {entry.n_showers}"
    return None


def fetch(key: str, directory: Path, progress: Callable[[int, int | None], None] | None = None,
          timeout: float = 30.0) -> Path:
    """Download one official file into ``directory`` (atomically) and verify it; returns its path."""
    if key not in OFFICIAL_DATASETS:
        raise CaloforgeError(f"unknown dataset '{key}'; known: {', '.join(OFFICIAL_DATASETS)}")
    entry = OFFICIAL_DATASETS[key]
    target = Path(directory) / entry.filename
    if target.exists() and verify(entry, target) is None:
        return target
    tmp = claim_target(target)
    try:
        with urllib.request.urlopen(entry.url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done != total:
            raise OSError(f"connection closed after {done} of {total} bytes")
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise CaloforgeError(f"{entry.url}: cannot download ({reason}); without network access, download "
                             f"{entry.filename} elsewhere and place it in {target.parent}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if (problem := verify(entry, tmp)) is not None:
        tmp.unlink(missing_ok=True)
        raise CaloforgeError(f"{entry.filename}: downloaded file rejected: {problem}")
    commit_target(tmp, target)
    return target
