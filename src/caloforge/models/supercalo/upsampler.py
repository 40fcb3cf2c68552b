"""The up-sampling flow: one conditional MAF-RQS shared by all coarse voxels (the paper's ansatz)

    p(E_fine | E_coarse) = prod_i q(e_fine,i | E_coarse,i, ...)

It models the normalised fine energies of coarse voxel i, logit(e_ij / E_coarse,i) (standardised per fine voxel),
given the conditions of ``conditions.py``. Sampling draws every non-empty coarse voxel of a batch of showers in one
batched call, renormalises the shares so that the fine voxels of a coarse voxel add up to its energy exactly, and
leaves the fine voxels of empty coarse voxels at zero.

The flow's ten or so shares are free, but in the data they sum to 1. A flow trained briefly puts much mass off that
simplex (shares summing to ~0 or ~2), and renormalising such a draw smears the energy of a coarse voxel over all of
its fine voxels: too many hits, and in choice A hits copied across its layers, i.e. too much inter-layer correlation.
Draws off the simplex (outside a tolerance) are therefore drawn again, a few times: sampling the flow restricted to
where its training data lie. This departs from the paper, which renormalises only (``redraws: 0``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from caloforge.data.transforms import Logit, Standardize, transform_from_dict
from caloforge.models.flows import MaskedAutoregressiveFlow, decode_in_chunks
from caloforge.models.supercalo.conditions import energy_conditions, position_codes
from caloforge.models.supercalo.config import SuperCaloConfig
from caloforge.models.supercalo.voxelisation import CoarseVoxelisation


def pick_per_row(mask: Tensor, k: int) -> Tensor:
    """A sub-mask of ``mask`` with at most ``k`` entries per row, chosen uniformly at random."""
    keys = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
    top = keys.topk(min(k, mask.shape[1]), dim=1)
    return torch.zeros_like(mask).scatter_(1, top.indices, top.values >= 0)


def fine_fractions(voxelisation: CoarseVoxelisation, fine: Tensor, shower: Tensor, voxel: Tensor, noise: float,
                   generator: torch.Generator | None = None) -> Tensor:
    """(M, voxel_size) shares of the fine voxels of the given coarse voxels, after uniform noise in [0, noise) MeV
    on every fine voxel: a zero share is then a small positive one and every row sums to 1."""
    grouped = voxelisation.gather(fine)[shower, voxel]
    grouped = grouped + noise * torch.rand(grouped.shape, generator=generator, device=grouped.device)
    return grouped / grouped.sum(-1, keepdim=True)


class Upsampler(nn.Module):
    """q(fine energies of coarse voxel i | its conditions), for every coarse voxel of ``voxelisation``."""

    def __init__(self, voxelisation: CoarseVoxelisation, config: SuperCaloConfig, fitted: dict):
        super().__init__()
        self.voxelisation, self.config = voxelisation, config
        self.logit = Logit(config.alpha)
        self.conditions = transform_from_dict(fitted["conditions"])
        self.target = transform_from_dict(fitted["target"])
        self.register_buffer("codes", position_codes(voxelisation), persistent=False)
        n_energies = 2 + voxelisation.layer_factor + 6
        self.flow = MaskedAutoregressiveFlow(voxelisation.voxel_size, n_energies + self.codes.shape[1],
                                             config.transforms, config.hidden, config.bins)

    def context(self, energies: Tensor, coarse: Tensor, fine_layers: Tensor, shower: Tensor, voxel: Tensor) -> Tensor:
        """(M, context features) of the coarse voxels ``voxel`` of showers ``shower``: standardised energy
        conditions and the one-hot position codes."""
        raw = energy_conditions(self.voxelisation, energies, coarse, fine_layers, shower, voxel,
                                self.config.energy_floor)
        return torch.cat([self.conditions.forward(raw, energies), self.codes[voxel]], dim=-1)

    def loss(self, energies: Tensor, fine: Tensor) -> Tensor:
        """Mean negative log-likelihood per non-empty coarse voxel (nats, standardised logit space)."""
        vox = self.voxelisation
        coarse = vox.coarsen(fine)
        mask = coarse > 0
        if self.config.voxels_per_shower:
            mask = pick_per_row(mask, self.config.voxels_per_shower)
        shower, voxel = mask.nonzero(as_tuple=True)
        fractions = fine_fractions(vox, fine, shower, voxel, self.config.voxel_noise)
        target = self.target.forward(self.logit.forward(fractions, energies), energies)
        context = self.context(energies, coarse, vox.fine_layer_energies(fine), shower, voxel)
        return -self.flow.log_prob(target, context).mean()

    @torch.no_grad()
    def sample(self, energies: Tensor, coarse: Tensor, fine_layers: Tensor,
               generator: torch.Generator | None = None) -> Tensor:
        """(N,), (N, n_coarse), (N, fine layers) -> (N, n_fine) fine showers whose coarse sums equal ``coarse``.

        The shares of a coarse voxel sum to 1 in the data; a draw whose shares sum to less than 1 / tolerance or
        more than tolerance lies off that simplex, where the flow has no training data, and is drawn again (up to
        ``redraws`` times). What is left is renormalised.
        """
        vox = self.voxelisation
        shower, voxel = (coarse > 0).nonzero(as_tuple=True)
        context = self.context(energies, coarse, fine_layers, shower, voxel)
        shares = self._draw(context, generator)
        for _ in range(self.config.redraws):
            total = shares.sum(-1)
            off = ((total * self.config.tolerance < 1) | (total > self.config.tolerance)).nonzero(as_tuple=True)[0]
            if len(off) == 0:
                break
            shares[off] = self._draw(context[off], generator)
        total = shares.sum(-1, keepdim=True)
        # a draw with every share at zero (all logits below the regularisation) spreads its energy evenly
        shares = torch.where(total > 0, shares / total.clamp_min(1e-30), 1.0 / vox.voxel_size)
        grouped = coarse.new_zeros(*coarse.shape, vox.voxel_size)
        grouped[shower, voxel] = shares * coarse[shower, voxel][:, None]
        return vox.scatter(grouped)

    def _draw(self, context: Tensor, generator: torch.Generator | None) -> Tensor:
        """(M, voxel_size) shares, one draw of the flow per context row (not renormalised)."""
        y = decode_in_chunks(self.flow, context, generator, self.config.sample_chunk)
        return self.logit.inverse(self.target.inverse(y, None), None)


def fit_upsampler(voxelisation: CoarseVoxelisation, config: SuperCaloConfig, energies: Tensor, fine: Tensor) -> dict:
    """Per-feature standardisations of the energy conditions and of the logit shares, over the non-empty coarse
    voxels of training showers (seeded noise)."""
    coarse = voxelisation.coarsen(fine)
    shower, voxel = (coarse > 0).nonzero(as_tuple=True)
    raw = energy_conditions(voxelisation, energies, coarse, voxelisation.fine_layer_energies(fine), shower, voxel,
                            config.energy_floor)
    fractions = fine_fractions(voxelisation, fine, shower, voxel, config.voxel_noise, torch.Generator().manual_seed(0))
    logits = Logit(config.alpha).forward(fractions, energies)
    return {"conditions": Standardize(per_feature=True).fit(raw, energies).to_dict(),
            "target": Standardize(per_feature=True).fit(logits, energies).to_dict()}
