"""Separation power, Fréchet/kernel distances, the classifier protocol's pieces and the published tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from caloforge.evaluate.classifier import MLP, PROTOCOL, QUICK, _jsd, split_indices
from caloforge.evaluate.distances import fpd, frechet_distance, kpd, mean_cov, mmd_poly_unbiased, normalise_features
from caloforge.evaluate.histograms import centre_width_limits, separation_power
from caloforge.evaluate.published import published_results
from caloforge.evaluate.resnet import ShowerResNet
from caloforge.geometry import load_geometry


def closed_form_frechet(mu1, s1, mu2, s2):
    root = scipy.linalg.sqrtm(s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(root @ s2 @ root).real))


@pytest.fixture
def gaussians():
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    return rng.standard_normal(d), a @ a.T + np.eye(d), rng.standard_normal(d), b @ b.T + 0.5 * np.eye(d)


def test_separation_power_limits():
    p = np.array([1.0, 2.0, 3.0, 0.0])
    assert separation_power(p, 10 * p) == pytest.approx(0.0)
    assert separation_power([1, 0, 0], [0, 0, 5]) == pytest.approx(1.0)
    assert separation_power([1, 1], [1, 0]) == pytest.approx(0.5 * (0.25 / 1.5 + 0.25 / 0.5))
    assert math.isnan(separation_power([0, 0], [1, 1]))


def test_binning_limits_follow_the_calochallenge():
    assert centre_width_limits(load_geometry("ds2"), 5) == (30.0, 30.0)
    ds1 = load_geometry("ds1-pions")
    assert centre_width_limits(ds1, ds1.layer_ids.index(12)) == (500.0, 400.0)
    assert centre_width_limits(ds1, ds1.layer_ids.index(1)) == (100.0, 100.0)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # sqrtm of the singular case
def test_frechet_distance_of_known_gaussians(gaussians):
    mu1, s1, mu2, s2 = gaussians
    expected = closed_form_frechet(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu2, s2, method="sqrtm") == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    singular = s1.copy()
    singular[0, :] = singular[:, 0] = 0.0  # a constant feature: Cholesky fails, the eigen route takes over
    assert frechet_distance(mu1, singular, mu2, s2) == pytest.approx(
        frechet_distance(mu1, singular, mu2, s2, method="sqrtm"), rel=1e-7)


def test_fpd_extrapolates_to_the_closed_form(gaussians):
    mu1, s1, mu2, s2 = gaussians
    rng = np.random.default_rng(1)
    x, y = rng.multivariate_normal(mu1, s1, 30_000), rng.multivariate_normal(mu2, s2, 30_000)
    result = fpd(x, y, min_samples=5_000, max_samples=20_000, normalise=False, threads=2)
    # resamples of the two samples extrapolate to the distance between the samples' own moments ...
    empirical = closed_form_frechet(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert result.value == pytest.approx(empirical, rel=0.005)
    # ... which is the populations' distance up to the samples' statistical fluctuation
    expected = closed_form_frechet(mu1, s1, mu2, s2)
    assert result.value == pytest.approx(expected, rel=0.03)
    assert result.settings["sizes"][0] == 5_000 and result.settings["sizes"][-1] == 20_000
    assert result.to_json()["value_x1e3"] == pytest.approx(result.value * 1e3)
    # the same distribution: an extrapolated distance near 0 (the fit keeps it >= 0)
    same = fpd(x[:15_000], x[15_000:], min_samples=5_000, max_samples=15_000, normalise=False)
    assert 0.0 <= same.value < 0.01 * expected


def test_mean_cov_matches_numpy():
    x = np.random.default_rng(2).standard_normal((500, 7)) * 3 + 1
    mu, cov = mean_cov(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-10)


def brute_mmd(x, y):
    d = x.shape[1]

    def kernel(a, b):
        return (a @ b.T / d + 1.0) ** 4

    xx, yy, xy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    return (xx.sum() - np.trace(xx)) / (m * (m - 1)) + (yy.sum() - np.trace(yy)) / (n * (n - 1)) - 2 * xy.mean()


def test_kpd_mmd_matches_float64_brute_force():
    rng = np.random.default_rng(4)
    for shift in (0.0, 0.2):
        x, y = rng.standard_normal((1100, 9)), rng.standard_normal((900, 9)) + shift
        assert mmd_poly_unbiased(x, y) == pytest.approx(brute_mmd(x, y), rel=1e-4, abs=1e-6)


def test_kpd_separates_and_reports_percentile_spread():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((3000, 5)), rng.standard_normal((3000, 5))
    same = kpd(x, y, batch_size=1000)
    shifted = kpd(x, y + 0.3, batch_size=1000)
    assert abs(same.value) < 0.2 * shifted.value
    low, high = np.percentile(shifted.settings["values"], [16.275, 83.725])
    assert shifted.error == pytest.approx((high - low) / 2)
    assert shifted.settings["batch_size"] == 1000


def test_normalisation_uses_the_reference_max():
    ref = np.array([[1.0, -4.0, 0.0], [2.0, 2.0, 0.0]])
    a, b = normalise_features(ref, ref * 2)
    np.testing.assert_allclose(a, [[0.5, -1.0, 0.0], [1.0, 0.5, 0.0]])
    np.testing.assert_allclose(b, 2 * a)


def test_split_follows_upstream_rounding():
    train, test, val = split_indices(1001, np.random.default_rng(0))
    assert (len(train), len(test), len(val)) == (600, 200, 201)
    assert len(np.unique(np.concatenate([train, test, val]))) == 1001


def test_jsd_of_perfect_and_useless_classifiers():
    labels = np.array([0.0, 1.0, 0.0, 1.0])
    assert _jsd(labels, np.full(4, 0.5)) == pytest.approx(0.0)
    assert _jsd(labels, np.clip(labels, 1e-6, 1 - 1e-6)) == pytest.approx(1.0, abs=1e-4)


def test_protocol_network_shape():
    model = MLP(362, PROTOCOL.n_hidden, PROTOCOL.n_layer)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(362, 2048), (2048, 2048), (2048, 2048),
                                                                 (2048, 1)]
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in model.modules()) == 3
    assert (PROTOCOL.lr, PROTOCOL.batch_size, PROTOCOL.epochs, PROTOCOL.dtype) == (2e-4, 1000, 50, "float64")
    assert PROTOCOL.protocol and not QUICK.protocol


def test_resnet_output_shape():
    model = ShowerResNet(QUICK.resnet_widths, QUICK.resnet_blocks)
    out = model((torch.randn(3, 1, 45, 16, 9), torch.randn(3, 1)))
    assert out.shape == (3, 1)


def test_published_tables():
    dataset, rows = published_results("par04")
    assert dataset == "ds2" and rows[0].is_geant4
    calodiffusion = next(r for r in rows if r.name == "CaloDiffusion")
    assert calodiffusion.values["auc_low"] == pytest.approx(0.5766)
    assert calodiffusion.values["fpd_x1e3"] == pytest.approx(146.9334)
    assert published_results("ds1-photons")[0] == "ds1_photons"
    assert published_results("par04-coarse") is None
