"""Model families: each a sub-package registered in ``caloforge.models.registry``."""

from caloforge.models.base import Family, ShowerModel
from caloforge.models.registry import family_names, get_family

__all__ = ["Family", "ShowerModel", "family_names", "get_family"]
