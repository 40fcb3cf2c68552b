"""CaloMan (Reyes-Gonzalez, Letizia, Cresswell, Ross, Loaiza-Ganem, Caterini; arXiv:2211.15380).

Two steps through the shared trainer: an autoencoder (encoder and decoder [512, 512, 512]) onto a latent of
dimension d (``caloforge data intrinsic-dim`` estimates it), then a coupling RQS flow (4 blocks, 8 bins, residual
hidden layers [256, 256, 256]) on the latent, conditioned on the incident and layer energies, with CaloFlow's
flow 1 for the layer energies. The defaults are the talk's.
"""

from __future__ import annotations

from torch import Tensor

from caloforge.contract import Family
from caloforge.geometry import Geometry
from caloforge.models.caloman.config import CaloManConfig
from caloforge.models.caloman.model import CaloMan
from caloforge.models.flows import fit_preprocessing


def fit(config: CaloManConfig, geometry: Geometry, energies: Tensor, showers: Tensor) -> dict:
    """Flow 1's u variables and the voxel coding of cut showers; the same in both stages (same data and split)."""
    return fit_preprocessing(geometry, energies, showers, config.alpha, dequantised_voxels=False)


FAMILY = Family(
    name="caloman", config=CaloManConfig, fit=fit, build=CaloMan,
    description="CaloMan: autoencoder onto a learned manifold, coupling RQS flow on its latent, CaloFlow's flow 1")

__all__ = ["FAMILY", "CaloMan", "CaloManConfig", "fit"]
