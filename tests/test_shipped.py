"""The shipped weights: one folder, every file in its manifest as it is, and what export leaves out (the MADE
masks) rebuilt by the loader exactly as saved."""

from __future__ import annotations

import pytest
import torch

from caloforge.checkpoints import FOLDER, manifest
from caloforge.contract import build_model, load_checkpoint, model_from_header, rebuilt_by_architecture, shippable
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


@pytest.mark.parametrize("entry", manifest(), ids=lambda entry: entry["file"])
def test_the_architecture_rebuilds_every_shipped_mask_exactly(entry):
    """So a shipped checkpoint may be exported without its masks and load unchanged."""
    checkpoint = load_checkpoint(FOLDER / entry["file"])
    rebuilt = model_from_header(checkpoint.header).state_dict()
    saved = checkpoint.ema if checkpoint.ema is not None else checkpoint.model
    masks = [name for name, tensor in saved.items() if rebuilt_by_architecture(name, tensor)]
    assert all(torch.equal(saved[name], rebuilt[name]) for name in masks)


def test_a_flow_exported_without_masks_samples_as_before(rebinned_sample, tmp_path):
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
    energies = torch.full((8,), 10_000.0)
    before, after = (build_model(c).sample(energies, generator=torch.Generator().manual_seed(0))
                     for c in (checkpoint, exported))
    assert torch.equal(before, after)
