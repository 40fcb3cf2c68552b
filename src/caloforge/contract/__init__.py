"""The model contract: what a family declares, how its checkpoints are written and read, how configurations are
parsed, how a model trained on top of a frozen one declares it, and the readout threshold every family cuts at.

It sits below both ``caloforge.models`` (the families) and ``caloforge.train`` (the trainer) and imports neither:
a family is found through the registry by name, so families and the trainer meet only here.
"""

from caloforge.contract.checkpoint import (Checkpoint, build_model, geometry_from_dict, geometry_to_dict,
                                           left_out_of_shipping, load_checkpoint, load_family_checkpoint,
                                           load_frozen_model, load_model, load_weights, masks_of_weights,
                                           model_from_header,
                                           rebuilt_by_architecture, save_checkpoint, shippable, slim,
                                           training_only)
from caloforge.contract.config import Checked, as_mapping, checked, from_dict
from caloforge.contract.family import FIT_SHOWERS, Family, ShowerModel, family_names, get_family
from caloforge.contract.frozen import FrozenModel
from caloforge.contract.threshold import readout_threshold

__all__ = ["FIT_SHOWERS", "Checked", "Checkpoint", "Family", "FrozenModel", "ShowerModel", "as_mapping",
           "build_model", "checked", "family_names", "from_dict", "geometry_from_dict", "geometry_to_dict",
           "get_family", "left_out_of_shipping", "load_checkpoint", "load_family_checkpoint", "load_frozen_model",
           "load_model", "load_weights", "masks_of_weights", "model_from_header", "readout_threshold", "rebuilt_by_architecture",
           "save_checkpoint", "shippable", "slim", "training_only"]
