"""CaloDiffusion as a caloforge ShowerModel: preprocessing, GLaM, U-Net, training objective and sampling.

The diffusion state is the preprocessed voxel vector x0 (threshold, voxel / (scale E_inc), logit, standardise).
Training noises it as ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``; sampling works in the scaled variable
``x = x_t / sqrt(abar) = x0 + sigma eps`` through one denoiser ``D(x, sigma) -> x0`` (see
``caloforge.sampling.samplers``). The network sees ``x_t`` itself (``x / sqrt(1 + sigma^2)``), laid out as a
(layer, alpha, r) image (through GLaM for irregular geometries) with geometry images as extra channels, and the
two conditions: the scaled log incident energy and the noise level sqrt(1 - abar). With ``layer_energy`` a
layer-energy flow (``layers.py``) samples the layer energies first; the U-Net is also conditioned on them and the
showers are rescaled to them.

With ``patch`` the U-Net sees the image cut into patches stacked as channels (``patches.py``): a coarser mesh, the
same voxels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from caloforge.contract import readout_threshold
from caloforge.data.transforms import Chain, DivideByIncident, LogEnergy, transform_from_dict, voxel_preprocessing
from caloforge.errors import CaloforgeError
from caloforge.geometry import Geometry
from caloforge.models.diffusion.config import CaloDiffusionConfig
from caloforge.models.diffusion.glam import GLaM
from caloforge.models.diffusion.layers import LayerEnergyModel
from caloforge.models.diffusion.patches import from_patches, to_patches
from caloforge.models.diffusion.schedule import CosineSchedule, noise_level
from caloforge.models.diffusion.unet import UNet
from caloforge.sampling.samplers import get_sampler


def preprocessing(config: CaloDiffusionConfig, geometry: Geometry) -> Chain:
    """The unfitted voxel chain; irregular (ds1-style, coarse) voxels hold more of the energy, hence the 3.1."""
    scale = config.voxel_scale if config.voxel_scale is not None else (2.0 if geometry.is_regular else 3.1)
    return voxel_preprocessing(readout_threshold(geometry), factor=scale, alpha=config.logit_alpha)


def uses_glam(config: CaloDiffusionConfig, geometry: Geometry) -> bool:
    if config.glam is None:
        return not geometry.is_regular
    if not config.glam and not geometry.is_regular:
        raise CaloforgeError(f"calodiffusion: {geometry.name} is irregular and needs glam (a regular grid to convolve)")
    return config.glam


def geometry_images(grid: Geometry, with_alpha: bool) -> Tensor:
    """(channels, layer, alpha, r) images of where each voxel sits: convolutions are translation invariant, showers
    are not. R = radial bin centre / largest centre, Z = layer / n_layers, and with GLaM alpha in [0, 1], since a
    hull's angular bins carry different information (single-angle layers) and may break the symmetry."""
    n_layers, n_alpha, n_r = grid.shape
    edges = grid.r_edges[0]
    centres = (edges[:-1] + edges[1:]) / 2
    axes = {"r": np.broadcast_to(centres / centres.max(), grid.shape),
            "z": np.broadcast_to((np.arange(n_layers) / n_layers)[:, None, None], grid.shape)}
    if with_alpha:
        axes["alpha"] = np.broadcast_to(np.linspace(0, 1, n_alpha)[:, None], grid.shape)
    return torch.tensor(np.stack(list(axes.values())), dtype=torch.float32)


class CaloDiffusion(nn.Module):
    """A conditional diffusion model of (E_inc, showers) on one geometry."""

    images: Tensor

    def __init__(self, config: CaloDiffusionConfig, geometry: Geometry, fitted: dict):
        super().__init__()
        self.objective = config.objective
        self.n_voxels = geometry.n_voxels
        self.preprocessing = transform_from_dict(fitted["preprocessing"])
        self.condition = LogEnergy(config.e_min, config.e_max)
        self.schedule = CosineSchedule(config.n_steps)
        glam = uses_glam(config, geometry)
        self.glam = GLaM(geometry, seed=config.seed) if glam else None
        self.grid_shape = self.glam.shape if glam else geometry.shape
        grid = self.glam.hull if glam else geometry
        self.patch = self._patch(config, geometry)
        # the U-Net's mesh (patches or voxels), and the geometry images at its resolution
        mesh = tuple(n // p for n, p in zip(self.grid_shape, self.patch or (1, 1, 1)))
        images = F.adaptive_avg_pool3d(geometry_images(grid, with_alpha=glam), mesh)
        self.register_buffer("images", images, persistent=False)
        low, high = self._x0_range()
        self.register_buffer("x0_low", low, persistent=False)
        self.register_buffer("x0_high", high, persistent=False)
        channels = math.prod(self.patch or (1,))
        self.layer_model = (LayerEnergyModel(geometry, fitted["layers"], config.layer_transforms, config.layer_hidden)
                            if config.layer_energy else None)
        conditions = 1 + (geometry.n_layers if self.layer_model is not None else 0)
        self.unet = UNet(channels + len(self.images), config.channels, config.embed_dim, config.attention, conditions,
                         out_channels=channels)

    @staticmethod
    def _patch(config: CaloDiffusionConfig, geometry: Geometry) -> tuple[int, int, int] | None:
        if config.patch is None:
            return None
        if not geometry.is_regular:
            raise CaloforgeError(f"calodiffusion patch {config.patch}: needs a regular geometry; {geometry.name} is not")
        if any(n % p for n, p in zip(geometry.shape, config.patch)):
            raise CaloforgeError(f"calodiffusion patch {config.patch}: must divide every axis of {geometry.name}'s "
                                 f"{'x'.join(map(str, geometry.shape))} mesh")
        return tuple(config.patch)

    def shower_condition(self, energies: Tensor, layers: Tensor | None = None) -> Tensor:
        """The U-Net's shower condition: the scaled log incident energy (N,), or with a layer-energy model that and
        the layer variables of ``layers`` (N, 1 + L)."""
        energy = self.condition.forward(energies, energies)
        if self.layer_model is None:
            return energy
        return torch.cat([energy[:, None], self.layer_model.condition(energies, layers)], dim=1)

    def _x0_range(self) -> tuple[Tensor, Tensor]:
        """Preprocessed images of an empty voxel and of a full one (``factor * E_inc``): all real showers lie between."""
        factor = next((step.factor for step in self.preprocessing.steps if isinstance(step, DivideByIncident)), None)
        if factor is None:
            raise CaloforgeError("calodiffusion preprocessing must scale voxels by the incident energy")
        # in float64: with logit_alpha 1e-8, 1 - alpha rounds to 1 in float32 and the full voxel's logit to +inf
        one = torch.ones(1, dtype=torch.float64)
        low = self.preprocessing.forward(torch.zeros(1, self.n_voxels, dtype=torch.float64), one)[0]
        high = self.preprocessing.forward(torch.full((1, self.n_voxels), factor, dtype=torch.float64), one)[0]
        return low.float(), high.float()

    def training_layers(self, showers: Tensor) -> Tensor | None:
        """The layer energies a training shower conditions on (None without a layer-energy model)."""
        return self.layer_model.layer_energies(showers) if self.layer_model is not None else None

    def to_showers(self, x0: Tensor, energies: Tensor, layers: Tensor | None) -> Tensor:
        """Preprocessed x0 -> showers in MeV, rescaled to the drawn ``layers`` when there are any."""
        showers = self.preprocessing.inverse(x0, energies)
        return showers if layers is None else self.layer_model.rescale(showers, layers)

    def network(self, x_t: Tensor, energy: Tensor, sigma: Tensor) -> Tensor:
        """The raw network output F (N, voxels) for VP states ``x_t`` (N, voxels) at noise levels ``sigma`` (N,).

        The batch size is read as ``x_t.shape[0]``, which the ONNX tracer records as a graph value (``len`` would be
        a constant), so that an exported sampler takes any batch."""
        batch = x_t.shape[0]
        grid = self.glam.encode(x_t) if self.glam is not None else x_t.reshape(batch, *self.grid_shape)
        grid = grid[:, None] if self.patch is None else to_patches(grid[:, None], self.patch)
        image = torch.cat([grid, self.images.expand(batch, -1, -1, -1, -1)], dim=1)
        if image.device.type == "cpu" and not torch.jit.is_tracing():
            # oneDNN's 3D convolutions run channels-last (and keep that layout): 25-30 % faster here on Par04;
            # ONNX has no memory formats
            image = image.contiguous(memory_format=torch.channels_last_3d)
        out = self.unet(image, energy, noise_level(sigma))
        out = out if self.patch is None else from_patches(out, self.patch)
        return self.glam.decode(out[:, 0]) if self.glam is not None else out.flatten(1)

    def denoise(self, x: Tensor, sigma: Tensor, energy: Tensor) -> Tensor:
        """The estimate of x0 from ``x = x0 + sigma eps`` (sigma a scalar or (N,)), clipped to the range real
        showers occupy: with eps-prediction ``x - sigma eps`` multiplies the network's error by sigma (up to ~8000
        at the top of the cosine schedule), and one unclipped step from there lands far outside any shower."""
        sigma = sigma.expand(x.shape[0])
        c_in = torch.rsqrt(1 + sigma**2)[:, None]  # sqrt(abar)
        out = self.network(x * c_in, energy, sigma)
        if self.objective == "eps":
            x0 = x - sigma[:, None] * out
        else:  # EDM's preconditioning with sigma_data = 1: c_skip = 1 / (sigma^2 + 1), c_out = sigma / sqrt(sigma^2 + 1)
            x0 = c_in**2 * x + sigma[:, None] * c_in * out
        return torch.maximum(torch.minimum(x0, self.x0_high), self.x0_low)

    def forward(self, energies: Tensor, showers: Tensor) -> Tensor:
        """The training loss of one batch, at uniformly drawn steps t.

        "eps": MSE between predicted and drawn noise. "hybrid": the L2 error of ``D = c_skip x + c_out F`` against
        x0 weighted by 1 + 1/sigma^2 = 1 / c_out^2, computed in the equivalent, well-conditioned form: the MSE
        between F and the output that makes D exact, ``(sigma x0 - eps) / sqrt(1 + sigma^2)``.
        With a layer-energy model, its negative log-likelihood per layer is added: the two train together.
        """
        layers = self.training_layers(showers)
        x0 = self.preprocessing.forward(showers, energies)
        t = torch.randint(self.schedule.n_steps, (len(x0),), device=x0.device)
        sigma = self.schedule.sigma[t]
        noise = torch.randn_like(x0)
        c_in = torch.rsqrt(1 + sigma**2)[:, None]
        out = self.network((x0 + sigma[:, None] * noise) * c_in, self.shower_condition(energies, layers), sigma)
        target = noise if self.objective == "eps" else (sigma[:, None] * x0 - noise) * c_in
        loss = F.mse_loss(out, target)
        return loss if self.layer_model is None else loss + self.layer_model.loss(energies, layers)

    @torch.no_grad()
    def sample(self, energies: Tensor, generator: torch.Generator | None = None, sampler: str = "ddpm",
               steps: int | None = None) -> Tensor:
        """(N, voxels) showers in MeV for incident energies (N,) MeV, by ``sampler`` over ``steps`` of the
        schedule (default: all); all randomness comes from ``generator``. With a layer-energy model the layer
        energies are drawn first and the showers rescaled to them."""
        run = get_sampler(sampler)
        sigma = self.schedule.sigma
        energies = torch.as_tensor(energies).to(device=sigma.device, dtype=sigma.dtype)
        sigmas = self.schedule.sigmas(steps)
        layers = self.layer_model.sample(energies, generator) if self.layer_model is not None else None
        energy = self.shower_condition(energies, layers)
        # the VP prior x_T ~ N(0, 1), seen in the scaled variable x_T / sqrt(abar_T)
        x = torch.randn(len(energies), self.n_voxels, generator=generator, device=sigma.device, dtype=sigma.dtype)
        x0 = run(lambda x, s: self.denoise(x, s, energy), x * (1 + sigmas[0] ** 2).sqrt(), sigmas, generator=generator)
        return self.to_showers(x0, energies, layers)
