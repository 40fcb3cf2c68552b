"""The shared trainer: resume after a kill ends where an uninterrupted run does; torchrun DDP on 2 CPU processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import torch
import yaml

from caloforge.data import open_showers, sample_path, write_showers
from caloforge.geometry import load_geometry
from caloforge.train import load_checkpoint, run_config_from_dict, train
from caloforge.train.data import alpha_augmenter

TINY_MODEL = {"channels": [4, 4], "attention": False, "embed_dim": 8, "n_steps": 20}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    energies, showers = open_showers(sample_path()).read(slice(0, 96))
    return write_showers(tmp_path_factory.mktemp("data") / "tiny.h5", energies, showers)


def _run(tiny_file: Path, **train) -> dict:
    return {"family": "calodiffusion", "geometry": "par04", "model": TINY_MODEL,
            "data": {"train": str(tiny_file), "val_fraction": 0.25},
            "train": {"epochs": 3, "batch_size": 24, "lr": 1e-3, "warmup_steps": 2, "patience": 0, **train},
            "sample": {"steps": 20}}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(path)
    return {**{f"model.{k}": v for k, v in checkpoint.model.items()}, **{f"ema.{k}": v for k, v in checkpoint.ema.items()}}


def test_augmentation_replaces_each_shower_by_one_of_its_images():
    geometry = load_geometry("par04-coarse")
    showers = torch.rand(200, geometry.n_voxels)
    torch.manual_seed(0)
    augmented = alpha_augmenter(geometry, torch.device("cpu"))(showers)
    images = torch.as_tensor(geometry.alpha_symmetries)
    drawn = [[k for k in range(len(images)) if torch.equal(augmented[i], showers[i, images[k]])] for i in range(200)]
    assert all(len(found) == 1 for found in drawn), "every row is exactly one image of its own shower"
    assert len({found[0] for found in drawn}) == len(images), "all images are drawn"


def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(tmp_path, tiny_file):
    torch.set_num_threads(1)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_run(tiny_file)))
    train(run_config_from_dict(_run(tiny_file)), tmp_path / "straight", progress=False)
    # the same run in another process, killed (SIGKILL) once it has written its first checkpoint
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    victim = subprocess.Popen([sys.executable, "-m", "caloforge", "train", str(config), "--out", str(tmp_path / "killed")],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "last.pt"
    deadline = time.monotonic() + 180
    while not last.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = load_checkpoint(last).header["epoch"]
    assert killed_at < 3, "the run was killed before it finished"
    train(run_config_from_dict(_run(tiny_file)), tmp_path / "killed", resume=True, progress=False)
    straight, resumed = _weights(tmp_path / "straight" / "last.pt"), _weights(last)
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    assert load_checkpoint(last).header["epoch"] == 3 and (tmp_path / "killed" / "model.pt").exists()


@pytest.mark.parametrize("keep", ["best", "last"])
def test_model_holds_the_best_or_the_last_epoch_as_told(tmp_path, tiny_file, keep):
    torch.set_num_threads(1)
    final = train(run_config_from_dict(_run(tiny_file, keep=keep)), tmp_path, progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    best_epoch = min(log, key=lambda record: record["val_loss"])["epoch"]
    assert load_checkpoint(final).header["epoch"] == (best_epoch if keep == "best" else 3)
    assert keep == "best" or all(torch.equal(weight, load_checkpoint(tmp_path / "last.pt").ema[name])
                                 for name, weight in load_checkpoint(final).model.items())


def test_compiled_training_matches_eager_and_saves_plain_weights(tmp_path, tiny_file, monkeypatch):
    torch.set_num_threads(1)
    # compiled code draws its random numbers with its own generator (seeded too); use eager's here to compare
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    runs = {}
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for compiled in (False, True):
        run = _run(tiny_file, epochs=1, max_steps=2, compile=compiled)
        runs[compiled] = train(run_config_from_dict(run), tmp_path / str(compiled), progress=False).parent
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0, "the compiled run went through dynamo"
    logs = [[json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()] for folder in runs.values()]
    assert logs[0][0]["train_loss"] == pytest.approx(logs[1][0]["train_loss"], rel=1e-4)
    assert logs[0][0]["val_loss"] == pytest.approx(logs[1][0]["val_loss"], rel=1e-4)
    eager, compiled = _weights(runs[False] / "last.pt"), _weights(runs[True] / "last.pt")
    assert eager.keys() == compiled.keys(), "no torch.compile prefixes in the checkpoint"
    assert all(torch.allclose(eager[key], compiled[key], atol=1e-5) for key in eager)


def test_torchrun_ddp_on_two_cpu_processes(tmp_path, tiny_file):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_run(tiny_file, epochs=2)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "caloforge", "train", str(config), "--out", str(tmp_path / "ddp")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 process(es)" in result.stdout
    assert result.stdout.count("epoch 2:") == 1, "only rank 0 logs"
    checkpoint = load_checkpoint(tmp_path / "ddp" / "last.pt")
    # 72 training showers, batch 24 per process, 2 processes: 1 step per epoch, 2 epochs
    assert checkpoint.header["step"] == 2 and checkpoint.header["epoch"] == 2
    with h5py.File(tmp_path / "gen.h5", "w"):
        pass  # an existing target must be replaced atomically, not appended to
    generate = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "caloforge", "generate", str(tmp_path / "ddp" / "model.pt"), "--showers", "10", "--steps", "3",
                "--batch-size", "3", "--out", str(tmp_path / "gen.h5")]
    result = subprocess.run(generate, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    energies, showers = open_showers(tmp_path / "gen.h5").read_all()
    assert showers.shape == (10, 6480) and not list(tmp_path.glob("gen.shard*"))
