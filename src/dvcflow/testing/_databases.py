"""Throwaway databases for machines: a migrated template per procedure, copied for each example."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from dvcflow._clock import Clock
from dvcflow._config import Config
from dvcflow._engine import Engine
from dvcflow._kernel import content_hash
from dvcflow._procedure import ProcedureSpec
from dvcflow._schema import metadata

__all__ = ["KEY_ENV", "CommitWatch", "Databases", "databases", "fake_config", "snapshot"]

KEY_ENV = "DVCFLOW_TESTING_HISTORY_KEY"
"""The environment variable the machines' history key is read from (given, never os.environ)."""
_KEY = {KEY_ENV: "5a" * 32}


_DEFAULT: list[Config] = []


def fake_config() -> Config:
    """The machines' configuration: every family served by the in-memory fake, a history key."""
    if not _DEFAULT:
        _DEFAULT.append(_fake_config())
    return _DEFAULT[0]


def _fake_config() -> Config:
    return Config.from_data(
        {
            "history": {"key_env": KEY_ENV},
            "providers": {"fake": {"type": "fake"}},
            "routing": dict.fromkeys(
                ("payment", "notification", "delivery", "storage", "signing"), "fake"
            ),
        },
        source="<dvcflow.testing>",
    )


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every dvcflow table, in key order: what "nothing was written" compares."""
    with engine.store.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(
                    sa.select(table).order_by(*(table.primary_key.columns or table.columns))
                )
            ]
            for table in metadata.sorted_tables
        }


class CommitWatch:
    """Tells whether anything was written to an engine's database between two looks.

    On SQLite, ``PRAGMA data_version`` of a connection of its own, which changes whenever
    another connection commits a change (exact, and cheap enough to ask around every
    command); elsewhere, every row of every table (`snapshot`).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        path = engine.store.database_path
        self._sqlite = None if path is None else sqlite3.connect(path, isolation_level=None)

    def look(self) -> object:
        """What to compare with a later look."""
        if self._sqlite is not None:
            return self._sqlite.execute("PRAGMA data_version").fetchone()[0]
        return snapshot(self._engine)

    def changes(self, before: object, after: object) -> list[str]:
        """What changed between two looks (empty: nothing)."""
        if before == after:
            return []
        if isinstance(before, dict) and isinstance(after, dict):
            return sorted(name for name in before if before[name] != after.get(name))
        return ["the database (a transaction was committed)"]

    def close(self) -> None:
        """Close the watching connection."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


class Databases:
    """Fresh databases for one store: SQLite files under a temporary folder, or PostgreSQL.

    ``store`` is ``"sqlite"`` or a PostgreSQL URL (``postgresql+psycopg://user@host/db``)
    whose role may create databases: each example gets ``CREATE DATABASE ... TEMPLATE`` of a
    migrated template, dropped after it.
    """

    def __init__(self, store: str) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._templates: dict[str, str] = {}
        self._folder: Path | None = None
        self._server: sa.Engine | None = None
        if store != "sqlite":
            url = make_url(store)
            if not url.drivername.startswith("postgresql"):
                msg = f"store must be 'sqlite' or a PostgreSQL URL, not {store!r}"
                raise ValueError(msg)
            self._url = url
        atexit.register(self.close)

    def _root(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="dvcflow-testing-"))
        return self._folder

    def _admin(self) -> sa.Engine:
        if self._server is None:
            self._server = sa.create_engine(
                self._url, isolation_level="AUTOCOMMIT", poolclass=NullPool
            )
        return self._server

    def _database_url(self, name: str) -> str:
        return self._url.set(database=name).render_as_string(hide_password=False)

    def _template(
        self,
        procedure: ProcedureSpec,
        config: Config,
        environ: Mapping[str, str],
        clock: Clock,
    ) -> str:
        """The template of ``procedure``: created, migrated and published once per process."""
        key = content_hash(procedure) + str(id(config))
        with self._lock:
            found = self._templates.get(key)
            if found is not None:
                return found
            if self.store == "sqlite":
                path = self._root() / f"template-{len(self._templates)}.db"
                location = str(path)
                url = f"sqlite:///{path}"
            else:
                location = f"{self._url.database}_tpl_{os.getpid()}_{len(self._templates)}"
                with self._admin().connect() as connection:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{location}"'))
                    connection.execute(sa.text(f'CREATE DATABASE "{location}"'))
                url = self._database_url(location)
            engine = Engine.open(
                url,
                catalog=[procedure],
                config=config,
                clock=clock,
                environ=environ,
                entry_points=False,
            )
            engine.close()
            self._templates[key] = location
            return location

    def open(
        self,
        procedure: ProcedureSpec,
        *,
        config: Config | None,
        clock: Clock,
        environ: Mapping[str, str] | None = None,
        plugins: Sequence[object] = (),
    ) -> tuple[Engine, str]:
        """An engine on a fresh copy of the procedure's template; and where the copy is."""
        settings = config if config is not None else fake_config()
        env = dict(_KEY) | dict(environ or {})
        template = self._template(procedure, settings, env, clock)
        number = next(self._numbers)
        if self.store == "sqlite":
            path = self._root() / f"example-{number}.db"
            shutil.copyfile(template, path)
            key = Path(f"{template}.key")
            if key.exists():
                shutil.copyfile(key, f"{path}.key")
                Path(f"{path}.key").chmod(0o600)
            url, location = f"sqlite:///{path}", str(path)
        else:
            location = f"{self._url.database}_ex_{os.getpid()}_{number}"
            with self._admin().connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{location}" TEMPLATE "{template}"'))
            url = self._database_url(location)
        engine = Engine.open(
            url,
            catalog=[procedure],
            config=settings,
            clock=clock,
            environ=env,
            plugins=plugins,
            entry_points=False,
        )
        return engine, location

    def discard(self, location: str) -> None:
        """Remove an example's database (its engine closed first)."""
        if self.store == "sqlite":
            for suffix in ("", "-wal", "-shm", ".key"):
                Path(f"{location}{suffix}").unlink(missing_ok=True)
            return
        with self._admin().connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{location}"'))

    def close(self) -> None:
        """Remove the templates (at exit)."""
        with self._lock:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None
            if self._server is not None:
                with self._server.connect() as connection:
                    for name in self._templates.values():
                        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
                self._server.dispose()
                self._server = None
            self._templates.clear()


_STORES: dict[str, Databases] = {}
_STORES_LOCK = threading.Lock()


def databases(store: str) -> Databases:
    """The process's databases for ``store`` (one set of templates per store)."""
    with _STORES_LOCK:
        found = _STORES.get(store)
        if found is None:
            found = _STORES[store] = Databases(store)
        return found
