"""CaloFlow's student (Krause & Shih, arXiv:2110.11377): the teacher's flow 2 as an IAF, distilled from a
``caloflow-teacher`` checkpoint named in its config; one network pass per block when sampling."""

from caloforge.contract import Family
from caloforge.models.caloflow_student.config import StudentConfig
from caloforge.models.caloflow_student.model import TEACHER, CaloFlowStudent

FAMILY = Family(
    name="caloflow-student", config=StudentConfig, frozen=TEACHER, build=CaloFlowStudent,
    description="CaloFlow student: single-pass IAF voxel flow distilled from a caloflow-teacher checkpoint")

__all__ = ["FAMILY", "CaloFlowStudent", "StudentConfig"]
