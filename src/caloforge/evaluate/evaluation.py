"""``evaluate()``: the whole CaloChallenge yardstick on two files, as metrics.json and report.html.

Every input is checked before any work starts (geometry and voxel counts, sizes for the classifier split, the
metrics asked for), so a mistake costs a second, not an hour. Each file is then read once, in chunks: the features
are accumulated and, for the low-level classifiers, the thresholded voxels of the rows they use are kept. The
reference's features come from the cache when the same file was evaluated before.

Every classifier is trained three times on as many showers per class (see ``resolution``): the generated showers
against one part of the reference, a disjoint part of the reference (or of a second Geant4 file) against the same
part, and that part with every voxel x 1.05 against it. The generated file is therefore scored against only half of
the reference when no second Geant4 file is given, so that its AUC and the floor are like with like.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from caloforge import __version__
from caloforge.contract import readout_threshold
from caloforge.data import ShowerFile, open_showers
from caloforge.errors import CaloforgeError
from caloforge.evaluate import plots
from caloforge.evaluate.cache import cache_dir, load_cached, sha256_file, store
from caloforge.evaluate.classifier import MIN_SHOWERS, PROTOCOL, QUICK, ClassifierSettings, classifier_test, device_for
from caloforge.evaluate.classifier_inputs import LabelledSamples
from caloforge.evaluate.distances import Distance, fpd, kpd
from caloforge.evaluate.features import FeatureAccumulator, ShowerFeatures
from caloforge.evaluate.histograms import feature_histograms, response_histograms, separation_table
from caloforge.evaluate.report import build_report, now_utc
from caloforge.evaluate.resolution import DISTORTION, resolves
from caloforge.geometry import Geometry, geometry_for_voxels, load_geometry


@dataclass(frozen=True)
class Metric:
    """What a metric is computed from. ``features``: every shower's high-level features (one pass over each file);
    ``histograms``: their histograms; ``classifier``: a classifier trained on the classifier rows, on their
    ``voxels`` (held in memory) or else on their features; ``regular``: needs a (layers x alpha x r) grid;
    ``distance``: a function of the two samples' high-level feature vectors."""

    features: bool = False
    histograms: bool = False
    classifier: bool = False
    voxels: bool = False
    regular: bool = False
    distance: Callable[..., Distance] | None = None


#: every metric, in the order of reports and of ``all``
METRICS = {
    "hist": Metric(features=True, histograms=True),
    "cls-low": Metric(classifier=True, voxels=True),
    "cls-high": Metric(classifier=True, features=True),
    "cls-low-normed": Metric(classifier=True, voxels=True),
    "cls-resnet": Metric(classifier=True, voxels=True, regular=True),
    "fpd": Metric(features=True, distance=fpd),
    "kpd": Metric(features=True, distance=kpd),
    "plots": Metric(features=True, histograms=True),
}
#: the cheap full set (upstream's "all" minus PRDC): the costly layer-normalised and ResNet classifiers on request
DEFAULT_METRICS = ("hist", "cls-low", "cls-high", "fpd", "kpd", "plots")
#: fewest showers per sample for FPD/KPD (their resample sizes shrink to what is there)
MIN_DISTANCE_SHOWERS = 100
#: what each classifier is trained on beside the reference's rows, with the Geant4 rows of the floor
COMPARISONS = {"model": "generated vs Geant4", "floor": "Geant4 vs Geant4",
               "distorted": f"Geant4 x {DISTORTION} vs Geant4"}


@dataclass(frozen=True)
class Plan:
    """Checked inputs of an evaluation: what will run on what."""

    generated: ShowerFile
    reference: ShowerFile
    geometry: Geometry
    threshold: float
    metrics: tuple[str, ...]
    classifier_showers: int  # per class
    floor_reference: ShowerFile | None = None  # a second Geant4 file for the classifiers' floor (else: the reference)


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    """``"hist,cls-low"`` or a sequence -> validated, de-duplicated names ("all" = every metric)."""
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    if "all" in names:
        return tuple(METRICS)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise CaloforgeError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)} or all")
    if not names:
        raise CaloforgeError(f"no metric chosen; choose from {', '.join(METRICS)}")
    return tuple(dict.fromkeys(names))


def resolve_threshold(geometry: Geometry, threshold: float | None) -> float:
    if threshold is not None:
        if not (threshold >= 0 and math.isfinite(threshold)):
            raise CaloforgeError(f"threshold must be a non-negative number of MeV, not {threshold}")
        return float(threshold)
    try:
        return readout_threshold(geometry)
    except CaloforgeError as err:
        raise CaloforgeError(f"{err}; pass --threshold (MeV)") from None


def plan_evaluation(gen_path: str | Path, ref_path: str | Path | None, geometry: str | Geometry | None = None,
                    metrics: str | Sequence[str] = DEFAULT_METRICS, repeats: int = 1,
                    threshold: float | None = None, floor_path: str | Path | None = None) -> Plan:
    """Every check that can fail, before any work: raises a one-line ``CaloforgeError``."""
    chosen = parse_metrics(metrics)
    if ref_path is None:
        raise CaloforgeError("no reference file: pass --reference REF.h5 (Geant4 showers of the same geometry)")
    if repeats < 1:
        raise CaloforgeError(f"--repeats must be at least 1, not {repeats}")
    if isinstance(geometry, Geometry):
        geo = geometry
    elif geometry is not None:
        geo = load_geometry(geometry)
    else:
        guessed = geometry_for_voxels(open_showers(gen_path).n_voxels)
        if guessed is None:
            raise CaloforgeError(f"{gen_path}: no built-in geometry has {open_showers(gen_path).n_voxels} voxels; "
                                 "pass --geometry")
        geo = guessed
    generated = open_showers(gen_path, geo)
    reference = _open_geant4(ref_path, "reference", generated, gen_path, geo)
    floor = _open_geant4(floor_path, "floor reference", generated, gen_path, geo) if floor_path else None
    for name in chosen:
        if METRICS[name].regular and not geo.is_regular:
            raise CaloforgeError(f"{name} needs a regular (layers x alpha x r) geometry; {geo.name} is irregular")
    # the floor needs Geant4 showers the generated ones are not compared with: a second file, or half the reference
    per_class = min(generated.n, reference.n, floor.n) if floor else min(generated.n, reference.n // 2)
    classifiers = [m for m in chosen if METRICS[m].classifier]
    if classifiers and per_class < MIN_SHOWERS:
        source = "each file" if floor else "the generated file and in each half of the reference"
        raise CaloforgeError(f"{per_class} showers per sample are too few for the classifier's 60/20/20 split of "
                             f"{', '.join(classifiers)} (need at least {MIN_SHOWERS} in {source})")
    voxel_classifiers = [m for m in classifiers if METRICS[m].voxels]
    if voxel_classifiers:
        needed, available = 3 * per_class * geo.n_voxels * 4, _available_memory()
        if available is not None and needed > 0.8 * available:
            raise CaloforgeError(f"{', '.join(voxel_classifiers)} need {needed / 1e9:.1f} GB for the voxels of "
                                 f"3 x {per_class} showers but only {available / 1e9:.1f} GB of memory are free")
    distances = [m for m in chosen if METRICS[m].distance is not None]
    if distances and min(generated.n, reference.n) < MIN_DISTANCE_SHOWERS:
        raise CaloforgeError(f"{min(generated.n, reference.n)} showers per sample are too few for "
                             f"{', '.join(distances)} (need at least {MIN_DISTANCE_SHOWERS} in each file)")
    return Plan(generated, reference, geo, resolve_threshold(geo, threshold), chosen, per_class, floor)


def _open_geant4(path: str | Path, role: str, generated: ShowerFile, gen_path: str | Path,
                 geometry: Geometry) -> ShowerFile:
    """A Geant4 file checked against the generated file's voxel count, opened on ``geometry``."""
    raw = open_showers(path)
    if raw.n_voxels != generated.n_voxels:
        raise CaloforgeError(f"{path}: the {role} has {raw.n_voxels} voxels but {gen_path} has "
                             f"{generated.n_voxels} (geometry {geometry.name}): they must share one geometry")
    return open_showers(path, geometry)


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _available_memory() -> int | None:
    """Memory available to a new allocation in bytes (Linux ``MemAvailable``), or None where it cannot be told."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass
class Rows:
    """Some (sorted) rows of a file and where their thresholded voxels and energies go (voxels: None = not kept)."""

    rows: np.ndarray
    energies: np.ndarray
    voxels: np.ndarray | None


def _scan(handle: ShowerFile, plan: Plan, chunk_size: int, with_features: bool,
          keep: Sequence[Rows] = ()) -> ShowerFeatures | None:
    """One pass over a file: the features of every shower (if asked) and the rows each of ``keep`` asks for."""
    accumulator = FeatureAccumulator(plan.geometry, plan.threshold) if with_features else None
    filled, start = [0] * len(keep), 0
    threshold = np.float32(plan.threshold)
    for chunk_energies, chunk in handle.iter_chunks(chunk_size):
        if accumulator is not None:
            chunk = accumulator.add(chunk_energies, chunk, inplace=True)
        else:
            np.multiply(chunk, chunk >= threshold, out=chunk)
        for i, target in enumerate(keep):
            rows = target.rows
            local = rows[np.searchsorted(rows, start):np.searchsorted(rows, start + len(chunk))] - start
            target.energies[filled[i]:filled[i] + len(local)] = chunk_energies[local]
            if target.voxels is not None:
                target.voxels[filled[i]:filled[i] + len(local)] = chunk[local]
            filled[i] += len(local)
        start += len(chunk)
    return accumulator.result() if accumulator is not None else None


def _classifier_rows(n: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """All rows, or a random (seeded, sorted) subset when the other sample is smaller."""
    return np.arange(n) if n == per_class else np.sort(rng.choice(n, size=per_class, replace=False))


def _geant4_rows(plan: Plan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the reference every classifier compares with, rows of the other Geant4 showers of the floor):
    random, sorted and, within one file, disjoint."""
    n = plan.classifier_showers
    if plan.floor_reference is not None:
        return _classifier_rows(plan.reference.n, n, rng), _classifier_rows(plan.floor_reference.n, n, rng)
    order = rng.permutation(plan.reference.n)
    return np.sort(order[:n]), np.sort(order[n:2 * n])


def evaluate(gen_path: str | Path, ref_path: str | Path | None, geometry: str | Geometry | None = None,
             metrics: str | Sequence[str] = DEFAULT_METRICS, out_dir: str | Path = "evaluation",
             quick: bool = False, repeats: int = 1, seed: int = 42, chunk_size: int = 10_000,
             threshold: float | None = None, classifier: ClassifierSettings | None = None,
             device: str | None = None, use_cache: bool = True, floor_reference: str | Path | None = None,
             log: Callable[[str], None] | None = None) -> dict:
    """Evaluate generated showers against Geant4 ones; writes ``out_dir/metrics.json`` and ``out_dir/report.html``.

    ``metrics``: any of ``METRICS`` (default ``DEFAULT_METRICS``). ``quick`` uses ``QUICK`` classifier settings
    (labelled as not the protocol); ``classifier`` overrides the settings entirely. ``repeats`` trainings per
    classifier (seeds ``seed``, ``seed + 1``, ...). ``floor_reference``: a second Geant4 file for the classifiers'
    floor (default: half the reference, see the module docstring). Returns the metrics dict (as in metrics.json).
    """
    say = log or (lambda message: None)
    plan = plan_evaluation(gen_path, ref_path, geometry, metrics, repeats, threshold, floor_reference)
    settings = classifier or (QUICK if quick else PROTOCOL)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    say("hashing the files")
    gen_sha, ref_sha = sha256_file(plan.generated.path), sha256_file(plan.reference.path)
    floor_sha = sha256_file(plan.floor_reference.path) if plan.floor_reference else None
    lap("hashing")

    chosen = set(plan.metrics)
    need_features = any(METRICS[m].features for m in chosen)
    kinds = [m for m in plan.metrics if METRICS[m].classifier]
    n = plan.classifier_showers
    gen_rows = _classifier_rows(plan.generated.n, n, np.random.default_rng(seed))
    # the Geant4 rows come from a stream of their own: the same for every generated file, so are the floors
    ref_rows, floor_rows = _geant4_rows(plan, np.random.default_rng([seed, 1]))

    # the low-level classifiers' voxels, stacked: compared rows first, then the reference's (each file read straight
    # in); the floor's Geant4 rows wait beside them until the generated ones have been scored
    voxel_kinds = [m for m in kinds if METRICS[m].voxels]
    stacked = LabelledSamples(e_inc=np.empty(2 * n), voxels=np.empty((2 * n, plan.geometry.n_voxels),
                                                                    dtype=np.float32)) if voxel_kinds else None
    if stacked is not None:
        gen_keep = [Rows(gen_rows, stacked.e_inc[:n], stacked.voxels[:n])]
        ref_keep = [Rows(ref_rows, stacked.e_inc[n:], stacked.voxels[n:])]
        floor_keep = [Rows(floor_rows, np.empty(n), np.empty((n, plan.geometry.n_voxels), dtype=np.float32))]
    else:
        gen_keep, ref_keep, floor_keep = [], [], []

    directory = cache_dir(out) if use_cache else None
    ref_features = load_cached(directory, ref_sha, plan.geometry, plan.threshold) if need_features and directory \
        else None
    ref_cached = ref_features is not None
    same_file_floor = floor_keep if plan.floor_reference is None else []
    if (need_features and ref_features is None) or voxel_kinds:  # one pass gives whatever is still missing
        say(f"reading the reference ({plan.reference.n} showers)")
        features = _scan(plan.reference, plan, chunk_size, need_features and ref_features is None,
                         ref_keep + same_file_floor)
        if features is not None:
            ref_features = features
            if directory:
                store(directory, ref_sha, plan.geometry, plan.threshold, features)
    if ref_cached:
        say("reference features loaded from the cache")
    floor_features = ref_features
    if plan.floor_reference is not None and kinds:
        say(f"reading the floor's Geant4 file ({plan.floor_reference.n} showers)")
        floor_features = _scan(plan.floor_reference, plan, chunk_size, any(METRICS[k].features for k in kinds),
                               floor_keep)
    lap("reference")
    say(f"reading the generated file ({plan.generated.n} showers)")
    gen_features = _scan(plan.generated, plan, chunk_size, need_features, gen_keep)
    lap("generated")

    result: dict = _header(plan, gen_sha, ref_sha, floor_sha, settings, repeats, seed, chunk_size, ref_cached)
    hists, response = [], []
    if any(METRICS[m].histograms for m in chosen):
        hists = feature_histograms(plan.geometry, ref_features, gen_features)
        response = response_histograms(ref_features, gen_features)
        result["histograms"] = {"separation_power": separation_table(hists),
                                "statistical_floor": separation_table(hists, "statistical_floor"),
                                "E_tot/E_inc per decade": {h.group: _json_number(h.separation) for h in response}}
        lap("histograms")

    distances = [m for m in METRICS if m in chosen and METRICS[m].distance is not None]
    if distances:
        ref_high, gen_high = ref_features.high_level_vector(), gen_features.high_level_vector()
        for name in distances:
            say(name.upper())
            result[name] = METRICS[name].distance(ref_high, gen_high, seed=seed).to_json()
            lap(name)

    outputs: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    if kinds:
        torch_device = device_for(device)
        if torch_device.type == "cpu" and settings.protocol:
            say("note: the protocol's classifiers on a CPU take hours for ds2-sized samples; --quick is for CPU "
                "iteration, the protocol is for a GPU")
        high_level = None
        if any(not METRICS[k].voxels for k in kinds):
            floor_part = floor_features.subset(floor_rows)
            high_level = {"model": gen_features.subset(gen_rows), "floor": floor_part,
                          "distorted": _distorted(floor_part), "reference": ref_features.subset(ref_rows)}
        result["classifiers"] = {}
        for comparison in COMPARISONS:
            if stacked is not None and comparison == "floor":  # in place: memory stays at three samples
                stacked.e_inc[:n], stacked.voxels[:n] = floor_keep[0].energies, floor_keep[0].voxels
            if stacked is not None and comparison == "distorted":
                stacked.voxels[:n] *= DISTORTION
            for kind in kinds:
                say(f"{kind}, {COMPARISONS[comparison]}: {repeats} training(s) of {settings.epochs} epochs on "
                    f"{torch_device} ({settings.name})")
                data = stacked if METRICS[kind].voxels else _high_level_samples(high_level[comparison],
                                                                                high_level["reference"])
                summary, runs = classifier_test(kind, data, plan.geometry, settings, repeats, seed, torch_device,
                                                progress=log is not None)
                say(f"{kind}, {COMPARISONS[comparison]}: AUC {summary['auc']:.4f} +- {summary['auc_err']:.4f}")
                if comparison == "model":
                    result["classifiers"][kind] = summary
                    outputs[kind] = (runs[0].val_labels, runs[0].val_probabilities, runs[0].auc)
                else:
                    entry = result["classifiers"][kind]
                    entry[f"{comparison}_auc"], entry[f"{comparison}_auc_err"] = summary["auc"], summary["auc_err"]
                lap(f"{kind} {comparison}")
        for entry in result["classifiers"].values():
            entry["resolves"] = resolves(entry)

    figures = {}
    if "plots" in chosen:
        say("plots")
        figures = make_figures(plan.geometry, ref_features, gen_features, hists + response, result, outputs)
        lap("plots")
    result["deviations"] = deviations(plan, settings, result)
    result["timings_s"] = timings
    (out / "metrics.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    report = build_report(result, figures, out)
    say(f"wrote {out / 'metrics.json'} and {report}")
    return result


def _distorted(features: ShowerFeatures) -> ShowerFeatures:
    """The per-shower features of the same showers with every thresholded voxel x ``DISTORTION``: energies scale,
    while centres, widths, sparsity and correlations are ratios or counts and stay (sample-level sums do not
    follow: only the high-level vector is used)."""
    return replace(features, e_tot=features.e_tot * DISTORTION, e_layer=features.e_layer * DISTORTION)


def _high_level_samples(compared: ShowerFeatures, reference: ShowerFeatures) -> LabelledSamples:
    return LabelledSamples.join((compared.e_inc, None, compared.high_level_vector()),
                                (reference.e_inc, None, reference.high_level_vector()))


def _header(plan: Plan, gen_sha: str, ref_sha: str, floor_sha: str | None, settings: ClassifierSettings,
            repeats: int, seed: int, chunk_size: int, ref_cached: bool) -> dict:
    classifiers = [m for m in plan.metrics if METRICS[m].classifier]
    files = {
        "generated": {"path": str(plan.generated.path), "sha256": gen_sha, "n_showers": plan.generated.n},
        "reference": {"path": str(plan.reference.path), "sha256": ref_sha, "n_showers": plan.reference.n,
                      "features_from_cache": ref_cached},
    }
    if plan.floor_reference is not None:
        files["floor_reference"] = {"path": str(plan.floor_reference.path), "sha256": floor_sha,
                                    "n_showers": plan.floor_reference.n}
    return {
        "caloforge_version": __version__,
        "created_utc": now_utc(),
        "geometry": {"name": plan.geometry.name, "n_voxels": plan.geometry.n_voxels,
                     "description": plan.geometry.describe(), "threshold_mev": plan.threshold},
        "files": files,
        "settings": {
            "metrics": list(plan.metrics), "quick": settings is QUICK,
            # the classifiers' settings are the CaloChallenge's (the other metrics have no settings to choose)
            "protocol_exact": not classifiers or settings.protocol,
            "repeats": repeats, "seed": seed, "chunk_size": chunk_size,
            "classifier_showers_per_class": plan.classifier_showers if classifiers else None,
            "classifier": settings.to_json() if classifiers else None,
        },
    }


def deviations(plan: Plan, settings: ClassifierSettings, result: dict) -> list[str]:
    """Where this run differs from the CaloChallenge's protocol, in words (shown on the report)."""
    notes = []
    classifiers = [m for m in plan.metrics if METRICS[m].classifier]
    if classifiers and not settings.protocol:
        notes.append(f"classifier settings '{settings.name}': width {settings.n_hidden}, {settings.n_layer + 1} "
                     f"hidden layers, {settings.epochs} epochs, batch {settings.batch_size}, lr {settings.lr:g}, "
                     f"{settings.dtype} (protocol: width 2048, 3 hidden layers, 50 epochs, batch 1000, lr 2e-4, "
                     "float64); their AUCs are not comparable with published ones")
    if "cls-resnet" in classifiers:
        notes.append("cls-resnet: a compact 3D ResNet-18 after the published description, trained with the MLP's "
                     "loop in float32 (upstream's exact network and training settings are not reproduced)")
    if classifiers and plan.floor_reference is None:
        notes.append(f"the classifiers compare {plan.classifier_showers} generated showers with as many of one half "
                     "of the reference, and score the floor (the other half against it) and a x "
                     f"{DISTORTION} distortion on the same numbers (upstream: the whole reference, no floor)")
    elif classifiers:
        notes.append(f"the classifiers use {plan.classifier_showers} random showers of each file; the floor is "
                     f"{Path(plan.floor_reference.path).name} against the reference (upstream requires equal sizes)")
    if classifiers and plan.classifier_showers < 100_000:
        notes.append(f"classifiers on {plan.classifier_showers} showers per sample (ds2/ds3 protocol: 100,000): "
                     "fewer showers make the AUC less sensitive")
    if "fpd" in result and result["fpd"]["settings"]["max_samples"] < 50_000:
        notes.append(f"FPD from resamples of {result['fpd']['settings']['min_samples']}-"
                     f"{result['fpd']['settings']['max_samples']} showers (protocol: 10,000-50,000): with fewer "
                     "showers the 1/N extrapolation leaves a positive bias, so values are larger than published ones")
    if "kpd" in result and result["kpd"]["settings"]["batch_size"] < 10_000:
        notes.append(f"KPD on batches of {result['kpd']['settings']['batch_size']} showers (protocol: 10,000)")
    return notes


def make_figures(geometry: Geometry, reference: ShowerFeatures, generated: ShowerFeatures, hists: list,
                 metrics: dict, outputs: dict) -> dict[str, bytes]:
    """Every report figure as PNG bytes, keyed "Group/caption" (see ``report.build_report``)."""
    figures = {
        "Average shower/Average voxel energies of selected layers: Geant4, generated, ratio":
            plots.average_shower_figure(geometry, reference.mean_shower, generated.mean_shower),
        "Average shower/Longitudinal and radial profiles, overall and per incident-energy decade":
            plots.profiles_figure(geometry, reference, generated),
        "Energy response/Mean and 16-84 % band of E_tot / E_inc in bins of incident energy":
            plots.response_figure(reference, generated),
    }
    per_decade = [h for h in hists if h.group.startswith("E_inc ")]
    if per_decade:
        figures["Energy response/E_tot / E_inc per incident-energy decade (S = separation power)"] = \
            plots.histogram_grid(per_decade, "E_tot / E_inc per incident-energy decade", columns=4,
                                 xlabel="E_tot / E_inc")
    hists = [h for h in hists if not h.group.startswith("E_inc ")]
    feature_figures = plots.feature_figures(geometry, hists, reference)
    for name, figure in feature_figures.items():
        figures[f"High-level features/{name}: unit-normalised histograms, S = separation power"] = figure
    table = metrics.get("histograms", {}).get("separation_power")
    if table:
        figures["High-level features/Separation power of every per-layer feature (log colour scale)"] = \
            plots.separation_map(table, geometry)
    if outputs:
        figures["Classifiers/Calibrated classifier output on the held-out set (first training)"] = \
            plots.classifier_figure(outputs)
    return {key: plots.figure_png(fig) for key, fig in figures.items()}
