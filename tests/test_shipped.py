"""The shipped weights: one folder within its budget, every file in its manifest as it is and as the shipping export
writes it (masked weights packed), and what that export leaves out (the MADE masks) rebuilt by the loader."""

from __future__ import annotations

import pytest
import torch

from caloforge.checkpoints import BUDGET_BYTES, FOLDER, manifest
from caloforge.contract import (
    build_model,
    left_out_of_shipping,
    load_checkpoint,
    masks_of_weights,
    rebuilt_by_architecture,
    shippable,
    training_only,
)
from caloforge.train import run_config_from_dict, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_manifest_describes_every_shipped_file_as_it_is():
    entries = {entry["file"]: entry for entry in manifest()}
    assert set(entries) == {path.name for path in FOLDER.glob("*.pt")}
    for name, entry in entries.items():
        header = load_checkpoint(FOLDER / name).header
        assert (entry["family"], entry["geometry"]) == (header["family"], header["geometry"]["name"]), name
        assert entry["bytes"] == (FOLDER / name).stat().st_size, name
        assert entry["trained_on"] and entry["training"] and entry["measured"], name


def test_the_shipped_files_fit_the_budget():
    assert sum(path.stat().st_size for path in FOLDER.glob("*.pt")) <= BUDGET_BYTES


@pytest.mark.parametrize("entry", manifest(), ids=lambda entry: entry["file"])
def test_every_shipped_file_is_as_the_shipping_export_writes_it(entry):
    """Averaged weights only, in the manifest's float type, without what the architecture rebuilds or only training
    needs; and they load."""
    checkpoint = load_checkpoint(FOLDER / entry["file"])
    assert all(part is None for part in (checkpoint.ema, checkpoint.optimizer, checkpoint.scheduler, checkpoint.rng))
    model = build_model(checkpoint, source=entry["file"])
    own = torch.load(FOLDER / entry["file"], weights_only=True)["model"]  # without its base's weights
    assert checkpoint.header.get("base", {}).get("file") == entry.get("base")
    assert not any(left_out_of_shipping(*item, training_only(model)) for item in own.items())
    assert all(own[name].dim() == 1 for name in masks_of_weights(model.state_dict()) if name in own)
    floats = {str(tensor.dtype).removeprefix("torch.") for tensor in own.values() if tensor.is_floating_point()}
    assert floats == {entry["weights"]}


def test_a_flow_exported_without_masks_and_packed_samples_as_before(rebinned_sample, tmp_path):
    *_, data = rebinned_sample(100)
    model = {"layer_transforms": 1, "layer_hidden": [8], "transforms": 2, "hidden": [16], "passes": 2}
    train(run_config_from_dict({"family": "caloflow-teacher", "geometry": "par04-coarse", "data": {"train": data},
                                "model": model,
                                "train": {"epochs": 1, "max_steps": 2, "batch_size": 32, "device": "cpu"}}),
          tmp_path, progress=False)
    checkpoint = load_checkpoint(tmp_path / "last.pt")  # the full training state, masks included
    exported = shippable(checkpoint)
    assert any(rebuilt_by_architecture(*item) for item in checkpoint.ema.items())
    assert not any(rebuilt_by_architecture(*item) for item in exported.model.items())
    masks = masks_of_weights(checkpoint.ema)
    assert masks and all(exported.model[name].numel() == mask.sum() < mask.numel() for name, mask in masks.items())
    again = shippable(exported)  # a shipped file exported again (say, to float16) is packed once, not twice
    assert all(torch.equal(again.model[name], tensor) for name, tensor in exported.model.items())
    energies = torch.full((8,), 10_000.0)
    before, after = (build_model(c).sample(energies, generator=torch.Generator().manual_seed(0))
                     for c in (checkpoint, exported))
    assert torch.equal(before, after)


def test_a_student_ships_without_its_target_network_and_samples_as_before(rebinned_sample, tmp_path):
    *_, data = rebinned_sample(100)
    common = {"geometry": "par04-coarse", "data": {"train": data},
              "train": {"epochs": 1, "max_steps": 2, "batch_size": 32, "device": "cpu"}}
    teacher = train(run_config_from_dict({"family": "flowmatch", "model": {"width": 16, "depth": 1, "heads": 2,
                                                                          "energy_width": 16, "energy_depth": 1},
                                          **common}), tmp_path / "teacher", progress=False)
    train(run_config_from_dict({"family": "flowmatch-student", "model": {"teacher": str(teacher), "n_intervals": 4},
                                **common}), tmp_path / "student", progress=False)
    checkpoint = load_checkpoint(tmp_path / "student" / "last.pt")
    exported = shippable(checkpoint)
    assert any(name.startswith("target.") for name in checkpoint.ema)
    assert not any(left_out_of_shipping(*item, ("target.", "updates")) for item in exported.model.items())
    assert sum(map(torch.numel, exported.model.values())) < 0.6 * sum(map(torch.numel, checkpoint.ema.values()))
    energies = torch.full((8,), 10_000.0)
    before, after = (build_model(c).sample(energies, generator=torch.Generator().manual_seed(0))
                     for c in (checkpoint, exported))
    assert torch.equal(before, after)
