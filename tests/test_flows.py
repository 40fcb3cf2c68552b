"""Shared flow pieces: flow 1's u variables and sampling, the voxel coding, MAF/IAF blocks, the intrinsic dimension."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from caloforge.cli import app
from caloforge.data import open_showers, sample_path
from caloforge.data.intrinsic_dim import levina_bickel
from caloforge.geometry import Rebinning, load_geometry
from caloforge.models.flows import (InverseAutoregressiveFlow, LayerEnergyFlow, MaskedAutoregressiveFlow, VoxelCoding,
                                    fit_preprocessing, layer_sums)
from caloforge.models.flows.hit_counts import HitCountLaw, draw_counted_hits, fit_hit_counts
from caloforge.models.flows.voxels import draw_hits, gamma_fractions


@pytest.fixture(scope="module")
def coarse():
    """(geometry, energies, showers) of 300 bundled Par04 showers rebinned to par04-coarse."""
    fine, geometry = load_geometry("par04"), load_geometry("par04-coarse")
    energies, showers = open_showers(sample_path(), fine).read(slice(0, 300))
    return geometry, torch.from_numpy(energies), torch.from_numpy(Rebinning(fine, geometry)(showers))


def test_layer_energy_round_trip_through_u_variables(coarse):
    geometry, energies, showers = coarse
    fitted = fit_preprocessing(geometry, energies, showers)
    flow = LayerEnergyFlow(geometry.n_layers, fitted["layers"], transforms=1, hidden=[8])
    layers = torch.from_numpy(geometry.layer_energies(showers.numpy())).clamp_min(1e-3)
    u = flow.to_u(layers, energies)
    assert torch.allclose(u[:, 0], layers.sum(1) / energies)
    back = flow.from_u(flow.decode(flow.encode(u)), energies)
    assert torch.allclose(back, layers, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("passes, calls", [(None, 6), (2, 2)])
def test_layer_energy_flow_samples_in_passes_network_calls_a_block(coarse, passes, calls):
    """Autoregressive over the layers, flow 1 costs a network call per layer a block; grouped, ``passes``."""
    geometry, energies, showers = coarse
    flow = LayerEnergyFlow(geometry.n_layers, fit_preprocessing(geometry, energies, showers)["layers"],
                           transforms=1, hidden=[8], passes=passes)
    counted = []
    flow.flow.blocks[0].hyper.register_forward_hook(lambda *_: counted.append(1))
    with torch.no_grad():
        layers = flow.sample(energies[:20], torch.Generator().manual_seed(0))
    assert len(counted) == calls and geometry.n_layers == 6
    assert layers.shape == (20, 6) and torch.isfinite(layers).all() and (layers >= 0).all()


def test_sampled_layer_energies_sum_to_u0_times_incident_energy(coarse):
    geometry, energies, showers = coarse
    torch.manual_seed(0)
    flow = LayerEnergyFlow(geometry.n_layers, fit_preprocessing(geometry, energies, showers)["layers"], 2, [16])
    with torch.no_grad():
        u = flow.sample_u(energies, torch.Generator().manual_seed(1))
        layers = flow.from_u(u, energies)
    assert layers.shape == (len(energies), geometry.n_layers)
    assert torch.isfinite(layers).all() and (layers >= 0).all()
    assert torch.allclose(layers.sum(1), u[:, 0] * energies, rtol=1e-5)


def test_voxel_coding_round_trip_restores_thresholded_showers(coarse):
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers)["voxels"])
    noisy = coding.dequantise(showers)
    layers = coding.layer_energies(noisy)
    back = coding.decode(coding.encode(noisy, layers), layers)
    expected = torch.where(noisy < coding.threshold, torch.zeros_like(noisy), noisy)
    assert torch.allclose(back, expected, rtol=1e-3, atol=1e-3)
    assert (back[showers < coding.threshold] == 0).all(), "empty voxels come back empty"


def test_decode_cut_keeps_the_layer_energies_less_the_dequantisation_noise(coarse):
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers)["voxels"])
    layers = coding.layer_energies(coding.dequantise(showers))
    # a blurred reconstruction: the true shares mixed with a little of a uniform share in every voxel
    clean = coding.cut(showers)
    uniform = coding.layer_energies(clean)[:, coding.voxel_layer] / coding.noise_voxels[coding.voxel_layer]
    blurred = 0.99 * clean + 0.01 * uniform
    y = coding.encode(blurred, coding.layer_energies(blurred))
    decoded = coding.decode_cut(y, layers)
    target = (layers - 0.5 * coding.threshold * coding.noise_voxels).clamp_min(0)
    kept = target > 10 * coding.threshold
    assert kept.float().mean() > 0.8
    assert torch.allclose(coding.layer_energies(decoded)[kept], target[kept], rtol=1e-4)
    assert ((decoded == 0) | (decoded >= coding.threshold)).all()


def test_decode_cut_gives_a_hit_voxel_its_share_over_its_hit_probability(coarse):
    """Shares are expectations over hit and miss: inside a layer, hit voxels end up in proportion share / P(hit)."""
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers)["voxels"])
    layers = coding.layer_energies(coding.dequantise(showers))
    y = coding.encode(coding.dequantise(showers), layers)
    probabilities = torch.rand(showers.shape, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.2
    decoded = coding.decode_cut(y, layers, probabilities, torch.Generator().manual_seed(2))
    lit = decoded > 0
    assert 0.1 < lit.float().mean() < 0.9, "some voxels are drawn as misses, some as hits"
    ratio = torch.where(lit, decoded / (coding.layer_shares(y) / probabilities), torch.nan)
    for layer in range(geometry.n_layers):  # one common factor per shower and layer: the rescaling to its energy
        in_layer = coding.voxel_layer == layer
        block, hit = ratio[:, in_layer], lit[:, in_layer]
        largest = block.nan_to_num(0).amax(1)
        smallest = torch.where(hit, block, torch.inf).amin(1)
        rows = hit.any(1)  # (with probabilities of 0.2 or more no layer is left to its expected shares)
        assert rows.sum() > 100 and ((largest - smallest)[rows] <= 1e-4 * largest[rows]).all()


@pytest.mark.parametrize("shape", [1, 4])
def test_gamma_hits_scatter_about_share_over_probability_and_keep_the_layer_energies(coarse, shape):
    """A hit's energy is the threshold plus a gamma draw of shape k (k = 1: exponential), the layers' energies kept."""
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers)["voxels"])
    layers = coding.layer_energies(coding.dequantise(showers))
    y = coding.encode(coding.dequantise(showers), layers)
    probabilities = torch.full(showers.shape, 0.5)
    expected, scattered, again = (coding.decode_cut(y, layers, probabilities, torch.Generator().manual_seed(2),
                                                    hit_shape=k) for k in (None, shape, shape))
    assert torch.equal(scattered, again), "seeded"
    lit = layers > 10 * coding.threshold * coding.noise_voxels  # clear of the noise: never emptied by the draws
    assert lit.float().mean() > 0.8
    assert torch.allclose(coding.layer_energies(scattered)[lit], coding.layer_energies(expected)[lit], rtol=1e-4)
    # a common factor per layer times a gamma draw per hit, where the hit's mean is far above the threshold
    # (the threshold the draw starts from is then negligible)
    bright = coding.layer_shares(y) / probabilities * layers[:, coding.voxel_layer] > 30 * coding.threshold
    ratio = torch.where(bright, scattered / coding.layer_shares(y), 0.0)
    spreads = []
    for layer in range(geometry.n_layers):
        block = ratio[:, coding.voxel_layer == layer]
        rows = (block > 0).sum(1) >= 20
        hit_values = torch.where(block[rows] > 0, block[rows], torch.nan)
        mean = hit_values.nanmean(1, keepdim=True)
        spreads.append(((hit_values - mean).square().nanmean(1).sqrt() / mean.squeeze(1)).mean())
    relative_spread = torch.stack(spreads).nanmean() * shape ** 0.5
    assert 0.7 < relative_spread < 1.2, "a gamma draw's standard deviation is its mean over the square root of k"


def test_gamma_fractions_of_any_shape_have_mean_one_and_variance_one_over_k():
    """Wilson-Hilferty draws (a tensor of shapes) and the mean of k exponentials (an integer k) alike."""
    shapes = torch.tensor([1.0, 2.5, 40.0]).repeat_interleave(200_000)
    draws = gamma_fractions(shapes, shapes, torch.Generator().manual_seed(0)).reshape(3, -1)
    assert torch.allclose(draws.mean(1), torch.ones(3), atol=0.01)
    assert torch.allclose(draws.var(1) * torch.tensor([1.0, 2.5, 40.0]), torch.ones(3), rtol=0.05)
    median_one = torch.quantile(draws[0, :100_000], 0.5)  # the exponential law's median: ln 2
    assert abs(median_one - np.log(2)) < 0.03
    integer = gamma_fractions(3, torch.zeros(200_000), torch.Generator().manual_seed(1))
    assert abs(integer.mean() - 1) < 0.01 and abs(integer.var() * 3 - 1) < 0.03


def test_deposit_law_scatters_bright_hits_less_than_faint_ones(coarse):
    """With hit_deposit the gamma shape is excess / deposit: bright voxels scatter by a small part of their energy
    (here less than a quarter of the exponential law's spread), and the layers keep their energies."""
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers)["voxels"])
    layers = coding.layer_energies(coding.dequantise(showers))
    y = coding.encode(coding.dequantise(showers), layers)
    probabilities = torch.full(showers.shape, 0.5)
    draw = {deposit: coding.decode_cut(y, layers, probabilities, torch.Generator().manual_seed(2), hit_shape=1,
                                       hit_deposit=deposit) for deposit in (None, 1.0)}
    lit = layers > 10 * coding.threshold * coding.noise_voxels
    assert torch.allclose(coding.layer_energies(draw[1.0])[lit], coding.layer_energies(draw[None])[lit], rtol=1e-4)
    mean_hit = coding.layer_shares(y) / probabilities * layers[:, coding.voxel_layer]
    bright = (mean_hit > 1000.0) & (draw[None] > 0) & (draw[1.0] > 0)
    assert bright.sum() > 500
    spread = {deposit: (draw[deposit] / mean_hit)[bright].log().std() for deposit in draw}
    assert spread[1.0] < 0.25 * spread[None], "shape >= 1000: the spread falls by sqrt(shape) up to the rescaling"


def test_per_layer_noise_keeps_empty_layers_under_the_threshold(coarse):
    """CaloMan's coding dequantises layer energies once per layer: empty layers stay apart from lit ones."""
    geometry, energies, showers = coarse
    showers = showers.double()  # float32 sums of 10 GeV layers are coarser than the threshold
    showers[:50, torch.from_numpy(np.flatnonzero(geometry.voxel_layer == geometry.n_layers - 1))] = 0  # empty layers
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers, dequantised_voxels=False)["voxels"])
    assert coding.per_layer_noise
    clean = coding.layer_energies(coding.cut(showers))
    noisy = coding.noisy_layer_energies(showers)
    assert ((noisy - clean >= 0) & (noisy - clean < coding.threshold)).all()
    assert (noisy[clean == 0] < coding.threshold).all() and (clean == 0).sum() >= 50
    assert (noisy[clean > 0] >= coding.threshold).all()


def test_layer_energies_drawn_in_the_gap_over_empty_layers_come_back_empty(coarse):
    """Dequantised per layer, the empty layers end at the threshold and the lit ones start at a deposit: a drawn
    energy between the threshold and the gap's middle is moved under the threshold; the rest come back as drawn,
    and a file fitted without the gap (before 2026-12-05) keeps every energy."""
    geometry, energies, showers = coarse
    fitted = fit_preprocessing(geometry, energies, showers, dequantised_voxels=False)["layers"]
    threshold, empty_below = fitted["threshold"], fitted["empty_below"]
    lit = torch.from_numpy(geometry.layer_energies(np.where(showers.numpy() >= threshold, showers.numpy(), 0)))
    assert threshold < empty_below < float(torch.quantile(lit[lit > 0].double(), 0.01))
    layers = lit.double().clamp_min(threshold) + 1.0
    in_gap = torch.zeros_like(layers, dtype=torch.bool)
    in_gap[::3, -1] = True
    layers[in_gap] = threshold + (empty_below - threshold) * torch.rand(int(in_gap.sum()), dtype=torch.float64)
    layers[1::3, -1] = 0.5 * threshold  # already empty

    def round_trip(fitted_layers: dict) -> torch.Tensor:
        flow = LayerEnergyFlow(geometry.n_layers, fitted_layers, transforms=1, hidden=[8]).double()
        return flow.from_u(flow.to_u(layers, energies.double()), energies.double())

    back = round_trip(fitted)
    assert (back[in_gap] < threshold).all() and (back[in_gap] > threshold ** 2 / empty_below).all()
    assert torch.allclose(back[~in_gap], layers[~in_gap], rtol=1e-9)
    old = {key: value for key, value in fitted.items() if key not in ("threshold", "empty_below")}
    assert torch.allclose(round_trip(old), layers, rtol=1e-9)


def test_decode_cut_keeps_a_layer_whose_drawn_hits_all_miss(coarse):
    """Hit probabilities far too low must not empty a layer that holds energy: it keeps its expected shares."""
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers, dequantised_voxels=False)["voxels"])
    clean = coding.cut(showers)
    layers = coding.noisy_layer_energies(showers)
    y = coding.encode(clean, coding.layer_energies(clean))
    decoded = coding.decode_cut(y, layers, torch.full(showers.shape, 1e-4), torch.Generator().manual_seed(0))
    target = layers - 0.5 * coding.threshold
    lit = coding.layer_energies(clean) > 10 * coding.threshold
    assert lit.float().mean() > 0.8
    assert torch.allclose(coding.layer_energies(decoded)[lit], target[lit], rtol=1e-4)


def test_hits_drawn_given_at_least_one_follow_the_conditional_law():
    """In a certain layer every pattern of hits comes with its independent probability over P(at least one); the
    other layer is drawn freely (a voxel of probability 0 is never hit)."""
    probabilities = torch.tensor([[0.1, 0.3, 0.05, 0.2, 0.0, 0.4]]).expand(200_000, -1)
    certain = torch.tensor([[True, False]]).expand(200_000, -1)
    hits = draw_hits(probabilities, certain, torch.tensor([0, 0, 0, 1, 1, 1]), 2, torch.Generator().manual_seed(0))
    none = 0.9 * 0.7 * 0.95
    for pattern in itertools.product([False, True], repeat=3):
        law = np.prod([q if hit else 1 - q for hit, q in zip(pattern, (0.1, 0.3, 0.05))]) / (1 - none)
        seen = (hits[:, :3] == torch.tensor(pattern)).all(1).double().mean().item()
        assert abs(seen - (law if any(pattern) else 0.0)) < 0.004, pattern
    assert torch.allclose(hits[:, 3:].double().mean(0), torch.tensor([0.2, 0.0, 0.4], dtype=torch.double), atol=0.004)


def test_a_layer_that_must_hold_energy_draws_its_hits_given_one_passes(coarse):
    """With hit probabilities of 2 %, a 48-voxel layer draws no hit 38 % of the time: it is drawn given at least
    one hit, not filled with its expected shares, which would light nearly every voxel of it."""
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers, dequantised_voxels=False)["voxels"])
    clean = coding.cut(showers)
    layers = coding.noisy_layer_energies(showers)
    y = coding.encode(clean, coding.layer_energies(clean))
    decoded = coding.decode_cut(y, layers, torch.full(showers.shape, 0.02), torch.Generator().manual_seed(0),
                                hit_shape=1)
    lit = coding.layer_energies(clean) > 10 * coding.threshold
    for layer in (1, 2, 3):  # 48, 128 and 128 voxels
        hits = (decoded[:, coding.voxel_layer == layer] > 0).sum(1)[lit[:, layer]]
        assert len(hits) > 100 and (hits >= 1).all()
        assert hits.float().mean() < 0.1 * geometry.voxels_per_layer[layer], "drawn hits, not the expected shares"
    assert torch.allclose(coding.layer_energies(decoded)[lit], (layers - 0.5 * coding.threshold)[lit], rtol=1e-4)


def test_an_exponential_hit_holds_the_threshold_plus_an_excess(coarse):
    """A hit is a deposit above the readout threshold: a faint voxel drawn as a hit is never cut (an unshifted
    exponential of mean m would lose it with probability 1 - exp(-threshold / m), over 28 % under 3 thresholds),
    and the layers keep their energies."""
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers, dequantised_voxels=False)["voxels"])
    one = coding.cut(showers[:1]).double()
    faint_voxels = torch.from_numpy(np.flatnonzero(geometry.voxel_layer == 2)[:5])
    one[0, faint_voxels] = 1.6 * coding.threshold
    one = one.expand(20000, -1)
    layers = coding.layer_energies(one) + 0.5 * coding.threshold
    y = coding.encode(one, coding.layer_energies(one))
    certain = torch.ones_like(one)
    expected = coding.decode_cut(y, layers, certain)
    scattered = coding.decode_cut(y, layers, certain, torch.Generator().manual_seed(3), hit_shape=1)
    mean = expected[0]
    faint = (mean > coding.threshold) & (mean < 3 * coding.threshold)
    assert faint.sum() == 5 and (scattered[:, faint] > 0).all()
    assert torch.allclose(coding.layer_energies(scattered), coding.layer_energies(expected), rtol=1e-6)


def test_maf_inverts_and_iaf_mirrors_its_blocks():
    torch.manual_seed(0)
    x, context = torch.randn(64, 12), torch.randn(64, 3)
    maf = MaskedAutoregressiveFlow(12, 3, transforms=3, hidden=[32], passes=4, randperm=True, seed=5)
    z, _, trail = maf.encode(x, context)
    assert len(trail) == 4 and torch.allclose(maf.decode(z, context), x, atol=1e-4)
    iaf = InverseAutoregressiveFlow(12, 3, transforms=3, hidden=[32], passes=4, randperm=True, seed=5)
    assert all(torch.equal(a.order, b.order) for a, b in zip(maf.blocks, iaf.blocks)), "same voxel orders"
    sample, ladj, trail = iaf.decode(torch.randn(64, 12, generator=torch.Generator().manual_seed(2)), context)
    assert sample.shape == (64, 12) and ladj.shape == (64,) and len(trail) == 4
    assert torch.allclose(iaf.sample(context, torch.Generator().manual_seed(2)), sample, atol=1e-5), "fast path"


def test_intrinsic_dimension_of_a_linear_subspace():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(50, 5)))[0]
    points = rng.uniform(-1, 1, size=(2000, 5)) @ basis.T
    assert levina_bickel(points, k=20) == pytest.approx(5, abs=0.5)


def test_intrinsic_dim_command_on_the_bundled_sample():
    result = CliRunner().invoke(app, ["data", "intrinsic-dim", str(sample_path()), "--n", "200", "--k", "10",
                                      "--preprocess", "log"])
    assert result.exit_code == 0, result.output
    assert "intrinsic dimension" in result.output and "preprocess=log" in result.output


def test_hit_counts_drawn_from_the_fitted_law_follow_the_layer_energy():
    """Counts fixed by the layer energy up to a shift shared by all layers: the drawn counts follow the energy as
    closely as the law's cells allow, keep the shared shift's correlation between neighbouring layers, never light
    an empty layer and give a lit one at least one hit."""
    generator = torch.Generator().manual_seed(0)
    energies = 1000 * 10 ** (2 * torch.rand(6000, generator=generator))
    layers = 2 + 60 * torch.rand(6000, 4, generator=generator)
    layers[::5, 3] = 0
    shift = torch.randint(0, 5, (6000, 1), generator=generator)
    counts = torch.where(layers > 0, (layers / 2).round() + shift, 0)
    fitted = fit_hit_counts(energies, layers, counts)
    assert fitted["correlation"] > 0.6  # the shift, diluted by the energy spread within a cell
    drawn = HitCountLaw(fitted).draw(energies, layers, generator)
    assert (drawn[layers == 0] == 0).all() and (drawn[layers > 0] >= 1).all()
    lit = (layers > 0).all(1)
    residual = drawn[lit] - (layers[lit] / 2).round()
    assert residual.mean().sub(2).abs() < 0.2 and residual.std() < 2.5
    assert torch.corrcoef(residual[:, :2].T)[0, 1] > 0.5
    # without the copula the neighbouring layers' draws are independent: the shared shift is lost
    uncoupled = HitCountLaw({**fitted, "correlation": 0.0}).draw(energies, layers, generator)
    residual = uncoupled[lit] - (layers[lit] / 2).round()
    assert torch.corrcoef(residual[:, :2].T)[0, 1].abs() < 0.1


def test_counted_hits_take_the_count_from_the_likeliest_voxels():
    """Exactly the drawn count a layer (fewer where fewer voxels can be hit), never a voxel of probability 0, the
    likelier voxels more often."""
    probabilities = torch.tensor([[0.9, 0.5, 0.1, 0.0, 0.3, 0.3, 0.0]]).expand(50_000, -1)
    counts = torch.tensor([[1.0, 5.0]]).expand(50_000, -1)
    hits = draw_counted_hits(probabilities, counts, torch.tensor([0, 0, 0, 0, 1, 1, 1]),
                             torch.Generator().manual_seed(0))
    assert (hits[:, :4].sum(1) == 1).all() and (hits[:, 4:].sum(1) == 2).all()
    assert not hits[:, [3, 6]].any()
    frequency = hits[:, :3].double().mean(0)
    assert frequency[0] > 0.75 and frequency[0] > frequency[1] > frequency[2] > 0


def test_decode_cut_with_the_hit_count_law_ties_the_count_to_the_layer_energy(coarse):
    """With the same hit probability on every voxel an independent draw lights about as many voxels in every
    layer whatever its energy; the fitted law lights as many as Geant4 does at that energy."""
    geometry, energies, showers = coarse
    coding = VoxelCoding(geometry, fit_preprocessing(geometry, energies, showers, dequantised_voxels=False)["voxels"])
    clean = coding.cut(showers)
    layers = coding.noisy_layer_energies(showers)
    y = coding.encode(clean, coding.layer_energies(clean))
    flat = torch.full(showers.shape, 0.3)

    def counts(**energies_given) -> torch.Tensor:
        decoded = coding.decode_cut(y, layers, flat, torch.Generator().manual_seed(0), hit_shape=1, **energies_given)
        assert torch.allclose(coding.layer_energies(decoded)[lit], (layers - 0.5 * coding.threshold)[lit], rtol=1e-4)
        return layer_sums((decoded > 0).double(), coding.voxel_layer, geometry.n_layers)[:, 2][lit[:, 2]]

    lit = coding.layer_energies(clean) > 10 * coding.threshold
    geant4 = layer_sums((clean > 0).double(), coding.voxel_layer, geometry.n_layers)[:, 2][lit[:, 2]]
    energy = coding.layer_energies(clean)[:, 2][lit[:, 2]].double().log()
    independent, counted = counts(), counts(energies=energies)
    assert torch.corrcoef(torch.stack([energy, independent.log()]))[0, 1] < 0.3
    assert torch.corrcoef(torch.stack([energy, counted.log()]))[0, 1] > 0.8 * torch.corrcoef(
        torch.stack([energy, geant4.log()]))[0, 1]
