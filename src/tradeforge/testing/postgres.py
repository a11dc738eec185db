"""A real PostgreSQL server for tests, and a fresh database per test.

:func:`postgres_url` is the URL of a server the tests may create databases on:

* ``TRADEFORGE_TEST_POSTGRES_URL`` when set (CI: ``.ci/postgres.sh`` starts a server and prints
  the line that sets it); the role needs ``CREATEDB``;
* else a throwaway cluster this process starts once (``initdb`` in a temporary folder, the
  server on a free ``127.0.0.1`` port with its unix socket in that folder, ``fsync=off``: the
  data dies with the test session), stopped and deleted when the process exits. As root (CI),
  ``initdb`` and ``pg_ctl`` run as the ``postgres`` system user (PostgreSQL refuses root) and
  the folder is handed to that user;
* else :class:`PostgresUnavailable`, whose message says why (tests turn it into a skip).

:func:`fresh_database` creates a database with a unique name, yields its URL and drops it.
A pytest fixture in a test module::

    @pytest.fixture
    def pg_url() -> Iterator[str]:
        with fresh_database(require_postgres()) as url:
            yield url

(:func:`require_postgres` skips the test when no server can be had.)
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

ENV_URL = "TRADEFORGE_TEST_POSTGRES_URL"
ENV_BIN = "TRADEFORGE_TEST_POSTGRES_BIN"
_START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server for the tests (the message says why)."""


def find_bin_dir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: ``TRADEFORGE_TEST_POSTGRES_BIN``, else the
    newest ``/usr/lib/postgresql/<version>/bin`` (Debian/Ubuntu), else the ``PATH``."""
    env = os.environ.get(ENV_BIN)
    candidates = [Path(env)] if env else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalCluster:
    """A throwaway PostgreSQL cluster in a temporary folder (see the module docstring)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="tf-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise PostgresUnavailable(
                    "running as root and there is no 'postgres' system user to run the "
                    "throwaway PostgreSQL server as (PostgreSQL refuses to run as root)"
                ) from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *argv], capture_output=True, text=True, timeout=_START_TIMEOUT_S,
            check=False, cwd=self.root,
        )  # fmt: skip

    def start(self) -> None:
        done = self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({done.returncode}): {done.stderr.strip()}")
        for _ in range(5):  # another process may take the free port first
            self.port = _free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.root} -c fsync=off "
                "-c full_page_writes=off -c max_connections=50"
            )
            done = self._run(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                "-o", options, "-w", "-t", str(_START_TIMEOUT_S), "start",
            )  # fmt: skip
            if done.returncode == 0:
                return
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise PostgresUnavailable(f"pg_ctl start failed: {done.stderr.strip()} {tail}")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                          "-w", "stop")  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


_lock = threading.Lock()
_cluster: LocalCluster | None = None
_failure: str | None = None


def _stop_cluster() -> None:
    global _cluster
    with _lock:
        if _cluster is not None:
            _cluster.stop()
            _cluster = None


def postgres_url() -> str:
    """A PostgreSQL server URL for tests (see the module docstring); raises
    :class:`PostgresUnavailable` when there is none. The throwaway cluster is started on the
    first call and stopped when the process exits."""
    global _cluster, _failure
    env = os.environ.get(ENV_URL, "").strip()
    if env:
        return env
    with _lock:
        if _cluster is not None:
            return _cluster.url
        if _failure is not None:
            raise PostgresUnavailable(_failure)
        bin_dir = find_bin_dir()
        if bin_dir is None:
            _failure = (
                f"no PostgreSQL: {ENV_URL} is not set and no initdb/pg_ctl was found (install "
                "postgresql, or run .ci/postgres.sh and export the line it prints)"
            )
            raise PostgresUnavailable(_failure)
        try:
            cluster = LocalCluster(bin_dir)
        except PostgresUnavailable as exc:
            _failure = str(exc)
            raise
        try:
            cluster.start()
        except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
            cluster.stop()
            _failure = f"the throwaway PostgreSQL server did not start: {exc}"
            raise PostgresUnavailable(_failure) from exc
        _cluster = cluster
        atexit.register(_stop_cluster)
        return cluster.url


def require_postgres() -> str:
    """:func:`postgres_url`, or skip the calling test (pytest) with the reason."""
    import pytest

    try:
        return postgres_url()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at the database ``dbname`` instead of its own."""
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create a database with a unique name on ``server_url``'s server, yield its URL, then
    drop it (closing whatever connections the test left open)."""
    import psycopg
    from psycopg import sql

    name = f"tf_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


__all__ = [
    "ENV_BIN",
    "ENV_URL",
    "LocalCluster",
    "PostgresUnavailable",
    "find_bin_dir",
    "fresh_database",
    "postgres_url",
    "require_postgres",
    "with_database",
]
