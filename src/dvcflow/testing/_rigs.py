"""The machines' rigs: an engine per procedure and store, emptied before each example.

Opening an engine (migrations checked, plugins registered, statements compiled) costs more
than a whole short example, so each procedure gets one engine per process, on its own
database (a SQLite file in a temporary folder, or a PostgreSQL database created for it),
and each example starts from that database emptied of everything but the published
procedure versions: the same state as a freshly opened one.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import itertools
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from dvcflow._clock import FrozenClock
from dvcflow._config import Config
from dvcflow._engine import Engine
from dvcflow._history import GENESIS
from dvcflow._kernel import Decision, Kernel, content_hash
from dvcflow._procedure import ProcedureSpec
from dvcflow._schema import chain_head, metadata
from dvcflow.plugins.fake import FakeBackend

__all__ = [
    "KEY_ENV",
    "CommitWatch",
    "Rig",
    "check_store",
    "close_engines",
    "fake_config",
    "release",
    "rig_for",
    "snapshot",
]

KEY_ENV = "DVCFLOW_TESTING_HISTORY_KEY"
"""The environment variable the machines' history key is read from (given, never os.environ)."""
_KEY = {KEY_ENV: "5a" * 32}
_KEPT = frozenset({"procedure_versions"})
"""Tables an example starts with as they are: what publishing the catalogue wrote."""

_DEFAULT: list[Config] = []


def fake_config() -> Config:
    """The machines' configuration: every family served by the in-memory fake, a history key."""
    if not _DEFAULT:
        families = ("payment", "notification", "delivery", "storage", "signing")
        _DEFAULT.append(
            Config.from_data(
                {
                    "history": {"key_env": KEY_ENV},
                    "providers": {"fake": {"type": "fake"}},
                    "routing": dict.fromkeys(families, "fake"),
                },
                source="<dvcflow.testing>",
            )
        )
    return _DEFAULT[0]


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

    def commits(self) -> int | None:
        """SQLite's commit counter (``None`` elsewhere, where asking means reading every row)."""
        if self._sqlite is None:
            return None
        return int(self._sqlite.execute("PRAGMA data_version").fetchone()[0])

    @staticmethod
    def changes(before: object, after: object) -> list[str]:
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


class _Fakes(FakeBackend):
    """The fake back ends, emptied between examples."""

    def reset(self) -> None:
        """Forget everything captured, as a new fake would."""
        FakeBackend.__init__(self)


class Rig:
    """One engine on one database, with its clock, fakes and decision recorder."""

    def __init__(self, engine: Engine, location: str, clock: FrozenClock, fakes: _Fakes) -> None:
        self.engine = engine
        self.location = location
        self.clock = clock
        self.fakes: FakeBackend = fakes
        self._fakes = fakes
        self.watch = CommitWatch(engine)
        self.sink: list[Decision] | None = None
        """Where the kernel's decisions go: the list of the example running now."""
        self.kernels: dict[str, Kernel] = {}

    def kernel(self, code: str) -> Kernel:
        """The kernel the engine decides ``code`` with, its decisions sent to ``sink``."""
        version = self.engine.current_version(code)
        kernel = self.kernels.get(version)
        if kernel is None:
            kernel = self.engine.kernel(version)
            decide = kernel.decide

            def recording(*args: Any, **kwargs: Any) -> Decision:  # noqa: ANN401 - decide's own
                decision = decide(*args, **kwargs)
                if self.sink is not None:
                    self.sink.append(decision)
                return decision

            # The engine decides through this kernel; keeping each decision it returns is
            # what lets the checks compare the database with what was decided.
            kernel.decide = recording  # type: ignore[method-assign]
            self.kernels[version] = kernel
        return kernel

    def reset(self, start: dt.datetime) -> None:
        """Empty the database (but for the published versions), the fakes; set the clock.

        On PostgreSQL the identity sequences restart too, as in a freshly migrated database.
        The plugins a machine was given beside the fakes keep what they hold: theirs to reset.
        """
        emptied = [
            table
            for table in reversed(metadata.sorted_tables)
            if table.name not in _KEPT and table is not chain_head
        ]
        with self.engine.store.transaction() as connection:
            if connection.dialect.name == "postgresql":
                names = ", ".join(f'"{table.name}"' for table in emptied)
                connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY"))
            else:
                for table in emptied:
                    connection.execute(table.delete())
            connection.execute(chain_head.update().values(seq=0, mac=GENESIS))
        self._fakes.reset()
        self.clock.set(start)
        self.sink = None

    @contextlib.contextmanager
    def recording(self, sink: list[Decision]) -> Iterator[None]:
        """Send the kernel's decisions to ``sink`` while the block runs (and only then)."""
        self.sink = sink
        try:
            yield
        finally:
            self.sink = None

    def close(self) -> None:
        """Close the engine and its watch."""
        self.watch.close()
        self.engine.close()


def check_store(store: str) -> sa.URL | None:
    """``store`` checked: ``None`` for ``"sqlite"``, else its PostgreSQL URL.

    Raises:
        ValueError: neither ``"sqlite"`` nor a PostgreSQL URL.
    """
    if store == "sqlite":
        return None
    try:
        url = make_url(store)
    except sa.exc.ArgumentError:
        url = None
    if url is None or not url.drivername.startswith("postgresql"):
        msg = f"store must be 'sqlite' or a PostgreSQL URL, not {store!r}"
        raise ValueError(msg)
    return url


class _Store:
    """Where rigs' databases live: SQLite files in a temporary folder, or PostgreSQL."""

    def __init__(self, store: str) -> None:
        self.store = store
        self._numbers = itertools.count(1)
        self._folder: Path | None = None
        self._server: sa.Engine | None = None
        url = check_store(store)
        if url is not None:
            self._url = url

    def create(self) -> tuple[str, str]:
        """A new empty database: its URL, and where it is (to remove it)."""
        number = next(self._numbers)
        if self.store == "sqlite":
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="dvcflow-testing-"))
            path = self._folder / f"rig-{number}.db"
            return f"sqlite:///{path}", str(path)
        name = f"{self._url.database}_rig_{os.getpid()}_{number}"
        self._execute(f'DROP DATABASE IF EXISTS "{name}"')
        self._execute(f'CREATE DATABASE "{name}"')
        return self._url.set(database=name).render_as_string(hide_password=False), name

    def _execute(self, statement: str) -> None:
        if self._server is None:
            self._server = sa.create_engine(
                self._url, isolation_level="AUTOCOMMIT", poolclass=NullPool
            )
        with self._server.connect() as connection:
            connection.execute(sa.text(statement))

    def remove(self, location: str) -> None:
        """Remove a rig's database (its engine closed)."""
        if self.store == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(location + suffix).unlink(missing_ok=True)
        else:
            self._execute(f'DROP DATABASE IF EXISTS "{location}"')

    def close(self) -> None:
        """Remove the temporary folder, release the server."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        if self._server is not None:
            self._server.dispose()
            self._server = None


_LOCK = threading.Lock()
_STORES: dict[str, _Store] = {}
_RIGS: dict[tuple[Any, ...], Rig] = {}


def rig_for(
    store: str,
    procedure: ProcedureSpec,
    *,
    config: Config | None,
    environ: Mapping[str, str] | None = None,
    plugins: Sequence[object] = (),
) -> Rig:
    """The process's rig for ``procedure`` on ``store`` (opened the first time)."""
    settings = config if config is not None else fake_config()
    env = dict(_KEY) | dict(environ or {})
    key = (
        store,
        threading.get_ident(),  # a rig serves one thread: its watch, sink and reset are its own
        content_hash(procedure),
        id(settings),
        tuple(sorted(env.items())),
        tuple(id(plugin) for plugin in plugins),
    )
    with _LOCK:
        rig = _RIGS.get(key)
        if rig is not None:
            return rig
        where = _STORES.get(store)
        if where is None:
            where = _STORES[store] = _Store(store)
        url, location = where.create()
        clock = FrozenClock(dt.datetime(2025, 3, 3, 1, tzinfo=dt.UTC))
        fakes = _Fakes()
        engine = Engine.open(
            url,
            catalog=[procedure],
            config=settings,
            clock=clock,
            environ=env,
            plugins=(fakes, *plugins),
            entry_points=False,
        )
        rig = _RIGS[key] = Rig(engine, location, clock, fakes)
        return rig


def release(rig: Rig) -> None:
    """Close one rig's engine and remove its database (a drawn procedure's, after its example)."""
    with _LOCK:
        for key, held in list(_RIGS.items()):
            if held is rig:
                del _RIGS[key]
                rig.close()
                _STORES[key[0]].remove(rig.location)


def close_engines() -> None:
    """Close every machine's engine in this process and remove its database.

    The machines keep one engine per procedure and store for the whole process; this lets
    them go (the next example opens a new one). Call it before stopping a PostgreSQL server
    the machines used (a session fixture's teardown); at exit it runs by itself.
    """
    with _LOCK:
        for key, rig in list(_RIGS.items()):
            rig.close()
            _STORES[key[0]].remove(rig.location)
        _RIGS.clear()
        for where in _STORES.values():
            where.close()
        _STORES.clear()


def _close_at_exit() -> None:
    try:
        close_engines()
    except sa.exc.OperationalError:
        # The server went first (a test session stopped it): its databases went with it.
        _RIGS.clear()
        _STORES.clear()


atexit.register(_close_at_exit)
