"""ONNX export of a consistency student's sampling chain: ONNX Runtime agrees with PyTorch on the same noise (any
batch size), --par04-order puts each voxel at Geant4 Par04's (r, phi, z) position, and --weights --half ships a
checkpoint in float16."""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime
import pytest
import torch
from typer.testing import CliRunner

from caloforge.cli import app, main
from caloforge.contract import geometry_to_dict, left_out_of_shipping, training_only
from caloforge.data import open_showers, sample_path
from caloforge.data.transforms import Logit
from caloforge.errors import CaloforgeError
from caloforge.export import SamplingChain, example_inputs, export_onnx, par04_index
from caloforge.geometry import Rebinning, load_geometry
from caloforge.models import get_family
from caloforge.models.diffusion import CaloDiffusionConfig
from caloforge.models.distill import ConsistencyConfig, ConsistencyStudent
from caloforge.train import Checkpoint, load_checkpoint, load_model, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_student(name: str, **options) -> ConsistencyStudent:
    """A [4, 4] student with perturbed weights (an untrained U-Net's zeroed output layer would hide the network)."""
    geometry = load_geometry(name)
    energies, showers = open_showers(sample_path()).read(slice(0, 32))
    if name == "par04-coarse":
        showers = Rebinning(load_geometry("par04"), geometry)(showers)
    architecture = {"channels": [4, 4], "n_steps": 20, **options}
    fitted = get_family("calodiffusion").fit(CaloDiffusionConfig(**architecture), geometry, torch.from_numpy(energies),
                                             torch.from_numpy(showers))
    torch.manual_seed(0)
    fitted = {**fitted, "teacher_config": architecture}
    student = get_family("calodiffusion-student").build(ConsistencyConfig(teacher="-", n_intervals=10), geometry,
                                                        fitted)
    student.fitted = fitted  # for the checkpoint written by the command test
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return student.eval()


def run_onnx(path, inputs) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)})[0]


def test_logit_inverse_in_onnx_runtime_keeps_its_relative_precision_down_to_the_empty_voxel(tmp_path):
    """With logit_alpha 1e-8 the readout threshold lies near logit -17, where ONNX Runtime's Sigmoid is off by 2x."""

    class Inverse(torch.nn.Module):
        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return Logit(1e-8).inverse(y, torch.ones(1))

    y = torch.linspace(-18.4, -10, 50)
    torch.onnx.export(Inverse(), (y,), str(tmp_path / "inverse.onnx"), input_names=["y"], dynamo=False)
    expected = Logit(1e-8).inverse(y.double(), torch.ones(1)).numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "inverse.onnx", (y,)), expected, rtol=1e-5, atol=1e-14)


@pytest.mark.parametrize("steps", [1, 3])
def test_onnx_runtime_matches_pytorch_on_the_same_noise(tmp_path, steps):
    student = tiny_student("par04-coarse")
    path = export_onnx(student, load_geometry("par04-coarse"), tmp_path / "student.onnx", steps)
    chain = SamplingChain(student, load_geometry("par04-coarse"))
    inputs = example_inputs(chain, steps, batch=5, seed=1)  # not the batch size traced with
    expected = chain(*inputs).detach().numpy()
    got = run_onnx(path, inputs)
    assert got.shape == (5, 359) and (got >= 0).all()
    # float32 through different kernels; a voxel at the readout threshold may flip to zero (0.015 MeV)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=0.05)


def test_graph_of_a_patched_student_holds_its_layer_flow(tmp_path):
    """A student on patches with a layer-energy model: its graph takes flow 1's base draw as an input and holds the
    flow's inversion and the patching; ONNX Runtime agrees with PyTorch at another batch size than traced."""
    steps = 2
    student = tiny_student("par04", patch=[3, 2, 3], objective="hybrid", layer_energy=True, layer_transforms=1,
                           layer_hidden=[8])
    with torch.no_grad():  # x0 three standard deviations up: voxels above the threshold, so the layers show
        student.unet.out.bias.add_(3.0)
    path = export_onnx(student, load_geometry("par04"), tmp_path / "patched.onnx", steps)
    chain = SamplingChain(student, load_geometry("par04"))
    inputs = example_inputs(chain, steps, batch=3, seed=1)
    assert inputs[-1].shape == (3, 45)
    expected = chain(*inputs).detach().numpy()
    other_layers = chain(*inputs[:-1], torch.randn(3, 45)).detach().numpy()
    assert not np.allclose(expected, other_layers)  # the layer draw is really an input of the graph
    got = run_onnx(path, inputs)
    assert got.shape == (3, 6480) and (got > 0).mean() > 0.1
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=0.05)


def test_par04_order_puts_each_voxel_at_its_r_phi_z_position(tmp_path):
    geometry = load_geometry("par04")
    n_layers, n_alpha, n_r = geometry.shape
    index = par04_index(geometry)
    layer, alpha, r = 7, 3, 5
    assert index[r * n_alpha * n_layers + alpha * n_layers + layer] == layer * n_alpha * n_r + alpha * n_r + r
    student = tiny_student("par04")
    path = export_onnx(student, geometry, tmp_path / "par04.onnx", steps=1, par04_order=True)
    inputs = example_inputs(SamplingChain(student, geometry), 1, batch=2)
    caloforge_order = student.decode(inputs[0], None, inputs[1]).detach().numpy()
    par04_order = run_onnx(path, inputs)
    cell = caloforge_order[:, layer * n_alpha * n_r + alpha * n_r + r]
    np.testing.assert_allclose(par04_order[:, r * n_alpha * n_layers + alpha * n_layers + layer], cell,
                               rtol=1e-3, atol=0.05)
    with pytest.raises(CaloforgeError, match="irregular"):
        par04_index(load_geometry("par04-coarse"))


def test_export_command_writes_the_checkpoints_sampler(tmp_path):
    student = tiny_student("par04-coarse")
    header = {"family": "calodiffusion-student", "model_config": {"teacher": "-", "n_intervals": 10},
              "fitted": student.fitted, "geometry": geometry_to_dict(load_geometry("par04-coarse")),
              "sample_defaults": {"sampler": "consistency", "steps": 2}}
    checkpoint = save_checkpoint(tmp_path / "student.pt", Checkpoint(header=header, model=student.state_dict()))
    result = CliRunner().invoke(app, ["export", str(checkpoint), "--onnx", str(tmp_path / "s.onnx")])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["noise", "energy", "renoise"]


def test_half_weights_checkpoint_holds_the_rounded_weights_in_half_the_bytes(tmp_path):
    student = tiny_student("par04-coarse")
    header = {"family": "calodiffusion-student", "model_config": {"teacher": "-", "n_intervals": 10},
              "fitted": student.fitted, "geometry": geometry_to_dict(load_geometry("par04-coarse")),
              "sample_defaults": {"sampler": "consistency", "steps": 2}}
    full = save_checkpoint(tmp_path / "student.pt", Checkpoint(header=header, model=student.state_dict(),
                                                               ema=student.state_dict()))
    result = CliRunner().invoke(app, ["export", str(full), "--weights", str(tmp_path / "half.pt"), "--half"])
    assert result.exit_code == 0, result.output
    shipped = load_checkpoint(tmp_path / "half.pt")
    assert shipped.ema is None and shipped.optimizer is None
    assert all(v.dtype == torch.float16 for v in shipped.model.values() if v.is_floating_point())
    # the student's target network serves training alone and stays behind
    kept = {key: value for key, value in student.state_dict().items()
            if not left_out_of_shipping(key, value, training_only(student))}
    assert kept.keys() == shipped.model.keys() and len(kept) < len(student.state_dict())
    float_bytes = [sum(v.numel() * v.element_size() for v in weights.values() if v.is_floating_point())
                   for weights in (kept, shipped.model)]
    assert float_bytes[1] * 2 == float_bytes[0] > 0
    loaded = load_model(tmp_path / "half.pt")[0].state_dict()
    for key, value in kept.items():
        expected = value.half().float() if value.is_floating_point() else value
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], expected), key


def test_export_without_an_output_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["caloforge", "export", "missing.pt"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    assert capsys.readouterr().err == "caloforge: error: export: say what to write: --onnx FILE and/or --weights FILE\n"
