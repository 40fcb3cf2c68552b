"""The whole few-step sampling chain of a consistency student as one ONNX graph.

Inputs: ``noise`` (N, voxels), the prior draw; ``energy`` (N,), incident energies in MeV; for more than one step
``renoise`` (steps - 1, N, voxels), the re-noising draws of the later steps; with a layer-energy model
``layer_noise`` (N, L), the base draw of its flow, whose inversion (autoregressive, one MADE pass a layer) the graph
holds too. All randomness is an input, so the graph is deterministic and ONNX Runtime reproduces PyTorch on the same
noise. Output: ``showers`` (N, voxels) in MeV, readout threshold applied, in caloforge's voxel order or, with
``par04_order``, in Geant4 Par04's (r, phi, z). The batch axis is dynamic. Inside: every denoiser call (GLaM encoder
and decoder included) and the inverse preprocessing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from caloforge.errors import CaloforgeError
from caloforge.export.par04 import par04_index
from caloforge.geometry import Geometry
from caloforge.models.distill import ConsistencyStudent

OPSET = 17


class SamplingChain(nn.Module):
    """``student.decode`` for a fixed number of steps, optionally followed by the Par04 voxel permutation."""

    index: Tensor | None

    def __init__(self, student: ConsistencyStudent, geometry: Geometry, par04_order: bool = False):
        super().__init__()
        self.student = student
        self.register_buffer("index", par04_index(geometry) if par04_order else None, persistent=False)

    def forward(self, noise: Tensor, energy: Tensor, *draws: Tensor) -> Tensor:
        """``draws``: ``renoise`` for more than one step, then ``layer_noise`` with a layer-energy model."""
        layered = self.student.layer_model is not None
        renoise = draws[0] if len(draws) > layered else None
        layers = self.student.layer_model.flow.from_noise(draws[-1], energy) if layered else None
        showers = self.student.decode(noise, renoise, energy, layers)
        return showers if self.index is None else showers.index_select(1, self.index)


def example_inputs(chain: SamplingChain, steps: int, batch: int = 2, seed: int = 0) -> tuple[Tensor, ...]:
    """Seeded inputs of the graph's shapes: (noise, energy[, renoise][, layer_noise]), energies log-uniform in
    1-100 GeV."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(steps, batch, chain.student.n_voxels, generator=generator)
    energy = torch.exp(torch.empty(batch).uniform_(*torch.log(torch.tensor([1e3, 1e5])).tolist(), generator=generator))
    layer_model = chain.student.layer_model
    layer_noise = () if layer_model is None else (torch.randn(batch, layer_model.n_layers, generator=generator),)
    return (noise[0], energy) + ((noise[1:],) if steps > 1 else ()) + layer_noise


def export_onnx(student: ConsistencyStudent, geometry: Geometry, path: str | Path, steps: int,
                par04_order: bool = False) -> Path:
    """Write the ``steps``-step sampling chain of ``student`` to ``path`` (dynamic batch axis)."""
    if not isinstance(student, ConsistencyStudent):
        raise CaloforgeError("export: only calodiffusion-student checkpoints have a few-step sampling chain")
    student.sampling_levels(steps)  # checks the step count
    chain = SamplingChain(student.eval(), geometry, par04_order).eval()
    inputs = example_inputs(chain, steps)
    names = (["noise", "energy"] + (["renoise"] if steps > 1 else [])
             + (["layer_noise"] if student.layer_model is not None else []))
    axes = {"noise": {0: "batch"}, "energy": {0: "batch"}, "renoise": {1: "batch"}, "layer_noise": {0: "batch"},
            "showers": {0: "batch"}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns of every Python value it freezes: here the step count and levels, constant by design
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(chain, inputs, str(path), input_names=names, output_names=["showers"],
                          dynamic_axes={k: v for k, v in axes.items() if k in names + ["showers"]},
                          opset_version=OPSET, dynamo=False)
    return path
