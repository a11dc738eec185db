"""Every command-line usage error is one line on stderr with exit code 2: no traceback, no usage
panel (through the ``tradeforge`` entry point ``cli.app.main``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import typer

from tradeforge.cli import app as app_module
from tradeforge.testing.cli import run_cli as run


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ("data", "ingest", "--no-such-option", "x"),
            "error: No such option: --no-such-option (tradeforge data ingest)",
        ),
        (
            ("models", "list", "--registry-ur", "x"),
            "error: No such option: --registry-ur; did you mean --registry-uri? "
            "(tradeforge models list)",
        ),
        (("models", "show"), "error: Missing argument 'name'. (tradeforge models show)"),
        (
            ("data", "show", "AAPL", "-n", "abc"),
            "error: Invalid value for '--rows' / '-n': Input should be a valid integer, unable to "
            "parse string as an integer (tradeforge data show)",
        ),
        (("nope",), "error: No such command 'nope'. (tradeforge)"),
        (("data", "nope"), "error: No such command 'nope'. (tradeforge data)"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(capsys, tf_home, argv, line):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err == line + "\n"


def test_the_issue_command_fails_in_one_line_through_the_installed_script(tf_home, tmp_path):
    script = shutil.which("tradeforge") or pytest.fail("the tradeforge script is not installed")
    env = {**os.environ, "TRADEFORGE_HOME": str(tf_home)}
    done = subprocess.run(
        [script, "data", "ingest", "--path", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_tradeforge_errors_are_one_line_and_printed_literally(capsys, tmp_path):
    # the path holds rich markup: it must be printed as it is, not taken as a style
    missing = tmp_path / "[red]x" / "mlflow.db"
    code, out, err = run(capsys, "models", "list", "--registry-uri", f"sqlite:///{missing}")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: registry uri = 'sqlite:///{missing}': no MLflow store")
    assert err.count("\n") == 1


def test_help_and_success_exit_0_and_a_bare_group_shows_its_help(capsys):
    code, out, err = run(capsys, "--help")
    assert code == 0
    assert "models" in out
    code, out, _ = run(capsys, "version")
    assert (code, out.strip()) == (0, app_module.__version__)
    code, out, err = run(capsys, "models")
    assert code == 2
    assert "promote" in out + err
    assert "rollback" in out + err


def test_exit_codes_raised_by_commands_are_kept(capsys, monkeypatch):
    tiny = typer.Typer()

    @tiny.command()
    def fail(code: int) -> None:
        raise typer.Exit(code)

    monkeypatch.setattr(app_module, "app", tiny)
    assert run(capsys, "3")[0] == 3
    assert run(capsys, "0")[0] == 0


def test_main_reads_sys_argv_by_default(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tradeforge", "nope"])
    code, _, err = run(capsys)
    assert code == 2
    assert err == "error: No such command 'nope'. (tradeforge)\n"
