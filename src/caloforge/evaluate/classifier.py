"""The CaloChallenge classifier test: can a network tell generated showers (label 0) from Geant4 (label 1)?

Protocol (upstream ``evaluate.py``, final version):
- each class is shuffled and split 60 / 20 / 20 into train / "test" / "val" (``int`` of the fractions, the rest
  to val); the classes must hold equally many showers;
- an MLP d -> 2048, 2 x (2048 -> 2048), LeakyReLU after each, -> 1 logit (dropout 0), float64;
  BCEWithLogits, Adam (lr 2e-4), batches of 1000, 50 epochs;
- after every epoch the accuracy on "test" is measured; the best epoch's weights are kept (training stops early at
  accuracy 1);
- isotonic regression (``out_of_bounds="clip"``, outputs within [1e-6, 1 - 1e-6]) fitted on the "test" outputs
  calibrates the classifier; AUC and JSD = (ln 2 - BCE) / ln 2 are measured on "val";
- the paper reports mean and spread over 10 trainings (``repeats`` here; each draws a new split and initialisation).

``QUICK`` (width 256, 2 hidden layers, 15 epochs, float32) is for CPU iteration and is *not* the protocol; results
carry ``protocol: false``. ``cls-resnet`` uses the same training loop with ``ShowerResNet`` in float32.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm import tqdm

from caloforge.errors import CaloforgeError
from caloforge.evaluate.classifier_inputs import InputBuilder, LabelledSamples
from caloforge.evaluate.resnet import ShowerResNet
from caloforge.geometry import Geometry

SPLIT = (0.6, 0.2, 0.2)
#: fewest showers per class: the "val" part then holds at least 50 of each
MIN_SHOWERS = 250
_EVAL_BATCH = 10_000
#: resamples of the "val" part behind an AUC's uncertainty
BOOTSTRAP_RESAMPLES = 200


@dataclass(frozen=True)
class ClassifierSettings:
    """Network and training settings; ``protocol`` says whether they are the CaloChallenge's."""

    n_hidden: int = 2048
    n_layer: int = 2  # hidden -> hidden layers after the input layer
    dropout: float = 0.0
    batch_size: int = 1000
    epochs: int = 50
    lr: float = 2e-4
    dtype: str = "float64"
    resnet_widths: tuple[int, ...] = (32, 64, 64, 128)
    resnet_blocks: tuple[int, ...] = (2, 2, 2, 2)
    protocol: bool = True
    name: str = "protocol"

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


PROTOCOL = ClassifierSettings()
QUICK = ClassifierSettings(n_hidden=256, n_layer=1, epochs=15, dtype="float32", resnet_widths=(8, 16, 16, 32),
                           resnet_blocks=(1, 1, 1, 1), protocol=False, name="quick (not the protocol)")


class MLP(nn.Module):
    """The protocol's network: Linear-LeakyReLU-Dropout blocks, then one logit (use with BCEWithLogitsLoss)."""

    def __init__(self, input_dim: int, n_hidden: int = 2048, n_layer: int = 2, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(input_dim, n_hidden), nn.LeakyReLU(), nn.Dropout(dropout)]
        for _ in range(n_layer):
            layers += [nn.Linear(n_hidden, n_hidden), nn.LeakyReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(n_hidden, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@dataclass
class ClassifierRun:
    """One training's scores on "val" and what the plots need."""

    seed: int
    auc: float
    auc_err: float  # bootstrap standard deviation over the "val" showers
    jsd: float
    auc_uncalibrated: float
    jsd_uncalibrated: float
    accuracy: float
    best_epoch: int
    epochs_run: int
    n_train: int
    n_test: int
    n_val: int
    seconds: float
    val_labels: np.ndarray
    val_probabilities: np.ndarray  # calibrated

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not isinstance(v, np.ndarray)}


def split_indices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shuffled 60/20/20 split of range(n), with upstream's rounding (``int`` of each part, the rest to val)."""
    counts = (n * np.array(SPLIT)).astype(int)
    order = rng.permutation(n)
    train, test, val = np.split(order, np.cumsum(counts)[:-1])
    return train, test, val


def device_for(name: str | None = None) -> torch.device:
    """The GPU when there is one (or the device asked for)."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_classifier(kind: str, data: LabelledSamples, geometry: Geometry, settings: ClassifierSettings = PROTOCOL,
                     seed: int = 0, device: torch.device | None = None, progress: bool = False) -> ClassifierRun:
    """One protocol training and scoring of a classifier of ``kind`` (see ``classifier_inputs``); ``progress``
    shows a bar over its epochs (a protocol training on a CPU runs for many minutes)."""
    n = data.n_per_class
    if len(data.e_inc) != 2 * n:
        raise CaloforgeError(f"{kind}: the classes need equally many showers")
    if n < MIN_SHOWERS:
        raise CaloforgeError(f"{kind}: {n} showers per sample are too few for the 60/20/20 split "
                             f"(need at least {MIN_SHOWERS})")
    started = time.perf_counter()
    device = device or device_for()
    dtype = torch.float32 if kind == "cls-resnet" else getattr(torch, settings.dtype)
    inputs_for = InputBuilder(kind, data, geometry, device, dtype)
    rng = np.random.default_rng(seed)
    parts_gen, parts_ref = split_indices(n, rng), split_indices(n, rng)
    # reference rows follow the generated ones
    train, test, val = (torch.from_numpy(np.concatenate([g, r + n])).to(device) for g, r in zip(parts_gen, parts_ref))
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" \
        else []

    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        if kind == "cls-resnet":
            model: nn.Module = ShowerResNet(settings.resnet_widths, settings.resnet_blocks)
        else:
            model = MLP(inputs_for.input_dim, settings.n_hidden, settings.n_layer, settings.dropout)
        model = model.to(device=device, dtype=dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        loss_fn = nn.BCEWithLogitsLoss()
        shuffle = torch.Generator(device="cpu").manual_seed(seed)
        best_accuracy, best_epoch, best_state, epochs_run = -math.inf, 0, None, 0
        epochs = tqdm(range(settings.epochs), desc=f"{kind} seed {seed}", unit="epoch", leave=False,
                      disable=not progress)
        for epoch in epochs:
            model.train()
            order = train[torch.randperm(len(train), generator=shuffle).to(device)]
            for begin in range(0, len(order), settings.batch_size):
                inputs, labels = inputs_for(order[begin:begin + settings.batch_size])
                loss = loss_fn(model(inputs)[:, 0], labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            epochs_run = epoch + 1
            probabilities, labels = _predict(model, inputs_for, test)
            accuracy = float(np.mean((probabilities > 0.5) == labels))
            epochs.set_postfix(test_accuracy=f"{accuracy:.4f}")
            if accuracy > best_accuracy:
                best_accuracy, best_epoch, best_state = accuracy, epoch + 1, copy.deepcopy(model.state_dict())
            if accuracy == 1.0:
                break
    model.load_state_dict(best_state)
    test_p, test_y = _predict(model, inputs_for, test)
    val_p, val_y = _predict(model, inputs_for, val)
    calibrator = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6).fit(test_p, test_y)
    calibrated = calibrator.predict(val_p)
    return ClassifierRun(
        seed=seed, auc=float(roc_auc_score(val_y, calibrated)), auc_err=bootstrap_auc_err(val_y, calibrated, seed),
        jsd=_jsd(val_y, calibrated),
        auc_uncalibrated=float(roc_auc_score(val_y, val_p)), jsd_uncalibrated=_jsd(val_y, val_p),
        accuracy=float(np.mean((calibrated > 0.5) == val_y)), best_epoch=best_epoch, epochs_run=epochs_run,
        n_train=len(train), n_test=len(test), n_val=len(val), seconds=time.perf_counter() - started,
        val_labels=val_y, val_probabilities=calibrated)


@torch.no_grad()
def _predict(model: nn.Module, data: InputBuilder, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid outputs (float64 numpy) and labels of the given rows, in evaluation mode."""
    model.eval()
    probabilities, labels = [], []
    for begin in range(0, len(rows), _EVAL_BATCH):
        inputs, y = data(rows[begin:begin + _EVAL_BATCH])
        probabilities.append(torch.sigmoid(model(inputs)[:, 0]).double().cpu())
        labels.append(y.double().cpu())
    return torch.cat(probabilities).numpy(), torch.cat(labels).numpy()


def bootstrap_auc_err(labels: np.ndarray, scores: np.ndarray, seed: int) -> float:
    """The AUC's statistical uncertainty from the finite "val" set: its standard deviation over resamples (with
    replacement) of the val showers. Cheap next to a training, and it does not retrain (training noise is what
    ``repeats`` measures)."""
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        rows = rng.integers(0, len(labels), len(labels))
        if labels[rows].min() != labels[rows].max():  # a resample needs both classes
            aucs.append(roc_auc_score(labels[rows], scores[rows]))
    return float(np.std(aucs))


def _jsd(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """(ln 2 - BCE) / ln 2 of probabilities (log clamped at -100, as torch's BCELoss)."""
    log_p = np.maximum(np.log(np.clip(probabilities, 0.0, 1.0)), -100.0)
    log_q = np.maximum(np.log(np.clip(1.0 - probabilities, 0.0, 1.0)), -100.0)
    bce = -np.mean(labels * log_p + (1.0 - labels) * log_q)
    return float((math.log(2.0) - bce) / math.log(2.0))


def classifier_test(kind: str, data: LabelledSamples, geometry: Geometry, settings: ClassifierSettings = PROTOCOL,
                    repeats: int = 1, seed: int = 0, device: torch.device | None = None,
                    progress: bool = False) -> tuple[dict, list[ClassifierRun]]:
    """``repeats`` trainings with seeds seed, seed + 1, ...: (summary for metrics.json, the runs)."""
    runs = [train_classifier(kind, data, geometry, settings, seed + i, device, progress) for i in range(repeats)]
    aucs, jsds = np.array([r.auc for r in runs]), np.array([r.jsd for r in runs])
    summary = {
        "auc": float(aucs.mean()), "auc_std": float(aucs.std(ddof=1)) if repeats > 1 else None,
        "auc_err": float(np.mean([r.auc_err for r in runs])),
        "jsd": float(jsds.mean()), "jsd_std": float(jsds.std(ddof=1)) if repeats > 1 else None,
        "repeats": repeats, "protocol": settings.protocol and kind != "cls-resnet",
        "settings": settings.to_json(), "device": str(device or device_for()),
        "runs": [r.to_json() for r in runs],
    }
    return summary, runs
