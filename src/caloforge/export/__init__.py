"""Export of trained models for inference outside caloforge (ONNX Runtime, Geant4)."""

from caloforge.export.onnx import SamplingChain, example_inputs, export_onnx
from caloforge.export.par04 import par04_index

__all__ = ["SamplingChain", "example_inputs", "export_onnx", "par04_index"]
