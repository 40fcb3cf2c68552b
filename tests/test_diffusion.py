"""CaloDiffusion: cylindrical convolutions, the U-Net on every geometry's grid, GLaM, the objectives, training
through the shared trainer and sampling. Tiny widths and a few real Par04 showers keep it fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from caloforge.contract import from_dict
from caloforge.data import write_showers
from caloforge.data.transforms import THRESHOLDS_MEV, voxel_preprocessing
from caloforge.errors import CaloforgeError
from caloforge.geometry import load_geometry
from caloforge.models import get_family
from caloforge.models.diffusion import CaloDiffusionConfig
from caloforge.models.diffusion.cylindrical import CylindricalConv3d, CylindricalConvTranspose3d
from caloforge.models.diffusion.glam import GLaM
from caloforge.models.diffusion.layers import fit_layer_model
from caloforge.models.diffusion.patches import from_patches, to_patches
from caloforge.models.diffusion.unet import UNet
from caloforge.train import RunConfig, load_model, load_run_config, train
from caloforge.train.config import DataConfig, TrainConfig

ALPHA = 3  # the alpha axis of an (N, C, layer, alpha, r) image
FAMILY = get_family("calodiffusion")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def showers(rebinned_sample):
    """{geometry name: (energies, showers)} for 64 real showers, fine and coarse."""
    return {name: rebinned_sample(64, name)[1:3] for name in ("par04", "par04-coarse")}


def tiny_model(name, showers, **config):
    geometry = load_geometry(name)
    config = CaloDiffusionConfig(**{"channels": [4, 4], **config})
    energies, x = showers[name]
    torch.manual_seed(0)
    return FAMILY.build(config, geometry, FAMILY.fit(config, geometry, energies, x))


def test_cylindrical_convolutions_commute_with_alpha_rotations():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 8, 6)
    conv = CylindricalConv3d(3, 4)
    torch.testing.assert_close(conv(x.roll(1, ALPHA)), conv(x).roll(1, ALPHA))
    down = CylindricalConv3d(3, 4, 4, stride=2)  # one output bin per two input bins
    torch.testing.assert_close(down(x.roll(2, ALPHA)), down(x).roll(1, ALPHA))
    up = CylindricalConvTranspose3d(3, 4)  # two output bins per input bin
    torch.testing.assert_close(up(x.roll(1, ALPHA), (10, 16, 12)), up(x, (10, 16, 12)).roll(2, ALPHA))
    # and the seam is really closed: a plain zero-padded convolution is not equivariant
    plain = torch.nn.Conv3d(3, 4, 3, padding=1)
    assert not torch.allclose(plain(x.roll(1, ALPHA)), plain(x).roll(1, ALPHA))


@pytest.mark.parametrize("shape", [(45, 16, 9), (5, 10, 30), (6, 16, 8), (7, 10, 23), (1, 1, 1)])
def test_unet_keeps_any_grid_shape(shape):
    net = UNet(3, [4, 4, 4, 4, 4])  # four halvings: sizes down to 1 and odd sizes on the way
    out = net(torch.randn(2, 3, *shape), torch.rand(2), torch.rand(2))
    assert out.shape == (2, 1, *shape) and not out.any()  # the output layer starts at zero: the trivial prediction


def test_unet_is_equivariant_to_rotations_of_the_whole_cylinder():
    """Without an alpha image, rotating a shower by 4 bins (a whole bin after two halvings of 16) rotates the output."""
    torch.manual_seed(0)
    net = UNet(3, [4, 4, 4])
    torch.nn.init.normal_(net.out.weight)  # starts at zero, which would make the check empty
    x, energy, noise = torch.randn(2, 3, 45, 16, 9), torch.rand(2), torch.rand(2)
    torch.testing.assert_close(net(x.roll(4, ALPHA), energy, noise), net(x, energy, noise).roll(4, ALPHA),
                               atol=1e-5, rtol=1e-4)


def test_default_widths_have_the_papers_size():
    assert 0.4e6 < sum(p.numel() for p in UNet(3).parameters()) < 0.6e6


def test_glam_starts_as_a_lossless_energy_conserving_map(showers):
    geometry = load_geometry("par04-coarse")
    glam = GLaM(geometry)
    x = showers["par04-coarse"][1]
    grid = glam.encode(x)
    assert grid.shape == (len(x), 6, 16, 8)
    torch.testing.assert_close(grid.sum(dim=(2, 3)), torch.from_numpy(geometry.layer_energies(x.numpy())),
                               rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(glam.decode(grid), x, rtol=1e-4, atol=1e-3)


def test_glam_splits_single_angle_layers_evenly_over_the_hull():
    geometry = load_geometry("ds1-photons")  # layer 0: one angular bin of 8 radial ones
    glam = GLaM(geometry, noise=0.0)
    x = torch.zeros(1, geometry.n_voxels)
    x[0, 3] = 1.0
    layer = glam.encode(x)[0, 0]  # (alpha, r) of the hull's layer 0
    assert glam.shape == (5, 10, 30)
    torch.testing.assert_close(layer.sum(0) / 10, layer[0])  # every angular bin gets the same share
    assert layer.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("objective", ["eps", "hybrid"])
def test_ideal_network_output_denoises_exactly(showers, objective):
    """The training target and the denoiser agree: a network that hits its target recovers x0."""
    model = tiny_model("par04-coarse", showers, objective=objective)
    torch.manual_seed(1)
    # x0 anywhere a real shower can be: between an empty and a full voxel
    x0 = model.x0_low + (model.x0_high - model.x0_low) * torch.rand(3, model.n_voxels)
    noise = torch.randn(3, model.n_voxels)
    sigma = torch.tensor([0.05, 1.0, 300.0])
    c_in = torch.rsqrt(1 + sigma**2)[:, None]
    ideal = noise if objective == "eps" else (sigma[:, None] * x0 - noise) * c_in
    model.network = lambda x_t, energy, s: ideal
    torch.testing.assert_close(model.denoise(x0 + sigma[:, None] * noise, sigma, torch.zeros(3)), x0,
                               atol=1e-3, rtol=1e-4)
    # a wrong network output at a high noise level is multiplied by sigma: the estimate stays in the data's range
    model.network = lambda x_t, energy, s: ideal + 0.1
    wild = model.denoise(x0 + sigma[:, None] * noise, sigma, torch.zeros(3))
    assert bool(((wild >= model.x0_low) & (wild <= model.x0_high)).all())


def test_data_range_stays_finite_at_the_smallest_logit_offset(showers):
    """logit_alpha 1e-8 (the par04 config) puts a full voxel at logit(1 - 1e-8), +inf if computed in float32."""
    model = tiny_model("par04-coarse", showers, logit_alpha=1e-8)
    assert bool(torch.isfinite(model.x0_high).all()) and bool((model.x0_high > model.x0_low).all())


def test_config_is_checked():
    with pytest.raises(CaloforgeError, match="objective 'v'"):
        CaloDiffusionConfig(objective="v")
    with pytest.raises(CaloforgeError, match="logit_alpha"):
        CaloDiffusionConfig(logit_alpha=0.0)
    with pytest.raises(CaloforgeError, match="needs glam"):
        FAMILY.build(CaloDiffusionConfig(glam=False), load_geometry("par04-coarse"), {"preprocessing": {"type": "Chain",
                                                                                                      "steps": []}})


@pytest.mark.parametrize("path", sorted(p for p in (Path(__file__).parents[1] / "configs").glob("calodiffusion-*.yaml")
                                        if "student" not in p.name), ids=lambda p: p.stem)
def test_shipped_configs_build(path):
    run = load_run_config(path)
    geometry = load_geometry(run.geometry)
    config = from_dict(CaloDiffusionConfig, run.model, str(path))
    unfitted = voxel_preprocessing(0.01515).to_dict()
    unfitted["steps"][-1].update(mean=[0.0], std=[1.0])
    fitted = {"preprocessing": unfitted}
    if config.layer_energy:  # flow 1's variables need showers: any positive ones of this geometry will do
        generator = torch.Generator().manual_seed(0)
        fitted["layers"] = fit_layer_model(geometry, torch.full((16,), 1e4),
                                           torch.rand(16, geometry.n_voxels, generator=generator))
    model = FAMILY.build(config, geometry, fitted)
    assert (model.glam is None) == geometry.is_regular
    model.schedule.sigmas(run.sample.get("steps"))  # an autoencoder stage samples nothing


def test_training_overfits_a_fixed_batch(showers):
    model = tiny_model("par04-coarse", showers, channels=[8, 8])
    energies, x = (t[:8] for t in showers["par04-coarse"])

    @torch.no_grad()
    def loss():
        torch.manual_seed(123)  # the same steps and noise every time
        return sum(float(model(energies, x)) for _ in range(4)) / 4

    start = loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(50):
        optimizer.zero_grad()
        model(energies, x).backward()
        optimizer.step()
    assert loss() < 0.6 * start


def test_trains_through_the_shared_trainer_and_samples_from_the_checkpoint(tmp_path, showers):
    energies, x = showers["par04-coarse"]
    data = write_showers(tmp_path / "coarse.h5", energies[:40].numpy(), x[:40].numpy())
    run = RunConfig(family="calodiffusion", geometry="par04-coarse", data=DataConfig(train=str(data), val_fraction=0.2),
                    model={"channels": [4, 4], "objective": "hybrid"},
                    train=TrainConfig(epochs=1, batch_size=8, max_steps=3, warmup_steps=1),
                    sample={"sampler": "ddim", "steps": 3})
    model, checkpoint = load_model(train(run, tmp_path / "run", progress=False))
    assert checkpoint.header["sample_defaults"] == {"sampler": "ddim", "steps": 3}
    out = model.sample(energies[:5], generator=torch.Generator().manual_seed(0), **checkpoint.header["sample_defaults"])
    assert out.shape == (5, 359) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["par04", "par04-coarse"])
def test_sampled_showers_are_read_out_like_data(showers, name):
    model = tiny_model(name, showers).eval()
    energies = showers[name][0][:4]
    out = model.sample(energies, generator=torch.Generator().manual_seed(0), sampler="ddpm", steps=3)
    assert out.shape == (4, load_geometry(name).n_voxels) and torch.isfinite(out).all()
    assert torch.all((out == 0) | (out >= THRESHOLDS_MEV[name])) and (out == 0).any()


def test_sampling_is_a_function_of_the_seed(showers):
    model = tiny_model("par04-coarse", showers).eval()
    energies = showers["par04-coarse"][0][:3]
    runs = [model.sample(energies, generator=torch.Generator().manual_seed(s), sampler="ddpm", steps=4)
            for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_layer_energy_model_sets_every_layer_to_its_drawn_energy(showers):
    """The shower is rescaled to flow 1's layer energies: up to the voxels the readout threshold cuts again, each
    generated layer holds exactly the energy drawn for it."""
    model = tiny_model("par04-coarse", showers, layer_energy=True, layer_transforms=2, layer_hidden=[8]).eval()
    energies = showers["par04-coarse"][0][:6]
    with torch.no_grad():  # the sampler draws the layer energies first, so the same seed gives the same ones
        drawn = model.layer_model.sample(energies, torch.Generator().manual_seed(3)).numpy()
    out = model.sample(energies, generator=torch.Generator().manual_seed(3), sampler="ddim", steps=3)
    geometry = load_geometry("par04-coarse")
    layers = geometry.layer_energies(out.numpy())
    filled = layers > 0
    assert filled.mean() > 0.8
    lost = (drawn - layers)[filled]  # what the renewed threshold cut took: at most the threshold in each voxel
    cut_at_most = np.broadcast_to(THRESHOLDS_MEV["par04-coarse"] * geometry.voxels_per_layer, drawn.shape)[filled]
    assert (lost >= -1e-4 * drawn[filled]).all() and (lost <= cut_at_most + 1e-4 * drawn[filled]).all()


def test_layer_energy_model_conditions_the_network_and_trains_with_it(showers):
    """The U-Net sees the layer variables (changing them changes its output) and flow 1 trains in the same loss."""
    model = tiny_model("par04-coarse", showers, layer_energy=True, layer_transforms=2, layer_hidden=[8])
    energies, x = (t[:4] for t in showers["par04-coarse"])
    torch.nn.init.normal_(model.unet.out.weight)  # a zero output head would hide the conditioning
    layers = model.layer_model.layer_energies(x)
    x_t, sigma = torch.randn(4, 359), torch.full((4,), 0.5)
    same = model.network(x_t, model.shower_condition(energies, layers), sigma)
    other = model.network(x_t, model.shower_condition(energies, layers.flip(1)), sigma)
    assert not torch.allclose(same, other)
    loss = model(energies, x)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.layer_model.parameters())


def test_patches_are_a_lossless_rearrangement_that_keeps_the_rotations():
    """Each (3, 2, 3) patch becomes the 18 channels of one position and back exactly; rolling a shower by one patch
    (two alpha bins) rolls its patched image by one position."""
    image = torch.randn(2, 1, 45, 16, 9)
    patched = to_patches(image, (3, 2, 3))
    assert patched.shape == (2, 18, 15, 8, 3)
    torch.testing.assert_close(patched[0, :, 4, 5, 1].reshape(3, 2, 3), image[0, 0, 12:15, 10:12, 3:6])
    assert torch.equal(from_patches(patched, (3, 2, 3)), image)
    assert torch.equal(to_patches(image.roll(2, ALPHA), (3, 2, 3)), patched.roll(1, ALPHA))


def test_patched_model_trains_and_samples_full_showers(tmp_path, showers):
    energies, x = showers["par04"]
    data = write_showers(tmp_path / "par04.h5", energies[:40].numpy(), x[:40].numpy())
    run = RunConfig(family="calodiffusion", geometry="par04", data=DataConfig(train=str(data), val_fraction=0.2),
                    model={"channels": [4, 4], "patch": [3, 2, 3], "objective": "hybrid"},
                    train=TrainConfig(epochs=1, batch_size=8, max_steps=3, warmup_steps=1),
                    sample={"sampler": "dpmpp", "steps": 3})
    model, checkpoint = load_model(train(run, tmp_path / "run", progress=False))
    assert model.unet.stem.in_channels == 18 + 2 and model.unet.out.out_channels == 18
    out = model.sample(energies[:3], generator=torch.Generator().manual_seed(0), **checkpoint.header["sample_defaults"])
    assert out.shape == (3, 6480) and torch.isfinite(out).all()
    assert torch.all((out == 0) | (out >= THRESHOLDS_MEV["par04"]))


def test_logit_alpha_sets_how_far_the_threshold_lies_above_an_empty_voxel(showers):
    """An empty voxel and one at the readout threshold, in the model's standardised space, at 90 GeV: a smaller
    logit offset moves them apart (the reason configs/calodiffusion-patches-par04.yaml uses 1e-8)."""
    energy = torch.full((1,), 9e4)

    def gap(alpha):
        model = tiny_model("par04", showers, logit_alpha=alpha)
        low, at_threshold = (model.preprocessing.forward(torch.full((1, 6480), e), energy) for e in (0.0, 0.01516))
        return float((at_threshold - low).median())

    assert gap(1e-8) > 5 * gap(1e-6) > 0


def test_patches_must_divide_a_regular_mesh(showers):
    with pytest.raises(CaloforgeError, match="three sizes"):
        CaloDiffusionConfig(patch=[3, 2])
    with pytest.raises(CaloforgeError, match=r"patch \[2, 2, 3\].*45x16x9"):
        tiny_model("par04", showers, patch=[2, 2, 3])
    with pytest.raises(CaloforgeError, match="regular geometry"):
        tiny_model("par04-coarse", showers, patch=[1, 1, 1])
