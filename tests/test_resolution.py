"""Resolving power: when a classifier's AUC may be read as quality, and what may stand on the published plane."""

from __future__ import annotations

from caloforge.evaluate.leaderboard import Entry, entry_from_metrics, quality_time_plane
from caloforge.evaluate.resolution import quality_auc, resolves, verdict


def classifier(auc, floor=0.50, distorted=0.62, err=0.01):
    return {"auc": auc, "auc_err": err, "floor_auc": floor, "floor_auc_err": err, "distorted_auc": distorted,
            "distorted_auc_err": err}


def test_a_classifier_resolves_only_a_clear_gap_above_its_floor():
    assert resolves(classifier(0.6))
    assert not resolves(classifier(0.6, distorted=0.54))  # under the 0.05 gap
    assert not resolves(classifier(0.6, distorted=0.58, err=0.03))  # 0.08 but under two combined sigmas (0.085)
    assert not resolves({"auc": 0.6})  # no floor measured: no claim


def test_only_a_resolved_auc_within_the_floor_band_is_a_quality_figure():
    assert (verdict(classifier(0.7)), quality_auc(classifier(0.7))) == ("quality", 0.7)
    assert verdict(classifier(0.49)) == "quality"  # inside the floor's band: indistinguishable from Geant4
    assert (verdict(classifier(0.45)), quality_auc(classifier(0.45))) == ("below-floor", None)
    assert (verdict(classifier(0.7, distorted=0.52)), quality_auc(classifier(0.7, distorted=0.52))) == \
        ("unresolved", None)


def run(name, voxels, low):
    return {"label": name, "geometry": {"name": "par04" if voxels == 6480 else "par04-coarse", "n_voxels": voxels},
            "settings": {"classifier_showers_per_class": 1500}, "files": {"generated": {"path": f"{name}.h5"}},
            "classifiers": {"cls-low": low}, "timing": {"ms_per_shower": 50.0, "device": "cpu"}}


def test_only_full_resolution_resolved_models_stand_on_the_published_plane():
    full = entry_from_metrics(run("full", 6480, classifier(0.7)))
    coarse = entry_from_metrics(run("coarse", 359, classifier(0.6)))
    unresolved = entry_from_metrics(run("unresolved", 6480, classifier(0.47, distorted=0.51)))
    assert full.off_plane is None and "par04-coarse" in coarse.off_plane and "resolve" in unresolved.off_plane
    published = [Entry("CaloDREAM", 0.531, 0.521, 25.0, 74.0, "GPU", ours=False)]
    plane, aside = quality_time_plane([full, coarse, unresolved], published, "ds2").axes
    on_plane = [tuple(point) for collection in plane.collections for point in collection.get_offsets()]
    assert (50.0, 0.7) in on_plane and (74.0, 0.531) in on_plane and len(on_plane) == 2
    assert [tuple(p) for c in aside.collections for p in c.get_offsets()] == [(50.0, 0.6)]
    assert "unresolved" in aside.texts[0].get_text()  # named, with why, but no point drawn
