"""SuperCalo as one caloforge model: an optional coarse-shower model, the fine-layer flow and the up-sampler.

Trained by caloforge's trainer on fine showers (which it coarse-grains itself), the model holds no coarse model and
up-samples given coarse showers (``caloforge upsample``). Combined with a checkpoint of any model of the coarse
geometry (``caloforge.models.supercalo.chain``) it is the full chain: ``caloforge generate`` then draws a coarse
shower, splits its layer energies over the fine layers, and up-samples every non-empty coarse voxel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from caloforge.contract import geometry_from_dict, model_from_header, readout_threshold
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.supercalo.config import SuperCaloConfig
from caloforge.models.supercalo.layers import FineLayers, fit_fine_layers
from caloforge.models.supercalo.upsampler import Upsampler, fit_upsampler
from caloforge.models.supercalo.voxelisation import CoarseVoxelisation


class SuperCalo(nn.Module):
    """Fine showers from coarse ones (``upsample``), or from incident energies when it holds a coarse model."""

    def __init__(self, voxelisation: CoarseVoxelisation, config: SuperCaloConfig, fitted: dict,
                 coarse: nn.Module | None = None):
        super().__init__()
        self.voxelisation = voxelisation
        self.layers = FineLayers(voxelisation, config, fitted["layers"])
        self.upsampler = Upsampler(voxelisation, config, fitted["upsampler"])
        self.coarse = coarse
        self.threshold = readout_threshold(voxelisation.fine) if config.threshold is None \
            else config.threshold

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """Training loss on fine showers: negative log-likelihoods of the fine-layer split and of the up-sampling,
        plus, in a chain, the coarse model's own loss on the coarse-grained showers."""
        vox = self.voxelisation
        loss = self.layers.loss(energies, vox.fine_layer_energies(showers)) + self.upsampler.loss(energies, showers)
        if self.coarse is not None:
            loss = loss + self.coarse(energies, vox.coarsen(showers))
        return loss

    @torch.no_grad()
    def upsample(self, energies: Tensor, coarse: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(N,) incident energies and (N, n_coarse) coarse showers (MeV) -> (N, n_fine) fine showers, thresholded."""
        fine_layers = self.layers.sample(energies, self.voxelisation.coarse_layer_energies(coarse), generator)
        fine = self.upsampler.sample(energies, coarse, fine_layers, generator)
        return torch.where(fine < self.threshold, torch.zeros_like(fine), fine)

    @torch.no_grad()
    def sample(self, energies: Tensor, generator: torch.Generator | None = None, **options: Any) -> Tensor:
        """Fine showers from incident energies; ``options`` go to the coarse model's ``sample``."""
        if self.coarse is None:
            raise CaloforgeError("this SuperCalo checkpoint holds no coarse model: up-sample coarse showers with "
                                 "'caloforge upsample', or combine it with a coarse checkpoint "
                                 "(python -m caloforge.models.supercalo.chain)")
        coarse = self.coarse.sample(energies, generator=generator, **options)
        return self.upsample(energies, coarse.clamp_min(0), generator)


def fit(config: SuperCaloConfig, geometry: Geometry, energies: Tensor, showers: Tensor) -> dict:
    """Standardisations of both flows' conditions and variables, from the first ``fit_showers`` training showers;
    no coarse model yet."""
    voxelisation = voxelisation_of(config, geometry)
    energies, showers = energies[:config.fit_showers], showers[:config.fit_showers]
    return {"upsampler": fit_upsampler(voxelisation, config, energies, showers),
            "layers": fit_fine_layers(voxelisation, config, energies, showers), "coarse": None}


def build(config: SuperCaloConfig, geometry: Geometry, fitted: dict) -> SuperCalo:
    voxelisation = voxelisation_of(config, geometry)
    coarse = build_coarse(fitted["coarse"], voxelisation.coarse) if fitted.get("coarse") else None
    return SuperCalo(voxelisation, config, fitted, coarse)


def build_coarse(spec: dict, expected: Geometry) -> nn.Module:
    """The coarse model described by an embedded checkpoint header, checked against the up-sampler's geometry."""
    geometry = geometry_from_dict(spec["geometry"])
    if geometry.n_voxels != expected.n_voxels or not geometry.is_regular or geometry.shape != expected.shape:
        raise CaloforgeError(f"coarse model generates {geometry.describe()}, but the up-sampler expects "
                             f"{expected.describe()}")
    return model_from_header(spec, "coarse model")


def voxelisation_of(config: SuperCaloConfig, geometry: Geometry) -> CoarseVoxelisation:
    voxelisation = CoarseVoxelisation(geometry, config.r_factor, config.alpha_factor, config.layer_factor)
    if voxelisation.voxel_size < 2:
        raise CaloforgeError("SuperCalo: a coarse voxel must merge at least two fine voxels")
    return voxelisation
