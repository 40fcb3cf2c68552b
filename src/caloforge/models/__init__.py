"""Model families: each a sub-package declaring ``FAMILY``, registered in ``caloforge.contract.family``."""

from caloforge.contract import Family, ShowerModel, family_names, get_family

__all__ = ["Family", "ShowerModel", "family_names", "get_family"]
