"""SuperCalo (Pang, Raine & Shih, arXiv:2308.11700): fine showers up-sampled from coarse ones by one flow shared
by all coarse voxels. ``FAMILY`` trains the up-sampler; ``chain.combine`` joins it to any coarse-shower model."""

from caloforge.contract import Family
from caloforge.models.supercalo.config import SuperCaloConfig
from caloforge.models.supercalo.model import SuperCalo, build, fit
from caloforge.models.supercalo.voxelisation import CoarseVoxelisation

FAMILY = Family(
    name="supercalo", config=SuperCaloConfig, fit=fit, build=build,
    description="SuperCalo: coarse showers up-sampled to fine voxels by a conditional MAF-RQS flow")

__all__ = ["FAMILY", "CoarseVoxelisation", "SuperCalo", "SuperCaloConfig"]
