"""The ``caloforge`` command line: one sub-command per concern, every input error reported as one line."""

from __future__ import annotations

import sys

import typer

from caloforge.cli import bench, data, evaluate, fast, run, showcase, supercalo
from caloforge.errors import CaloforgeError

app = typer.Typer(
    help="caloforge: machine-learned fast calorimeter simulation on CaloChallenge-format showers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(showcase.demo)
app.add_typer(data.app, name="data")
app.command()(run.train)
app.command()(run.generate)
app.command("evaluate")(evaluate.evaluate)
app.command()(bench.bench)
app.command()(showcase.leaderboard)
app.command()(fast.distill)
app.command()(fast.export)
app.command()(supercalo.upsample)


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit status 2."""
    try:
        app()
    except CaloforgeError as err:
        print(f"caloforge: error: {err}", file=sys.stderr)
        sys.exit(2)
