"""CaloFlow's teacher (Krause & Shih, arXiv:2106.05285): two MAF-RQS flows trained jointly by likelihood.

Flow 1 gives the layer energies for an incident energy; flow 2 the voxels' shares of their layer (logit,
standardised) given log10(E_inc / 33.3 GeV) and every layer's log energy. The loss is the two flows' negative
log-likelihood per dimension (layers + voxels) of a shower. Density evaluation is one network pass per block;
sampling is ``passes`` passes per block, which is what the student removes. Flow 2 covers all voxels at once
(ds1-sized geometries) or, ``layerwise``, one layer at a time (iCaloFlow, for ds2-sized ones).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.caloflow.config import CaloFlowConfig
from caloforge.models.flows import (InverseAutoregressiveFlow, LayerEnergyFlow, LayerwiseFlow, MaskedAutoregressiveFlow,
                                    VoxelCoding, layer_context, sample_in_chunks,
                                    shower_condition)


def voxel_flow(kind: type[MaskedAutoregressiveFlow] | type[InverseAutoregressiveFlow], config: CaloFlowConfig,
               geometry: Geometry) -> MaskedAutoregressiveFlow | InverseAutoregressiveFlow | LayerwiseFlow:
    """Flow 2 as a MAF (teacher) or as the IAF with the same blocks and voxel orders (student); with
    ``config.layerwise``, the per-layer flow of either kind inside a ``LayerwiseFlow``."""
    condition = 1 + geometry.n_layers
    if not config.layerwise:
        return kind(geometry.n_voxels, condition, config.transforms, config.hidden, config.bins, passes=config.passes,
                    randperm=True, seed=config.seed)
    if not geometry.is_regular:
        raise CaloforgeError(f"caloflow: layerwise needs a regular geometry (the same voxels in every layer); "
                             f"{geometry.name} is irregular: use one flow over all voxels")
    voxels = int(geometry.voxels_per_layer[0])
    inner = kind(voxels, layer_context(condition, geometry.n_layers, voxels), config.transforms, config.hidden,
                 config.bins, passes=config.passes, randperm=True, seed=config.seed)
    return LayerwiseFlow(inner, geometry.n_layers, voxels)


def layer_flow(config: CaloFlowConfig, geometry: Geometry, fitted: dict) -> LayerEnergyFlow:
    return LayerEnergyFlow(geometry.n_layers, fitted["layers"], config.layer_transforms, config.layer_hidden,
                           config.bins)


class CaloFlowTeacher(nn.Module):
    """Flow 1 and flow 2 over one geometry."""

    def __init__(self, config: CaloFlowConfig, geometry: Geometry, fitted: dict):
        super().__init__()
        self.layer_flow = layer_flow(config, geometry, fitted)
        self.coding = VoxelCoding(geometry, fitted["voxels"])
        self.voxel_flow = voxel_flow(MaskedAutoregressiveFlow, config, geometry)
        self.dims = geometry.n_layers + geometry.n_voxels

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """Negative log-likelihood of both flows per shower dimension, on dequantised showers."""
        noisy = self.coding.dequantise(showers)
        layers = self.coding.layer_energies(noisy)
        voxels = self.voxel_flow.log_prob(self.coding.encode(noisy, layers), shower_condition(energies, layers))
        return -(self.layer_flow.log_prob(energies, layers) + voxels).mean() / self.dims

    def sample(self, energies: Tensor, generator: torch.Generator | None = None, **options: Any) -> Tensor:
        return sample_in_chunks(self._sample, energies, generator, options, "caloflow-teacher")

    def _sample(self, energies: Tensor, generator: torch.Generator | None) -> Tensor:
        layers = self.layer_flow.sample(energies, generator)
        return self.coding.decode(self.voxel_flow.sample(shower_condition(energies, layers), generator), layers)
