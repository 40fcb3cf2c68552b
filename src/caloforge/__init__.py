"""caloforge: machine-learned fast calorimeter simulation in the CaloChallenge format."""

__version__ = "0.1.0"
