"""The CaloChallenge evaluation (arXiv:2410.21611) of generated showers against Geant4.

``evaluate(gen, ref, geometry)`` runs it all and writes ``metrics.json`` and a self-contained ``report.html``;
the pieces (features, separation power, classifier test, FPD/KPD, report) are usable on their own.
"""

from caloforge.evaluate.classifier import PROTOCOL, QUICK, ClassifierSettings, classifier_test
from caloforge.evaluate.distances import fpd, frechet_distance, kpd
from caloforge.evaluate.evaluation import DEFAULT_METRICS, METRICS, evaluate, plan_evaluation
from caloforge.evaluate.features import FeatureAccumulator, ShowerFeatures, compute_features
from caloforge.evaluate.histograms import feature_histograms, separation_power, separation_table
from caloforge.evaluate.report import Section, build_page, build_report

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "PROTOCOL",
    "QUICK",
    "ClassifierSettings",
    "FeatureAccumulator",
    "Section",
    "ShowerFeatures",
    "build_page",
    "build_report",
    "classifier_test",
    "compute_features",
    "evaluate",
    "feature_histograms",
    "fpd",
    "frechet_distance",
    "kpd",
    "plan_evaluation",
    "separation_power",
    "separation_table",
]
