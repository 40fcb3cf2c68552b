"""The shared engine: run configs, the checkpoint format's safety, and the generation path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from caloforge.contract import from_dict
from caloforge.data import open_showers
from caloforge.errors import CaloforgeError
from caloforge.geometry import load_geometry
from caloforge.models import get_family
from caloforge.sampling import generate, incident_energies, merge_shards
from caloforge.train import Checkpoint, load_checkpoint, load_run_config, save_checkpoint


def test_run_config_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("family: calodiffusion\ngeometry: par04\ndata: {train: x.h5}\ntrain: {epochs: 3}\n")
    run = load_run_config(path, ["train.epochs=7", "model.channels=[4, 8]", "data.limit=100"])
    assert run.train.epochs == 7 and run.model["channels"] == [4, 8] and run.data.limit == 100
    assert run.train.lr == pytest.approx(4e-4)  # untouched defaults stay


def test_numbers_in_exponent_notation_are_numbers_and_words_are_refused(tmp_path):
    # YAML 1.1 reads 3e-4 (no dot) as a string, which reached the optimiser as one
    path = tmp_path / "run.yaml"
    path.write_text("family: caloman\ngeometry: par04\ntrain: {lr: 3e-4}\n")
    run = load_run_config(path, ["train.epochs=1e2"])
    assert run.train.lr == pytest.approx(3e-4) and run.train.epochs == 100 and isinstance(run.train.epochs, int)
    assert from_dict(get_family("caloman").config, {"alpha": "1e-5"}, "model").alpha == pytest.approx(1e-5)
    with pytest.raises(CaloforgeError, match=r"train: lr: 'fast' is not a number"):
        load_run_config(path, ["train.lr=fast"])
    with pytest.raises(CaloforgeError, match=r"train: epochs: 2.5 is not a whole number"):
        load_run_config(path, ["train.epochs=2.5"])


def test_run_config_rejects_unknown_keys(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("family: calodiffusion\ngeometry: par04\ntrain: {epoch: 3}\n")
    with pytest.raises(CaloforgeError, match="unknown key.*epoch"):
        load_run_config(path)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_parse(path):
    """Every config in configs/ names a known family and geometry, and its model keys are that family's."""
    run = load_run_config(path)
    load_geometry(run.geometry)
    family = get_family(run.family)
    from_dict(family.config, run.model, str(path))


class _Payload:
    """Pickles to a call of os.system: what a malicious checkpoint would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "caloforge-checkpoint-v1", "header": "{}", "model": _Payload(marker)}, path)
    with pytest.raises(CaloforgeError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_checkpoint_round_trip_and_foreign_files(tmp_path):
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    path = save_checkpoint(tmp_path / "c.pt", Checkpoint(header={"family": "x", "fitted": {"a": [1.0]}}, model=weights))
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.model["w"], weights["w"]) and loaded.header["fitted"] == {"a": [1.0]}
    assert "caloforge_version" in loaded.header
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file is left behind"
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CaloforgeError, match="not a caloforge checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CaloforgeError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


class _NoiseModel(torch.nn.Module):
    """Showers = E_inc times seeded noise: enough to check what the generation path does with seeds and shards."""

    def __init__(self, n_voxels: int):
        super().__init__()
        self.n_voxels = n_voxels

    def sample(self, energies, generator=None, **options):
        noise = torch.rand(len(energies), self.n_voxels, generator=generator)
        return noise * energies[:, None] * options.get("scale", 1.0)


def test_sharded_generation_equals_single_run(tmp_path):
    geometry = load_geometry("par04-coarse")
    model = _NoiseModel(geometry.n_voxels)
    energies = incident_energies("log-uniform:1000:100000", 250, seed=3)
    whole = generate(model, geometry, energies, tmp_path / "whole.h5", batch_size=40, seed=5, progress=False,
                     options={"scale": 0.5})
    for shard in range(3):
        generate(model, geometry, energies, tmp_path / "parts.h5", batch_size=40, seed=5, shard=(shard, 3),
                 progress=False, options={"scale": 0.5})
    merged = merge_shards(tmp_path / "parts.h5", 3)
    e1, s1 = open_showers(whole, geometry).read_all()
    e2, s2 = open_showers(merged, geometry).read_all()
    assert np.array_equal(e1, e2) and np.array_equal(s1, s2)
    assert s1.shape == (250, geometry.n_voxels) and s1.max() <= 0.5 * e1.max()
    assert open_showers(whole).attrs()["option_scale"] == "0.5"
    again = generate(model, geometry, energies, tmp_path / "again.h5", batch_size=40, seed=6, progress=False)
    assert not np.array_equal(open_showers(again).read_all()[1], s1), "another seed gives other showers"


def test_incident_energies_specs(tmp_path):
    values = incident_energies("log-uniform:1000:100000", 10_000, seed=1)
    assert values.min() >= 1000 and values.max() <= 100000
    # log-uniform: each decade holds half of the showers
    assert abs(np.mean(values < 10_000) - 0.5) < 0.02
    assert np.array_equal(values, incident_energies("log-uniform:1000:100000", 10_000, seed=1))
    from caloforge.data import sample_path
    from_file = incident_energies(str(sample_path()), 20, seed=0)
    assert np.array_equal(from_file, open_showers(sample_path()).energies()[:20])
    with pytest.raises(CaloforgeError, match="LO < HI"):
        incident_energies("log-uniform:10:1", 5, seed=0)
    with pytest.raises(CaloforgeError, match="fewer than --n"):
        incident_energies(str(sample_path()), 5000, seed=0)
