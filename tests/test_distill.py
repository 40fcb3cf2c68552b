"""Consistency distillation: the student trains through the shared trainer from a tiny teacher, resumes exactly,
and its checkpoint samples on its own (no teacher file, no teacher weights). Tiny widths, 20-step schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from caloforge.cli import app
from caloforge.contract import load_frozen_model
from caloforge.data import open_showers
from caloforge.data.transforms import THRESHOLDS_MEV
from caloforge.geometry import load_geometry
from caloforge.models import get_family
from caloforge.models.distill import ConsistencyConfig
from caloforge.train import RunConfig, load_checkpoint, load_model, train
from caloforge.train.config import DataConfig, TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(rebinned_sample) -> Path:
    """40 real Par04 showers rebinned to par04-coarse."""
    return Path(rebinned_sample(40)[3])


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory) -> Path:
    """A tiny calodiffusion checkpoint (two training steps: any weights will do)."""
    run = RunConfig(family="calodiffusion", geometry="par04-coarse", data=DataConfig(train=str(data), val_fraction=0.2),
                    model={"channels": [4, 4], "n_steps": 20}, train=TrainConfig(epochs=1, batch_size=8, max_steps=2))
    return train(run, tmp_path_factory.mktemp("teacher"), progress=False)


def student_run(data: Path, teacher: Path, max_steps: int, epochs: int = 1) -> RunConfig:
    return RunConfig(family="calodiffusion-student", geometry="par04-coarse",
                     data=DataConfig(train=str(data), val_fraction=0.2),
                     model={"teacher": str(teacher), "n_intervals": 10},
                     train=TrainConfig(epochs=epochs, batch_size=8, max_steps=max_steps, warmup_steps=1, patience=0),
                     sample={"sampler": "consistency", "steps": 3})


def test_config_needs_a_teacher():
    with pytest.raises(Exception, match="teacher"):
        ConsistencyConfig()


def test_first_training_batch_copies_the_teacher(data, teacher):
    family = get_family("calodiffusion-student")
    config = ConsistencyConfig(teacher=str(teacher), n_intervals=10)
    energies, showers = open_showers(data).read(slice(0, 8))
    geometry = load_geometry("par04-coarse")
    student = family.build(config, geometry, family.fit(config, geometry, None, None))
    loss = student(torch.from_numpy(energies), torch.from_numpy(showers))
    assert torch.isfinite(loss)
    reference = load_frozen_model(str(teacher), "calodiffusion").state_dict()
    for key, value in reference.items():
        torch.testing.assert_close(student.state_dict()[key], value)
        torch.testing.assert_close(student.target.state_dict()[key], value)


def test_distils_through_the_shared_trainer_and_samples_without_the_teacher(tmp_path, data, teacher):
    local = tmp_path / "teacher.pt"
    local.write_bytes(teacher.read_bytes())
    final = train(student_run(data, local, max_steps=3), tmp_path / "student", progress=False)
    local.unlink()  # generation must not need it
    load_frozen_model.cache_clear()
    model, checkpoint = load_model(final)
    assert checkpoint.header["sample_defaults"] == {"sampler": "consistency", "steps": 3}
    energies = torch.tensor([2e3, 1e4, 5e4, 9e4])
    out = model.sample(energies, generator=torch.Generator().manual_seed(0), **checkpoint.header["sample_defaults"])
    assert out.shape == (4, 359) and torch.isfinite(out).all() and (out >= 0).all()
    assert torch.all((out == 0) | (out >= THRESHOLDS_MEV["par04-coarse"])) and (out == 0).any()
    again = model.sample(energies, generator=torch.Generator().manual_seed(0), **checkpoint.header["sample_defaults"])
    assert torch.equal(out, again)


def test_checkpoint_holds_no_teacher_weights(tmp_path, data, teacher):
    final = train(student_run(data, teacher, max_steps=2), tmp_path / "student", progress=False)
    weights = load_checkpoint(final).model
    mine = get_family("calodiffusion-student").build(ConsistencyConfig(teacher="-", n_intervals=10),
                                                     load_geometry("par04-coarse"),
                                                     load_checkpoint(final).header["fitted"]).state_dict()
    assert weights.keys() == mine.keys()
    assert not any("teacher" in key for key in weights)


def test_resumes_where_an_uninterrupted_run_ends(tmp_path, data, teacher):
    whole = load_checkpoint(train(student_run(data, teacher, max_steps=4, epochs=2), tmp_path / "a", progress=False))
    train(student_run(data, teacher, max_steps=4, epochs=1), tmp_path / "b", progress=False)
    resumed = load_checkpoint(train(student_run(data, teacher, max_steps=4, epochs=2), tmp_path / "b",
                                    resume=True, progress=False))
    for key, value in whole.model.items():
        torch.testing.assert_close(resumed.model[key], value)


def test_distill_command_writes_a_student_run(tmp_path, teacher):
    result = CliRunner().invoke(app, ["distill", str(teacher), "--steps", "2", "--n-intervals", "5",
                                      "--out", str(tmp_path / "run"), "--set", "train.max_steps=1",
                                      "--set", "train.batch_size=8", "--set", "train.epochs=1"])
    assert result.exit_code == 0, result.output
    _, checkpoint = load_model(tmp_path / "run" / "model.pt")
    assert checkpoint.header["family"] == "calodiffusion-student"
    assert checkpoint.header["sample_defaults"] == {"sampler": "consistency", "steps": 2}
    assert (tmp_path / "run" / "run.yaml").exists()


def test_a_teacher_with_a_layer_energy_flow_distils(tmp_path, data):
    """Its flow's integer buffers ride along with the target network (averaging them would fail)."""
    run = RunConfig(family="calodiffusion", geometry="par04-coarse", data=DataConfig(train=str(data), val_fraction=0.2),
                    model={"channels": [4, 4], "n_steps": 20, "layer_energy": True, "layer_transforms": 1,
                           "layer_hidden": [8]},
                    train=TrainConfig(epochs=1, batch_size=8, max_steps=1))
    teacher = train(run, tmp_path / "teacher", progress=False)
    student, checkpoint = load_model(train(student_run(data, teacher, max_steps=3), tmp_path / "student",
                                           progress=False))
    out = student.sample(torch.full((2,), 1e4), generator=torch.Generator().manual_seed(0),
                         **checkpoint.header["sample_defaults"])
    assert out.shape == (2, 359) and torch.isfinite(out).all()
