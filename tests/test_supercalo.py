"""SuperCalo: coarse voxelisation, the up-sampling flow's guarantees, the chain, file up-sampling, and rho."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from caloforge.checkpoints import FOLDER as SHIPPED
from caloforge.contract import geometry_to_dict
from caloforge.data import open_showers, sample_path, write_showers
from caloforge.errors import CaloforgeError
from caloforge.evaluate.correlation import layer_correlations
from caloforge.geometry import Rebinning, load_geometry
from caloforge.models import get_family
from caloforge.models.supercalo.chain import combine
from caloforge.models.supercalo.conditions import energy_conditions
from caloforge.models.supercalo.resample import upsample_file
from caloforge.models.supercalo.voxelisation import NEIGHBOURS, CoarseVoxelisation
from caloforge.sampling import generate
from caloforge.train import Checkpoint, load_model, save_checkpoint
from caloforge.contract import from_dict

CHOICES = {"A": (1, 2, 5), "B": (3, 4, 1)}
TINY = {"transforms": 2, "hidden": [16], "layer_transforms": 1, "layer_hidden": [16], "fit_showers": 200}


@pytest.fixture(scope="module")
def par04():
    geometry = load_geometry("par04")
    energies, showers = open_showers(sample_path(), geometry).read(slice(0, 200))
    return geometry, torch.from_numpy(energies), torch.from_numpy(showers)


def tiny_model(par04, choice="A", **extra):
    geometry, energies, showers = par04
    r, a, layer = CHOICES[choice]
    family = get_family("supercalo")
    config = from_dict(family.config, {**TINY, "r_factor": r, "alpha_factor": a, "layer_factor": layer, **extra}, "t")
    torch.manual_seed(0)
    fitted = family.fit(config, geometry, energies, showers)
    return family.build(config, geometry, fitted), config, fitted


@pytest.mark.parametrize("choice", CHOICES)
def test_coarse_graining_conserves_energy(par04, choice):
    geometry, _, showers = par04
    vox = CoarseVoxelisation(geometry, *CHOICES[choice])
    coarse = vox.coarsen(showers.double())
    assert vox.coarse.name == f"par04-coarse-r{CHOICES[choice][0]}a{CHOICES[choice][1]}l{CHOICES[choice][2]}"
    assert torch.allclose(coarse.sum(1), showers.double().sum(1), rtol=1e-12)
    reference = Rebinning(geometry, vox.coarse)(showers.double().numpy())
    assert np.allclose(coarse.numpy(), reference, rtol=1e-10, atol=1e-9)
    assert torch.equal(vox.scatter(vox.gather(showers)), showers)


def test_upsampled_fine_voxels_sum_to_their_coarse_voxel_and_empty_stays_empty(par04):
    geometry, energies, showers = par04
    model, _, _ = tiny_model(par04)
    vox = model.voxelisation
    coarse = vox.coarsen(showers[:6])
    coarse[:, ::3] = 0.0  # empty coarse voxels among full ones
    fine_layers = model.layers.sample(energies[:6], vox.coarse_layer_energies(coarse), torch.Generator().manual_seed(1))
    fine = model.upsampler.sample(energies[:6], coarse, fine_layers, torch.Generator().manual_seed(2))
    assert fine.shape == (6, geometry.n_voxels) and (fine >= 0).all()
    assert torch.allclose(vox.coarsen(fine), coarse, rtol=1e-5, atol=1e-6)
    assert (vox.gather(fine)[:, ::3] == 0).all()
    assert torch.allclose(vox.coarse_layer_energies(coarse), fine_layers.reshape(6, vox.coarse.n_layers, -1).sum(-1),
                          rtol=1e-5, atol=1e-5)
    model.upsampler.config.sample_chunk = 100  # seeded draws do not depend on how the rows are chunked
    again = model.upsampler.sample(energies[:6], coarse, fine_layers, torch.Generator().manual_seed(2))
    assert torch.allclose(fine, again, rtol=1e-4, atol=1e-6)  # (float rounding of other matrix blockings aside)


def test_neighbour_conditioning_is_periodic_in_alpha(par04):
    geometry, energies, _ = par04
    vox = CoarseVoxelisation(geometry, *CHOICES["A"])
    n_layers, n_alpha, n_r = vox.coarse.shape
    first, last = 4, (n_alpha - 1) * n_r + 4  # layer 0, radial bin 4, angular bins 0 and n - 1
    column = {name: k for k, name in enumerate(NEIGHBOURS)}
    assert vox.neighbours[first, column["alpha-1"]] == last and vox.neighbours[last, column["alpha+1"]] == first
    assert vox.neighbours[n_r - 1, column["r+1"]] == vox.coarse.n_voxels  # r has an edge: the outside is empty
    coarse = torch.zeros(1, vox.coarse.n_voxels)
    coarse[0, first] = 10.0
    fine_layers = torch.zeros(1, geometry.n_layers)
    rows = (torch.tensor([0]), torch.tensor([first]))
    before = energy_conditions(vox, energies[:1], coarse, fine_layers, *rows, 1e-3)
    coarse[0, last] = 5.0  # the voxel across the alpha seam
    after = energy_conditions(vox, energies[:1], coarse, fine_layers, *rows, 1e-3)
    changed = (after != before).nonzero()[:, 1].tolist()
    assert changed == [2 + vox.layer_factor + column["alpha-1"]]  # that neighbour's condition, and nothing else


def test_upsampler_nll_decreases_on_a_fixed_batch(par04):
    _, energies, showers = par04
    model, _, _ = tiny_model(par04, voxels_per_shower=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(7)  # the same voxels and training noise every time
        return model(energies[:32], showers[:32])

    losses = []
    for _ in range(10):
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    assert losses[-1] < losses[0] - 0.5


def _coarse_checkpoint(par04, tmp_path):
    """A tiny CaloFlow teacher of the choice-A coarse geometry: any caloforge model can be the chain's first stage."""
    geometry, energies, showers = par04
    coarse_geometry = CoarseVoxelisation(geometry, *CHOICES["A"]).coarse
    family = get_family("caloflow-teacher")
    values = {"layer_transforms": 1, "layer_hidden": [8], "transforms": 1, "hidden": [8], "passes": 2}
    config = from_dict(family.config, values, "t")
    coarse_showers = torch.from_numpy(Rebinning(geometry, coarse_geometry)(showers.numpy()))
    fitted = family.fit(config, coarse_geometry, energies, coarse_showers)
    model = family.build(config, coarse_geometry, fitted)
    header = {"family": "caloflow-teacher", "model_config": values, "fitted": fitted,
              "geometry": geometry_to_dict(coarse_geometry), "sample_defaults": {}}
    return save_checkpoint(tmp_path / "coarse.pt", Checkpoint(header=header, model=model.state_dict()))


def test_chain_generates_fine_showers_through_the_generation_path(par04, tmp_path):
    geometry, energies, _ = par04
    model, config, fitted = tiny_model(par04)
    header = {"family": "supercalo", "model_config": {**TINY, "r_factor": 1, "alpha_factor": 2, "layer_factor": 5},
              "fitted": fitted, "geometry": geometry_to_dict(geometry), "sample_defaults": {}}
    upsampler = save_checkpoint(tmp_path / "up.pt", Checkpoint(header=header, model=model.state_dict()))
    chain_path = save_checkpoint(tmp_path / "chain.pt", combine(_coarse_checkpoint(par04, tmp_path), upsampler))
    chain, checkpoint = load_model(chain_path)
    assert checkpoint.header["family"] == "supercalo" and chain.coarse is not None
    out = generate(chain, checkpoint.geometry, energies[:3].numpy(), tmp_path / "gen.h5", batch_size=2, seed=3,
                   progress=False)
    e, s = open_showers(out, geometry).read_all()
    assert s.shape == (3, geometry.n_voxels) and np.isfinite(s).all() and (s >= 0).all()
    assert np.allclose(e, energies[:3].numpy())
    with pytest.raises(CaloforgeError, match="no coarse model"):
        model.sample(energies[:2])


def test_upsampling_a_coarse_file_with_k_variations_writes_k_times_n(par04, tmp_path):
    geometry, energies, showers = par04
    model, _, _ = tiny_model(par04, "B")
    coarse = model.voxelisation.coarsen(showers[:3]).numpy()
    source = write_showers(tmp_path / "coarse.h5", energies[:3].numpy(), coarse)
    out = upsample_file(model, source, tmp_path / "fine.h5", variations=2, batch_size=2, seed=1, progress=False)
    e, s = open_showers(out, geometry).read_all()
    assert s.shape == (6, geometry.n_voxels)
    assert np.allclose(e, np.repeat(energies[:3].numpy(), 2))
    # every variation keeps its coarse shower's energy (up to the readout threshold on fine voxels)
    totals = s.reshape(3, 2, -1).sum(-1)
    assert np.allclose(totals, coarse.sum(1)[:, None], rtol=2e-2)
    assert not np.allclose(s[0], s[1])  # variations differ


def test_rho_of_identical_adjacent_layers_is_one(par04):
    geometry, _, showers = par04
    layers = showers[:10].numpy().reshape(10, geometry.n_layers, -1).copy()
    layers[:, 6] = layers[:, 5]
    rho = layer_correlations(layers.reshape(10, -1), geometry)
    assert rho.shape == (10, geometry.n_layers - 1)
    assert np.allclose(rho[:, 5], 1.0)
    assert np.nanmin(rho) >= 0 and np.nanmax(rho) <= 1


def test_shipped_chain_generates_showers_like_geant4(par04):
    """The committed chain (CaloMan coarse model + choice-A up-sampler, float16) loads and draws Par04 showers whose
    response and occupancy are Geant4's (the bundled sample's), within what 64 showers resolve."""
    geometry, energies, showers = par04
    chain, checkpoint = load_model(SHIPPED / "par04-supercalo.pt")
    assert checkpoint.geometry.n_voxels == geometry.n_voxels and chain.voxelisation.layer_factor == 5
    n = 64
    generated = chain.sample(energies[:n], generator=torch.Generator().manual_seed(0))
    assert generated.shape == (n, geometry.n_voxels) and torch.isfinite(generated).all() and (generated >= 0).all()

    def response_and_occupancy(x):
        return float((x.sum(1) / energies[:n]).mean()), float((x > 0).float().mean())

    (response, lit), (g4_response, g4_lit) = response_and_occupancy(generated), response_and_occupancy(showers[:n])
    assert abs(response - g4_response) < 0.05 and abs(lit - g4_lit) < 0.3 * g4_lit
