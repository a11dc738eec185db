"""The ``tradeforge`` command: one Typer app; each area registers its commands from its module."""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.console import Console

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


def main() -> None:
    """Entry point: run the app, turning tradeforge errors into one clear line and exit code 2."""
    try:
        app(standalone_mode=False)
    except TradeforgeError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here with standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
