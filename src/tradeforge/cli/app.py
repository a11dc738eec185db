"""The ``tradeforge`` command: one Typer app; each area registers its commands from its module."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from tradeforge import __version__
from tradeforge.core.errors import TradeforgeError

app = typer.Typer(
    name="tradeforge",
    help="Deep reinforcement learning trading: ingest, features, train, walk-forward, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module exposes ``register(app: typer.Typer) -> None``.
_COMMAND_MODULES = (
    "tradeforge.cli.data_cmd",
    "tradeforge.cli.features_cmd",
    "tradeforge.cli.train_cmd",
    "tradeforge.cli.backtest_cmd",
    "tradeforge.cli.run_cmd",
    "tradeforge.cli.models_cmd",
    "tradeforge.cli.evaluate_cmd",
    "tradeforge.cli.pareto_cmd",
    "tradeforge.cli.risk_cmd",
    "tradeforge.cli.audit_cmd",
    "tradeforge.cli.drift_cmd",
    "tradeforge.cli.venue_cmd",
    "tradeforge.cli.paper_cmd",
    "tradeforge.cli.serve_cmd",
    "tradeforge.cli.explain_cmd",
    "tradeforge.cli.retrain_cmd",
)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area is not built yet
                continue
            raise
        module.register(app)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def version() -> None:
    """Print the installed tradeforge version."""
    typer.echo(__version__)


_register_all()


def _command_path(exc: Exception) -> str | None:
    ctx = getattr(exc, "ctx", None)
    return getattr(ctx, "command_path", None) if ctx is not None else None


def usage_message(exc: typer.TyperException) -> str:
    """One line for a command-line usage error: what is wrong and in which command."""
    possibilities = sorted(getattr(exc, "possibilities", None) or ())
    if possibilities:  # an unknown option close to known ones
        text = f"{exc.message}; did you mean {' or '.join(possibilities)}?"
    else:
        text = exc.format_message()
    text = " ".join(text.split())
    where = _command_path(exc)
    return f"{text} ({where})" if where else text


def _fail(message: str, code: int) -> NoReturn:
    line = Text.assemble(("error:", "bold red"), " ", message)
    Console(stderr=True).print(line, highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app (on ``argv``, default ``sys.argv[1:]``).

    A tradeforge error becomes one clear line on stderr and exit code 2; so does every usage
    error (unknown option or command, missing argument, bad value), without a traceback or a
    usage panel. ``typer.Exit(code)`` from a command exits with that code.
    """
    try:
        result = app(args=argv, prog_name="tradeforge", standalone_mode=False)
    except TradeforgeError as exc:
        _fail(str(exc), 2)
    except typer.Abort:
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click usage errors (typer vendors click)
        code = int(getattr(exc, "exit_code", 1))
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called without a command
            typer.echo(exc.format_message(), err=True)
            sys.exit(code)
        _fail(usage_message(exc), code)
    # without standalone mode, click returns the code of a ``typer.Exit`` raised by a command
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        sys.exit(result)


if __name__ == "__main__":
    main()
