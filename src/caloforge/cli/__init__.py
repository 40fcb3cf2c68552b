"""The ``caloforge`` command line: one sub-command per concern, every input error reported as one line."""

from __future__ import annotations

import os
import signal
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


class Terminated(BaseException):
    """SIGTERM, raised wherever the process is, so that every ``with`` and ``finally`` runs: the temporary file
    being written is removed, as on Ctrl-C. (SIGKILL cannot be caught: the next write to the target removes it.)"""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _fail(message: str, code: int) -> None:
    """Exit with ``message`` as one line on stderr (messages of other libraries may span several)."""
    print(f"caloforge: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    """Console-script entry point: bad arguments, inputs and setups become one line on stderr and exit status 2."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as err:  # typer's own argument errors
        if type(err).__name__ == "NoArgsIsHelpError":  # a bare group (``caloforge data``): its help, as typer does
            err.show()
            sys.exit(2)
        _fail(f"error: {err.format_message()}", 2)
    except (CaloforgeError, OSError) as err:
        _fail(f"error: {err or type(err).__name__}", 2)
    except Terminated:
        _fail("terminated (SIGTERM); unfinished output removed", 128 + signal.SIGTERM)
    except typer.Abort:
        _fail("aborted", 1)
    except Exception as err:  # a bug: one line still, with the way to its traceback
        if os.environ.get("CALOFORGE_TRACEBACK"):
            raise
        _fail(f"internal error: {type(err).__name__}: {err} (run with CALOFORGE_TRACEBACK=1 for the traceback, "
              "and please report it)", 1)
    sys.exit(code or 0)
