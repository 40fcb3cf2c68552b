"""The CaloChallenge's high-level shower features, computed chunk by chunk for any geometry.

Per shower: E_tot, E_tot / E_inc, the energy of every layer, the energy-weighted centre and width in eta (r cos alpha)
and phi (r sin alpha) of every layer binned in alpha, centre and width in r of every layer, and the sparsity of every
layer (1 - the fraction of voxels above zero) and, for regular geometries, SuperCalo's inter-layer correlation rho
of every adjacent layer pair (``correlation.py``). Per sample: the voxel-energy spectrum as histogram counts and the
summed showers per incident-energy decade (the average showers of the plots). The readout threshold is applied
first, as in the CaloChallenge's ``evaluate.py``.

Everything is linear in the voxel energies, so each layer's sums are one small matrix product of the (showers x
voxels) block with a (voxels x 7) weight matrix: no per-voxel Python loop, and a file is read once in bounded chunks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

from caloforge.evaluate.correlation import layer_correlations
from caloforge.evaluate.parallel import default_threads, thread_map
from caloforge.geometry import Geometry

#: bump when the definition or the storage of a feature changes: cached reference features are then recomputed
FEATURES_VERSION = 2
#: the voxel spectrum is counted on a fine fixed log grid anchored at the threshold, coarsened for scoring and plots
VOXEL_BINS_PER_DECADE = 50
VOXEL_DECADES = 10
#: incident-energy decades of the per-energy average showers: 1 MeV .. 10 TeV
DECADE_EDGES_MEV = 10.0 ** np.arange(0, 8)

_PER_SHOWER = ("e_inc", "e_tot", "e_layer", "ec_eta", "ec_phi", "width_eta", "width_phi", "ec_r", "width_r",
               "sparsity", "rho")


@dataclass(eq=False)
class ShowerFeatures:
    """High-level features of one sample: per-shower arrays (float32, N rows) and per-sample accumulations."""

    geometry_name: str
    threshold: float
    e_inc: np.ndarray  # (N,) MeV
    e_tot: np.ndarray  # (N,) MeV, after the threshold
    e_layer: np.ndarray  # (N, layers)
    ec_eta: np.ndarray  # (N, layers binned in alpha) mm
    ec_phi: np.ndarray
    width_eta: np.ndarray
    width_phi: np.ndarray
    ec_r: np.ndarray  # (N, layers) mm
    width_r: np.ndarray
    sparsity: np.ndarray  # (N, layers) in [0, 1]
    rho: np.ndarray  # (N, layers - 1) in [0, 1], NaN where a layer is empty; (N, 0) for irregular geometries
    voxel_counts: np.ndarray  # (VOXEL_DECADES * VOXEL_BINS_PER_DECADE,) voxels per fine log bin above threshold
    decade_counts: np.ndarray  # (len(DECADE_EDGES_MEV) - 1,) showers per incident-energy decade
    decade_sums: np.ndarray  # (decades, voxels) float64 summed voxel energies per decade

    @property
    def n(self) -> int:
        return len(self.e_inc)

    @property
    def e_ratio(self) -> np.ndarray:
        """E_tot / E_inc."""
        return self.e_tot / self.e_inc

    @cached_property
    def mean_shower(self) -> np.ndarray:
        """(voxels,) average voxel energies of the whole sample (MeV)."""
        return self.decade_sums.sum(0) / max(self.n, 1)

    def voxel_edges(self) -> np.ndarray:
        """Edges (MeV) of the fine voxel-spectrum grid."""
        return voxel_bin_edges(self.threshold)

    def high_level_vector(self) -> np.ndarray:
        """(N, d) float64 inputs of ``cls-high`` and of FPD/KPD, in the CaloChallenge's order and scaling.

        [log10 E_inc, log10(E_layer + 1e-8), eta centres / 100, phi centres / 100, eta widths / 100,
        phi widths / 100, log10 E_tot, sparsity, r centres / 100, r widths / 100]. E_tot gets the same +1e-8 as
        the layers so that a shower with nothing above threshold stays finite (upstream would give -inf).
        """
        parts = [np.log10(self.e_inc)[:, None], np.log10(self.e_layer.astype(np.float64) + 1e-8),
                 self.ec_eta / 100, self.ec_phi / 100, self.width_eta / 100, self.width_phi / 100,
                 np.log10(self.e_tot.astype(np.float64) + 1e-8)[:, None], self.sparsity,
                 self.ec_r / 100, self.width_r / 100]
        out = np.empty((self.n, sum(p.shape[1] for p in parts)))
        column = 0
        for part in parts:  # written in place: no float64 copy of every part before concatenating
            out[:, column:column + part.shape[1]] = part
            column += part.shape[1]
        return out

    def subset(self, rows: np.ndarray | slice) -> ShowerFeatures:
        """The per-shower features of some rows (sample-level accumulations are kept as they are)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _PER_SHOWER:
            values[name] = values[name][rows]
        return ShowerFeatures(**values)

    # --- storage (the reference cache) ------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write to an ``.npz`` file (uncompressed: loading 100k showers' features takes a fraction of a second)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["geometry_name"] = np.array(self.geometry_name)
        values["threshold"] = np.array(self.threshold)
        values["features_version"] = np.array(FEATURES_VERSION)
        with open(path, "wb") as handle:
            np.savez(handle, **values)

    @classmethod
    def load(cls, path: Path) -> ShowerFeatures:
        with np.load(path, allow_pickle=False) as data:
            if int(data["features_version"]) != FEATURES_VERSION:
                raise ValueError(f"{path}: features version {int(data['features_version'])}, need {FEATURES_VERSION}")
            values = {f.name: data[f.name] for f in fields(cls)}
        values["geometry_name"] = str(values["geometry_name"])
        values["threshold"] = float(values["threshold"])
        return cls(**values)


def voxel_bin_edges(threshold: float) -> np.ndarray:
    """Fine log grid of the voxel spectrum: ``threshold * 10**(k / VOXEL_BINS_PER_DECADE)``."""
    k = np.arange(VOXEL_DECADES * VOXEL_BINS_PER_DECADE + 1)
    return threshold * 10.0 ** (k / VOXEL_BINS_PER_DECADE)


def alpha_layers(geometry: Geometry) -> np.ndarray:
    """Indices of the layers binned in alpha: only these have eta/phi centres and widths."""
    return np.flatnonzero(np.asarray(geometry.n_alpha) > 1)


class FeatureAccumulator:
    """Consumes (energies, showers) chunks and builds a ``ShowerFeatures`` at the end; memory is O(N x layers)."""

    def __init__(self, geometry: Geometry, threshold: float, block_rows: int = 512, threads: int | None = None):
        self.geometry = geometry
        self.block_rows = block_rows
        self.threads = threads if threads is not None else default_threads(4)
        self.threshold = float(threshold)
        self._alpha_index = alpha_layers(geometry)
        alpha = set(self._alpha_index.tolist())
        # Per-layer weights: columns 1, r, r^2 and, for layers binned in alpha, eta, eta^2, phi, phi^2.
        self._weights = []
        for layer in range(geometry.n_layers):
            sl = geometry.layer_slice(layer)
            r = geometry.r_centres[sl]
            columns = [np.ones_like(r), r, r * r]
            if layer in alpha or geometry.is_regular:  # regular: one matrix for all layers, split later
                eta, phi = geometry.eta_centres[sl], geometry.phi_centres[sl]
                columns += [eta, eta * eta, phi, phi * phi]
            self._weights.append(np.stack(columns, axis=1))
        self._parts: list[dict[str, np.ndarray]] = []
        self._voxel_counts = np.zeros(VOXEL_DECADES * VOXEL_BINS_PER_DECADE, dtype=np.int64)
        n_decades = len(DECADE_EDGES_MEV) - 1
        self._decade_counts = np.zeros(n_decades, dtype=np.int64)
        self._decade_sums = np.zeros((n_decades, geometry.n_voxels), dtype=np.float64)

    def add(self, energies: np.ndarray, showers: np.ndarray, inplace: bool = False) -> np.ndarray:
        """Add a chunk; returns its thresholded showers (float32), so a caller can reuse them without a second pass.

        With ``inplace`` the threshold is applied to ``showers`` itself (no copy of a chunk the caller owns).
        """
        # asarray: no copy when the chunk already is float32 (then it is thresholded in place)
        showers = np.asarray(showers, dtype=np.float32) if inplace else np.array(showers, dtype=np.float32)
        energies = np.asarray(energies, dtype=np.float64)
        # Sub-blocks of a few hundred rows keep every temporary small (cache-friendly, and below the allocator's
        # mmap threshold, so memory is reused rather than faulted in again); blocks run on a few threads.
        starts = range(0, len(energies), self.block_rows)
        jobs = [(energies[i:i + self.block_rows], showers[i:i + self.block_rows]) for i in starts]
        results = thread_map(lambda job: self._block(*job), jobs, self.threads)
        for parts, voxel_counts, decade_counts, decade_sums in results:
            self._parts.append(parts)
            self._voxel_counts += voxel_counts
            self._decade_counts += decade_counts
            self._decade_sums += decade_sums
        return showers

    def _block(self, energies: np.ndarray, block: np.ndarray):
        above = block >= np.float32(self.threshold)  # one mask serves the threshold, the sparsity and the spectrum
        np.multiply(block, above, out=block)
        return (self._per_shower(energies, block, above), self._spectrum(block[above]),
                *self._decades(energies, block))

    def _per_shower(self, energies: np.ndarray, showers: np.ndarray, above: np.ndarray) -> dict[str, np.ndarray]:
        n, geo = len(energies), self.geometry
        n_layers = geo.n_layers
        # per layer: sums of E, E r, E r^2 (n, layers, 3); of E eta, E eta^2, E phi, E phi^2 for alpha layers
        # (n, alpha layers, 4); and the number of voxels above threshold (n, layers)
        # float64 sums: widths are differences of second moments, where float32 would cancel badly
        if geo.is_regular:
            # every layer has the same voxel coordinates: one (n * layers, voxels per layer) product for all
            per_layer = int(geo.voxels_per_layer[0])
            sums = (showers.reshape(-1, per_layer).astype(np.float64) @ self._weights[0]).reshape(n, n_layers, -1)
            counts = above.view(np.uint8).reshape(n, n_layers, per_layer).sum(2, dtype=np.int64)
            r_sums, alpha_sums = sums[:, :, :3], sums[:, self._alpha_index, 3:]
        else:
            r_sums, alpha_sums, counts = np.empty((n, n_layers, 3)), [], np.empty((n, n_layers), dtype=np.int64)
            for layer, weights in enumerate(self._weights):
                sl = geo.layer_slice(layer)
                sums = showers[:, sl].astype(np.float64) @ weights
                r_sums[:, layer] = sums[:, :3]
                if sums.shape[1] > 3:
                    alpha_sums.append(sums[:, 3:])
                counts[:, layer] = above[:, sl].view(np.uint8).sum(1, dtype=np.int64)
            alpha_sums = np.stack(alpha_sums, axis=1) if alpha_sums else np.empty((n, 0, 4))
        e_layer = r_sums[:, :, 0]
        ec_r, width_r = _centre_width(r_sums[:, :, 1], r_sums[:, :, 2], e_layer)
        e_alpha = e_layer[:, self._alpha_index]
        ec_eta, width_eta = _centre_width(alpha_sums[:, :, 0], alpha_sums[:, :, 1], e_alpha)
        ec_phi, width_phi = _centre_width(alpha_sums[:, :, 2], alpha_sums[:, :, 3], e_alpha)
        out = dict(e_inc=energies, e_tot=e_layer.sum(1), e_layer=e_layer, ec_eta=ec_eta, ec_phi=ec_phi,
                   width_eta=width_eta, width_phi=width_phi, ec_r=ec_r, width_r=width_r,
                   sparsity=1.0 - counts / geo.voxels_per_layer,
                   rho=layer_correlations(showers, geo) if geo.is_regular else np.empty((n, 0)))
        return {k: v.astype(np.float32) for k, v in out.items()}

    def _spectrum(self, values: np.ndarray) -> np.ndarray:
        # the bin index from the logarithm: uniform bins in log space need no search, unlike np.histogram's edges
        k = np.floor(np.log10(values / np.float32(self.threshold)) * VOXEL_BINS_PER_DECADE).astype(np.int64)
        np.clip(k, 0, len(self._voxel_counts) - 1, out=k)
        return np.bincount(k, minlength=len(self._voxel_counts))

    def _decades(self, energies: np.ndarray, showers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_decades = len(self._decade_counts)
        index = np.clip(np.searchsorted(DECADE_EDGES_MEV, energies, side="right") - 1, 0, n_decades - 1)
        # one pass over the block: (decades x n one-hot) @ (n x voxels)
        onehot = np.zeros((n_decades, len(energies)), dtype=np.float32)
        onehot[index, np.arange(len(energies))] = 1.0
        return np.bincount(index, minlength=n_decades), onehot @ showers

    def result(self) -> ShowerFeatures:
        parts = self._parts
        joined = {name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, np.float32)
                  for name in _PER_SHOWER}
        return ShowerFeatures(geometry_name=self.geometry.name, threshold=self.threshold,
                              voxel_counts=self._voxel_counts.copy(), decade_counts=self._decade_counts.copy(),
                              decade_sums=self._decade_sums.copy(), **joined)


def _centre_width(first: np.ndarray, second: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted mean and spread; as upstream, an empty layer (total 0) gets centre 0 and width 0."""
    norm = total + 1e-16
    centre = first / norm
    width = np.sqrt(np.clip(second / norm - centre * centre, 0.0, None))
    return centre, width


def compute_features(geometry: Geometry, chunks: Iterable[tuple[np.ndarray, np.ndarray]],
                     threshold: float) -> ShowerFeatures:
    """Features of a stream of (energies (n,), showers (n, voxels)) chunks, e.g. ``ShowerFile.iter_chunks()``."""
    accumulator = FeatureAccumulator(geometry, threshold)
    for energies, showers in chunks:
        accumulator.add(energies, showers)
    return accumulator.result()
