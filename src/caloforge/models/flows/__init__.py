"""Flow pieces shared by CaloFlow and CaloMan: zuko RQS blocks as MAF and IAF (over whole showers or layer by
layer), flow 1 (layer energies), the voxel coding, the conditions, the fitted preprocessing and chunked sampling."""

from caloforge.models.flows.conditions import incident_condition, layer_condition, shower_condition
from caloforge.models.flows.iaf import InverseAutoregressiveFlow, distillation_loss
from caloforge.models.flows.layer_energy import LayerEnergyFlow, LayerVariables, fit_layer_energy
from caloforge.models.flows.layerwise import LayerwiseFlow, layer_context
from caloforge.models.flows.made import rqs_blocks, standard_normal_log_prob
from caloforge.models.flows.maf import MaskedAutoregressiveFlow
from caloforge.models.flows.preprocessing import fit_preprocessing
from caloforge.models.flows.sampling import CHUNK, decode_in_chunks, in_chunks, sample_in_chunks
from caloforge.models.flows.voxels import VoxelCoding, cut, dequantise, layer_sums, shares

__all__ = [
    "CHUNK",
    "InverseAutoregressiveFlow",
    "LayerEnergyFlow",
    "LayerVariables",
    "LayerwiseFlow",
    "MaskedAutoregressiveFlow",
    "VoxelCoding",
    "cut",
    "decode_in_chunks",
    "dequantise",
    "distillation_loss",
    "fit_layer_energy",
    "fit_preprocessing",
    "in_chunks",
    "incident_condition",
    "layer_condition",
    "layer_context",
    "layer_sums",
    "rqs_blocks",
    "sample_in_chunks",
    "shares",
    "shower_condition",
    "standard_normal_log_prob",
]
