"""What each CaloChallenge classifier sees, built batch by batch on the device from the stored samples.

Storing the thresholded voxels once (float32) and building the inputs per batch keeps one copy of the data in memory
however many classifiers run (for ds2 with 100k showers per sample that is 2.6 GB per sample instead of one
float64 copy per classifier).

- ``cls-low``: [log10 E_inc, voxels / E_inc]
- ``cls-low-normed``: [log10 E_inc, voxels / (E_layer + 1e-16), log10(E_layer + 1e-8)]
- ``cls-high``: the high-level vector (``ShowerFeatures.high_level_vector``)
- ``cls-resnet``: the (1, layers, alpha, r) image of voxels / E_inc and log10 E_inc (regular geometries)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from caloforge.geometry import Geometry

@dataclass
class LabelledSamples:
    """Both samples stacked, generated rows first (label 0), then the reference's (label 1), equally many of each.

    Stacking once (``evaluate`` reads each file straight into its half) keeps a single copy in host memory however
    many classifiers run; ``InputBuilder`` then shares it on the CPU or copies it to the GPU once.
    """

    e_inc: np.ndarray  # (2n,) MeV
    voxels: np.ndarray | None = None  # (2n, voxels) float32, thresholded
    high: np.ndarray | None = None  # (2n, d) high-level vectors

    @property
    def n_per_class(self) -> int:
        return len(self.e_inc) // 2

    @property
    def labels(self) -> np.ndarray:
        return np.repeat([0.0, 1.0], self.n_per_class)

    @classmethod
    def join(cls, generated: tuple, reference: tuple) -> LabelledSamples:
        """From (e_inc, voxels or None, high or None) of each sample."""
        if len(generated[0]) != len(reference[0]):
            raise ValueError(f"the samples need equally many showers ({len(generated[0])} != {len(reference[0])})")
        stack = [None if g is None else np.concatenate([g, r]) for g, r in zip(generated, reference)]
        return cls(e_inc=stack[0].astype(np.float64), voxels=stack[1], high=stack[2])


class InputBuilder:
    """The stacked samples on the device, making a kind's input for any row indices."""

    def __init__(self, kind: str, data: LabelledSamples, geometry: Geometry, device: torch.device,
                 dtype: torch.dtype):
        self.kind, self.geometry, self.device, self.dtype = kind, geometry, device, dtype
        self.labels = torch.from_numpy(data.labels).to(device=device, dtype=dtype)
        self.e_inc = torch.from_numpy(np.asarray(data.e_inc, dtype=np.float64)).to(device=device, dtype=dtype)
        if kind == "cls-high":
            self.values = torch.from_numpy(data.high).to(device=device, dtype=dtype)
        else:
            # float32 storage (shared with numpy on the CPU); each batch is cast to the network's precision
            self.values = torch.from_numpy(np.asarray(data.voxels, dtype=np.float32)).to(device)
        self.layer_index = torch.from_numpy(geometry.voxel_layer).to(device)

    @property
    def input_dim(self) -> int:
        if self.kind == "cls-high":
            return int(self.values.shape[1])
        if self.kind == "cls-low-normed":
            return 1 + self.geometry.n_voxels + self.geometry.n_layers
        return 1 + self.geometry.n_voxels

    def __call__(self, rows: Tensor) -> tuple[Tensor | tuple[Tensor, Tensor], Tensor]:
        """(inputs, labels) of the given rows; for the ResNet the inputs are (image, log10 E_inc)."""
        e_inc = self.e_inc[rows][:, None]
        log_e = torch.log10(e_inc)
        labels = self.labels[rows]
        if self.kind == "cls-high":
            return self.values[rows], labels
        voxels = self.values[rows].to(self.dtype)
        if self.kind == "cls-low":
            return torch.cat([log_e, voxels / e_inc], dim=1), labels
        if self.kind == "cls-low-normed":
            e_layer = torch.zeros(len(rows), self.geometry.n_layers, device=self.device, dtype=self.dtype)
            e_layer.index_add_(1, self.layer_index, voxels)
            normed = voxels / (e_layer[:, self.layer_index] + 1e-16)
            return torch.cat([log_e, normed, torch.log10(e_layer + 1e-8)], dim=1), labels
        if self.kind == "cls-resnet":
            image = (voxels / e_inc).reshape(len(rows), 1, *self.geometry.shape)
            return (image, log_e), labels
        raise ValueError(f"unknown classifier kind {self.kind!r}")
