"""Preprocessing transforms: exact round trips on real showers, fitting, serialisation, and the special cases
(threshold on the way out, empty layers, the energy condition's end points)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloforge.data import open_showers, sample_path
from caloforge.data.transforms import (
    THRESHOLDS_MEV,
    Chain,
    DivideByIncident,
    LayerFractions,
    Logit,
    LogEnergy,
    Standardize,
    Threshold,
    transform_from_dict,
    voxel_preprocessing,
)
from caloforge.errors import CaloforgeError
from caloforge.geometry import load_geometry

torch.set_num_threads(1)

CUT = THRESHOLDS_MEV["par04"]


@pytest.fixture(scope="module")
def real() -> tuple[torch.Tensor, torch.Tensor]:
    """200 bundled Par04 showers above the readout threshold, float64: (voxels (N, 6480), E_inc (N,)) in MeV."""
    energies, showers = open_showers(sample_path()).read(slice(0, 200))
    x = torch.tensor(showers, dtype=torch.float64)
    return torch.where(x < CUT, torch.zeros_like(x), x), torch.tensor(energies, dtype=torch.float64)


@pytest.fixture(scope="module")
def layers(real) -> torch.Tensor:
    """(N, 45) layer energies of the same showers."""
    return torch.tensor(load_geometry("par04").layer_energies(real[0].numpy()))


def assert_round_trip(transform, x: torch.Tensor, e_inc: torch.Tensor) -> torch.Tensor:
    y = transform.forward(x, e_inc)
    assert y.dtype == torch.float64 and torch.isfinite(y).all()
    torch.testing.assert_close(transform.inverse(y, e_inc), x, rtol=1e-9, atol=1e-9)
    return y


@pytest.mark.parametrize("transform", [Threshold(CUT), DivideByIncident(2.0), Standardize(), Standardize(True)],
                         ids=["threshold", "divide", "standardize", "standardize-per-voxel"])
def test_voxel_transforms_round_trip(transform, real) -> None:
    x, e_inc = real
    assert_round_trip(transform.fit(x, e_inc), x, e_inc)


def test_divide_by_incident_values(real) -> None:
    x, e_inc = real
    y = assert_round_trip(DivideByIncident(2.0), x, e_inc)
    torch.testing.assert_close(y, x / (2 * e_inc[:, None]))
    assert y.max() < 1  # what the factor is for: fractions stay inside the logit's domain


def test_logit_round_trip(real) -> None:
    x, e_inc = real
    fractions = DivideByIncident(2.0).forward(x, e_inc)
    y = assert_round_trip(Logit(1e-6), fractions, e_inc)
    assert y.min() == pytest.approx(np.log(1e-6 / (1 - 1e-6)))  # empty voxels sit at logit(alpha)


def test_standardize_fit_and_errors(real) -> None:
    x, e_inc = real
    fitted = Standardize().fit(x, e_inc)
    y = fitted.forward(x, e_inc)
    assert float(y.mean()) == pytest.approx(0, abs=1e-9) and float(y.std()) == pytest.approx(1, rel=1e-6)
    per_voxel = Standardize(per_feature=True).fit(x, e_inc)
    assert len(per_voxel.mean) == x.shape[1]
    with pytest.raises(CaloforgeError, match="before it was fitted"):
        Standardize().forward(x, e_inc)


def test_chain_fit_round_trip(real) -> None:
    x, e_inc = real
    chain = voxel_preprocessing(CUT).fit(x, e_inc)
    assert [type(step).__name__ for step in chain.steps] == ["Threshold", "DivideByIncident", "Logit", "Standardize"]
    y = chain.forward(x, e_inc)
    # fitted on the transformed data: the chain's output is standardised
    assert float(y.mean()) == pytest.approx(0, abs=1e-9) and float(y.std()) == pytest.approx(1, rel=1e-6)
    torch.testing.assert_close(chain.inverse(y, e_inc), x, rtol=1e-9, atol=1e-9)


def test_serialisation_round_trip(real) -> None:
    x, e_inc = real
    chain = Chain([*voxel_preprocessing(CUT, factor=3.0, alpha=1e-5).steps, Standardize(True)]).fit(x, e_inc)
    spec = chain.to_dict()
    rebuilt = transform_from_dict(spec)
    assert rebuilt.to_dict() == spec
    y = chain.forward(x, e_inc)
    torch.testing.assert_close(rebuilt.forward(x, e_inc), y, rtol=0, atol=0)
    torch.testing.assert_close(rebuilt.inverse(y, e_inc), chain.inverse(y, e_inc), rtol=0, atol=0)
    for step in (LayerFractions(1e-9), LogEnergy(1e2, 1e5), Threshold(1.0)):
        assert transform_from_dict(step.to_dict()) == step
    with pytest.raises(CaloforgeError, match="unknown transform 'Nope'"):
        transform_from_dict({"type": "Nope"})


def test_threshold_zeroes_below_the_cut_on_the_way_out() -> None:
    threshold = Threshold(0.5)
    values = torch.tensor([[0.0, 0.2, 0.49, 0.5, 3.0]], dtype=torch.float64)
    e_inc = torch.ones(1, dtype=torch.float64)
    assert torch.equal(threshold.forward(values, e_inc), values)  # identity on the way in
    assert threshold.inverse(values, e_inc).tolist() == [[0.0, 0.0, 0.0, 0.5, 3.0]]


def test_threshold_acts_last_in_a_chain(real) -> None:
    """Generated showers below the cut come out at zero even though the threshold is the chain's first step."""
    x, e_inc = real
    chain = voxel_preprocessing(CUT).fit(x, e_inc)
    noisy = chain.forward(x, e_inc) + 0.3 * torch.randn(x.shape, dtype=torch.float64,
                                                         generator=torch.Generator().manual_seed(0))
    out = chain.inverse(noisy, e_inc)
    assert ((out == 0) | (out >= CUT)).all()
    assert ((out > 0) & (out < CUT)).sum() == 0 and (out > 0).any()


def test_layer_fractions_round_trip_with_empty_layers(layers, real) -> None:
    e_inc = real[1]
    energies = layers.clone()
    energies[:5, 40:] = 0  # empty last layers
    energies[5:10, :3] = 0  # empty first layers
    energies[10:15, 20] = 0  # an empty layer inside the shower
    energies[15] = 0  # no energy at all
    transform = LayerFractions()
    y = transform.forward(energies, e_inc)
    assert y.shape == energies.shape
    assert ((y[:, 1:] >= 0) & (y[:, 1:] <= 1)).all()
    torch.testing.assert_close(y[:, 0], energies.sum(1) / e_inc)
    back = transform.inverse(y, e_inc)
    torch.testing.assert_close(back, energies, rtol=1e-9, atol=1e-9)
    assert (back[energies == 0] == 0).all()  # empty layers come back exactly empty
    assert (back >= 0).all()


def test_layer_fractions_values_by_hand() -> None:
    energies = torch.tensor([[2.0, 0.0, 6.0, 2.0]], dtype=torch.float64)
    e_inc = torch.tensor([20.0], dtype=torch.float64)
    y = LayerFractions().forward(energies, e_inc)
    torch.testing.assert_close(y, torch.tensor([[0.5, 0.2, 0.0, 0.75]], dtype=torch.float64))
    torch.testing.assert_close(LayerFractions().inverse(y, e_inc), energies)


def test_log_energy_end_points_and_round_trip(real) -> None:
    condition = LogEnergy(e_min=1e3, e_max=1e5)
    ends = torch.tensor([1e3, 1e4, 1e5], dtype=torch.float64)
    torch.testing.assert_close(condition.forward(ends, None), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    e_inc = real[1]
    y = assert_round_trip(condition, e_inc, None)
    assert ((y >= 0) & (y <= 1)).all()  # the sample lies in 1-100 GeV
