"""The preprocessing both flow families fit before training: flow 1's u variables and the voxel coding.

Both are fitted on the same dequantised showers (seeded noise), the first ``FIT_SHOWERS`` of the (shuffled)
training set.
"""

from __future__ import annotations

import torch
from torch import Tensor

from caloforge.contract import FIT_SHOWERS, readout_threshold
from caloforge.geometry import Geometry
from caloforge.models.flows.hit_counts import fit_hit_counts
from caloforge.models.flows.layer_energy import fit_empty_gap, fit_layer_energy
from caloforge.models.flows.voxels import cut, dequantise, fit_voxel_coding, layer_sums, noisy_layer_sums


def fit_preprocessing(geometry: Geometry, energies: Tensor, showers: Tensor, alpha: float = 1e-6,
                      dequantised_voxels: bool = True, seed: int = 0) -> dict:
    """``{"layers": flow 1's fitted u variables, "voxels": the fitted voxel coding}``, JSON-serialisable.

    Flow 1 always sees dequantised layer energies. The voxel coding is fitted on dequantised showers, whose layer
    energies are those of flow 1; or, with ``dequantised_voxels=False`` (CaloMan's autoencoder), on the showers
    only cut at the threshold, and flow 1's layer energies are dequantised per layer (``noisy_layer_sums``), which
    leaves a gap over the empty layers that sampling respects (``fit_empty_gap``), and the coding holds Geant4's law
    of the hit counts given the layer energies (``fit_hit_counts``).
    """
    n = min(len(showers), FIT_SHOWERS)
    threshold = readout_threshold(geometry)
    generator = torch.Generator().manual_seed(seed)
    voxel_layer = torch.as_tensor(geometry.voxel_layer, dtype=torch.long)
    voxels = dequantise(showers[:n], threshold, generator) if dequantised_voxels else cut(showers[:n], threshold)
    sums = layer_sums(voxels, voxel_layer, geometry.n_layers)
    layers = sums if dequantised_voxels else noisy_layer_sums(voxels, voxel_layer, geometry.n_layers, threshold, True,
                                                              generator)
    fitted_layers = fit_layer_energy(layers, energies[:n], alpha)
    if not dequantised_voxels:
        fitted_layers |= fit_empty_gap(sums, threshold)
    coding = fit_voxel_coding(voxels, sums, voxel_layer, threshold, alpha, "voxel" if dequantised_voxels else "layer")
    if not dequantised_voxels:
        counts = layer_sums((voxels > 0).to(voxels.dtype), voxel_layer, geometry.n_layers)
        coding["hit_counts"] = fit_hit_counts(energies[:n].reshape(-1), sums, counts)
    return {"layers": fitted_layers, "voxels": coding}
