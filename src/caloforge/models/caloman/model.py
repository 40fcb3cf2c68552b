"""CaloMan (Reyes-Gonzalez et al., arXiv:2211.15380): density estimation on a learned manifold, in two stages.

Stage ``autoencoder`` learns the manifold: the reconstruction error of the voxel variables of the showers cut at
the readout threshold (not dequantised), squared in logit space plus the divergence of the energy shares, and a
moment penalty on the latent. Stage ``flow`` starts from that checkpoint (``train.init_from``), freezes the
autoencoder and learns two densities by likelihood: flow 1 (CaloFlow's layer energies given E_inc) and a coupling
RQS flow on the latent given E_inc and the layer energies (or, with ``latent_model`` flowmatch, the latent's
density by conditional flow matching, ``latent_match.py``). Both stages run through the shared trainer with one
module, so the final checkpoint holds everything. Sampling: layer energies from flow 1, a latent point from the
latent flow, the decoder's voxel shares scaled to the layer energies (``VoxelCoding.decode_cut``); with a hit head,
the hits drawn from its probabilities, with ``counted_hits`` as many in a layer as Geant4's law for its energy says
(``flows.hit_counts``), and with ``drawn_moments`` the decoder is fitted so that the showers so drawn, not its
shares, have Geant4's centres and widths.

An optional stage ``decoder`` starts from the flow-stage checkpoint and trains the decoder further by the
autoencoder's loss, with the encoder and the flows frozen: the latent points of the training showers stay where the
flows learnt them, so more decoder training costs no new flows (the autoencoder stage ends while its loss still
falls, and each decoder-only epoch is cheaper).

An optional stage ``encoder`` learns an encoder back by the autoencoder's loss with everything else frozen: a
shipped flow-stage file leaves its encoder out (sampling never uses it), and the stage makes such a file trainable
and diagnosable again (stage ``decoder``, reconstructions of Geant4 showers) without touching what it samples.

An optional stage ``latent`` trains the latent density alone anew (``latent_model`` may differ from the start's)
with everything else frozen: flow 1, and a student distilled from it, stay as they were.

An optional stage ``layers`` trains flow 1 alone on from the start's (anew where ``layer_model`` differs from the
start's), with everything else frozen: the latent density and the decoder are conditioned on Geant4's layer energies
in training, so they stay valid.

An optional stage ``student`` starts from the flow-stage checkpoint and distils flow 1, autoregressive over the
layers (one network pass a layer and block when sampling), into an IAF of the same blocks (one pass a block), as
CaloFlow's student does for its voxel flow; everything else stays frozen, and sampling draws the layer energies
from the student.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.caloman.autoencoder import (
    Autoencoder,
    drawn_square_sums,
    layer_moments,
    moment_penalty,
    population_widths,
    share_divergence,
    widened,
)
from caloforge.models.caloman.config import CaloManConfig
from caloforge.models.caloman.latent_match import LatentMatch
from caloforge.models.flowmatch.energy import LayerEnergyMatch
from caloforge.models.flows import (
    InverseAutoregressiveFlow,
    LayerEnergyFlow,
    MaskedAutoregressiveFlow,
    VoxelCoding,
    distillation_loss,
    incident_condition,
    sample_in_chunks,
    shares,
    shower_condition,
)


class CaloMan(nn.Module):
    """The autoencoder (``config.stage`` "autoencoder" trains it); in stage "flow" also flow 1 and the latent flow,
    which train on the frozen autoencoder."""

    def __init__(self, config: CaloManConfig, geometry: Geometry, fitted: dict):
        super().__init__()
        self.stage = config.stage
        self.share_weight = config.share_weight
        self.moment_weight = config.moment_weight
        self.population_widths = config.population_widths
        self.drawn_widths = config.drawn_widths
        self.drawn_moments = config.drawn_moments
        self.counted_hits = config.counted_hits
        self.hit_weight = config.hit_weight
        self.hit_shape, self.hit_deposit = config.hit_shape_k, config.hit_deposit_mev
        self.latent_penalty = config.latent_penalty
        context = 1 + geometry.n_layers
        self.coding = VoxelCoding(geometry, fitted["voxels"])
        if self.counted_hits and self.coding.hit_counts is None:
            raise CaloforgeError("caloman counted_hits: this preprocessing holds no hit-count law (fitted since "
                                 "2026-12-05); a run started from it with train.init_from fits one")
        self.register_buffer("positions", torch.as_tensor(np.stack([geometry.eta_centres, geometry.phi_centres], 1),
                                                          dtype=torch.float32), persistent=False)
        self.autoencoder = Autoencoder(geometry.n_voxels, context, config.latent, config.encoder, config.decoder,
                                       config.hits)
        self.training_only: tuple[str, ...] = ()
        self.layer_student: InverseAutoregressiveFlow | None = None
        if self.stage != "autoencoder":
            # the flows exist in these stages alone, so that the autoencoder's checkpoint fixes none of their choices
            self.autoencoder.requires_grad_(False)
            self.layer_flow = (
                LayerEnergyMatch(geometry.n_layers, fitted["layers"], config.layer_width, config.layer_depth)
                if config.layer_model == "flowmatch" else
                LayerEnergyFlow(geometry.n_layers, fitted["layers"], config.layer_transforms, config.layer_hidden,
                                config.bins, config.layer_passes))
            self.layer_sampling = {"sampler": config.match_sampler, "steps": config.layer_steps}
            self.latent_flow = (
                LatentMatch(config.latent, context, config.match_width, config.match_depth, config.match_sampler,
                            config.match_steps) if config.latent_model == "flowmatch" else
                MaskedAutoregressiveFlow(config.latent, context, config.flow_transforms, config.flow_hidden,
                                         config.bins, passes=2, residual=True))
            self.n_layers, self.dims = geometry.n_layers, geometry.n_layers + config.latent
            # sampling decodes latent points: a shipped checkpoint leaves the encoder out (a fifth of it)
            self.training_only = ("autoencoder.encoder.",)
        if self.stage in ("decoder", "encoder", "latent", "layers"):
            self.requires_grad_(False)
            {"decoder": self.autoencoder.decoder, "encoder": self.autoencoder.encoder,
             "latent": self.latent_flow, "layers": self.layer_flow}[self.stage].requires_grad_(True)
        if self.stage == "student":
            # flow 1's teacher comes with the step-2 checkpoint (train.init_from); only its student learns and ships
            self.requires_grad_(False)
            self.layer_student = InverseAutoregressiveFlow(geometry.n_layers, 1, config.layer_transforms,
                                                           config.layer_hidden, config.bins)
            self.training_only = ("autoencoder.encoder.", "layer_flow.flow.")

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """Stages autoencoder, decoder and encoder: reconstruction error + penalty. Stage flow: both flows' NLL per
        dimension (with ``latent_model`` flowmatch: flow 1's, plus the latent's flow-matching loss). Stage latent:
        the latent model's loss alone; stage layers: flow 1's NLL alone. Stage student: flow 1's distillation loss."""
        layers = self.coding.noisy_layer_energies(showers)
        if self.layer_student is not None:
            teacher = self.layer_flow
            return distillation_loss(self.layer_student, teacher.flow, teacher.encode(teacher.to_u(layers, energies)),
                                     incident_condition(energies))
        if self.stage == "layers":
            return self.layer_loss(energies, layers)
        clean = self.coding.cut(showers)
        clean_layers = self.coding.layer_energies(clean)
        y = self.coding.encode(clean, clean_layers)
        context = shower_condition(energies, layers)
        if self.stage in ("autoencoder", "decoder", "encoder"):
            z = self.autoencoder.encode(y, context)  # in stage decoder a frozen encoder: no graph is built
            reconstruction, hit_logits = self.autoencoder.decode(z, context)
            error = (reconstruction - y).square().mean()
            target = shares(clean, clean_layers, self.coding.voxel_layer)
            reconstructed = self.coding.layer_shares(reconstruction)
            divergence = share_divergence(target, reconstructed)
            loss = error + self.share_weight * divergence + self.latent_penalty * moment_penalty(z)
            if self.moment_weight:
                # an empty layer has no centre or width: its reconstructed shares, normalised to one, would
                # otherwise be pulled to a point at the origin
                filled = clean_layers > 0
                target_moments, moments = self.moments(target), self.moments(reconstructed)
                if self.drawn_moments:
                    moments, drawn = self.drawn_moments_through(moments, reconstruction, hit_logits, layers, energies)
                    filled = filled & drawn
                elif self.population_widths:
                    target_moments = self.population_moments(target_moments, target, clean_layers, reconstructed,
                                                             hit_logits)
                filled = filled.unsqueeze(-1).expand(-1, -1, 4)
                moment_error = (moments - target_moments).square()
                loss = loss + self.moment_weight * moment_error[filled].mean()
            if hit_logits is not None:
                loss = loss + self.hit_weight * F.binary_cross_entropy_with_logits(hit_logits, (clean > 0).float())
            return loss
        with torch.no_grad():
            z = self.autoencoder.encode(y, context)
        if self.stage == "latent":
            return self.latent_loss(z, context)
        if isinstance(self.latent_flow, LatentMatch) or isinstance(self.layer_flow, LayerEnergyMatch):
            return self.layer_loss(energies, layers) + self.latent_loss(z, context)
        log_prob = self.layer_flow.log_prob(energies, layers) + self.latent_flow.log_prob(z, context)
        return -log_prob.mean() / self.dims

    def population_moments(self, moments: Tensor, target: Tensor, layers: Tensor, reconstructed: Tensor,
                           hit_logits: Tensor | None) -> Tensor:
        """Geant4's ``moments`` with the widths the decoder's shares must have for its drawn hits to show them:
        widened by Geant4's own narrowing (``population_widths``) or, with ``drawn_widths``, by the narrowing
        the decoder's hit draw will cause (``drawn_square_sums``; a factor, not a path for gradients)."""
        voxel_layer, n_layers = self.coding.voxel_layer, self.coding.n_layers
        if not self.drawn_widths:  # the config allows drawn widths only with a hit head
            return population_widths(moments, target, voxel_layer, n_layers)
        thresholds = (self.coding.threshold / layers.clamp_min(self.coding.threshold))[:, voxel_layer]
        squares = drawn_square_sums(reconstructed.detach(), hit_logits.detach().sigmoid(), thresholds,
                                    self.hit_shape, voxel_layer, n_layers)
        return widened(moments, squares)

    def drawn_moments_through(self, moments: Tensor, y: Tensor, hit_logits: Tensor, layers: Tensor, energies: Tensor
                              ) -> tuple[Tensor, Tensor]:
        """(``moments`` of the decoder's shares valued at those of one hit draw from them, layers the draw filled).

        The draw is sampling's (``drawn_showers``); its moments pass straight through: the error's gradient reaches
        the shares, and it vanishes when the drawn moments' expectation meets the target."""
        with torch.no_grad():
            drawn = self.drawn_showers(y, hit_logits, layers, energies)
            drawn_layers = self.coding.layer_energies(drawn)
            drawn_moments = self.moments(shares(drawn, drawn_layers, self.coding.voxel_layer))
        return moments + (drawn_moments - moments.detach()), drawn_layers > 0

    def drawn_showers(self, y: Tensor, hit_logits: Tensor | None, layers: Tensor, energies: Tensor,
                      generator: torch.Generator | None = None) -> Tensor:
        """Showers (MeV) from the decoder's voxel variables ``y`` and hit logits at the dequantised ``layers`` and
        incident ``energies``: the hits drawn as the config says (``VoxelCoding.decode_cut``)."""
        return self.coding.decode_cut(y, layers, None if hit_logits is None else hit_logits.sigmoid(), generator,
                                      hit_shape=self.hit_shape, energies=energies if self.counted_hits else None,
                                      hit_deposit=self.hit_deposit)

    def layer_loss(self, energies: Tensor, layers: Tensor) -> Tensor:
        """Flow 1's loss alone: its NLL per layer, or a flow matcher's velocity error."""
        if isinstance(self.layer_flow, LayerEnergyMatch):
            return self.layer_flow.loss(energies, layers)
        return -self.layer_flow.log_prob(energies, layers).mean() / self.n_layers

    def sample_layers(self, energies: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(N, L) layer energies in MeV drawn for (N,) incident energies: by flow 1, its student, or its flow
        matcher's ODE."""
        if isinstance(self.layer_flow, LayerEnergyMatch):
            return self.layer_flow.sample(energies, generator, **self.layer_sampling)
        return self.layer_flow.sample(energies, generator, self.layer_student)

    def latent_loss(self, z: Tensor, context: Tensor) -> Tensor:
        """The latent model's loss alone: flow matching's, or the coupling flow's NLL per dimension."""
        if isinstance(self.latent_flow, LatentMatch):
            return self.latent_flow.loss(z, context)
        return -self.latent_flow.log_prob(z, context).mean() / z.shape[1]

    def moments(self, shares: Tensor) -> Tensor:
        return layer_moments(shares, self.positions, self.coding.voxel_layer, self.coding.n_layers)

    def sample(self, energies: Tensor, generator: torch.Generator | None = None, **options: Any) -> Tensor:
        """(N, voxels) showers; with a flow-matching latent model, options ``sampler`` and ``steps`` choose its ODE
        solver (default: the config's ``match_sampler`` and ``match_steps``)."""
        solver = {}
        if isinstance(getattr(self, "latent_flow", None), LatentMatch):
            solver = {key: options.pop(key) for key in ("sampler", "steps") if key in options}
        return sample_in_chunks(partial(self._sample, **solver), energies, generator, options, "caloman")

    def _sample(self, energies: Tensor, generator: torch.Generator | None, **solver: Any) -> Tensor:
        if self.stage == "autoencoder":
            raise CaloforgeError("caloman: this is an autoencoder-stage checkpoint; train the flow stage from it "
                                 "(model.stage=flow, train.init_from=<this checkpoint>) to sample")
        layers = self.sample_layers(energies, generator)
        context = shower_condition(energies, layers)
        z = self.latent_flow.sample(context, generator, **solver)
        return self.drawn_showers(*self.autoencoder.decode(z, context), layers, energies, generator)
