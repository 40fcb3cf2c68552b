"""CaloDiffusion (Amram & Pedro, arXiv:2308.03876): a denoising diffusion model with a cylindrical 3D U-Net.

Regular geometries (ds2, ds3, Par04) are convolved as (layer, alpha, r) images; irregular ones (ds1, Par04-coarse)
through GLaM, learned maps onto their regular hull. The defaults are the paper's: 400-step cosine schedule,
noise prediction, DDPM sampling. Optional: a layer-energy flow (``layers.py``) and, for regular geometries,
patches of voxels as the U-Net's channels (``patches.py``: a coarser mesh to convolve, the same voxels).
"""

from __future__ import annotations

from torch import Tensor

from caloforge.contract import FIT_SHOWERS, Family
from caloforge.geometry import Geometry
from caloforge.models.diffusion.config import CaloDiffusionConfig
from caloforge.models.diffusion.layers import fit_layer_model
from caloforge.models.diffusion.model import CaloDiffusion, preprocessing


def fit(config: CaloDiffusionConfig, geometry: Geometry, energies: Tensor, showers: Tensor) -> dict:
    """The preprocessing chain (and the layer-energy flow's variables) fitted on (the first ``FIT_SHOWERS`` of)
    the training showers."""
    n = min(len(showers), FIT_SHOWERS)
    fitted = {"preprocessing": preprocessing(config, geometry).fit(showers[:n], energies[:n]).to_dict()}
    if config.layer_energy:
        fitted["layers"] = fit_layer_model(geometry, energies[:n], showers[:n], config.seed)
    return fitted


FAMILY = Family(
    name="calodiffusion", config=CaloDiffusionConfig, fit=fit, build=CaloDiffusion,
    sample_defaults={"sampler": "ddpm", "steps": 400},
    description="CaloDiffusion: cylindrical 3D U-Net diffusion (cosine schedule, DDPM), GLaM for irregular geometries")

__all__ = ["FAMILY", "CaloDiffusion", "CaloDiffusionConfig", "fit"]
