"""Model families by name. A new family is one folder under ``caloforge.models`` plus one line here."""

from __future__ import annotations

from importlib import import_module

from caloforge.errors import CaloforgeError
from caloforge.models.base import Family

#: family name -> module defining ``FAMILY``
_MODULES = {
    "calodiffusion": "caloforge.models.diffusion",
    "calodiffusion-student": "caloforge.models.distill",
    "supercalo": "caloforge.models.supercalo",
    "caloflow-teacher": "caloforge.models.caloflow.teacher",
    "caloflow-student": "caloforge.models.caloflow.student",
    "caloman": "caloforge.models.caloman",
    "flowmatch": "caloforge.models.flowmatch",
}


def family_names() -> list[str]:
    return list(_MODULES)


def get_family(name: str) -> Family:
    if name not in _MODULES:
        raise CaloforgeError(f"unknown model family '{name}'; available: {', '.join(_MODULES)}")
    family = import_module(_MODULES[name]).FAMILY
    assert family.name == name, f"{_MODULES[name]}.FAMILY is named {family.name}, registered as {name}"
    return family
