"""A throwaway PostgreSQL cluster on loopback, for the tests and the benchmark.

`Cluster.start()` finds the newest server in ``/usr/lib/postgresql/*/bin`` (Debian's layout)
or on ``PATH``, runs ``initdb`` as the unprivileged ``postgres`` user when run as root (the
server refuses to run as root), listens on 127.0.0.1 only on a free port with its socket in
the cluster's own temporary folder, trusts loopback connections, and `Cluster.stop()` stops it
and removes the folder. Nothing here depends on pytest.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from dvcflow import Config

__all__ = ["KEY_ENV", "Cluster", "Database", "find_bin", "missing_reason"]

SERVICE_USER = "postgres"
"""Who runs the server when the tests run as root."""
SCRAM_ROLE = "dvcflow_scram"
"""The one role that must give a password (to test wrong credentials); all others are trusted."""


def find_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` of the newest installed server."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: _major(path.parent.name),
    )
    for folder in reversed(candidates):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    return None


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def missing_reason() -> str | None:
    """Why no cluster can be started here, or ``None`` when one can."""
    if find_bin() is None:
        return (
            "PostgreSQL is not installed (no initdb/pg_ctl in /usr/lib/postgresql/*/bin or on "
            "PATH): apt-get install postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root and there is no {SERVICE_USER!r} user to run the server as"
    return None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One throwaway server: `start`, `url`, `create_database`, `stop`.

    Args:
        durable: keep fsync and synchronous commit on (the benchmark); the tests turn them off,
            which is safe for a cluster thrown away at the end.
    """

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.bin = find_bin()
        self.port = 0
        self.folder: Path | None = None
        self._started = False
        self._as_root = os.geteuid() == 0

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        assert self.folder is not None
        return self.folder / "data"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if self._as_root:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        return subprocess.run(  # noqa: S603 - our own arguments, no shell
            command,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.folder,
        )

    def start(self) -> Cluster:
        """Create and start the cluster; raises `RuntimeError` with the server's words."""
        reason = missing_reason()
        if reason is not None:
            raise RuntimeError(reason)
        assert self.bin is not None
        self.folder = Path(tempfile.mkdtemp(prefix="dvcflow-pg-"))
        if self._as_root:
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.folder.chmod(0o700)
        try:
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SERVICE_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            settings = {
                "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": f"'{self.folder}'",
                "max_connections": "100",
                "shared_buffers": "128MB",
                "log_min_messages": "warning",
            }
            if not self.durable:
                settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
            with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
                conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
            # Trust on loopback only; nothing listens anywhere else.
            (self.data / "pg_hba.conf").write_text(
                f"local all all trust\nhost all {SCRAM_ROLE} 127.0.0.1/32 scram-sha-256\n"
                "host all all 127.0.0.1/32 trust\n",
                encoding="utf-8",
            )
            self._listen()
        except BaseException:
            self.stop()
            raise
        return self

    def _listen(self) -> None:
        assert self.bin is not None
        for _attempt in range(5):
            self.port = _free_port()
            try:
                self._run(
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.folder / "server.log"),
                    "-o",
                    f"-p {self.port}",
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            except subprocess.CalledProcessError:
                continue  # the port was taken between the probe and the start
            self._started = True
            return
        raise RuntimeError(f"the server did not start: {self.log()}")

    def log(self) -> str:
        """The server's log so far (for error messages)."""
        if self.folder is None:
            return ""
        path = self.folder / "server.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` over TCP on loopback."""
        return f"postgresql+psycopg://{SERVICE_USER}@127.0.0.1:{self.port}/{database}"

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run statements outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg  # noqa: PLC0415 - only with the postgres extra

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SERVICE_USER, dbname=database, autocommit=True
        ) as connection:
            for statement in statements:
                connection.execute(statement.encode())

    def create_database(self, name: str, template: str = "template0") -> str:
        """A new empty database (a copy of ``template``); its URL."""
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending its sessions."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        if self.folder is None:
            return
        if self._started and self.bin is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
                )
            self._started = False
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None


KEY_ENV = "DVCFLOW_TEST_HISTORY_KEY"
"""PostgreSQL needs a configured history key: the tests' one lives in this variable."""
ENVIRON = {KEY_ENV: "5a" * 32}


class Database:
    """A test database on either back end: its URL and raw SQL through SQLAlchemy.

    ``rows`` and ``execute`` take ``?`` placeholders on both back ends, as the tests' SQL did
    when it spoke sqlite3 directly.
    """

    def __init__(self, dialect: str, url: str, path: Path | None = None) -> None:
        self.dialect = dialect
        self.url = url
        self.path = path
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        """A pool-less SQLAlchemy engine (nothing stays open between calls)."""
        if self._engine is None:
            self._engine = sa.create_engine(self.url, poolclass=NullPool)
        return self._engine

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``Engine.open`` options completed with the history key PostgreSQL requires."""
        if self.dialect == "postgresql":
            config = options.get("config")
            if config is None:
                options["config"] = Config.from_data({"history": {"key_env": KEY_ENV}})
            elif isinstance(config, Config) and config.history_key_env is None:
                options["config"] = attrs.evolve(config, history_key_env=KEY_ENV)
            options.setdefault("environ", ENVIRON)
        return options

    @staticmethod
    def _statement(query: str, args: tuple[object, ...]) -> tuple[sa.TextClause, Mapping[str, Any]]:
        parts = query.split("?")
        if len(parts) - 1 != len(args):
            msg = f"{len(parts) - 1} placeholders for {len(args)} arguments"
            raise ValueError(msg)
        text = parts[0] + "".join(f":p{n}{part}" for n, part in enumerate(parts[1:]))
        return sa.text(text), {f"p{n}": value for n, value in enumerate(args)}

    def rows(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        """The rows of one query."""
        statement, params = self._statement(query, args)
        with self.engine.begin() as connection:
            return [tuple(row) for row in connection.execute(statement, params)]

    def execute(self, *statements: tuple[str, tuple[object, ...]] | str) -> None:
        """Run statements (each SQL text, or SQL text and arguments) in one transaction."""
        with self.engine.begin() as connection:
            for item in statements:
                query, args = (item, ()) if isinstance(item, str) else item
                statement, params = self._statement(query, args)
                connection.execute(statement, params)

    def tables(self) -> list[str]:
        """The tables in the database."""
        with self.engine.connect() as connection:
            return sorted(sa.inspect(connection).get_table_names())

    def key(self) -> bytes:
        """The history key the database's engine uses (the key file beside a SQLite file)."""
        if self.path is not None:
            return bytes.fromhex(
                self.path.with_name(self.path.name + ".key").read_text(encoding="ascii")
            )
        return bytes.fromhex(ENVIRON[KEY_ENV])

    def untouched(self) -> bool:
        """Nothing was written: no SQLite file, or no table in the PostgreSQL database."""
        if self.path is not None:
            return not self.path.exists()
        return self.tables() == []

    def close(self) -> None:
        """Release the helper's engine."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
