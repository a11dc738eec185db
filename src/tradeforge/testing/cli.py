"""Running ``tradeforge ARGV`` through the real entry point inside a test."""

from __future__ import annotations

from typing import Any


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``tradeforge ARGV`` through :func:`tradeforge.cli.app.main`: (exit code, stdout, stderr).

    ``capsys`` is pytest's capture fixture; no ``argv`` means the process's own arguments."""
    from tradeforge.cli.app import main

    try:
        main(list(argv) if argv else None)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


__all__ = ["run_cli"]
