"""Every registered family through the same life: a tiny model trains two steps through the shared trainer, its
checkpoint is saved and loaded back, generates through the one generation path and is evaluated. A new family
is walked through it by registering; it only adds its tiny hyper-parameters to ``TINY`` (else it runs at its
defaults, which may be slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caloforge.contract import family_names, get_family, save_checkpoint
from caloforge.data import open_showers
from caloforge.evaluate import evaluate
from caloforge.models.supercalo.chain import combine
from caloforge.sampling.generate import generate
from caloforge.train import load_model, run_config_from_dict, train

pytestmark = pytest.mark.usefixtures("one_thread")

#: per family, the run sections that make it tiny (a family trained on a frozen one gets that one's path itself)
TINY = {
    "calodiffusion": {"model": {"channels": [4, 4], "n_steps": 20}, "sample": {"sampler": "ddim", "steps": 2}},
    "calodiffusion-student": {"model": {"n_intervals": 10}},
    "caloflow-teacher": {"model": {"layer_transforms": 1, "layer_hidden": [8], "transforms": 1, "hidden": [8],
                                   "passes": 2}},
    "caloflow-student": {},
    "caloman": {"model": {"stage": "flow", "latent": 4, "encoder": [16], "decoder": [16], "flow_transforms": 1,
                          "flow_hidden": [8], "layer_transforms": 1, "layer_hidden": [8]}},
    "supercalo": {"geometry": "par04", "model": {"transforms": 1, "hidden": [8], "layer_transforms": 1,
                                                 "layer_hidden": [8], "fit_showers": 100}},
    "flowmatch": {"model": {"width": 16, "depth": 1, "heads": 2, "energy_width": 16, "energy_depth": 1},
                  "sample": {"steps": 2}},
    "flowmatch-student": {"model": {"n_intervals": 4}},
}

#: families whose checkpoint generates only joined to a model of the coarse showers it refines (``combine``)
COARSE_MODEL = {"supercalo": "caloflow-teacher"}

SHOWERS = 100


@pytest.fixture(scope="module")
def trained(rebinned_sample, tmp_path_factory):
    """``trained(family, geometry=None)``: the checkpoint of a two-step run of ``family``'s tiny model (after the
    frozen model it trains on top of), trained once per module."""
    runs: dict[tuple[str, str], Path] = {}

    def run(name: str, geometry: str | None = None) -> Path:
        tiny = TINY.get(name, {})
        geometry = geometry or tiny.get("geometry", "par04-coarse")
        if (name, geometry) not in runs:
            model = dict(tiny.get("model", {}))
            steps = {"epochs": 1, "max_steps": 2, "batch_size": 32, "warmup_steps": 1, "device": "cpu"}
            frozen = get_family(name).frozen
            if frozen is not None:  # a model on top of a frozen one also starts from its weights
                model[frozen.field] = steps["init_from"] = str(run(frozen.family, geometry))
            values = {"family": name, "geometry": geometry, "data": {"train": rebinned_sample(SHOWERS, geometry)[3]},
                      "model": model, "train": steps, "sample": tiny.get("sample", {})}
            runs[name, geometry] = train(run_config_from_dict(values, f"{name} tiny run"),
                                         tmp_path_factory.mktemp(name), progress=False)
        return runs[name, geometry]

    return run


def generating_checkpoint(name: str, trained, tmp_path: Path) -> Path:
    """The family's checkpoint, joined to a coarse model where it needs one to generate."""
    path = trained(name)
    if name not in COARSE_MODEL:
        return path
    model, checkpoint = load_model(path)
    coarse = trained(COARSE_MODEL[name], model.voxelisation.coarse.name)
    return save_checkpoint(tmp_path / "chain.pt", combine(coarse, path))


@pytest.mark.parametrize("name", family_names())
def test_every_family_trains_saves_loads_generates_and_is_evaluated(name, trained, rebinned_sample, tmp_path):
    model, checkpoint = load_model(generating_checkpoint(name, trained, tmp_path))
    assert checkpoint.header["family"] == name and not model.training
    geometry, energies, _, reference = rebinned_sample(SHOWERS, checkpoint.geometry.name)
    out = generate(model, geometry, energies[:20].numpy(), tmp_path / "gen.h5", batch_size=10, seed=1,
                   options=checkpoint.header["sample_defaults"], progress=False)
    generated_energies, showers = open_showers(out, geometry).read_all()
    assert showers.shape == (20, geometry.n_voxels) and np.isfinite(showers).all() and (showers >= 0).all()
    np.testing.assert_array_equal(generated_energies, energies[:20].numpy())
    metrics = evaluate(out, reference, geometry, metrics="hist", quick=True, out_dir=tmp_path / "eval",
                       use_cache=False)
    powers = metrics["histograms"]["separation_power"]
    assert (tmp_path / "eval" / "metrics.json").is_file() and powers
    assert {"E_tot/E_inc", "E_layer", "E_voxel"} <= set(powers)
