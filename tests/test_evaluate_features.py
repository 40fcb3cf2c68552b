"""High-level features: the vectorised, chunked computation against a direct transcription of the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from caloforge.data import open_showers, sample_path
from caloforge.evaluate.cache import cache_key, cached_features, load_cached, sha256_file
from caloforge.evaluate.features import (DECADE_EDGES_MEV, FeatureAccumulator, ShowerFeatures, alpha_layers,
                                         compute_features, voxel_bin_edges)
from caloforge.geometry import Rebinning, load_geometry

THRESHOLD = 0.01515


def naive_features(geometry, energies, showers, threshold):
    """The definitions, layer by layer in float64 (the CaloChallenge's formulas, written out)."""
    showers = np.where(showers < threshold, 0.0, showers.astype(np.float64))
    out = {k: [] for k in ("e_layer", "ec_r", "width_r", "sparsity", "ec_eta", "ec_phi", "width_eta", "width_phi")}
    for layer in range(geometry.n_layers):
        sl = geometry.layer_slice(layer)
        block = showers[:, sl]
        total = block.sum(1)
        out["e_layer"].append(total)
        out["sparsity"].append(1.0 - (block > 0).mean(1))
        for name, coord in (("r", geometry.r_centres[sl]), ("eta", geometry.eta_centres[sl]),
                            ("phi", geometry.phi_centres[sl])):
            if name != "r" and geometry.n_alpha[layer] == 1:
                continue
            centre = (block * coord).sum(1) / (total + 1e-16)
            second = (block * coord**2).sum(1) / (total + 1e-16)
            out[f"ec_{name}"].append(centre)
            out[f"width_{name}"].append(np.sqrt(np.clip(second - centre**2, 0, None)))
    result = {k: np.stack(v, 1) if v else np.zeros((len(energies), 0)) for k, v in out.items()}
    result["e_tot"] = showers.sum(1)
    result["rho"] = np.zeros((len(energies), 0))
    if geometry.is_regular:  # cosine of adjacent layers' voxel vectors; NaN where a layer is empty
        pairs = []
        for layer in range(geometry.n_layers - 1):
            a, b = showers[:, geometry.layer_slice(layer)], showers[:, geometry.layer_slice(layer + 1)]
            norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
            with np.errstate(invalid="ignore"):
                pairs.append(np.where(norms > 0, (a * b).sum(1) / norms, np.nan))
        result["rho"] = np.stack(pairs, 1)
    return result, showers


@pytest.fixture(scope="module")
def sample():
    handle = open_showers(sample_path(), load_geometry("par04"))
    return handle.read_all()


def check_against_naive(geometry, energies, showers, features):
    expected, thresholded = naive_features(geometry, energies, showers, THRESHOLD)
    for name, values in expected.items():
        got = getattr(features, name).astype(np.float64)
        assert got.shape == values.shape, name
        scale = np.abs(np.nan_to_num(values)).max(initial=1.0)
        np.testing.assert_allclose(got, values, rtol=1e-5, atol=1e-5 * scale, err_msg=name)
    # the spectrum counts every voxel above threshold once, in the right decade
    assert features.voxel_counts.sum() == np.count_nonzero(thresholded)
    edges = voxel_bin_edges(THRESHOLD)
    counts, _ = np.histogram(thresholded[thresholded > 0], edges)
    assert np.abs(counts - features.voxel_counts).sum() <= 1e-4 * counts.sum()  # float32 log at bin edges
    np.testing.assert_allclose(features.mean_shower, thresholded.mean(0), rtol=1e-5, atol=1e-7)


def test_regular_geometry_matches_definitions(sample):
    energies, showers = sample
    geometry = load_geometry("par04")
    features = compute_features(geometry, [(energies, showers)], THRESHOLD)
    assert features.n == len(energies) and features.ec_eta.shape == (len(energies), 45)
    assert features.rho.shape == (len(energies), 44) and np.isfinite(features.rho[:, :10]).mean() > 0.99
    check_against_naive(geometry, energies, showers, features)


def test_irregular_geometry_matches_definitions(sample):
    energies, showers = sample
    fine, coarse = load_geometry("par04"), load_geometry("par04-coarse")
    showers = Rebinning(fine, coarse)(showers[:300])
    features = compute_features(coarse, [(energies[:300], showers)], THRESHOLD)
    # only the layers binned in alpha have eta/phi features
    assert features.ec_eta.shape[1] == len(alpha_layers(coarse)) == sum(n > 1 for n in coarse.n_alpha)
    assert features.rho.shape == (300, 0)  # no common voxel vector across irregular layers
    check_against_naive(coarse, energies[:300], showers, features)


def test_ds1_geometry_with_synthetic_showers():
    geometry = load_geometry("ds1-photons")
    rng = np.random.default_rng(3)
    showers = (rng.exponential(5.0, (200, geometry.n_voxels)) * (rng.random((200, geometry.n_voxels)) < 0.3))
    energies = 2.0 ** rng.integers(8, 23, 200).astype(np.float64)
    features = compute_features(geometry, [(energies, showers.astype(np.float32))], 1.0)
    expected, _ = naive_features(geometry, energies, showers.astype(np.float32), 1.0)
    for name, values in expected.items():
        np.testing.assert_allclose(getattr(features, name), values, rtol=1e-5, atol=1e-4, err_msg=name)
    assert features.high_level_vector().shape[1] == 30  # the CaloChallenge's count for ds1 photons


def test_chunking_does_not_change_anything(sample):
    energies, showers = sample
    geometry = load_geometry("par04")
    whole = compute_features(geometry, [(energies, showers)], THRESHOLD)
    accumulator = FeatureAccumulator(geometry, THRESHOLD, block_rows=64, threads=1)
    for begin in range(0, len(energies), 300):
        accumulator.add(energies[begin:begin + 300], showers[begin:begin + 300])
    chunked = accumulator.result()
    for name in ("e_layer", "ec_eta", "width_r", "sparsity", "voxel_counts", "decade_counts"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(chunked.decade_sums, whole.decade_sums, rtol=1e-5)


def test_threshold_is_applied_and_input_kept(sample):
    energies, showers = sample
    original = showers[:50].copy()
    accumulator = FeatureAccumulator(load_geometry("par04"), THRESHOLD)
    thresholded = accumulator.add(energies[:50], showers[:50])
    np.testing.assert_array_equal(showers[:50], original)  # not in place unless asked
    assert thresholded.min() == 0 and thresholded[thresholded > 0].min() >= THRESHOLD


def test_decades_and_high_level_vector(sample):
    energies, showers = sample
    features = compute_features(load_geometry("par04"), [(energies, showers)], THRESHOLD)
    decade = np.searchsorted(DECADE_EDGES_MEV, energies, side="right") - 1
    np.testing.assert_array_equal(features.decade_counts, np.bincount(decade, minlength=7))
    vector = features.high_level_vector()
    assert vector.shape == (len(energies), 362)  # the CaloChallenge's cls-high size for ds2
    np.testing.assert_allclose(vector[:, 0], np.log10(energies), rtol=1e-6)
    assert np.isfinite(vector).all()


def test_cache_round_trip(tmp_path, sample):
    energies, showers = sample
    geometry = load_geometry("par04")
    features = compute_features(geometry, [(energies[:100], showers[:100])], THRESHOLD)
    path = tmp_path / "f.npz"
    features.save(path)
    loaded = ShowerFeatures.load(path)
    for name in ("e_inc", "e_layer", "ec_phi", "voxel_counts", "decade_sums"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(features, name))
    assert loaded.geometry_name == "par04" and loaded.threshold == THRESHOLD

    digest = sha256_file(sample_path())
    calls = []
    first, cached = cached_features(digest, geometry, THRESHOLD, lambda: calls.append(1) or features, tmp_path)
    second, cached_again = cached_features(digest, geometry, THRESHOLD, lambda: calls.append(1) or features, tmp_path)
    assert (cached, cached_again, len(calls)) == (False, True, 1)
    assert load_cached(tmp_path, digest, geometry, 0.5) is None  # another threshold is another key
    assert cache_key(digest, geometry, THRESHOLD) != cache_key(digest, load_geometry("ds2"), THRESHOLD)
    (tmp_path / f"{cache_key(digest, geometry, THRESHOLD)}.npz").write_bytes(b"damaged")
    assert load_cached(tmp_path, digest, geometry, THRESHOLD) is None
