"""The one training loop every model family uses.

Single process, or many under ``torchrun`` (DistributedDataParallel; rank 0 logs and writes checkpoints). Each
epoch ends with a validation loss of the EMA weights and an atomic checkpoint (``last.pt``; ``best.pt`` when the
validation loss improves). ``resume=True`` continues from ``last.pt``: the batch order is a function of
(seed, epoch) and the RNG state is saved, so a killed-and-resumed run ends where an uninterrupted one does.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from caloforge.contract import (
    Checkpoint,
    from_dict,
    geometry_to_dict,
    get_family,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    slim,
)
from caloforge.errors import CaloforgeError
from caloforge.geometry import load_geometry
from caloforge.train import distributed
from caloforge.train.config import RunConfig
from caloforge.train.data import alpha_augmenter, load_split, make_loader
from caloforge.train.resume import check_resumable


def _lr_lambda(config, steps_per_epoch: int):
    total = max(1, config.epochs * steps_per_epoch if not config.max_steps else config.max_steps)

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
        return 0.5 * (1 + math.cos(math.pi * progress)) * 0.99 + 0.01
    return factor


def _ema_with_warmup(decay: float):
    """EMA update whose decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates.

    With a fixed 0.999 the average still holds most of the random initial weights after a few hundred steps; the
    ramp makes the averaged weights useful from early on (short CPU runs) and changes nothing in long ones.
    """
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        torch._foreach_lerp_(averaged, current, 1 - min(decay, (1 + n) / (10 + n)))
    return update


@torch.no_grad()
def _validation_loss(model, loader, device, seed: int) -> float:
    """Mean loss on the validation set with a fixed noise seed, so epochs compare like with like.

    The RNG states (the GPU's too) are restored afterwards, so training noise does not restart each epoch."""
    total, count = 0.0, 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for energies, showers in loader:
            total += float(model(energies.to(device), showers.to(device))) * len(energies)
            count += len(energies)
    return total / max(count, 1)


def _trim_log(path: Path, epoch: int) -> None:
    """Keep the log's records up to ``epoch``, the resumed checkpoint's: a run killed after logging an epoch but
    before its checkpoint was saved runs that epoch again, and must not log it twice."""
    def logged_epoch(line: str) -> float:
        try:
            return json.loads(line)["epoch"]
        except (ValueError, KeyError, TypeError):
            return math.inf  # a line cut short by the kill
    if path.exists():
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if logged_epoch(line) <= epoch))


def _budget_spent(cfg, header: dict, epoch_cpu_seconds: float = 0.0) -> bool:
    """Whether the run has taken its ``max_steps`` or its ``cpu_minutes`` (the checkpoints carry the CPU time)."""
    steps_spent = cfg.max_steps and header["step"] >= cfg.max_steps
    return bool(steps_spent or cfg.cpu_minutes and header["cpu_seconds"] + epoch_cpu_seconds >= 60 * cfg.cpu_minutes)


def train(run: RunConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train ``run`` into ``out_dir`` (``last.pt``, ``best.pt``, ``model.pt``, ``log.jsonl``); returns ``model.pt``."""
    out_dir = Path(out_dir)
    cfg = run.train
    ctx = distributed.init(cfg.device)
    if cfg.cpu_minutes and ctx.distributed:
        raise CaloforgeError("train.cpu_minutes budgets one process's CPU time; under torchrun use max_steps")
    geometry = load_geometry(run.geometry)
    family = get_family(run.family)
    model_config = from_dict(family.config, run.model, f"{run.family} model config")
    torch.manual_seed(cfg.seed + ctx.rank)

    if cfg.epochs == 0 and not cfg.init_from:
        raise CaloforgeError("train.epochs 0 re-issues train.init_from's weights under this config: give init_from")
    train_set, val_set = load_split(run.data, geometry, cfg.seed)
    last = out_dir / "last.pt"
    state = load_checkpoint(last) if resume and last.exists() else None
    if resume and state is None and ctx.is_main:
        print(f"no checkpoint at {last}: starting a new run")
    if state:
        check_resumable(state, last, run.family, geometry, model_config)
    fitted = state.header["fitted"] if state else family.fit(model_config, geometry, train_set.energies, train_set.showers)

    model = family.build(model_config, geometry, fitted).to(ctx.device)
    if cfg.init_from and state is None:
        for path in [cfg.init_from] if isinstance(cfg.init_from, str) else cfg.init_from:
            source = load_checkpoint(path)
            load_weights(model, source.ema or source.model, path, strict=False)
    ema = AveragedModel(model, multi_avg_fn=_ema_with_warmup(cfg.ema_decay))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_loader = make_loader(train_set, cfg.batch_size, ctx, cfg.seed, shuffle=True)
    val_loader = make_loader(val_set, cfg.batch_size, ctx, cfg.seed, shuffle=False)
    augment = alpha_augmenter(geometry, ctx.device) if run.data.augment else None
    if len(train_loader) == 0:
        raise CaloforgeError(f"{run.data.train}: too few showers ({len(train_set)}) for one batch of {cfg.batch_size}")
    if cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, len(train_loader)))
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=cfg.lr_patience)
    header = {"family": run.family, "model_config": run.model, "run": run.to_dict(), "fitted": fitted,
              "geometry": geometry_to_dict(geometry), "sample_defaults": {**family.sample_defaults, **run.sample},
              "epoch": 0, "step": 0, "best_val": float("inf"), "stale_epochs": 0, "cpu_seconds": 0.0}
    if state:
        load_weights(model, state.model, last)
        load_weights(ema.module, state.ema, last)
        ema.n_averaged.fill_(state.header["step"])
        optimizer.load_state_dict(state.optimizer)
        scheduler.load_state_dict(state.scheduler)
        torch.set_rng_state(state.rng)
        header.update({k: state.header[k] for k in ("epoch", "step", "best_val", "stale_epochs")})
        header["cpu_seconds"] = state.header.get("cpu_seconds", 0.0)
    net = DistributedDataParallel(model) if ctx.distributed else model
    validated = ema.module
    if cfg.compile:
        # static shapes: a validation set's last, smaller batch compiles once more instead of tracing every
        # family's random draws with symbolic sizes; the wrappers share the modules' parameters, so checkpoints
        # keep the plain names
        net, validated = torch.compile(net, dynamic=False), torch.compile(ema.module, dynamic=False)
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if state:
            _trim_log(out_dir / "log.jsonl", header["epoch"])
        log = (out_dir / "log.jsonl").open("a")
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{run.family} on {geometry.describe()}: {n_params:,} parameters, {len(train_set)} train / "
              f"{len(val_set)} val showers, {ctx.world_size} process(es) on {ctx.device}")

    while header["epoch"] < cfg.epochs and not _budget_spent(cfg, header):
        epoch = header["epoch"]
        train_loader.sampler.set_epoch(epoch)
        model.train()
        started, started_cpu, running, seen = time.perf_counter(), time.process_time(), 0.0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (progress and ctx.is_main),
                   leave=False, unit="batch")
        for energies, showers in bar:
            showers = showers.to(ctx.device)
            loss = net(energies.to(ctx.device), augment(showers) if augment else showers)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            ema.update_parameters(model)
            if cfg.schedule == "cosine":
                scheduler.step()
            header["step"] += 1
            running += loss.item() * len(energies)
            seen += len(energies)
            bar.set_postfix(loss=f"{running / seen:.4f}", showers_per_s=f"{seen / (time.perf_counter() - started):.0f}")
            if _budget_spent(cfg, header, time.process_time() - started_cpu):
                break
        ema.module.eval()
        val = distributed.mean_over_ranks(_validation_loss(validated, val_loader, ctx.device, cfg.seed), ctx)
        train_loss = distributed.mean_over_ranks(running / max(seen, 1), ctx)
        if cfg.schedule == "plateau":
            scheduler.step(val)
        header["epoch"] = epoch + 1
        improved = val < header["best_val"]
        header["best_val"] = min(val, header["best_val"])
        header["stale_epochs"] = 0 if improved else header["stale_epochs"] + 1
        epoch_cpu_seconds = round(time.process_time() - started_cpu, 2)
        header["cpu_seconds"] += epoch_cpu_seconds
        if ctx.is_main:
            seconds = time.perf_counter() - started
            record = {"epoch": epoch + 1, "step": header["step"], "train_loss": train_loss, "val_loss": val,
                      "lr": optimizer.param_groups[0]["lr"], "seconds": round(seconds, 2),
                      "cpu_seconds": epoch_cpu_seconds}
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(f"epoch {epoch + 1}: train {train_loss:.5f}  val {val:.5f}{'  *' if improved else ''}  "
                  f"({record['seconds']} s, {seen * ctx.world_size / seconds:.0f} showers/s)")
            checkpoint = Checkpoint(header=dict(header), model=model.state_dict(), ema=ema.module.state_dict(),
                                    optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                                    rng=torch.get_rng_state())
            save_checkpoint(last, checkpoint)
            if improved:
                save_checkpoint(out_dir / "best.pt", slim(checkpoint))
            if cfg.snapshot_every and header["epoch"] % cfg.snapshot_every == 0:
                save_checkpoint(out_dir / f"epoch-{header['epoch']}.pt", slim(checkpoint))
        distributed.barrier(ctx)
        if cfg.patience and header["stale_epochs"] >= cfg.patience:
            if ctx.is_main:
                print(f"early stop: validation loss flat for {cfg.patience} epochs")
            break

    final = out_dir / "model.pt"
    if ctx.is_main:
        best = out_dir / "best.pt"
        if header["epoch"] == 0:  # no epoch ran (train.epochs 0): the starting weights under this run's config
            save_checkpoint(final, Checkpoint(header=dict(header), model=ema.module.state_dict()))
        else:
            keep_best = cfg.keep == "best" and best.exists()
            save_checkpoint(final, load_checkpoint(best) if keep_best else slim(load_checkpoint(last)))
        log.close()
    distributed.barrier(ctx)
    distributed.finish(ctx)
    return final
