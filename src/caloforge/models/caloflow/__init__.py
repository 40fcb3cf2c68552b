"""CaloFlow (Krause & Shih, arXiv:2106.05285 and 2110.11377): a MAF teacher and its single-pass IAF student.

Two families: ``caloflow-teacher`` (flow 1 for the layer energies and flow 2 for the voxels, trained jointly by
likelihood) and ``caloflow-student`` (flow 2 as an IAF, distilled from a teacher checkpoint named in its config).
Both model a ds1-sized shower (par04-coarse, ds1) with one voxel flow, and a ds2-sized one (par04, ds2) layer by
layer (``layerwise``, iCaloFlow's factorisation).
"""

from caloforge.models.caloflow.config import CaloFlowConfig, StudentConfig
from caloforge.models.caloflow.student import CaloFlowStudent
from caloforge.models.caloflow.teacher import CaloFlowTeacher

__all__ = ["CaloFlowConfig", "CaloFlowStudent", "CaloFlowTeacher", "StudentConfig"]
