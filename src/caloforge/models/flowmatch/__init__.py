"""Flow matching, energy first: an MLP draws the layer energies, a transformer over the layers the shapes, both by
conditional flow matching (after CaloDREAM, Favaro, Ore, Palacios Schweitzer, Plehn; arXiv:2405.09629). Built for
quality per CPU-hour: one shape network shared by all layers, a few ODE steps."""

from __future__ import annotations

import torch
from torch import Tensor

from caloforge.contract import FIT_SHOWERS, Family, readout_threshold
from caloforge.geometry import Geometry
from caloforge.models.flowmatch.config import FlowMatchConfig
from caloforge.models.flowmatch.hits import fit_hit_coding
from caloforge.models.flowmatch.model import FlowMatch, layer_token_index
from caloforge.models.flows import cut, fit_preprocessing

#: least spread (logit units) a voxel's variable is standardised by: a voxel empty in nearly every fitted shower
#: has almost none, and its rare hits would land thousands of standard deviations out
MIN_VOXEL_STD = 1.0


def fit(config: FlowMatchConfig, geometry: Geometry, energies: Tensor, showers: Tensor) -> dict:
    """Flow 1's u variables (per-layer dequantised), the voxel coding of the cut showers and, for analog-bit tokens,
    the hits' log-share statistics."""
    fitted = fit_preprocessing(geometry, energies, showers, config.alpha, dequantised_voxels=False)
    standardize = fitted["voxels"]["standardize"]
    standardize["std"] = [max(std, MIN_VOXEL_STD) for std in standardize["std"]]
    if config.voxels == "hits":
        token_index, _ = layer_token_index(geometry)
        slots = token_index < geometry.n_voxels
        clean = cut(showers[:FIT_SHOWERS], readout_threshold(geometry))
        tokens = torch.cat([clean, clean.new_zeros(len(clean), 1)], dim=1)[:, token_index]
        fitted["hits"] = fit_hit_coding(tokens, tokens.sum(2), slots)
    return fitted


def build(config: FlowMatchConfig, geometry: Geometry, fitted: dict) -> FlowMatch:
    return FlowMatch(config, geometry, fitted)


FAMILY = Family(
    name="flowmatch",
    config=FlowMatchConfig,
    fit=fit,
    build=build,
    sample_defaults={"sampler": "heun", "steps": 8},
    description="Flow matching, energy first: an MLP for the layer energies, a layer transformer for the shapes",
)

__all__ = ["FAMILY", "FlowMatch", "FlowMatchConfig", "build", "fit"]
