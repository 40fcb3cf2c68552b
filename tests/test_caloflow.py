"""CaloFlow: the teacher learns by likelihood; the student, distilled through the shared trainer, samples alone."""

from __future__ import annotations

import pytest
import torch

from caloforge.contract import from_dict
from caloforge.data import open_showers, sample_path, write_showers
from caloforge.errors import CaloforgeError
from caloforge.geometry import load_geometry
from caloforge.models import get_family
from caloforge.models.caloflow import CaloFlowConfig
from caloforge.models.caloflow.teacher import voxel_flow
from caloforge.models.flows import MaskedAutoregressiveFlow, layer_sums
from caloforge.train import load_checkpoint, load_model, run_config_from_dict, train

TINY_TEACHER = {"layer_transforms": 2, "layer_hidden": [16], "transforms": 2, "hidden": [32], "passes": 4}
TRAIN = {"epochs": 1, "max_steps": 2, "batch_size": 64, "warmup_steps": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def coarse(rebinned_sample):
    """300 bundled Par04 showers rebinned to par04-coarse: (geometry, energies, showers, file)."""
    return rebinned_sample(300)


@pytest.fixture(scope="module")
def trained(coarse, tmp_path_factory):
    """A teacher and its student, each a few steps through the shared trainer: (teacher.pt, student.pt)."""
    *_, data = coarse
    runs = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    teacher = train(run_config_from_dict({"family": "caloflow-teacher", "geometry": "par04-coarse",
                                          "data": {"train": data}, "model": TINY_TEACHER, "train": TRAIN}),
                    runs / "teacher", progress=False)
    student = train(run_config_from_dict({"family": "caloflow-student", "geometry": "par04-coarse",
                                          "data": {"train": data}, "model": {"teacher": str(teacher)},
                                          "train": {**TRAIN, "init_from": str(teacher)}}),
                    runs / "student", progress=False)
    return teacher, student


def test_teacher_log_likelihood_improves_on_a_fixed_batch(coarse):
    geometry, energies, showers, _ = coarse
    family = get_family("caloflow-teacher")
    config = from_dict(family.config, TINY_TEACHER, "test")
    torch.manual_seed(0)
    model = family.build(config, geometry, family.fit(config, geometry, energies, showers))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> float:
        torch.manual_seed(1)  # the same dequantisation noise every time
        with torch.no_grad():
            return float(model(energies[:64], showers[:64]))

    before = loss()
    for _ in range(10):
        optimizer.zero_grad()
        model(energies[:64], showers[:64]).backward()
        optimizer.step()
    assert loss() < before - 0.05


def test_student_checkpoint_holds_no_teacher_weights(trained):
    teacher_path, student_path = trained
    teacher, student = load_checkpoint(teacher_path), load_checkpoint(student_path)
    assert student.header["family"] == "caloflow-student"
    assert not [key for key in student.model if key.startswith("voxel_flow.")], "the teacher's flow 2 leaked in"
    model, _ = load_model(student_path)
    assert set(student.model) == set(model.state_dict())
    shared = {key for key in teacher.model if key.startswith("layer_flow.")}
    assert shared, "flow 1 is in both"
    assert all(torch.equal(student.model[key], teacher.model[key]) for key in shared), "flow 1 is the teacher's"


def test_student_samples_without_the_teacher_and_respects_layer_energies(coarse, trained, tmp_path):
    geometry, energies, *_ = coarse
    teacher_path, student_path = trained
    moved = teacher_path.rename(tmp_path / "elsewhere.pt")  # the student must not need it any more
    try:
        model, _ = load_model(student_path)
        with torch.no_grad():
            layers = model.layer_flow.sample(energies[:50], torch.Generator().manual_seed(3))
            showers = model.sample(energies[:50], torch.Generator().manual_seed(3))
    finally:
        moved.rename(teacher_path)
    assert showers.shape == (50, geometry.n_voxels)
    assert torch.isfinite(showers).all() and (showers >= 0).all()
    deposited = layer_sums(showers, torch.as_tensor(geometry.voxel_layer), geometry.n_layers)
    cut = torch.as_tensor(geometry.voxels_per_layer) * model.coding.threshold  # at most every voxel cut away
    assert (deposited <= layers * (1 + 1e-4)).all() and (deposited >= layers - cut).all()


def test_layerwise_flows_on_a_ds2_sized_geometry(tmp_path):
    """iCaloFlow's factorisation: teacher and student on Par04's 45 x 144 voxels, then sampling layer by layer."""
    geometry = load_geometry("par04")
    energies, showers = open_showers(sample_path(), geometry).read(slice(0, 40))
    run = {"geometry": "par04", "data": {"train": str(write_showers(tmp_path / "par04.h5", energies, showers)),
                                         "val_fraction": 0.2},
           "train": {**TRAIN, "batch_size": 16, "max_steps": 1}}
    torch.manual_seed(0)
    teacher = train(run_config_from_dict({**run, "family": "caloflow-teacher",
                                          "model": {**TINY_TEACHER, "layerwise": True}}),
                    tmp_path / "t", progress=False)
    student = train(run_config_from_dict({**run, "family": "caloflow-student", "model": {"teacher": str(teacher)},
                                          "train": {**run["train"], "init_from": str(teacher)}}), tmp_path / "s",
                    progress=False)
    for path in (teacher, student):
        with torch.no_grad():
            sample = load_model(path)[0].sample(torch.from_numpy(energies[:4]), torch.Generator().manual_seed(0))
        assert sample.shape == (4, geometry.n_voxels) and torch.isfinite(sample).all() and (sample >= 0).all()


def test_layerwise_needs_a_regular_geometry():
    config = CaloFlowConfig(**TINY_TEACHER, layerwise=True)
    with pytest.raises(CaloforgeError, match="regular geometry"):
        voxel_flow(MaskedAutoregressiveFlow, config, load_geometry("par04-coarse"))
