"""CaloFlow's teacher (Krause & Shih, arXiv:2106.05285): flow 1 for the layer energies and flow 2 for the voxels,
both MAF-RQS, trained jointly by likelihood. A ds1-sized shower (par04-coarse, ds1) has one voxel flow, a ds2-sized
one (par04, ds2) one flow shared by its layers (``layerwise``, iCaloFlow's factorisation). Its single-pass student
is the ``caloflow-student`` family (``caloforge.models.caloflow_student``).
"""

from __future__ import annotations

from torch import Tensor

from caloforge.contract import Family
from caloforge.geometry import Geometry
from caloforge.models.caloflow.config import CaloFlowConfig
from caloforge.models.caloflow.teacher import CaloFlowTeacher
from caloforge.models.flows import fit_preprocessing


def fit(config: CaloFlowConfig, geometry: Geometry, energies: Tensor, showers: Tensor) -> dict:
    return fit_preprocessing(geometry, energies, showers, config.alpha)


FAMILY = Family(
    name="caloflow-teacher", config=CaloFlowConfig, fit=fit, build=CaloFlowTeacher,
    description="CaloFlow teacher: MAF-RQS layer-energy and voxel flows trained jointly by likelihood")

__all__ = ["FAMILY", "CaloFlowConfig", "CaloFlowTeacher", "fit"]
