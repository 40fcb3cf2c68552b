"""Reading and writing CaloChallenge HDF5 files.

A file holds ``incident_energies`` (N, 1) and ``showers`` (N, voxels), both in MeV. Files can be far larger than
memory (a ds3 file is 16 GB), so reading streams row blocks (``iter_chunks``) or gathers given rows (``read``);
every block is checked as it is read, so a bad value is reported wherever it sits. Writing goes to a temporary
name beside the target and is renamed only when complete: an interrupted run never leaves a half file behind.
"""

from __future__ import annotations

import datetime as _dt
import glob
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from caloforge import __version__
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry

ENERGIES_KEY = "incident_energies"
SHOWERS_KEY = "showers"


@dataclass(frozen=True)
class ShowerFile:
    """An opened (structure-checked) CaloChallenge file. Data are read lazily."""

    path: Path
    n: int
    n_voxels: int
    geometry: Geometry | None = None

    def _open(self) -> h5py.File:
        return h5py.File(self.path, "r")

    def energies(self) -> np.ndarray:
        """(N,) incident energies in MeV, checked."""
        with self._open() as f:
            energies = _read(self.path, f[ENERGIES_KEY], slice(None))[:, 0]
        check_values(self.path, energies, None)
        return energies

    def read(self, rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(energies (n,), showers (n, voxels)) of a slice or of given row indices (any order), checked."""
        if isinstance(rows, slice):
            index: slice | np.ndarray = rows
            inverse = None
        else:
            # h5py gathers only strictly increasing, non-negative indices: read each wanted row once, in order,
            # then put them back in the asked order (repeats included)
            index, inverse = np.unique(self._row_indices(rows), return_inverse=True)
            if len(index) == 0:
                return np.empty(0, np.float32), np.empty((0, self.n_voxels), np.float32)
        with self._open() as f:
            energies = _read(self.path, f[ENERGIES_KEY], index)[:, 0]
            showers = _read(self.path, f[SHOWERS_KEY], index)
        if inverse is not None:
            energies, showers = energies[inverse], showers[inverse]
        check_values(self.path, energies, showers)
        return energies, showers

    def _row_indices(self, rows) -> np.ndarray:
        """Row indices (negative ones counted from the end, a boolean mask allowed) checked against ``n``."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (self.n,):
                raise CaloforgeError(f"{self.path}: a row mask needs {self.n} entries, got shape {rows.shape}")
            return np.flatnonzero(rows)
        if rows.size and rows.dtype.kind not in "iu":
            raise CaloforgeError(f"{self.path}: row indices must be integers, got {rows.dtype}")
        rows = rows.astype(np.int64).ravel()
        if rows.size and (rows.min() < -self.n or rows.max() >= self.n):
            raise CaloforgeError(f"{self.path}: row indices must lie in [-{self.n}, {self.n}), "
                                 f"got {rows.min()}..{rows.max()}")
        return np.where(rows < 0, rows + self.n, rows)

    def iter_chunks(self, chunk_size: int = 10_000, start: int = 0, stop: int | None = None
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Consecutive (energies, showers) blocks of at most ``chunk_size`` rows: memory stays bounded."""
        if chunk_size < 1:
            raise CaloforgeError(f"{self.path}: chunk size must be at least 1, got {chunk_size}")
        stop = self.n if stop is None else min(stop, self.n)
        with self._open() as f:
            for begin in range(start, stop, chunk_size):
                rows = slice(begin, min(begin + chunk_size, stop))
                energies = _read(self.path, f[ENERGIES_KEY], rows)[:, 0]
                showers = _read(self.path, f[SHOWERS_KEY], rows)
                check_values(self.path, energies, showers, first_row=begin)
                yield energies, showers

    def read_all(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first ``limit`` (default all) showers in memory; use ``iter_chunks`` for files larger than memory."""
        return self.read(slice(0, self.n if limit is None else min(limit, self.n)))

    def attrs(self) -> dict:
        with self._open() as f:
            return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


def _read(path: Path, dataset: h5py.Dataset, rows) -> np.ndarray:
    try:
        return np.asarray(dataset[rows], dtype=np.float32)
    except (OSError, RuntimeError) as err:
        raise CaloforgeError(f"{path}: dataset '{dataset.name.lstrip('/')}' cannot be read (truncated or corrupt file: {err})") from None


def open_showers(path: str | Path, geometry: Geometry | None = None) -> ShowerFile:
    """Open a CaloChallenge file and check its structure (and voxel count against ``geometry``)."""
    path = Path(path)
    if not path.is_file():
        raise CaloforgeError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise CaloforgeError(f"{path}: not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise CaloforgeError(f"{path}: cannot open HDF5 file (truncated or corrupt: {err})") from None
    with f:
        keys = sorted(f.keys())
        for key in (ENERGIES_KEY, SHOWERS_KEY):
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise CaloforgeError(
                    f"{path}: missing dataset '{key}' (found: {', '.join(keys) or 'nothing'}; "
                    f"a CaloChallenge file holds '{ENERGIES_KEY}' and '{SHOWERS_KEY}')"
                )
        for key in (ENERGIES_KEY, SHOWERS_KEY):
            if f[key].dtype.kind not in "fiu":
                raise CaloforgeError(f"{path}: '{key}' holds {f[key].dtype} values, expected numbers")
        e_shape, s_shape = f[ENERGIES_KEY].shape, f[SHOWERS_KEY].shape
    if len(e_shape) != 2 or e_shape[1] != 1:
        raise CaloforgeError(f"{path}: '{ENERGIES_KEY}' has shape {e_shape}, expected (N, 1)")
    if len(s_shape) != 2:
        raise CaloforgeError(f"{path}: '{SHOWERS_KEY}' has shape {s_shape}, expected (N, voxels)")
    if e_shape[0] != s_shape[0]:
        raise CaloforgeError(f"{path}: {e_shape[0]} incident energies but {s_shape[0]} showers")
    if e_shape[0] == 0:
        raise CaloforgeError(f"{path}: holds no showers")
    if geometry is not None and s_shape[1] != geometry.n_voxels:
        raise CaloforgeError(
            f"{path}: showers have {s_shape[1]} voxels but geometry {geometry.name} has {geometry.n_voxels}"
        )
    return ShowerFile(path=path, n=int(e_shape[0]), n_voxels=int(s_shape[1]), geometry=geometry)


def check_values(path: str | Path, energies: np.ndarray, showers: np.ndarray | None, first_row: int = 0) -> None:
    """Raise a one-line error at the first NaN/inf, negative voxel energy or non-positive incident energy."""
    for name, values, positive in ((ENERGIES_KEY, energies, True), (SHOWERS_KEY, showers, False)):
        if values is None or values.size == 0:
            continue
        # fast path without block-sized temporaries: min and max are NaN if any value is, inf if any is infinite
        low, high = values.min(), values.max()
        if np.isfinite(low) and np.isfinite(high) and (low > 0 if positive else low >= 0):
            continue
        bad = ~np.isfinite(values)
        if bad.any():
            row = first_row + int(np.argwhere(bad)[0][0])
            raise CaloforgeError(f"{path}: '{name}' holds NaN or inf (first at row {row})")
        bad = values <= 0 if positive else values < 0
        if bad.any():
            row = first_row + int(np.argwhere(bad)[0][0])
            kind = "non-positive incident energies" if positive else "negative voxel energies"
            raise CaloforgeError(f"{path}: '{name}' holds {kind} (first at row {row})")


def claim_target(path: str | Path) -> Path:
    """The temporary file (``.NAME.tmp-PID``, created empty) this process writes ``path`` through, then renames.

    A directory target is refused, and so is a target another live process is writing (its temporary file
    exists). Temporary files of dead processes (killed by SIGKILL, which nothing can catch) are removed. Our own
    file is created before the others are looked at, so of two writers starting together at most one goes on.
    """
    path = Path(path)
    if path.is_dir():
        raise CaloforgeError(f"{path}: is a directory; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.touch()
    for other in path.parent.glob(f"{glob.escape(f'.{path.name}.tmp-')}*"):
        pid = other.name.rpartition("-")[2]
        if other == tmp or not pid.isdigit():
            continue
        if _process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            raise CaloforgeError(f"{path}: being written by process {pid} (temporary file {other.name}); wait for "
                                 f"it to finish, or delete that file if no caloforge process {pid} is running")
        other.unlink(missing_ok=True)
    return tmp


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: delivers nothing, only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def commit_target(tmp: Path, path: str | Path) -> None:
    """Rename a complete temporary file over its target; on failure the temporary file is removed."""
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def provenance(**extra) -> dict:
    """Attributes recorded in every file caloforge writes."""
    return {
        "caloforge_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        **{k: v for k, v in extra.items() if v is not None},
    }


class ShowerWriter:
    """Appends showers to a CaloChallenge file written atomically (temporary name, renamed on success).

    Use as a context manager; on an exception the temporary file is removed and any existing target is kept.
    ``gzip_level`` (0-9) trades speed for size: 4 is h5py's default, 1 is several times faster to write.
    """

    def __init__(self, path: str | Path, n_voxels: int, attrs: dict | None = None, chunk_rows: int = 1000,
                 gzip_level: int = 4):
        self.path = Path(path)
        self.tmp_path: Path | None = None
        self.n_voxels = n_voxels
        self.attrs = provenance(**(attrs or {}))
        self.chunk_rows = chunk_rows
        self.gzip_level = gzip_level
        self.n = 0
        self._file: h5py.File | None = None

    def __enter__(self) -> ShowerWriter:
        self.tmp_path = claim_target(self.path)
        try:
            self._file = h5py.File(self.tmp_path, "w")
            gzip = {"compression": "gzip", "compression_opts": self.gzip_level}
            self._file.create_dataset(ENERGIES_KEY, shape=(0, 1), maxshape=(None, 1), dtype="f4",
                                      chunks=(self.chunk_rows, 1), **gzip)
            self._file.create_dataset(SHOWERS_KEY, shape=(0, self.n_voxels), maxshape=(None, self.n_voxels),
                                      dtype="f4", chunks=(self.chunk_rows, self.n_voxels), **gzip)
        except BaseException:
            self._discard()  # __exit__ does not run when __enter__ fails
            raise
        return self

    def append(self, energies: np.ndarray, showers: np.ndarray) -> None:
        energies = np.asarray(energies, dtype=np.float32).reshape(-1, 1)
        showers = np.asarray(showers, dtype=np.float32)
        if showers.shape != (len(energies), self.n_voxels):
            raise CaloforgeError(f"{self.path}: cannot append showers of shape {showers.shape} "
                                 f"with {len(energies)} energies to a file of {self.n_voxels} voxels")
        assert self._file is not None, "ShowerWriter.append outside its 'with' block"
        end = self.n + len(energies)
        for key, block in ((ENERGIES_KEY, energies), (SHOWERS_KEY, showers)):
            self._file[key].resize(end, axis=0)
            self._file[key][self.n:end] = block
        self.n = end

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._file is not None
        if exc_type is not None:
            self._discard()
            return
        try:
            # attributes are written last so that callers can add to ``attrs`` (e.g. timings) while writing
            for key, value in {**self.attrs, "n_showers": self.n}.items():
                self._file.attrs[key] = value
            self._file.close()
        except BaseException:
            self._discard()  # e.g. an attribute h5py cannot store: never leave the temporary file behind
            raise
        commit_target(self.tmp_path, self.path)

    def _discard(self) -> None:
        """Close and delete the temporary file after a failure."""
        if self._file is not None:
            self._file.close()
        self.tmp_path.unlink(missing_ok=True)


def write_showers(path: str | Path, energies: np.ndarray, showers: np.ndarray, attrs: dict | None = None) -> Path:
    """Write a whole CaloChallenge file atomically; returns its path."""
    with ShowerWriter(path, np.shape(showers)[1], attrs) as writer:
        writer.append(energies, showers)
    return Path(path)
