"""``caloforge data``: info, check, rebin and fetch, in-process (typer's runner, or the real entry point ``main``
where its one-line error handling is what is tested). No test touches the network."""

from __future__ import annotations

import io
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from caloforge.cli import app, main
from caloforge.data import OFFICIAL_DATASETS, open_showers, sample_path, write_showers
from caloforge.geometry import load_geometry

runner = CliRunner()


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    return open_showers(sample_path()).read_all()


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the console-script entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["caloforge", *args])
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_on_the_sample(sample) -> None:
    energies, showers = sample
    result = runner.invoke(app, ["data", "info", str(sample_path()), "--chunk-size", "300"])
    assert result.exit_code == 0, result.output
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.strip().splitlines())
    assert fields["showers"] == str(len(energies))
    assert fields["geometry"].startswith("par04 (6480 voxels, regular 45 layers x 16 alpha x 9 r)")
    sparsity = 1 - np.count_nonzero(showers) / showers.size
    assert fields["sparsity"].startswith(f"{sparsity:.3f} ")
    ratio = np.mean(showers.sum(1, dtype=np.float64) / energies)
    assert fields["E_dep/E_inc"].startswith(f"{ratio:.4f} ")
    assert 0.9 < ratio < 1.05  # Par04: about 0.97 of the incident energy is recorded
    assert fields["energy range"] == f"{energies.min() / 1e3:.4g} - {energies.max() / 1e3:.4g} GeV"


def test_check_on_the_sample() -> None:
    result = runner.invoke(app, ["data", "check", str(sample_path()), "--geometry", "par04"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{sample_path()}: OK (3000 showers, {load_geometry('par04').describe()})"


def test_check_with_the_wrong_geometry_fails_in_one_line(monkeypatch, capsys) -> None:
    code, out, err = run_main(monkeypatch, capsys, "data", "check", str(sample_path()), "--geometry", "ds1-photons")
    assert code == 2 and out == ""
    assert err.splitlines() == [f"caloforge: error: {sample_path()}: showers have 6480 voxels but geometry "
                                "ds1-photons has 368"]


def test_rebin_sample_to_par04_coarse(tmp_path: Path, sample) -> None:
    energies, showers = sample
    out = tmp_path / "coarse.h5"
    result = runner.invoke(app, ["data", "rebin", str(sample_path()), str(out), "--to", "par04-coarse",
                                 "--chunk-size", "400"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{out}: {len(energies)} showers on {load_geometry('par04-coarse').describe()}"
    handle = open_showers(out, load_geometry("par04-coarse"))
    assert (handle.n, handle.n_voxels) == (len(energies), 359)
    got_energies, coarse = handle.read_all()
    np.testing.assert_array_equal(got_energies, energies)
    np.testing.assert_allclose(coarse.sum(1, dtype=np.float64), showers.sum(1, dtype=np.float64), rtol=1e-5)
    assert coarse.sum(dtype=np.float64) == pytest.approx(showers.sum(dtype=np.float64), rel=1e-6)
    attrs = handle.attrs()
    assert attrs["source_file"] == str(sample_path())
    assert (attrs["source_geometry"], attrs["geometry"]) == ("par04", "par04-coarse")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coarse.h5"]


def test_fetch_list_shows_the_ten_official_files() -> None:
    result = runner.invoke(app, ["data", "fetch", "--list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 10 == len(OFFICIAL_DATASETS)
    for line, entry in zip(lines, OFFICIAL_DATASETS.values()):
        assert line.split()[:4] == [entry.key, entry.filename, entry.geometry, entry.role]
        assert f"zenodo.org/records/{entry.zenodo_record}/files/{entry.filename}" in line
    names = {entry.filename for entry in OFFICIAL_DATASETS.values()}
    assert names == {"dataset_1_photons_1.hdf5", "dataset_1_photons_2.hdf5", "dataset_1_pions_1.hdf5",
                     "dataset_1_pions_2.hdf5", "dataset_2_1.hdf5", "dataset_2_2.hdf5", "dataset_3_1.hdf5",
                     "dataset_3_2.hdf5", "dataset_3_3.hdf5", "dataset_3_4.hdf5"}


# --- fetch without the network -------------------------------------------------------------------------------------
class FakeResponse(io.BytesIO):
    """What ``urlopen`` returns: a readable body with headers."""

    def __init__(self, body: bytes, length: int | None = None):
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body) if length is None else length)}


def no_network(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_fetch_without_network_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    code, out, err = run_main(monkeypatch, capsys, "data", "fetch", "ds1-photons-1", "--dir", str(tmp_path / "dl"))
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("caloforge: error: https://zenodo.org/records/8099322/files/dataset_1_photons_1.hdf5")
    assert "cannot download" in lines[0] and "Temporary failure in name resolution" in lines[0]
    assert list((tmp_path / "dl").iterdir()) == []


def test_fetch_unknown_dataset(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    code, _, err = run_main(monkeypatch, capsys, "data", "fetch", "ds4-1", "--dir", str(tmp_path))
    assert code == 2 and err.splitlines() == [f"caloforge: error: unknown dataset 'ds4-1'; known: "
                                              f"{', '.join(OFFICIAL_DATASETS)}"]


def test_fetch_rejects_a_wrong_md5(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"not the dataset"))
    code, _, err = run_main(monkeypatch, capsys, "data", "fetch", "ds1-pions-2", "--dir", str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1
    assert "dataset_1_pions_2.hdf5: downloaded file rejected: MD5" in err
    assert list(tmp_path.iterdir()) == []


def test_fetch_checks_structure_where_no_md5_is_published(tmp_path: Path, monkeypatch, capsys, sample) -> None:
    """ds2/ds3 have no published MD5: a download that is not a full file of the geometry is refused."""
    small = write_showers(tmp_path / "small.h5", sample[0][:5], sample[1][:5])
    body = small.read_bytes()
    small.unlink()
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(body))
    code, _, err = run_main(monkeypatch, capsys, "data", "fetch", "ds2-1", "--dir", str(tmp_path))
    assert code == 2 and err.splitlines() == ["caloforge: error: dataset_2_1.hdf5: downloaded file rejected: "
                                              "5 showers, expected 100000"]
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"<html>quota exceeded</html>"))
    code, _, err = run_main(monkeypatch, capsys, "data", "fetch", "ds3-1", "--dir", str(tmp_path))
    assert code == 2 and "dataset_3_1.hdf5: downloaded file rejected: not an HDF5 file" in err
    assert list(tmp_path.iterdir()) == []


def test_fetch_detects_a_cut_connection(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"x" * 100, length=1000))
    code, _, err = run_main(monkeypatch, capsys, "data", "fetch", "ds2-2", "--dir", str(tmp_path))
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot download (connection closed after 100 of 1000 bytes)" in err
    assert list(tmp_path.iterdir()) == []
