"""The fast mode of flow matching: a consistency student of a ``flowmatch`` checkpoint named in its config, which
samples both of its models in 1-4 network passes each."""

from caloforge.contract import Family
from caloforge.models.distill import ConsistencyConfig
from caloforge.models.flowmatch_student.model import TEACHER, FlowMatchStudent

FAMILY = Family(
    name="flowmatch-student", config=ConsistencyConfig, frozen=TEACHER, build=FlowMatchStudent,
    sample_defaults={"sampler": "consistency", "steps": 2},
    description="Flow-matching consistency student: 1-4 passes per model, distilled from a flowmatch checkpoint")

__all__ = ["FAMILY", "FlowMatchStudent"]
