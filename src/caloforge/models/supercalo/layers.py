"""The fine layer energies that condition the up-sampling flow, at generation time.

Training conditions the up-sampler on the true fine layer energies. At generation a coarse shower gives only the
energy of each coarse layer, i.e. the sum of ``layer_factor`` fine layers, so SuperCalo carries its own small flow
p(fine layer energies | coarse layer energies, E_inc) rather than relying on a particular coarse model: the chain
then works with any checkpoint of the coarse geometry, and the fine layer energies it draws always add up to the
coarse shower's layer energies. Within each coarse layer the energy is split by CaloFlow's stick-breaking fractions
(``LayerFractions``, with the coarse layer energy as the total), ``layer_factor - 1`` variables per coarse layer,
as standardised logits. When coarse layers are fine layers (``layer_factor`` 1) there is nothing to model and no
flow.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from caloforge.data.transforms import LayerFractions, Logit, Standardize, transform_from_dict
from caloforge.models.flows import MaskedAutoregressiveFlow, decode_in_chunks
from caloforge.models.supercalo.conditions import log_energy
from caloforge.models.supercalo.config import SuperCaloConfig
from caloforge.models.supercalo.voxelisation import CoarseVoxelisation


def layer_conditions(energies: Tensor, coarse_layers: Tensor, floor: float) -> Tensor:
    """(N,), (N, coarse layers) -> (N, 1 + coarse layers) logs of E_inc and of the coarse layer energies."""
    return log_energy(torch.cat([energies[:, None], coarse_layers], dim=1), floor)


def split_logits(groups: Tensor, fine_layers: Tensor, noise: float, alpha: float,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(logits of the stick-breaking split of every coarse layer (N, groups x (size - 1)), coarse layer energies
    (N, groups)) of fine layer energies after uniform noise in [0, noise) MeV on each."""
    noisy = fine_layers + noise * torch.rand(fine_layers.shape, generator=generator, device=fine_layers.device)
    grouped = noisy[:, groups]
    totals = grouped.sum(-1)
    split = LayerFractions().forward(grouped.flatten(0, 1), totals.flatten())[:, 1:]
    return Logit(alpha).forward(split.reshape(len(noisy), -1), None), totals


class FineLayers(nn.Module):
    """p(fine layer energies | coarse layer energies, E_inc); exact sums per coarse layer by construction."""

    def __init__(self, voxelisation: CoarseVoxelisation, config: SuperCaloConfig, fitted: dict | None):
        super().__init__()
        self.config = config
        self.register_buffer("groups", torch.as_tensor(voxelisation.layer_groups), persistent=False)
        self.n_fine = voxelisation.fine.n_layers
        self.fractions, self.logit = LayerFractions(), Logit(config.alpha)
        self.flow = None
        if fitted is not None:
            self.conditions = transform_from_dict(fitted["conditions"])
            self.target = transform_from_dict(fitted["target"])
            n_groups, size = self.groups.shape
            self.flow = MaskedAutoregressiveFlow(n_groups * (size - 1), 1 + n_groups, config.layer_transforms,
                                                 config.layer_hidden, config.bins)

    def loss(self, energies: Tensor, fine_layers: Tensor) -> Tensor:
        """Mean negative log-likelihood per shower (nats, standardised logit space); zero when there is no flow."""
        if self.flow is None:
            return energies.new_zeros(())
        logits, totals = split_logits(self.groups, fine_layers, self.config.layer_noise, self.config.alpha)
        return -self.flow.log_prob(self.target.forward(logits, energies), self._context(energies, totals)).mean()

    @torch.no_grad()
    def sample(self, energies: Tensor, coarse_layers: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(N,), (N, coarse layers) -> (N, fine layers)."""
        fine = coarse_layers.new_zeros(len(coarse_layers), self.n_fine)
        if self.flow is None:
            fine[:, self.groups[:, 0]] = coarse_layers
            return fine
        y = decode_in_chunks(self.flow, self._context(energies, coarse_layers), generator, self.config.sample_chunk)
        split = self.logit.inverse(self.target.inverse(y, energies), energies).reshape(-1, self.groups.shape[1] - 1)
        variables = torch.cat([torch.ones_like(split[:, :1]), split], dim=1)
        grouped = self.fractions.inverse(variables, coarse_layers.flatten())
        fine[:, self.groups.flatten()] = grouped.reshape(len(fine), -1)
        return fine

    def _context(self, energies: Tensor, coarse_layers: Tensor) -> Tensor:
        return self.conditions.forward(layer_conditions(energies, coarse_layers, self.config.energy_floor), energies)


def fit_fine_layers(voxelisation: CoarseVoxelisation, config: SuperCaloConfig, energies: Tensor,
                    fine: Tensor) -> dict | None:
    """Standardisations of the layer flow's conditions and logits; None when coarse layers are fine layers."""
    if voxelisation.layer_factor == 1:
        return None
    groups = torch.as_tensor(voxelisation.layer_groups)
    logits, totals = split_logits(groups, voxelisation.fine_layer_energies(fine), config.layer_noise, config.alpha,
                                  torch.Generator().manual_seed(0))
    return {"conditions": Standardize(per_feature=True).fit(layer_conditions(energies, totals, config.energy_floor),
                                                            energies).to_dict(),
            "target": Standardize(per_feature=True).fit(logits, energies).to_dict()}
