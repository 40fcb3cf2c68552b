"""CaloChallenge HDF5 I/O: round trips, provenance, atomic writing, streamed and gathered reads, and bad files
reported as one line naming the file and the problem (in the library and through the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from caloforge import __version__
from caloforge.data import ShowerWriter, open_showers, sample_path, write_showers
from caloforge.errors import CaloforgeError
from caloforge.geometry import load_geometry

N = 20


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """The first N real Par04 showers of the bundled sample: (energies (N,), showers (N, 6480)) float32."""
    return open_showers(sample_path()).read(slice(0, N))


def read_everything(path: Path, geometry: str | None = "par04") -> None:
    """Open with the structure checks and stream every value through the value checks."""
    handle = open_showers(path, None if geometry is None else load_geometry(geometry))
    for _ in handle.iter_chunks(7):
        pass


# --- round trips ---------------------------------------------------------------------------------------------------
def test_write_showers_round_trip(tmp_path: Path, sample) -> None:
    energies, showers = sample
    path = write_showers(tmp_path / "out.h5", energies, showers, attrs={"geometry": "par04", "seed": 7})
    handle = open_showers(path, load_geometry("par04"))
    assert (handle.n, handle.n_voxels) == (N, 6480)
    got_energies, got_showers = handle.read_all()
    np.testing.assert_array_equal(got_energies, energies)
    np.testing.assert_array_equal(got_showers, showers)
    assert got_showers.dtype == np.float32
    np.testing.assert_array_equal(handle.energies(), energies)
    with h5py.File(path) as f:  # the CaloChallenge layout itself
        assert f["incident_energies"].shape == (N, 1) and f["showers"].shape == (N, 6480)


def test_provenance_attributes(tmp_path: Path, sample) -> None:
    energies, showers = sample
    path = write_showers(tmp_path / "out.h5", energies, showers, attrs={"geometry": "par04", "seed": 7, "skip": None})
    attrs = open_showers(path).attrs()
    assert attrs["caloforge_version"] == __version__
    assert attrs["created_utc"].endswith("+00:00")
    assert attrs["command"]  # the command line that made it
    assert attrs["n_showers"] == N
    assert attrs["geometry"] == "par04" and attrs["seed"] == 7
    assert "skip" not in attrs  # None values are not recorded


def test_shower_writer_appends_blocks(tmp_path: Path, sample) -> None:
    energies, showers = sample
    with ShowerWriter(tmp_path / "out.h5", 6480, chunk_rows=4, gzip_level=1) as writer:
        for begin, end in ((0, 3), (3, 3), (3, 11), (11, N)):
            writer.append(energies[begin:end], showers[begin:end])
        writer.attrs["seconds"] = 1.5  # attributes are written at the end, so late additions are kept
    handle = open_showers(tmp_path / "out.h5")
    got_energies, got_showers = handle.read_all()
    np.testing.assert_array_equal(got_energies, energies)
    np.testing.assert_array_equal(got_showers, showers)
    assert handle.attrs()["seconds"] == 1.5 and handle.attrs()["n_showers"] == N


def test_shower_writer_rejects_wrong_shapes(tmp_path: Path, sample) -> None:
    energies, showers = sample
    with pytest.raises(CaloforgeError, match="cannot append showers of shape"):
        with ShowerWriter(tmp_path / "out.h5", 6480) as writer:
            writer.append(energies[:3], showers[:4])
    assert list(tmp_path.iterdir()) == []


# --- atomic writing ------------------------------------------------------------------------------------------------
def test_exception_inside_writer_leaves_nothing(tmp_path: Path, sample) -> None:
    energies, showers = sample
    with pytest.raises(RuntimeError, match="stop"):
        with ShowerWriter(tmp_path / "out.h5", 6480) as writer:
            writer.append(energies, showers)
            assert writer.tmp_path.exists() and not writer.path.exists()  # written beside the target
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_exception_inside_writer_keeps_an_existing_target(tmp_path: Path, sample) -> None:
    energies, showers = sample
    target = write_showers(tmp_path / "out.h5", energies[:5], showers[:5], attrs={"run": "first"})
    before = target.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with ShowerWriter(target, 6480, attrs={"run": "second"}) as writer:
            writer.append(energies, showers)
            raise KeyboardInterrupt
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]
    assert open_showers(target).n == 5 and open_showers(target).attrs()["run"] == "first"


def test_unstorable_attribute_leaves_no_temporary_file(tmp_path: Path, sample) -> None:
    energies, showers = sample
    with pytest.raises(TypeError):
        write_showers(tmp_path / "out.h5", energies, showers, attrs={"config": {"nested": "dict"}})
    assert list(tmp_path.iterdir()) == []


def test_successful_write_replaces_the_target(tmp_path: Path, sample) -> None:
    energies, showers = sample
    target = write_showers(tmp_path / "out.h5", energies[:5], showers[:5])
    write_showers(target, energies, showers)
    assert open_showers(target).n == N
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


# --- streamed and gathered reads -----------------------------------------------------------------------------------
def test_iter_chunks_blocks(tmp_path: Path, sample) -> None:
    energies, showers = sample
    handle = open_showers(write_showers(tmp_path / "out.h5", energies, showers))
    blocks = list(handle.iter_chunks(8))
    assert [len(e) for e, _ in blocks] == [8, 8, 4]
    np.testing.assert_array_equal(np.concatenate([e for e, _ in blocks]), energies)
    np.testing.assert_array_equal(np.concatenate([s for _, s in blocks]), showers)
    middle = list(handle.iter_chunks(5, start=3, stop=14))
    assert [len(e) for e, _ in middle] == [5, 5, 1]
    np.testing.assert_array_equal(np.concatenate([s for _, s in middle]), showers[3:14])
    assert [len(e) for e, _ in handle.iter_chunks(100, stop=1000)] == [N]
    with pytest.raises(CaloforgeError, match="chunk size"):
        next(handle.iter_chunks(0))


def test_read_keeps_the_asked_order(tmp_path: Path, sample) -> None:
    energies, showers = sample
    handle = open_showers(write_showers(tmp_path / "out.h5", energies, showers))
    for rows in ([7, 2, 15, 0], np.array([19, 3, 3, 11, 2]), [-1, 0], np.arange(N)[::-1]):
        got_energies, got_showers = handle.read(np.asarray(rows))
        np.testing.assert_array_equal(got_energies, energies[rows])
        np.testing.assert_array_equal(got_showers, showers[rows])
    mask = np.zeros(N, bool)
    mask[[4, 9]] = True
    np.testing.assert_array_equal(handle.read(mask)[1], showers[mask])
    assert handle.read(np.array([], int))[1].shape == (0, 6480)
    np.testing.assert_array_equal(handle.read(slice(5, 9))[1], showers[5:9])
    with pytest.raises(CaloforgeError, match="row indices must lie in"):
        handle.read([3, N])


def test_value_errors_give_the_absolute_row(tmp_path: Path, sample) -> None:
    energies, showers = sample
    showers = showers.copy()
    showers[17, 100] = np.nan
    path = write_showers(tmp_path / "late_nan.h5", energies, showers)
    with pytest.raises(CaloforgeError, match=r"first at row 17"):
        read_everything(path)
    np.testing.assert_array_equal(open_showers(path).read(slice(0, 10))[1], showers[:10])  # good rows still read


# --- bad files -----------------------------------------------------------------------------------------------------
def _datasets(energies, showers) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with h5py.File(path, "w") as f:
            for key, value in (("incident_energies", energies), ("showers", showers)):
                if value is not None:
                    f.create_dataset(key, data=value)
    return make


def _named(names: dict[str, np.ndarray]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with h5py.File(path, "w") as f:
            for key, value in names.items():
                f.create_dataset(key, data=value)
    return make


def _edited(edit: Callable[[np.ndarray, np.ndarray], None]) -> Callable[[Path], None]:
    """A valid file whose values ``edit`` spoils (in place) before writing."""
    def make(path: Path) -> None:
        energies, showers = open_showers(sample_path()).read(slice(0, N))
        energies = energies.reshape(-1, 1)
        edit(energies, showers)
        _datasets(energies, showers)(path)
    return make


def _truncated(path: Path) -> None:
    energies, showers = open_showers(sample_path()).read(slice(0, N))
    write_showers(path, energies, showers)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _set(array: str, index, value) -> Callable[[np.ndarray, np.ndarray], None]:
    def edit(energies: np.ndarray, showers: np.ndarray) -> None:
        (energies if array == "energies" else showers)[index] = value
    return edit


E = np.full((N, 1), 1e4, np.float32)
S = np.ones((N, 6480), np.float32)

BAD_FILES: dict[str, tuple[Callable[[Path], None] | None, str]] = {
    "missing_dataset": (_datasets(None, S), "missing dataset 'incident_energies' (found: showers"),
    "misnamed_dataset": (_named({"incident_energies": E, "shower": S}),
                         "missing dataset 'showers' (found: incident_energies, shower"),
    "energies_rank1": (_datasets(E[:, 0], S), "'incident_energies' has shape (20,), expected (N, 1)"),
    "energies_two_columns": (_datasets(np.ones((N, 2), np.float32), S),
                             "'incident_energies' has shape (20, 2), expected (N, 1)"),
    "showers_rank3": (_datasets(E, S.reshape(N, 45, 144)), "'showers' has shape (20, 45, 144), expected (N, voxels)"),
    "n_mismatch": (_datasets(E, S[:19]), "20 incident energies but 19 showers"),
    "wrong_voxel_count": (_datasets(E, S[:, :6000]), "showers have 6000 voxels but geometry par04 has 6480"),
    "string_showers": (_named({"incident_energies": E, "showers": np.array([b"a"] * N)}), "expected numbers"),
    "nan": (_edited(_set("showers", (7, 3), np.nan)), "'showers' holds NaN or inf (first at row 7)"),
    "inf": (_edited(_set("showers", (12, 0), np.inf)), "'showers' holds NaN or inf (first at row 12)"),
    "nan_energy": (_edited(_set("energies", (5, 0), np.nan)), "'incident_energies' holds NaN or inf (first at row 5)"),
    "negative_voxel": (_edited(_set("showers", (3, 50), -0.5)), "negative voxel energies (first at row 3)"),
    "zero_energy": (_edited(_set("energies", (9, 0), 0.0)), "non-positive incident energies (first at row 9)"),
    "negative_energy": (_edited(_set("energies", (2, 0), -1e3)), "non-positive incident energies (first at row 2)"),
    "empty": (_datasets(np.ones((0, 1), np.float32), np.ones((0, 6480), np.float32)), "holds no showers"),
    "truncated": (_truncated, "truncated or corrupt"),
    "text": (lambda p: p.write_text("incident_energies,showers\n1,2\n"), "not an HDF5 file"),
    "nonexistent": (None, "no such file"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    paths = {}
    for name, (make, _) in BAD_FILES.items():
        paths[name] = folder / f"{name}.h5"
        if make is not None:
            make(paths[name])
    return paths


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_message_names_file_and_problem(name: str, bad_files: dict[str, Path]) -> None:
    path = bad_files[name]
    with pytest.raises(CaloforgeError) as error:
        read_everything(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert BAD_FILES[name][1] in message
    assert "\n" not in message


def test_good_file_passes_every_check(tmp_path: Path, sample) -> None:
    read_everything(write_showers(tmp_path / "good.h5", *sample))


# One interpreter imports the CLI once (the import dominates a run) and forks a fresh process per file, each
# running the real entry point with its own stdout/stderr files: every bad file gets a genuine process of its own.
_FORKING_CHECKER = r"""
import json, os, sys, traceback
from caloforge.cli import main

codes = {}
for path, out in zip(sys.argv[1::2], sys.argv[2::2]):
    pid = os.fork()
    if pid == 0:
        for fd, suffix in ((1, ".stdout"), (2, ".stderr")):
            os.dup2(os.open(out + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv = ["caloforge", "data", "check", path, "--geometry", "par04"]
        code = 0
        try:
            main()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    codes[path] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(codes))
"""


def _python_m_caloforge_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "caloforge", "data", "check", str(path), "--geometry", "par04"],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cli_results(bad_files: dict[str, Path], tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Exit code, stdout and stderr of ``caloforge data check FILE --geometry par04`` for every bad file."""
    if not hasattr(os, "fork"):
        return {name: _python_m_caloforge_check(path) for name, path in bad_files.items()}
    folder = tmp_path_factory.mktemp("cli")
    args = [str(arg) for name, path in bad_files.items() for arg in (path, folder / name)]
    driver = subprocess.run([sys.executable, "-c", _FORKING_CHECKER, *args], capture_output=True, text=True,
                            timeout=120)
    assert driver.returncode == 0, driver.stderr
    codes = json.loads(driver.stdout)
    return {
        name: subprocess.CompletedProcess(
            args=["caloforge", "data", "check", str(path)], returncode=codes[str(path)],
            stdout=(folder / f"{name}.stdout").read_text(), stderr=(folder / f"{name}.stderr").read_text())
        for name, path in bad_files.items()
    }


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_cli_check_reports_bad_file_in_one_line(name: str, bad_files, cli_results) -> None:
    result = cli_results[name]
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"caloforge: error: {bad_files[name]}: ")
    assert BAD_FILES[name][1] in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_python_m_caloforge_reports_bad_file_in_one_line(bad_files) -> None:
    """The real ``python -m caloforge`` entry point, on a value error found while streaming (after a progress bar
    would have started): stderr holds the error line and nothing else."""
    result = _python_m_caloforge_check(bad_files["nan"])
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"caloforge: error: {bad_files['nan']}: {BAD_FILES['nan'][1]}"]
    assert result.stdout == ""
