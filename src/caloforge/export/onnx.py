"""The whole few-step sampling chain of a consistency student as one ONNX graph.

Inputs: ``noise`` (N, voxels), the prior draw; ``energy`` (N,), incident energies in MeV; for more than one step
``renoise`` (steps - 1, N, voxels), the re-noising draws of the later steps, so the graph is deterministic and
ONNX Runtime reproduces PyTorch on the same noise. Output: ``showers`` (N, voxels) in MeV, readout threshold
applied, in caloforge's voxel order or, with ``par04_order``, in Geant4 Par04's (r, phi, z). The batch axis is
dynamic. Inside: every denoiser call (GLaM encoder and decoder included) and the inverse preprocessing.
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

    def forward(self, noise: Tensor, energy: Tensor, renoise: Tensor | None = None) -> Tensor:
        showers = self.student.decode(noise, renoise, energy)
        return showers if self.index is None else showers.index_select(1, self.index)


def example_inputs(chain: SamplingChain, steps: int, batch: int = 2, seed: int = 0) -> tuple[Tensor, ...]:
    """Seeded inputs of the graph's shapes: (noise, energy[, renoise]), energies log-uniform in 1-100 GeV."""
    generator = torch.Generator().manual_seed(seed)
    n_voxels = chain.student.n_voxels
    noise = torch.randn(steps, batch, n_voxels, generator=generator)
    energy = torch.exp(torch.empty(batch).uniform_(*torch.log(torch.tensor([1e3, 1e5])).tolist(), generator=generator))
    return (noise[0], energy) + ((noise[1:],) if steps > 1 else ())


def export_onnx(student: ConsistencyStudent, geometry: Geometry, path: str | Path, steps: int,
                par04_order: bool = False) -> Path:
    """Write the ``steps``-step sampling chain of ``student`` to ``path`` (dynamic batch axis)."""
    if not isinstance(student, ConsistencyStudent):
        raise CaloforgeError("export: only calodiffusion-student checkpoints have a few-step sampling chain")
    if student.layer_model is not None:
        # flow 1's spline inverses would have to be traced too; the graph would then need its own noise input
        raise CaloforgeError("export: this student has a layer-energy flow, which the ONNX graph does not hold yet")
    student.sampling_levels(steps)  # checks the step count
    chain = SamplingChain(student.eval(), geometry, par04_order).eval()
    inputs = example_inputs(chain, steps)
    names = ["noise", "energy"] + (["renoise"] if steps > 1 else [])
    axes = {"noise": {0: "batch"}, "energy": {0: "batch"}, "renoise": {1: "batch"}, "showers": {0: "batch"}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer warns of every Python value it freezes: here the step count and levels, constant by design
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(chain, inputs, str(path), input_names=names, output_names=["showers"],
                          dynamic_axes={k: v for k, v in axes.items() if k in names + ["showers"]},
                          opset_version=OPSET, dynamo=False)
    return path
