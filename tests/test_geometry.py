"""Geometry: the built-in binnings, the documented voxel order, and rebinning through the overlap matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from caloforge.data import open_showers, sample_path
from caloforge.errors import CaloforgeError
from caloforge.geometry import (
    BUILTIN_GEOMETRIES,
    Geometry,
    Rebinning,
    coarsen,
    load_geometry,
    overlap_matrix,
    parse_binning_xml,
    regular_hull,
)

SHARED_PAR04 = Path(__file__).resolve().parents[2] / "shared" / "data" / "par04"

# name -> (voxels, active layers): the CaloChallenge table and the Par04 README
EXPECTED = {
    "ds1-photons": (368, 5),
    "ds1-pions": (533, 7),
    "ds2": (6480, 45),
    "ds3": (40500, 45),
    "par04": (6480, 45),
    "par04-coarse": (359, 6),
}


@pytest.fixture(scope="module")
def sample_showers() -> np.ndarray:
    """200 real Par04 showers from the bundled sample (float64, so sums compare tightly)."""
    return open_showers(sample_path()).read(slice(0, 200))[1].astype(np.float64)


def expected_indices(geometry: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(layer, alpha, r) of every voxel written out by explicit loops in the documented order:
    layer slowest, then angular bin, then radial bin fastest."""
    layers, alphas, radii = [], [], []
    for layer, (edges, n_alpha) in enumerate(zip(geometry.r_edges, geometry.n_alpha)):
        for alpha in range(n_alpha):
            for r in range(len(edges) - 1):
                layers.append(layer)
                alphas.append(alpha)
                radii.append(r)
    return np.array(layers), np.array(alphas), np.array(radii)


# --- built-in geometries ---------------------------------------------------------------------------------------
def test_every_builtin_is_tested() -> None:
    assert set(BUILTIN_GEOMETRIES) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_builtin_voxel_and_layer_counts(name: str) -> None:
    geometry = load_geometry(name)
    n_voxels, n_layers = EXPECTED[name]
    assert geometry.n_voxels == n_voxels
    assert geometry.n_layers == n_layers
    assert geometry.layer_offsets[-1] == n_voxels
    assert len(geometry.voxel_layer) == len(geometry.voxel_alpha) == len(geometry.voxel_r) == n_voxels


def test_ds1_layers_are_the_ones_with_voxels() -> None:
    """Layers with r_edges="0" hold no voxels and are skipped; the others keep their XML ids and alpha counts."""
    photons, pions = load_geometry("ds1-photons"), load_geometry("ds1-pions")
    assert photons.layer_ids == (0, 1, 2, 3, 12)
    assert photons.n_alpha == (1, 10, 10, 1, 1)
    assert list(photons.n_r) == [8, 16, 19, 5, 5]
    assert pions.layer_ids == (0, 1, 2, 3, 12, 13, 14)
    assert list(pions.voxels_per_layer) == [8, 100, 100, 5, 150, 160, 10]


def test_regular_geometries_have_a_shape() -> None:
    assert load_geometry("par04").shape == (45, 16, 9)
    assert load_geometry("ds2").shape == (45, 16, 9)
    assert load_geometry("ds3").shape == (45, 50, 18)
    for name in ("ds1-photons", "ds1-pions", "par04-coarse"):
        geometry = load_geometry(name)
        assert not geometry.is_regular
        with pytest.raises(CaloforgeError, match="irregular"):
            geometry.shape


# --- voxel order and centres -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["par04", "ds1-photons", "ds1-pions", "par04-coarse"])
def test_voxel_indices_follow_the_documented_order(name: str) -> None:
    geometry = load_geometry(name)
    layer, alpha, r = expected_indices(geometry)
    np.testing.assert_array_equal(geometry.voxel_layer, layer)
    np.testing.assert_array_equal(geometry.voxel_alpha, alpha)
    np.testing.assert_array_equal(geometry.voxel_r, r)


@pytest.mark.parametrize("name, images", [("par04-coarse", 16), ("par04", 32), ("ds1-pions", 20)])
def test_alpha_symmetries_turn_or_mirror_every_layer_alike(name: str, images: int) -> None:
    """Each image keeps every voxel's layer and radial bin and moves all angles by one rotation (or mirrors them):
    gcd(8, 16) = 8 turns for par04-coarse, 16 for par04, 10 for ds1-pions; each also mirrored."""
    geometry = load_geometry(name)
    perms = geometry.alpha_symmetries
    assert perms.shape == (images, geometry.n_voxels) and len({tuple(p) for p in perms}) == images
    assert (perms[0] == np.arange(geometry.n_voxels)).all()
    binned = np.asarray(geometry.n_alpha)[geometry.voxel_layer] > 1
    alpha = geometry.alpha_centres
    for k, perm in enumerate(perms):
        assert sorted(perm) == list(range(geometry.n_voxels))
        assert (geometry.voxel_layer[perm] == geometry.voxel_layer).all() and (geometry.voxel_r[perm] == geometry.voxel_r).all()
        mirrored = k >= images // 2
        moved = np.angle(np.exp(1j * ((alpha[perm] + alpha) if mirrored else (alpha - alpha[perm]))))[binned]
        assert np.allclose(moved, moved[0], atol=1e-9) or np.allclose(np.abs(moved), np.pi, atol=1e-9)


def test_regular_reshape_matches_voxel_indices() -> None:
    """reshape(N, layers, alpha, r) puts voxel v at (v // 144, v // 9 % 16, v % 9) for Par04."""
    geometry = load_geometry("par04")
    image = geometry.to_regular(np.arange(geometry.n_voxels)[None])[0]
    layer, alpha, r = np.meshgrid(np.arange(45), np.arange(16), np.arange(9), indexing="ij")
    np.testing.assert_array_equal(geometry.voxel_layer[image], layer)
    np.testing.assert_array_equal(geometry.voxel_alpha[image], alpha)
    np.testing.assert_array_equal(geometry.voxel_r[image], r)


@pytest.mark.parametrize("name", ["par04", "ds1-pions"])
def test_voxel_centres(name: str) -> None:
    """Alpha bin i of n covers [-pi + i 2pi/n, -pi + (i+1) 2pi/n); r centre is the middle of its edges;
    eta = r cos(alpha) and phi = r sin(alpha)."""
    geometry = load_geometry(name)
    layer, alpha, r = expected_indices(geometry)
    n_alpha = np.array(geometry.n_alpha)[layer]
    low = -np.pi + alpha * 2 * np.pi / n_alpha
    np.testing.assert_allclose(geometry.voxel_alpha_edges[:, 0], low)
    np.testing.assert_allclose(geometry.voxel_alpha_edges[:, 1], low + 2 * np.pi / n_alpha)
    np.testing.assert_allclose(geometry.alpha_centres, low + np.pi / n_alpha)
    r_centre = np.array([(geometry.r_edges[lay][i] + geometry.r_edges[lay][i + 1]) / 2 for lay, i in zip(layer, r)])
    np.testing.assert_allclose(geometry.r_centres, r_centre)
    np.testing.assert_allclose(geometry.eta_centres, r_centre * np.cos(geometry.alpha_centres))
    np.testing.assert_allclose(geometry.phi_centres, r_centre * np.sin(geometry.alpha_centres))


def test_par04_centres_by_hand() -> None:
    """Spot values: first voxel of Par04 sits at r = 2.325 mm, alpha = -pi + pi/16; alpha bin 12, r bin 3 of a
    layer at alpha = -pi + 12.5 pi/8, r = 3.5 * 4.65 mm."""
    geometry = load_geometry("par04")
    assert geometry.r_centres[0] == pytest.approx(2.325)
    assert geometry.alpha_centres[0] == pytest.approx(-np.pi + np.pi / 16)
    v = 7 * 144 + 12 * 9 + 3
    alpha, r = -np.pi + 12.5 * np.pi / 8, 3.5 * 4.65
    assert (geometry.voxel_layer[v], geometry.voxel_alpha[v], geometry.voxel_r[v]) == (7, 12, 3)
    assert geometry.eta_centres[v] == pytest.approx(r * np.cos(alpha))
    assert geometry.phi_centres[v] == pytest.approx(r * np.sin(alpha))


def test_layer_energies_sum_each_block(sample_showers: np.ndarray) -> None:
    geometry = load_geometry("par04")
    layers = geometry.layer_energies(sample_showers)
    np.testing.assert_allclose(layers, sample_showers.reshape(-1, 45, 144).sum(2))


# --- overlap and rebinning -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "dst"),
    [("par04", "par04-coarse"), ("ds1-photons", "ds1-photons-hull"), ("ds1-pions", "ds1-pions-hull"),
     ("par04", "par04-x1a2l5")],
)
def test_overlap_rows_sum_to_one_when_target_covers_source(src: str, dst: str) -> None:
    source = load_geometry(src)
    if dst.endswith("-hull"):
        target = regular_hull(source)
    elif dst == "par04-x1a2l5":
        target = coarsen(source, 1, 2, 5)
    else:
        target = load_geometry(dst)
    matrix = overlap_matrix(source, target)
    assert matrix.shape == (source.n_voxels, target.n_voxels)
    np.testing.assert_allclose(np.asarray(matrix.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    assert Rebinning(source, target).conserves_energy


def test_overlap_loses_what_the_target_does_not_cover() -> None:
    """A target ending at half the radius keeps only the inner part: rows of outer voxels sum to < 1."""
    par04 = load_geometry("par04")
    inner = Geometry("inner", par04.layer_ids, tuple(e[:5] for e in par04.r_edges), par04.n_alpha)
    matrix = overlap_matrix(par04, inner)
    rows = np.asarray(matrix.sum(axis=1)).ravel()
    np.testing.assert_allclose(rows[par04.voxel_r < 4], 1.0)
    np.testing.assert_allclose(rows[par04.voxel_r >= 4], 0.0)
    assert not Rebinning(par04, inner).conserves_energy


def test_overlap_splits_by_area() -> None:
    """A one-bin layer [0, 10) onto edges (0, 5, 10) gives the inner bin 25/100 of the energy, the outer 75/100."""
    coarse = Geometry("one", (0,), (np.array([0.0, 10.0]),), (1,))
    fine = Geometry("two", (0,), (np.array([0.0, 5.0, 10.0]),), (4,))
    block = overlap_matrix(coarse, fine).toarray().reshape(4, 2)
    np.testing.assert_allclose(block, [[0.0625, 0.1875]] * 4)


def test_rebinning_par04_to_coarse_reproduces_the_coarse_files() -> None:
    fine_file = SHARED_PAR04 / "par04_e_1-100GeV_reference.h5"
    coarse_file = SHARED_PAR04 / "par04-coarse_e_1-100GeV_reference.h5"
    if not (fine_file.is_file() and coarse_file.is_file()):
        pytest.skip(f"the shared Par04 data are absent ({SHARED_PAR04})")
    fine_energies, fine = open_showers(fine_file, load_geometry("par04")).read(slice(0, 200))
    coarse_energies, coarse = open_showers(coarse_file, load_geometry("par04-coarse")).read(slice(0, 200))
    np.testing.assert_array_equal(fine_energies, coarse_energies)
    rebinned = Rebinning(load_geometry("par04"), load_geometry("par04-coarse"))(fine)
    assert rebinned.shape == (200, 359) and rebinned.dtype == np.float32
    np.testing.assert_allclose(rebinned, coarse, rtol=1e-5, atol=1e-5)


def test_par04_coarse_groups_layers_as_documented(sample_showers: np.ndarray) -> None:
    """Coarse layer k holds the energy of Par04 layers 0-3, 4-9, 10-17, 18-25, 26-33, 34-44."""
    coarse = Rebinning(load_geometry("par04"), load_geometry("par04-coarse"))(sample_showers)
    fine_layers = load_geometry("par04").layer_energies(sample_showers)
    groups = [(0, 4), (4, 10), (10, 18), (18, 26), (26, 34), (34, 45)]
    expected = np.stack([fine_layers[:, a:b].sum(1) for a, b in groups], axis=1)
    np.testing.assert_allclose(load_geometry("par04-coarse").layer_energies(coarse), expected, rtol=1e-10)


@pytest.mark.parametrize(("factors", "shape"), [((1, 2, 5), (9, 8, 9)), ((3, 4, 1), (45, 4, 3))])
def test_coarsen_shapes_and_energy(factors: tuple[int, int, int], shape: tuple[int, int, int],
                                   sample_showers: np.ndarray) -> None:
    par04 = load_geometry("par04")
    coarse = coarsen(par04, *factors)
    assert coarse.shape == shape
    rebinned = Rebinning(par04, coarse)(sample_showers)
    assert rebinned.shape == (len(sample_showers), int(np.prod(shape)))
    np.testing.assert_allclose(rebinned.sum(1), sample_showers.sum(1), rtol=1e-10)
    # nested bins: the same as summing blocks of the (layer, alpha, r) image
    r_f, a_f, l_f = factors
    image = sample_showers.reshape(-1, 45 // l_f, l_f, 16 // a_f, a_f, 9 // r_f, r_f).sum(axis=(2, 4, 6))
    np.testing.assert_allclose(rebinned, image.reshape(len(sample_showers), -1), rtol=1e-9, atol=1e-12)


def test_coarsen_rejects_factors_that_do_not_divide() -> None:
    with pytest.raises(CaloforgeError, match="radial factor 2"):
        coarsen(load_geometry("par04"), 2, 1, 1)
    with pytest.raises(CaloforgeError, match="irregular"):
        coarsen(load_geometry("ds1-photons"), 1, 1, 1)


# --- GLaM's regular hull ---------------------------------------------------------------------------------------
def test_regular_hull_shapes() -> None:
    assert regular_hull(load_geometry("ds1-photons")).shape == (5, 10, 30)
    assert regular_hull(load_geometry("ds1-pions")).shape == (7, 10, 23)


def test_glam_block_of_a_single_alpha_layer_splits_equally_over_alpha() -> None:
    photons = load_geometry("ds1-photons")
    hull = regular_hull(photons)
    block = Rebinning(photons, hull).layer_block(0)  # layer 0: 1 alpha x 8 r
    assert block.shape == (8, 10 * 30)
    per_alpha = block.reshape(8, 10, 30).sum(2)
    np.testing.assert_allclose(per_alpha, 0.1)
    # radially, source voxel [10, 30) mm is split by annulus area over hull bins 10-12-15-20-25-30
    edges = hull.r_edges[0]
    inside = (edges[:-1] >= 10) & (edges[1:] <= 30)
    expected = (edges[1:] ** 2 - edges[:-1] ** 2)[inside] / (30**2 - 10**2) / 10
    np.testing.assert_allclose(block.reshape(8, 10, 30)[2][:, inside], np.tile(expected, (10, 1)))
    assert np.count_nonzero(block.reshape(8, 10, 30)[2][:, ~inside]) == 0


def test_glam_block_of_a_ten_alpha_layer_keeps_alpha() -> None:
    photons = load_geometry("ds1-photons")
    block = Rebinning(photons, regular_hull(photons)).layer_block(1).reshape(10, 16, 10, 30)
    moved = block.sum(axis=(1, 3))  # (src alpha, dst alpha)
    np.testing.assert_allclose(moved, np.eye(10) * 16)


# --- bad XML ---------------------------------------------------------------------------------------------------
GOOD_LAYER = '<Layer id="0" r_edges="0,1,2" n_bin_alpha="4"/>'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("this is not xml <<<", "not a readable binning XML"),
        ("<Bins><Bin name='e'>" + GOOD_LAYER, "not a readable binning XML"),
        ("<Bins></Bins>", "expected exactly one <Bin>"),
        (f"<Bins><Bin>{GOOD_LAYER}</Bin><Bin>{GOOD_LAYER}</Bin></Bins>", "expected exactly one <Bin>"),
        ('<Bins><Bin><Layer id="0" r_edges="0,a,2" n_bin_alpha="1"/></Bin></Bins>', "unreadable"),
        ('<Bins><Bin><Layer id="0" r_edges="0,1,2" n_bin_alpha="x"/></Bin></Bins>', "unreadable"),
        ('<Bins><Bin><Layer r_edges="0,1,2" n_bin_alpha="1"/></Bin></Bins>', "unreadable"),
        ('<Bins><Bin><Layer id="0" r_edges="0" n_bin_alpha="1"/></Bin></Bins>', "no layer holds voxels"),
        ('<Bins><Bin><Layer id="0" r_edges="0,2,1" n_bin_alpha="1"/></Bin></Bins>', "increasing r edges"),
        ('<Bins><Bin><Layer id="0" r_edges="0,nan,2" n_bin_alpha="1"/></Bin></Bins>', "increasing r edges"),
        ('<Bins><Bin><Layer id="0" r_edges="-1,1,2" n_bin_alpha="1"/></Bin></Bins>', "increasing r edges"),
        ('<Bins><Bin><Layer id="0" r_edges="0,1,2" n_bin_alpha="0"/></Bin></Bins>', "n_alpha >= 1"),
    ],
)
def test_malformed_xml_is_a_caloforge_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "binning.xml"
    path.write_text(text)
    with pytest.raises(CaloforgeError, match=problem):
        load_geometry(path)


def test_unreadable_xml_is_a_caloforge_error(tmp_path: Path) -> None:
    with pytest.raises(CaloforgeError, match="not a readable binning XML") as missing:
        parse_binning_xml(tmp_path / "absent.xml")
    assert "absent.xml" in str(missing.value)
    with pytest.raises(CaloforgeError, match="not a readable binning XML"):
        parse_binning_xml(tmp_path)  # a directory
    with pytest.raises(CaloforgeError, match="unknown geometry"):
        load_geometry("ds4")


def test_xml_by_path_matches_the_builtin(tmp_path: Path) -> None:
    """A well-formed XML loads from any path; layers with r_edges="0" are skipped."""
    path = tmp_path / "mine.xml"
    path.write_text('<Bins><Bin name="photon"><Layer id="0" r_edges="0,1,3" n_bin_alpha="1"/>'
                    '<Layer id="1" r_edges="0" n_bin_alpha="1"/><Layer id="2" r_edges="0,2,4,8" n_bin_alpha="5"/>'
                    "</Bin></Bins>")
    geometry = load_geometry(path)
    assert geometry.name == "mine" and geometry.particle == "photon"
    assert geometry.layer_ids == (0, 2)
    assert geometry.n_voxels == 2 + 15
