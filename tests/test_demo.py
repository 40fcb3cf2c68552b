"""The main job: ``caloforge demo`` trains (tiny), generates, evaluates and writes one report that renders."""

from __future__ import annotations

import json

import pytest
import torch
from browser import chromium_binary, images_loaded, render_dom

from caloforge.data import open_showers, sample_path, write_showers
from caloforge.demo import run_demo, shipped_checkpoints
from caloforge.geometry import Rebinning, load_geometry
from caloforge.train import load_checkpoint, run_config_from_dict, save_checkpoint, train


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny CaloDiffusion on par04-coarse: stands in for a shipped model, with its run config in the header."""
    folder = tmp_path_factory.mktemp("tiny")
    energies, showers = open_showers(sample_path()).read(slice(0, 64))
    coarse = Rebinning(load_geometry("par04"), load_geometry("par04-coarse"))(showers)
    data = write_showers(folder / "coarse.h5", energies, coarse)
    run = {"family": "calodiffusion", "geometry": "par04-coarse", "data": {"train": str(data), "val_fraction": 0.25},
           "model": {"channels": [4, 4], "attention": False, "embed_dim": 8, "n_steps": 20},
           "train": {"epochs": 1, "batch_size": 16, "patience": 0}, "sample": {"sampler": "ddim", "steps": 3}}
    torch.set_num_threads(1)
    return train(run_config_from_dict(run), folder / "run", progress=False)


def test_demo_retrains_generates_evaluates_and_reports(tmp_path, tiny_checkpoint):
    messages = []
    # a distilled student among the checkpoints: --train skips it (its teacher would have to be retrained first)
    student = load_checkpoint(tiny_checkpoint)
    student.header["run"]["model"] = {**student.header["run"]["model"], "teacher": "teacher.pt"}
    student_path = save_checkpoint(tmp_path / "tiny-student.pt", student)
    report = run_demo(tmp_path / "demo", checkpoints=[student_path, tiny_checkpoint], n_showers=260, retrain=True,
                      train_steps=2, log=messages.append)
    assert "tiny-student: skipped: a distilled student needs its teacher retrained first" in messages
    summary = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    (model,) = summary["models"]
    assert model["family"] == "calodiffusion" and model["geometry"]["name"] == "par04-coarse"
    # retrained on the first half of the sample, evaluated on the second half rebinned to par04-coarse
    assert model["files"]["reference"]["n_showers"] == 1500
    assert load_checkpoint(tmp_path / "demo" / "train" / "par04-coarse-calodiffusion" / "model.pt").header["step"] == 2
    assert 0 <= model["classifiers"]["cls-low"]["auc"] <= 1 and model["timing"]["ms_per_shower"] > 0
    for entry in model["classifiers"].values():  # every classifier beside what it can resolve at this size
        assert {"floor_auc", "floor_auc_err", "distorted_auc", "distorted_auc_err", "resolves"} <= set(entry)
    timing = model["timing"]
    assert timing["load_average"] >= 0 and timing["cpu_seconds"] > 0 and "busy" in timing
    assert summary["geant4_ms_per_shower"] == pytest.approx(175, rel=0.01)  # recorded in the sample's attributes
    assert any("report:" in m for m in messages)
    text = report.read_text()
    assert "Quality versus time" in text and "CaloDiffusion" in text and "how close, how fast" in text
    browser = chromium_binary()
    if browser is None:
        pytest.skip("chromium not installed (tools/test.sh installs it): the demo report's rendering was not checked")
    dom = render_dom(browser, report, tmp_path / "chrome")
    images, loaded = images_loaded(dom)
    assert images >= 2 and loaded == images
    assert dom.count("<table") >= 2
    # a coarse model never stands beside the published entries: the table says why, the plane draws it aside
    assert "no: geometry par04-coarse (359 voxels), not the dataset-2 mesh" in dom


def test_shipped_checkpoints_load():
    for path in shipped_checkpoints():
        checkpoint = load_checkpoint(path)
        assert checkpoint.header["family"] and "run" in checkpoint.header


def test_retraining_caloman_retrains_its_earlier_stages_first(tmp_path, tiny_checkpoint):
    """A shipped CaloMan's later stage is retrained on its retrained earlier stages (autoencoder, then flows), never
    on a random frozen one."""
    tiny = {"latent": 4, "encoder": [32], "decoder": [32], "flow_transforms": 2, "flow_hidden": [16],
            "layer_transforms": 2, "layer_hidden": [8]}
    run = load_checkpoint(tiny_checkpoint).header["run"]
    shipped = train(run_config_from_dict({**run, "family": "caloman", "model": {**tiny, "stage": "decoder"},
                                          "sample": {}}), tmp_path / "shipped", progress=False)
    # its step-3 student (flow 1 distilled) is skipped: it needs a retrained flow stage to start from
    student = load_checkpoint(shipped)
    student.header["run"]["model"] = {**student.header["run"]["model"], "stage": "student"}
    messages = []
    run_demo(tmp_path / "demo", checkpoints=[shipped, save_checkpoint(tmp_path / "student.pt", student)],
             n_showers=260, retrain=True, train_steps=2, log=messages.append)
    assert "student: skipped: a distilled student needs its teacher retrained first" in messages
    folder = tmp_path / "demo" / "train" / "par04-coarse-caloman"
    step1, step2, last = (load_checkpoint(path / "model.pt") for path in (folder / "autoencoder", folder / "flow",
                                                                          folder))
    assert [c.header["run"]["model"]["stage"] for c in (step1, step2, last)] == ["autoencoder", "flow", "decoder"]
    assert step1.header["step"] == step2.header["step"] == 2
    encoder = [key for key in step1.model if key.startswith("autoencoder.encoder.")]
    assert encoder and all(torch.equal(step1.model[key], last.model[key]) for key in encoder)
    flows = [key for key in step2.model if key.startswith(("layer_flow.", "latent_flow."))]
    assert flows and all(torch.equal(step2.model[key], last.model[key]) for key in flows)
