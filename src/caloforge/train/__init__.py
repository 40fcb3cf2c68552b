"""The shared trainer: typed run configs and the training loop (single process or torchrun DDP). The checkpoint
format and model loading belong to ``caloforge.contract`` and are re-exported here for callers of the trainer."""

from caloforge.contract import Checkpoint, build_model, load_checkpoint, load_model, save_checkpoint
from caloforge.train.config import RunConfig, load_run_config, run_config_from_dict
from caloforge.train.loop import train

__all__ = ["Checkpoint", "RunConfig", "build_model", "load_checkpoint", "load_model", "load_run_config",
           "run_config_from_dict", "save_checkpoint", "train"]
