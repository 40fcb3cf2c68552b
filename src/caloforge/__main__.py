"""``python -m caloforge``: the same command line as the ``caloforge`` console script."""

from caloforge.cli import main

if __name__ == "__main__":
    main()
