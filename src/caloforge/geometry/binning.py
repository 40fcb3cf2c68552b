"""The voxel geometry of a CaloChallenge binning XML.

A shower is a flat vector of voxel energies. Voxels come layer by layer (only layers with radial edges hold
voxels); inside a layer the angular bin is the slow index and the radial bin the fast one. Angular bin ``i`` of
``n`` covers ``[-pi + i 2pi/n, -pi + (i+1) 2pi/n)``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from caloforge.errors import CaloforgeError


@dataclass(frozen=True, eq=False)
class Geometry:
    """Per-layer radial edges (mm) and angular bin counts of the active (voxel-holding) layers."""

    name: str
    layer_ids: tuple[int, ...]
    r_edges: tuple[np.ndarray, ...]
    n_alpha: tuple[int, ...]
    particle: str = ""
    #: for each active layer, the index of the layer of ``parent`` it sums (coarse geometries only)
    parent: str | None = None
    parent_layers: tuple[tuple[int, ...], ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (len(self.layer_ids) == len(self.r_edges) == len(self.n_alpha)) or not self.layer_ids:
            raise CaloforgeError(f"geometry {self.name}: needs the same, non-zero number of layers, edges and alphas")
        for lid, edges, na in zip(self.layer_ids, self.r_edges, self.n_alpha):
            if not _valid_edges(edges) or na < 1:
                raise CaloforgeError(f"geometry {self.name}: layer {lid} needs finite, increasing r edges from r >= 0 "
                                     "and n_alpha >= 1")

    # --- sizes -------------------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.layer_ids)

    @cached_property
    def n_r(self) -> np.ndarray:
        return np.array([len(e) - 1 for e in self.r_edges])

    @cached_property
    def voxels_per_layer(self) -> np.ndarray:
        return self.n_r * np.array(self.n_alpha)

    @cached_property
    def layer_offsets(self) -> np.ndarray:
        """Start of each layer's block in the flat voxel vector, plus the total at the end."""
        return np.concatenate([[0], np.cumsum(self.voxels_per_layer)])

    @property
    def n_voxels(self) -> int:
        return int(self.layer_offsets[-1])

    @cached_property
    def is_regular(self) -> bool:
        """True when every layer has the same radial edges and angular bins (a (layers, alpha, r) cylinder)."""
        first = self.r_edges[0]
        return all(len(e) == len(first) and np.allclose(e, first) for e in self.r_edges) and len(set(self.n_alpha)) == 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """(layers, alpha, r) of a regular geometry."""
        if not self.is_regular:
            raise CaloforgeError(f"geometry {self.name} is irregular: it has no (layers, alpha, r) shape")
        return (self.n_layers, self.n_alpha[0], int(self.n_r[0]))

    # --- per-voxel indices and centres -----------------------------------------------------------------------
    @cached_property
    def voxel_layer(self) -> np.ndarray:
        """Index (0..n_layers-1) of the active layer of every voxel."""
        return np.repeat(np.arange(self.n_layers), self.voxels_per_layer)

    @cached_property
    def voxel_alpha(self) -> np.ndarray:
        return np.concatenate([np.repeat(np.arange(na), nr) for na, nr in zip(self.n_alpha, self.n_r)])

    @cached_property
    def voxel_r(self) -> np.ndarray:
        return np.concatenate([np.tile(np.arange(nr), na) for na, nr in zip(self.n_alpha, self.n_r)])

    @cached_property
    def voxel_r_edges(self) -> np.ndarray:
        """(n_voxels, 2) inner and outer radius of every voxel."""
        return np.concatenate(
            [np.tile(np.stack([e[:-1], e[1:]], axis=1), (na, 1)) for e, na in zip(self.r_edges, self.n_alpha)]
        )

    @cached_property
    def voxel_alpha_edges(self) -> np.ndarray:
        """(n_voxels, 2) angular range of every voxel, within [-pi, pi]."""
        width = 2 * np.pi / np.asarray(self.n_alpha)[self.voxel_layer]
        low = -np.pi + self.voxel_alpha * width
        return np.stack([low, low + width], axis=1)

    @cached_property
    def r_centres(self) -> np.ndarray:
        return self.voxel_r_edges.mean(axis=1)

    @cached_property
    def alpha_centres(self) -> np.ndarray:
        return self.voxel_alpha_edges.mean(axis=1)

    @cached_property
    def eta_centres(self) -> np.ndarray:
        """r cos(alpha): the CaloChallenge's "eta" coordinate of each voxel (mm)."""
        return self.r_centres * np.cos(self.alpha_centres)

    @cached_property
    def phi_centres(self) -> np.ndarray:
        """r sin(alpha): the CaloChallenge's "phi" coordinate of each voxel (mm)."""
        return self.r_centres * np.sin(self.alpha_centres)

    @cached_property
    def voxel_area(self) -> np.ndarray:
        """Transverse area of each voxel (mm^2): an annular sector."""
        r0, r1 = self.voxel_r_edges.T
        a0, a1 = self.voxel_alpha_edges.T
        return 0.5 * (r1**2 - r0**2) * (a1 - a0)

    @cached_property
    def alpha_symmetries(self) -> np.ndarray:
        """(K, n_voxels) voxel permutations of the mesh's rotations and reflections about the beam axis.

        The rotations are the multiples of 2pi/g, g the greatest common divisor of the angular bin counts of the
        layers binned in alpha (then every such layer turns by whole bins); each comes also reflected (alpha ->
        -alpha maps bin i of n onto bin n-1-i). Row k maps a shower onto its image: ``showers[:, perms[k]]``.
        Row 0 is the identity. For a beam along the axis these images are as likely as the shower itself.
        """
        binned = [na for na in self.n_alpha if na > 1]
        if not binned:
            return np.arange(self.n_voxels)[None]
        turns = int(np.gcd.reduce(binned))
        n_alpha = np.asarray(self.n_alpha)[self.voxel_layer]
        first = self.layer_offsets[self.voxel_layer]
        n_r = self.n_r[self.voxel_layer]
        perms = []
        for mirrored in (False, True):
            alpha = (n_alpha - 1 - self.voxel_alpha) if mirrored else self.voxel_alpha
            for turn in range(turns):
                source = (alpha - turn * n_alpha // turns) % n_alpha
                perms.append(first + source * n_r + self.voxel_r)
        return np.stack(perms)

    def layer_slice(self, layer: int) -> slice:
        return slice(int(self.layer_offsets[layer]), int(self.layer_offsets[layer + 1]))

    def layer_energies(self, showers: np.ndarray) -> np.ndarray:
        """(N, n_layers) summed energy of each active layer."""
        return np.add.reduceat(showers, self.layer_offsets[:-1], axis=1)

    def to_regular(self, showers: np.ndarray) -> np.ndarray:
        """(N, voxels) -> (N, layers, alpha, r) for a regular geometry."""
        return showers.reshape(len(showers), *self.shape)

    def describe(self) -> str:
        if self.is_regular:
            layout = "regular {} layers x {} alpha x {} r".format(*self.shape)
        else:
            layout = "irregular: " + ", ".join(f"{na}a x {nr}r" for na, nr in zip(self.n_alpha, self.n_r))
        return f"{self.name} ({self.n_voxels} voxels, {layout})"


def _valid_edges(edges: np.ndarray) -> bool:
    """At least two finite, strictly increasing radii from r >= 0 (NaN fails every comparison, so it is caught)."""
    return len(edges) >= 2 and bool(edges[0] >= 0 and np.all(np.diff(edges) > 0) and np.isfinite(edges[-1]))


def parse_binning_xml(path: str | Path, name: str | None = None) -> Geometry:
    """Read a CaloChallenge binning XML; layers with ``r_edges="0"`` hold no voxels and are skipped."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as err:
        raise CaloforgeError(f"{path}: not a readable binning XML ({err})") from None
    bins = root.findall("Bin")
    if len(bins) != 1:
        raise CaloforgeError(f"{path}: expected exactly one <Bin> element, found {len(bins)}")
    layer_ids, edges, alphas = [], [], []
    for layer in bins[0].findall("Layer"):
        try:
            values = np.array([float(v) for v in layer.get("r_edges", "").split(",")])
            n_alpha = int(layer.get("n_bin_alpha", "1"))
            lid = int(layer.get("id", ""))
        except ValueError:
            raise CaloforgeError(f"{path}: layer {layer.get('id')} has unreadable r_edges/n_bin_alpha/id") from None
        if len(values) > 1:
            layer_ids.append(lid)
            edges.append(values)
            alphas.append(n_alpha)
    if not layer_ids:
        raise CaloforgeError(f"{path}: no layer holds voxels")
    return Geometry(
        name=name or path.stem,
        layer_ids=tuple(layer_ids),
        r_edges=tuple(edges),
        n_alpha=tuple(alphas),
        particle=bins[0].get("name", ""),
    )


def regular_hull(geometry: Geometry) -> Geometry:
    """The regular cylinder that holds every radial edge and the most angular bins of any layer (GLaM's target)."""
    edges = np.unique(np.concatenate(geometry.r_edges))
    n_alpha = max(geometry.n_alpha)
    return Geometry(
        name=f"{geometry.name}-regular",
        layer_ids=geometry.layer_ids,
        r_edges=(edges,) * geometry.n_layers,
        n_alpha=(n_alpha,) * geometry.n_layers,
        particle=geometry.particle,
    )
