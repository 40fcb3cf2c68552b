"""Every command refuses a bad invocation in one line and leaves no file behind, and a terminated ``generate``
removes its unfinished output.

The table drives the real entry point (``caloforge.cli.main``) in-process: exit status 2, exactly one line on
stderr naming the problem, no traceback, and the working folder and the inputs exactly as they were (no output
file, no temporary file). The inputs are the bundled sample, the shipped CaloMan and SuperCalo checkpoints, junk
files and a tiny run config.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from caloforge.checkpoints import FOLDER as SHIPPED
from caloforge.cli import main
from caloforge.contract import geometry_to_dict
from caloforge.data import open_showers, sample_path, write_showers
from caloforge.geometry import load_geometry
from caloforge.train import Checkpoint, load_checkpoint, save_checkpoint

CALOMAN = SHIPPED / "par04-coarse-caloman.pt"
SUPERCALO = SHIPPED / "par04-supercalo.pt"
TINY_MODEL = {"channels": [4, 4], "attention": False, "embed_dim": 8, "n_steps": 20}


def _run_file(showers: Path, **changes) -> dict:
    """A tiny calodiffusion run on the file ``showers``, with top-level ``changes``."""
    return {"family": "calodiffusion", "geometry": "par04", "model": TINY_MODEL,
            "data": {"train": str(showers), "val_fraction": 0.25},
            "train": {"epochs": 1, "batch_size": 24, "patience": 0}, **changes}


def _last_pt(folder: Path, family: str, geometry: str, model_config: dict) -> None:
    """A run folder whose ``last.pt`` says it trained ``family`` on ``geometry`` with ``model_config``."""
    header = {"family": family, "geometry": geometry_to_dict(load_geometry(geometry)), "model_config": model_config,
              "fitted": {}, "epoch": 1, "step": 3}
    save_checkpoint(folder / "last.pt", Checkpoint(header=header, model={"w": torch.zeros(1)}))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Input files the table's placeholders name ({data}, {caloman}, ...), built once."""
    folder = tmp_path_factory.mktemp("inputs")
    energies, showers = open_showers(sample_path()).read(slice(0, 96))
    paths = {"data": write_showers(folder / "tiny.h5", energies, showers), "caloman": CALOMAN,
             "supercalo": SUPERCALO, "inputs": folder}
    for name, content in {"text": b"hello, I am a text file\n", "empty": b"", "byte": b"x",
                          "random": os.urandom(4096)}.items():
        paths[name] = folder / f"{name}.pt"
        paths[name].write_bytes(content)
    configs = {"run": _run_file(paths["data"]), "model_list": _run_file(paths["data"], model=[1, 2]),
               "data_5": _run_file(paths["data"], data=5), "top_list": [1, 2]}
    for name, values in configs.items():
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(values))
    paths["student_alone"] = folder / "student.pt"  # a checkpoint whose base file is not beside it
    paths["student_alone"].write_bytes((CALOMAN.parent / "par04-caloman-student.pt").read_bytes())
    reshaped = load_checkpoint(CALOMAN)
    reshaped.model[next(iter(reshaped.model))] = torch.zeros(3)
    paths["reshaped"] = save_checkpoint(folder / "reshaped.pt", reshaped)
    paths["other_family"] = folder / "other-family"
    _last_pt(paths["other_family"], "caloman", "par04-coarse", {})
    paths["other_size"] = folder / "other-size"
    _last_pt(paths["other_size"], "calodiffusion", "par04", {**TINY_MODEL, "channels": [8, 8]})
    return paths


# (id, command line with {placeholders}, a fragment of the expected one-line error)
CASES = [
    # generate: counts, energies, output
    ("gen-n-negative", "generate {caloman} --n -5", "--n: must be >= 1 (got -5)"),
    ("gen-n-zero", "generate {caloman} --n 0", "--n: must be >= 1 (got 0)"),
    ("gen-n-not-a-number", "generate {caloman} --n many", "--n"),
    ("gen-batch-zero", "generate {caloman} --n 10 --batch-size 0", "--batch-size: must be >= 1 (got 0)"),
    ("gen-batch-negative", "generate {caloman} --n 10 --batch-size -3", "--batch-size: must be >= 1 (got -3)"),
    ("gen-n-huge", "generate {caloman} --n 1000000000000", "of memory at once"),
    ("gen-batch-huge", "generate {caloman} --n 10 --batch-size 100000000000", "of memory at once"),
    ("gen-energy-overflow", "generate {caloman} --n 10 --energies log-uniform:1:1e999",
     "HI (MeV): must be in [1, 1e+07] (got inf)"),
    ("gen-energy-huge", "generate {caloman} --n 10 --energies log-uniform:1:1e300", "HI (MeV): must be in [1, 1e+07]"),
    ("gen-energy-tiny", "generate {caloman} --n 10 --energies log-uniform:1e-30:1e-20",
     "LO (MeV): must be in [1, 1e+07]"),
    ("gen-energy-reversed", "generate {caloman} --n 10 --energies log-uniform:1e4:1e3", "need LO < HI"),
    ("gen-energy-nan", "generate {caloman} --n 10 --energies log-uniform:nan:1e3", "give a CaloChallenge .h5 file"),
    ("gen-energy-spec", "generate {caloman} --n 10 --energies flat:1:2", "give a CaloChallenge .h5 file"),
    ("gen-n-beyond-file", "generate {caloman} --n 1000 --energies {data}", "fewer than --n 1000"),
    ("gen-out-directory", "generate {caloman} --n 10 -o {inputs}", "is a directory"),
    ("gen-seed-negative", "generate {caloman} --n 10 --seed -1", "--seed: must be in [0, 4.29497e+09] (got -1)"),
    ("gen-steps-zero", "generate {caloman} --n 10 --steps 0", "--steps: must be >= 1 (got 0)"),
    ("gen-sampler", "generate {caloman} --n 10 --sampler euler-maruyama", "--sampler: must be one of ddpm"),
    ("gen-shard", "generate {caloman} --n 10 --shard 3/2", "shard 3/2: need 0 <= i < n"),
    ("gen-shard-words", "generate {caloman} --n 10 --shard half", "--shard: expected i/n"),
    # devices this machine does not have, in every command that takes one
    ("gen-device-tpu", "generate {caloman} --n 10 --device tpu", "--device: must be one of auto, cpu"),
    ("gen-device-cuda-99", "generate {caloman} --n 10 --device cuda:99", "--device: must be one of auto, cpu"),
    ("upsample-device", "upsample {data} -m {supercalo} --device cuda:99", "--device: must be one of auto, cpu"),
    ("evaluate-device", "evaluate {data} -r {data} --device tpu", "--device: must be one of auto, cpu"),
    ("train-device", "train {run} --set train.device=cuda:99", "train: device: must be one of auto, cpu"),
    ("train-device-number", "train {run} --set train.device=5", "train: device: must be one of auto, cpu (got 5)"),
    # upsample and evaluate
    ("upsample-k-huge", "upsample {data} -m {supercalo} -k 1000000000000", "of memory at once"),
    ("upsample-k-zero", "upsample {data} -m {supercalo} -k 0", "--variations: must be >= 1 (got 0)"),
    ("evaluate-out-file", "evaluate {data} -r {data} -o {data}", "is a file; give a folder"),
    ("evaluate-repeats", "evaluate {data} -r {data} --repeats 0", "--repeats: must be >= 1 (got 0)"),
    ("evaluate-threshold", "evaluate {data} -r {data} --threshold -1", "--threshold: must be >= 0 (got -1.0)"),
    # bench: every option checked before the first model is timed
    ("bench-sampler", "bench {caloman} --sampler euler:4", "--sampler: must be one of ddpm"),
    ("bench-sampler-steps", "bench {caloman} --sampler heun:0", "--sampler steps: must be >= 1 (got 0)"),
    ("bench-batch-zero", "bench {caloman} --batch-sizes 1,0", "--batch-sizes: must be >= 1 (got 0)"),
    ("bench-batch-words", "bench {caloman} --batch-sizes one", "--batch-sizes: expected comma-separated counts"),
    ("bench-repeats-zero", "bench {caloman} --repeats 0", "--repeats: must be >= 1 (got 0)"),
    ("bench-budget-negative", "bench {caloman} --budget -1", "--budget: must be > 0 (got -1.0)"),
    ("bench-threads-zero", "bench {caloman} --threads 0", "--threads: must be >= 1 (got 0)"),
    ("bench-device", "bench {caloman} --device tpu", "--device: must be one of auto, cpu"),
    # data
    ("data-chunk-zero", "data check {data} --chunk-size 0", "--chunk-size: must be >= 1 (got 0)"),
    ("data-k-one", "data intrinsic-dim {data} --k 1", "--k: must be >= 2 (got 1)"),
    ("data-preprocess", "data intrinsic-dim {data} --preprocess sqrt", "--preprocess: must be one of none, scaled"),
    ("data-rebin-out-directory", "data rebin {data} {inputs} --to par04-coarse", "is a directory"),
    # junk checkpoints, in every command that loads one
    ("ckpt-text", "generate {text} --n 10", "text.pt: not a caloforge checkpoint"),
    ("ckpt-empty", "generate {empty} --n 10", "empty.pt: truncated"),
    ("ckpt-one-byte", "generate {byte} --n 10", "byte.pt: not a caloforge checkpoint"),
    ("ckpt-random", "generate {random} --n 10", "random.pt: not a caloforge checkpoint"),
    ("ckpt-data-file", "generate {data} --n 10", "tiny.h5: not a caloforge checkpoint"),
    ("ckpt-wrong-shapes", "generate {reshaped} --n 10", "reshaped.pt: weights do not fit the model: "),
    ("ckpt-missing", "generate {inputs}/nothing.pt --n 10", "no such checkpoint"),
    ("upsample-ckpt-empty", "upsample {data} -m {empty}", "empty.pt: truncated"),
    ("export-ckpt-text", "export {text} --weights w.pt", "text.pt: not a caloforge checkpoint"),
    ("export-base-elsewhere", "export {caloman} --weights w.pt --base {caloman}",
     "must sit in the folder --weights is written to"),
    ("export-base-is-output", "export {caloman} --weights {inputs}/w.pt --base {inputs}/w.pt",
     "is the file --weights would overwrite"),
    ("ckpt-base-missing", "generate {student_alone} --n 10", "par04-caloman.pt, which must sit beside it"),
    ("distill-ckpt-random", "distill {random}", "random.pt: not a caloforge checkpoint"),
    # run configs
    ("config-model-list", "train {model_list}", "model: must be a mapping"),
    ("config-data-number", "train {data_5}", "data: must be a mapping"),
    ("config-top-level-list", "train {top_list}", "must be a mapping of key: value (got list"),
    ("config-missing", "train {inputs}/nothing.yaml", "cannot read YAML config"),
    ("set-broken-yaml", "train {run} --set train.epochs=[1,", "the value is not YAML"),
    ("set-no-equals", "train {run} --set train.epochs", "not of the form section.key=value"),
    ("set-under-a-value", "train {run} --set family.x=1", "family: must be a mapping"),
    ("config-batch-zero", "train {run} --set train.batch_size=0", "train: batch_size: must be >= 1 (got 0)"),
    ("config-epochs-zero", "train {run} --set train.epochs=0", "train.epochs 0 re-issues train.init_from's weights"),
    ("config-lr-negative", "train {run} --set train.lr=-1e-3", "train: lr: must be > 0 (got -0.001)"),
    ("config-val-fraction", "train {run} --set data.val_fraction=1.5",
     "data: val_fraction: must be in (0, 1) (got 1.5)"),
    ("config-limit-zero", "train {run} --set data.limit=0", "data: limit: must be >= 1 (got 0)"),
    ("config-limit-negative", "train {run} --set data.limit=-5", "data: limit: must be >= 1 (got -5)"),
    ("config-schedule", "train {run} --set train.schedule=cosin", "train: schedule: must be one of cosine, plateau"),
    ("config-ema", "train {run} --set train.ema_decay=1", "train: ema_decay: must be in [0, 1) (got 1.0)"),
    ("config-family", "train {run} --set family=calodifusion", "family: must be one of calodiffusion"),
    # resuming a run of another model
    ("resume-other-family", "train {run} --out {other_family} --resume",
     "cannot resume: the checkpoint's family caloman (config: calodiffusion); geometry par04-coarse (config: par04)"),
    ("resume-other-size", "train {run} --out {other_size} --resume",
     "cannot resume: the checkpoint's model.channels [8, 8] (config: [4, 4])"),
    # argument syntax
    ("unknown-option", "generate {caloman} --bogus", "No such option: --bogus"),
    ("missing-argument", "generate", "Missing argument"),
]


def _files(*folders: Path) -> dict[str, float]:
    """Every file under ``folders`` (hidden ones too) with its modification time."""
    return {str(path): path.stat().st_mtime for folder in folders for path in folder.rglob("*") if path.is_file()}


def run_main(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """The console-script entry point in-process: (exit status, stderr). Its SIGTERM handler is undone after."""
    monkeypatch.setattr(sys, "argv", ["caloforge", *argv])
    handler = signal.getsignal(signal.SIGTERM)
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code
    finally:
        signal.signal(signal.SIGTERM, handler)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("command", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_invocation_is_one_line_and_leaves_nothing(command, expected, inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # default outputs (generated.h5, runs/latest, evaluation/) would land here
    before = _files(tmp_path, inputs["inputs"])
    code, err = run_main(shlex.split(command.format(**inputs)), monkeypatch, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("caloforge: error: ") and expected in err, err
    assert _files(tmp_path, inputs["inputs"]) == before, "no file written, touched or left behind"


def test_a_second_writer_is_refused_and_a_dead_writers_temp_file_removed(inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".gen.h5.tmp-{sleeper.pid}"
        live.touch()
        code, err = run_main(["generate", str(CALOMAN), "--n", "5", "-o", "gen.h5"], monkeypatch, capsys)
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"gen.h5: being written by process {sleeper.pid}" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == [live.name], "the other writer's file is left alone"
    finally:
        sleeper.kill()
        sleeper.wait()
    # the writer is dead now (as after a SIGKILL): the next write to the target clears its temporary file
    code, err = run_main(["generate", str(CALOMAN), "--n", "5", "-o", "gen.h5"], monkeypatch, capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.h5"]
    assert open_showers(tmp_path / "gen.h5").n == 5


def test_sigterm_during_generate_removes_the_unfinished_file(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "gen.h5"
    # enough showers for minutes of work, in small batches so that the temporary file appears at once
    victim = subprocess.Popen([sys.executable, "-m", "caloforge", "generate", str(CALOMAN), "--n", "1000000",
                               "--batch-size", "50", "--device", "cpu", "-o", str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".gen.h5.tmp-*")) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim.poll() is None, "generation was still running when terminated"
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=60)
    assert victim.returncode == 128 + signal.SIGTERM
    assert err.splitlines() == ["caloforge: terminated (SIGTERM); unfinished output removed"]
    assert list(tmp_path.iterdir()) == [], "neither the target nor its temporary file is left"
