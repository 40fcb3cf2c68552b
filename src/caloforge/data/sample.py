"""The bundled Par04 sample: 3,000 real Geant4 showers, the embedded default for the demo and examples."""

from importlib.resources import files
from pathlib import Path

SAMPLE_FILE = "par04_sample_3000.h5"


def sample_path() -> Path:
    """Path of the bundled sample (geometry ``par04``); provenance in ``data/sample/SOURCE.md``."""
    return Path(str(files("caloforge.data") / "sample" / SAMPLE_FILE))
