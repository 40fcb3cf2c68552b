"""Invertible, serialisable preprocessing, fitted on training data and saved with a model.

Each transform is a small dataclass with ``forward(x, e_inc)`` and ``inverse(y, e_inc)`` on torch tensors (``e_inc``
is the (N,) incident energy in MeV, which some transforms need), ``fit`` (returns a fitted copy; most have nothing
to fit) and ``to_dict``. ``Chain`` composes them and inverts in reverse order, so a ``Threshold`` placed first acts
last on the way out: the readout threshold is always applied to generated showers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
import torch
from torch import Tensor

from caloforge.errors import CaloforgeError

#: readout thresholds in MeV (CaloChallenge evaluate.py): ds2/ds3/Par04 15.15 keV, ds1 1 MeV
THRESHOLDS_MEV = {"ds1-photons": 1.0, "ds1-pions": 1.0, "ds2": 0.01515, "ds3": 0.01515, "par04": 0.01515,
                  "par04-coarse": 0.01515}

_REGISTRY: dict[str, type] = {}


def _register(cls):
    _REGISTRY[cls.__name__] = cls
    return cls


def _column(e_inc: Tensor, like: Tensor) -> Tensor:
    return torch.as_tensor(e_inc, dtype=like.dtype, device=like.device).reshape(-1, *([1] * (like.dim() - 1)))


@dataclass
class _Base:
    """Default behaviour: nothing to fit; serialises its fields."""

    def fit(self, x: Tensor, e_inc: Tensor):
        return self

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, **asdict(self)}


@_register
@dataclass
class Threshold(_Base):
    """Identity on the way in; on the way out, zeroes voxels below ``cut`` MeV (the readout threshold)."""

    cut: float = 0.01515

    def forward(self, x: Tensor, e_inc: Tensor) -> Tensor:
        return x

    def inverse(self, y: Tensor, e_inc: Tensor) -> Tensor:
        return torch.where(y < self.cut, torch.zeros_like(y), y)


@_register
@dataclass
class DivideByIncident(_Base):
    """x / (factor * E_inc): voxel energies as fractions of the incident energy, ``factor`` keeping them below 1."""

    factor: float = 2.0

    def forward(self, x: Tensor, e_inc: Tensor) -> Tensor:
        return x / (self.factor * _column(e_inc, x))

    def inverse(self, y: Tensor, e_inc: Tensor) -> Tensor:
        return y * (self.factor * _column(e_inc, y))


@_register
@dataclass
class Logit(_Base):
    """logit(alpha + (1 - 2 alpha) x) for x in [0, 1]; the inverse clips back into [0, 1]."""

    alpha: float = 1e-6

    def forward(self, x: Tensor, e_inc: Tensor) -> Tensor:
        u = self.alpha + (1 - 2 * self.alpha) * x.clamp(0, 1)
        return torch.log(u) - torch.log1p(-u)

    def inverse(self, y: Tensor, e_inc: Tensor) -> Tensor:
        # the sigmoid spelled out: ONNX Runtime's Sigmoid is accurate to ~5e-8 absolute, not relative, and returns 0
        # under -18 and twice the value at -17, where a small alpha puts the readout threshold (its Exp is exact)
        sigmoid = torch.reciprocal(1 + torch.exp(-y))
        return ((sigmoid - self.alpha) / (1 - 2 * self.alpha)).clamp(0, 1)


@_register
@dataclass
class Standardize(_Base):
    """(x - mean) / std, one pair for all features or one per feature; fitted on training data."""

    per_feature: bool = False
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    def fit(self, x: Tensor, e_inc: Tensor) -> Standardize:
        x64 = x.double().reshape(len(x), -1)
        if self.per_feature:
            mean, std = x64.mean(0), x64.std(0).clamp_min(1e-6)
        else:
            mean, std = x64.mean().reshape(1), x64.std().clamp_min(1e-6).reshape(1)
        return replace(self, mean=mean.tolist(), std=std.tolist())

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        if not self.mean:
            raise CaloforgeError("Standardize was used before it was fitted")
        shape = like.shape[1:] if self.per_feature else (1,)
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).reshape(shape)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).reshape(shape)
        return mean, std

    def forward(self, x: Tensor, e_inc: Tensor) -> Tensor:
        mean, std = self._stats(x)
        return (x - mean) / std

    def inverse(self, y: Tensor, e_inc: Tensor) -> Tensor:
        mean, std = self._stats(y)
        return y * std + mean


@_register
@dataclass
class LayerFractions(_Base):
    """CaloFlow's layer variables: (N, L) layer energies -> u_0 = sum E / E_inc, u_i = E_{i-1} / sum_{j>=i-1} E_j.

    The last layer needs no variable of its own (it takes what remains), so L energies give L variables, each in
    [0, 1] (u_0 a little above 1 is possible) and independent of the overall scale.
    """

    eps: float = 1e-10

    def forward(self, x: Tensor, e_inc: Tensor) -> Tensor:
        total = x.sum(1, keepdim=True)
        remaining = x.flip(1).cumsum(1).flip(1)  # sum of layers i..L-1
        fractions = x[:, :-1] / remaining[:, :-1].clamp_min(self.eps)
        return torch.cat([total / _column(e_inc, x), fractions], dim=1)

    def inverse(self, y: Tensor, e_inc: Tensor) -> Tensor:
        remaining = y[:, 0] * _column(e_inc, y)[:, 0]
        layers = []
        for i in range(1, y.shape[1]):
            layer = y[:, i].clamp(0, 1) * remaining
            layers.append(layer)
            remaining = remaining - layer
        layers.append(remaining)
        return torch.stack(layers, dim=1)


@_register
@dataclass
class LogEnergy(_Base):
    """Incident energy as a condition in [0, 1]: log10(E / e_min) / log10(e_max / e_min) (MeV)."""

    e_min: float = 1e3
    e_max: float = 1e6

    def forward(self, x: Tensor, e_inc: Tensor) -> Tensor:
        return torch.log10(x / self.e_min) / torch.log10(torch.tensor(self.e_max / self.e_min, dtype=x.dtype))

    def inverse(self, y: Tensor, e_inc: Tensor) -> Tensor:
        return self.e_min * (self.e_max / self.e_min) ** y


@dataclass
class Chain:
    """Transforms applied in order; inverted in reverse order."""

    steps: list

    def fit(self, x: Tensor, e_inc: Tensor) -> Chain:
        fitted = []
        for step in self.steps:
            step = step.fit(x, e_inc)
            x = step.forward(x, e_inc)
            fitted.append(step)
        return Chain(fitted)

    def forward(self, x: Tensor, e_inc: Tensor) -> Tensor:
        for step in self.steps:
            x = step.forward(x, e_inc)
        return x

    def inverse(self, y: Tensor, e_inc: Tensor) -> Tensor:
        for step in reversed(self.steps):
            y = step.inverse(y, e_inc)
        return y

    def to_dict(self) -> dict:
        return {"type": "Chain", "steps": [s.to_dict() for s in self.steps]}


def transform_from_dict(spec: dict):
    """Rebuild a transform (or a chain) saved with ``to_dict``."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind == "Chain":
        return Chain([transform_from_dict(s) for s in spec["steps"]])
    if kind not in _REGISTRY:
        raise CaloforgeError(f"unknown transform '{kind}' in saved preprocessing")
    return _REGISTRY[kind](**spec)


def voxel_preprocessing(threshold_mev: float, factor: float = 2.0, alpha: float = 1e-6) -> Chain:
    """CaloDiffusion's chain, unfitted: threshold, voxel / (factor E_inc), logit, standardisation."""
    return Chain([Threshold(threshold_mev), DivideByIncident(factor), Logit(alpha), Standardize()])
