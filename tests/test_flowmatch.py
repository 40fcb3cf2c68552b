"""Flow matching, energy first: layer tokens, the flow ODE through the diffusion samplers, a trained model's
showers, and its consistency student's objective and sampler."""

from __future__ import annotations

import json

import pytest
import torch

from caloforge.data import open_showers, sample_path, write_showers
from caloforge.geometry import Rebinning, load_geometry
from caloforge.models.flowmatch.model import layer_token_index
from caloforge.models.flowmatch.path import T_START, consistency_pair, flow_sigmas, integrate
from caloforge.sampling.samplers import consistency
from caloforge.train import load_model, run_config_from_dict, train

TINY = {"width": 16, "depth": 1, "heads": 2, "energy_width": 16, "energy_depth": 1}


@pytest.fixture(scope="module")
def coarse(tmp_path_factory):
    """200 bundled Par04 showers rebinned to the irregular par04-coarse: (geometry, energies, showers, file)."""
    fine, geometry = load_geometry("par04"), load_geometry("par04-coarse")
    energies, showers = open_showers(sample_path(), fine).read(slice(0, 200))
    showers = Rebinning(fine, geometry)(showers)
    path = write_showers(tmp_path_factory.mktemp("data") / "coarse.h5", energies, showers)
    return geometry, torch.from_numpy(energies), torch.from_numpy(showers), str(path)


@pytest.mark.parametrize("name", ["par04", "par04-coarse"])
def test_layer_tokens_hold_every_voxel_once_and_pad_with_zeros(name):
    geometry = load_geometry(name)
    index, positions = layer_token_index(geometry)
    assert index.shape == (geometry.n_layers, geometry.voxels_per_layer.max())
    y = torch.randn(3, geometry.n_voxels)
    tokens = torch.cat([y, torch.zeros(3, 1)], dim=1)[:, index]
    assert torch.equal(tokens.flatten(1)[:, positions], y)
    assert int((index == geometry.n_voxels).sum()) == index.numel() - geometry.n_voxels
    if geometry.is_regular:  # a plain reshape of the layer > alpha > r order
        assert torch.equal(tokens, y.reshape(3, geometry.n_layers, -1))


@pytest.mark.parametrize("sampler, steps", [("ddim", 200), ("heun", 12), ("dpmpp", 12)])
def test_the_exact_velocity_carries_noise_to_gaussian_data(sampler, steps):
    """With the exact velocity of the straight path from N(0, 1) to N(m, s^2), the samplers integrate the flow's
    ODE in their variable x = x_t / t and land on the data distribution."""
    m, s = 1.5, 0.4

    def exact_velocity(x_t, t):
        t = t[:, None]
        variance = (1 - t) ** 2 + (t * s) ** 2
        return m + (x_t - t * m) * (t * s**2 - (1 - t)) / variance

    x1 = integrate(exact_velocity, (4000, 1), sampler, steps, torch.Generator().manual_seed(0))
    assert abs(float(x1.mean()) - m) < 0.03 and abs(float(x1.std()) - s) < 0.03


def run_config(path: str, voxels: str = "hits", **train_settings):
    return run_config_from_dict({"family": "flowmatch", "geometry": "par04-coarse",
                                 "model": {**TINY, "voxels": voxels},
                                 "data": {"train": path, "val_fraction": 0.2},
                                 "train": {"epochs": 6, "batch_size": 40, "lr": 3e-3, "warmup_steps": 1,
                                           "device": "cpu", "snapshot_every": 3, **train_settings}})


def test_a_cpu_budget_stops_training_and_resuming_keeps_counting(coarse, tmp_path):
    """``train.cpu_minutes`` ends the run within the step that spends it, also across a resume."""
    run = run_config(coarse[3], cpu_minutes=1e-6)
    train(run, tmp_path / "run", progress=False)
    train(run, tmp_path / "run", resume=True, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [1]


@pytest.mark.parametrize("voxels", ["hits", "shares"])
def test_training_lowers_the_loss_and_sampling_is_seeded_and_keeps_the_energy_models_layers(coarse, tmp_path, voxels):
    geometry, energies, _, path = coarse
    torch.manual_seed(0)
    model_path = train(run_config(path, voxels), tmp_path / "run", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records[-1]["val_loss"] < records[0]["val_loss"]
    assert all(record["cpu_seconds"] > 0 for record in records)
    assert sorted(p.name for p in (tmp_path / "run").glob("epoch-*.pt")) == ["epoch-3.pt", "epoch-6.pt"]
    model, _ = load_model(model_path)
    draw = lambda seed: model.sample(energies[:50], torch.Generator().manual_seed(seed), steps=3)
    first = draw(1)
    assert first.shape == (50, geometry.n_voxels) and torch.isfinite(first).all() and (first >= 0).all()
    assert torch.equal(first, draw(1)) and not torch.equal(first, draw(2))
    hit = first[first > 0]
    assert float(hit.min()) >= model.coding.threshold
    # every lit layer holds what the energy model drew for it, less the expected dequantisation noise: the shape
    # model only spreads it
    layers = model.energy.sample(energies[:50], torch.Generator().manual_seed(1), steps=3)
    expected = (layers - 0.5 * model.coding.threshold).clamp_min(0)
    drawn = model.coding.layer_energies(first)
    lit = drawn > 0
    assert torch.allclose(drawn[lit], expected[lit], rtol=1e-3)
    if voxels == "hits":  # a layer of energy beyond the threshold is never left empty
        assert (lit | (expected <= model.coding.threshold)).all()


def test_the_exact_flow_of_a_point_is_already_consistent():
    """Data at one point c: the exact velocity (c - x_t) / (1 - t) aims every x_t at c, so the teacher's Euler step
    stays on the trajectory and the student's end estimate equals the target's; a student off by a constant
    velocity is off by (1 - t)."""
    torch.manual_seed(0)
    c = torch.tensor([1.5, -2.0, 0.5]).expand(256, 3)
    exact = lambda x_t, t: (c - x_t) / (1 - t).clamp_min(1e-6)[:, None]
    times = torch.linspace(T_START, 1, 9)
    mine, goal = consistency_pair(exact, exact, exact, c, times)
    assert torch.allclose(mine, c, atol=1e-4) and torch.allclose(goal, c, atol=1e-4)
    mine, goal = consistency_pair(lambda x_t, t: exact(x_t, t) + 1, exact, exact, c, times)
    assert torch.allclose(goal, c, atol=1e-4) and float((mine - goal).abs().min()) > 0.12  # 1 - t >= (1 - T_START) / 8


def test_the_consistency_sampler_makes_one_pass_per_level_and_renoises_between():
    levels, inputs = flow_sigmas(3), []

    def denoiser(x, sigma):
        inputs.append((float(sigma), x))
        return torch.zeros_like(x)

    out = consistency(denoiser, levels[0] * torch.randn(20_000, 2), levels, torch.Generator().manual_seed(0))
    assert [sigma for sigma, _ in inputs] == pytest.approx(levels[:-1].tolist())
    assert [float(x.std()) for _, x in inputs] == pytest.approx(levels[:-1].tolist(), rel=0.03)
    assert torch.equal(out, torch.zeros(20_000, 2))
