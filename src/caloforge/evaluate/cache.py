"""The reference-feature cache: a reference file's features are computed once, then loaded in a fraction of a second.

The key is the file's content (sha256 of its bytes), the geometry (name and a digest of its bins), the threshold and
the caloforge and feature versions, so a renamed copy still hits and a changed file, geometry or definition misses.
Entries live in ``$CALOFORGE_CACHE`` if set, else in ``$XDG_CACHE_HOME/caloforge`` (``~/.cache/caloforge``), else,
when that is not writable, beside the evaluation output.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from caloforge import __version__
from caloforge.evaluate.features import FEATURES_VERSION, ShowerFeatures
from caloforge.geometry import Geometry

CACHE_ENV = "CALOFORGE_CACHE"


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes (recorded in metrics.json and used as the cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def geometry_digest(geometry: Geometry) -> str:
    """Short digest of a geometry's bins: two XMLs with the same name but other bins get other keys."""
    digest = hashlib.sha256()
    for edges, n_alpha in zip(geometry.r_edges, geometry.n_alpha):
        digest.update(np.asarray(edges, dtype=np.float64).tobytes())
        digest.update(str(n_alpha).encode())
    return digest.hexdigest()[:12]


def cache_dir(fallback: Path | None = None) -> Path:
    """Where cached features live (see the module docstring for the order)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "caloforge"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    if fallback is None:
        raise OSError(f"no writable cache directory ({base}); set {CACHE_ENV}")
    return fallback / ".caloforge-cache"


def cache_key(file_sha256: str, geometry: Geometry, threshold: float) -> str:
    return (f"features-{file_sha256[:24]}-{geometry.name}-{geometry_digest(geometry)}-thr{threshold:g}"
            f"-v{__version__}-f{FEATURES_VERSION}")


def cache_path(directory: Path, file_sha256: str, geometry: Geometry, threshold: float) -> Path:
    return Path(directory) / f"{cache_key(file_sha256, geometry, threshold)}.npz"


def load_cached(directory: Path, file_sha256: str, geometry: Geometry, threshold: float) -> ShowerFeatures | None:
    """The cached features, or None when there are none (a damaged or outdated entry counts as none)."""
    path = cache_path(directory, file_sha256, geometry, threshold)
    if not path.is_file():
        return None
    try:
        return ShowerFeatures.load(path)
    except (OSError, ValueError, KeyError):
        return None


def store(directory: Path, file_sha256: str, geometry: Geometry, threshold: float, features: ShowerFeatures) -> None:
    """Cache features atomically (a concurrent reader never sees half an entry); an unwritable cache is skipped."""
    path = cache_path(directory, file_sha256, geometry, threshold)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        features.save(tmp)
        os.replace(tmp, path)
    except OSError:
        pass


def cached_features(file_sha256: str, geometry: Geometry, threshold: float, compute: Callable[[], ShowerFeatures],
                    directory: Path) -> tuple[ShowerFeatures, bool]:
    """The cached features for this key, or ``compute()``'s, stored for next time. Returns (features, was_cached)."""
    features = load_cached(directory, file_sha256, geometry, threshold)
    if features is not None:
        return features, True
    features = compute()
    store(directory, file_sha256, geometry, threshold, features)
    return features, False
