"""The store: the only module that speaks SQL (SQLite embedded, PostgreSQL for many processes)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import sqlalchemy as sa
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from dvcflow._delivery_store import DeliveryStore
from dvcflow._history import GENESIS, StoredEvent
from dvcflow._outbox_store import OutboxStore
from dvcflow._schema import (
    applicants,
    chain_head,
    code_sequences,
    commands,
    dossiers,
    events,
    metadata,
    outbox,
    payloads,
    procedure_versions,
    timers,
)
from dvcflow.errors import (
    ConcurrencyError,
    ConfigurationError,
    DvcflowError,
    Problem,
    SchemaError,
    StoreUnavailableError,
)

__all__ = ["Store", "Writes"]


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:  # noqa: ANN401 - a SQLAlchemy listener
    def on_connect(dbapi_connection: Any, _record: Any) -> None:  # noqa: ANN401
        # Let SQLAlchemy's "begin" listener start transactions, as BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    return on_connect


def _begin(connection: Connection) -> None:
    # A write transaction takes SQLite's writer lock at once: two deferred transactions that
    # both read then write deadlock, and the busy timeout does not retry a lock upgrade.
    # Reads (WAL) take no lock and begin deferred.
    reading = connection.get_execution_options().get("dvcflow_read", False)
    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


MIN_POSTGRESQL = 14
"""The oldest PostgreSQL server dvcflow supports (older ones are past their end of life)."""
CONNECT_TIMEOUT_S = 10
"""How long a new PostgreSQL connection may take before the server counts as unreachable."""
_MIGRATION_LOCK = 0x64766366  # "dvcf": the advisory lock that serialises schema upgrades


class Store:
    """Tables, migrations and the statements of the command path.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///dvcflow.db`` or ``postgresql+psycopg://...``.
        busy_timeout_ms: how long SQLite waits for the writer lock.
        statement_timeout_ms: PostgreSQL's ``statement_timeout`` for every connection
            (``None``: the server's); a statement cut short raises `ConcurrencyError`.
        pool_size: connections kept open per process (``None``: SQLAlchemy's 5, plus 10 more
            opened while busy).
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 5000,
        statement_timeout_ms: int | None = None,
        pool_size: int | None = None,
        **engine_options: Any,  # noqa: ANN401
    ) -> None:
        try:
            self.url = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StoreUnavailableError(f"not a database URL: {exc}") from exc
        self.dialect = self.url.get_backend_name()
        self.ledger = OutboxStore(self.dialect)
        """The outbox, incident, payment and security-log statements."""
        self.deliveries = DeliveryStore(self.dialect)
        """The message, delivery and file statements."""
        self._folded: dict[_Shape, sa.Select[Any]] = {}
        if pool_size is not None and self.dialect != "sqlite":
            engine_options.setdefault("pool_size", pool_size)
        self._serial: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database not in {"", ":memory:"}:
                folder = Path(database).expanduser().resolve().parent
                if not folder.is_dir():
                    raise StoreUnavailableError(
                        f"cannot open {database}: folder {folder} does not exist"
                    )
            else:
                # An in-memory database exists on one connection: share it between threads,
                # one at a time (SQLAlchemy's default gives each thread an empty database).
                engine_options.setdefault("poolclass", StaticPool)
                engine_options.setdefault("connect_args", {"check_same_thread": False})
                self._serial = threading.RLock()
            self.engine: Engine = sa.create_engine(self.url, **engine_options)
            sa_event.listen(self.engine, "connect", _sqlite_pragmas(busy_timeout_ms))
            sa_event.listen(self.engine, "begin", _begin)
        else:
            connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
            if statement_timeout_ms is not None:
                connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
            engine_options.setdefault("connect_args", connect_args)
            try:
                self.engine = sa.create_engine(self.url, pool_pre_ping=True, **engine_options)
            except ModuleNotFoundError as exc:
                raise StoreUnavailableError(
                    f"{self.url.drivername} needs the {exc.name} driver: "
                    "pip install 'dvcflow[postgres]'"
                ) from exc

    @property
    def database_path(self) -> Path | None:
        """The SQLite file, for an embedded store."""
        database = self.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database).expanduser().resolve()

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------

    def _alembic(self, connection: Connection) -> AlembicConfig:
        config = AlembicConfig()
        location = resources.files("dvcflow") / "_migrations"
        config.set_main_option("script_location", str(location))
        config.attributes["connection"] = connection
        return config

    def upgrade(self) -> str:
        """Create or upgrade the schema to this version's head; returns the revision.

        Raises:
            SchemaError: when the database is at a revision this dvcflow does not know
                (written by a newer dvcflow), or holds another application's tables of the
                same names.
            StoreUnavailableError: when the database cannot be reached.
        """
        with self.connect(read=False) as connection:
            if self.dialect == "postgresql":
                _check_server_version(connection.dialect.server_version_info)
                # Processes opening a new database at once: one creates the schema, the others
                # wait for it, then find it at head (a session lock, held across the commits).
                connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                connection.commit()
                try:
                    return self._upgrade(connection)
                finally:
                    self._unlock_migrations(connection)
            return self._upgrade(connection)

    def _unlock_migrations(self, connection: Connection) -> None:
        try:
            connection.rollback()
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()
        except DBAPIError:
            # A connection that cannot unlock is closed, which releases the lock.
            connection.invalidate()

    def _upgrade(self, connection: Connection) -> str:
        config = self._alembic(connection)
        script = ScriptDirectory.from_config(config)
        head = script.get_current_head() or ""
        current = self._revision(connection)
        if current is None:
            taken = sorted(set(sa.inspect(connection).get_table_names()) & set(metadata.tables))
            if taken:
                raise SchemaError(
                    f"the database has tables named {', '.join(taken)} but no dvcflow schema "
                    "revision: it belongs to another application",
                )
        elif current not in {rev.revision for rev in script.walk_revisions()}:
            raise SchemaError(
                f"the database schema is at revision {current!r}, newer than this dvcflow "
                f"(which knows up to {head!r}); upgrade dvcflow to open it",
            )
        if current != head:
            alembic_command.upgrade(config, "head")
        connection.commit()
        self._ensure_chain_head(connection)
        connection.commit()
        return head

    def _revision(self, connection: Connection) -> str | None:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        value = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        return None if value is None else str(value)

    def _ensure_chain_head(self, connection: Connection) -> None:
        if connection.execute(sa.select(chain_head.c.id)).first() is None:
            with contextlib.suppress(IntegrityError):
                connection.execute(chain_head.insert().values(id=1, seq=0, mac=GENESIS))

    # -- connections and transactions ------------------------------------------------------

    def _checkout(self) -> Connection:
        # A connection that cannot be had at all (server down, wrong credentials, no such
        # database) is not a race: StoreUnavailableError, not retried.
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: DBAPIError) -> DvcflowError:
        if self.dialect == "sqlite":
            return _translate(exc)
        where = self.url.render_as_string(hide_password=True)
        text = str(exc.orig).strip()
        lowered = text.lower()
        if "password" in lowered or "authentication" in lowered or "role" in lowered:
            hint = "check the user name and password in the URL (and pg_hba.conf)"
        elif "database" in lowered and "does not exist" in lowered:
            hint = "create the database first (createdb), or fix its name in the URL"
        else:
            hint = "is the server running and listening on that host and port?"
        return StoreUnavailableError(f"cannot connect to {where}: {text}; {hint}")

    @contextlib.contextmanager
    def connect(self, *, read: bool = True) -> Iterator[Connection]:
        """A connection for reads (or, ``read=False``, for writes the caller commits).

        Raises:
            StoreUnavailableError: no connection could be had.
            ConcurrencyError: the connection was lost or a statement timed out; retry.
        """
        with self._serial:
            connection = self._checkout()
            try:
                with connection:
                    yield connection.execution_options(dvcflow_read=read)
            except DBAPIError as exc:
                raise _translate(exc) from exc

    @contextlib.contextmanager
    def transaction(
        self,
        *,
        durable: bool = True,
        then: Callable[[Connection], object] | None = None,
    ) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any exception.

        Args:
            durable: ``False`` lets PostgreSQL acknowledge the commit before its WAL reaches
                the disk (``synchronous_commit = off`` for this transaction only): for
                bookkeeping whose loss in a server crash is harmless, such as the outbox's
                claims and completions (a lost claim is claimed again, a lost completion
                delivers again, idempotently).
            then: run after the commit on the same connection (no second checkout, no second
                ping); it handles its own errors, since the transaction's work is done.

        Raises:
            ConcurrencyError: a lost race (unique or compare-and-set), a busy database, a
                statement timeout, or a connection lost mid-transaction; nothing was written
                unless the connection was lost during the commit itself, which a retry with
                the same ``command_id`` resolves.
            StoreUnavailableError: no connection could be had (server down, bad credentials).
        """
        with self._serial:
            connection = self._checkout()
            try:
                with connection:
                    with self.begin(connection):
                        if not durable and self.dialect == "postgresql":
                            connection.execute(_ASYNC_COMMIT)
                        yield connection
                    if then is not None:
                        then(connection)
            except DBAPIError as exc:
                raise _translate(exc) from exc

    @contextlib.contextmanager
    def begin(self, connection: Connection) -> Iterator[Connection]:
        """One transaction on an open connection, raising as `transaction` does."""
        try:
            with connection.begin():
                yield connection
        except IntegrityError as exc:
            if _unique_violation(exc):
                raise ConcurrencyError(
                    f"another command changed the same data first: {exc.orig}"
                ) from exc
            raise StoreUnavailableError(f"the database refused a write: {exc.orig}") from exc
        except DBAPIError as exc:
            raise _translate(exc) from exc

    # -- procedure versions ----------------------------------------------------------------

    def save_version(self, connection: Connection, **row: Any) -> bool:  # noqa: ANN401
        """Store a procedure version unless that content hash is stored already."""
        exists = connection.execute(
            sa.select(procedure_versions.c.id).where(procedure_versions.c.id == row["id"])
        ).first()
        if exists is None:
            latest = connection.execute(
                sa.select(sa.func.max(procedure_versions.c.published_at)).where(
                    procedure_versions.c.code == row["code"]
                )
            ).scalar()
            if latest is not None:
                latest = latest if latest.tzinfo else latest.replace(tzinfo=dt.UTC)
                # The newest version is the one new dossiers get, also after a restart: keep
                # publication times strictly increasing, even under a frozen clock.
                if latest >= row["published_at"]:
                    row = row | {"published_at": latest + dt.timedelta(microseconds=1)}
            if self.dialect == "postgresql":
                # Processes publishing one catalogue at once: the first insert wins, the others
                # find the same content (the id is its hash) and carry on.
                inserted = connection.execute(
                    postgresql.insert(procedure_versions)
                    .values(**row)
                    .on_conflict_do_nothing(index_elements=[procedure_versions.c.id])
                    .returning(procedure_versions.c.id)
                ).first()
                return inserted is not None
            connection.execute(procedure_versions.insert().values(**row))
        return exists is None

    def versions(self, connection: Connection) -> list[Row[Any]]:
        """Every stored procedure version, oldest first."""
        query = sa.select(procedure_versions).order_by(
            procedure_versions.c.published_at, procedure_versions.c.id
        )
        return list(connection.execute(query))

    def version(self, connection: Connection, version_id: str) -> Row[Any] | None:
        """One stored procedure version."""
        return connection.execute(
            sa.select(procedure_versions).where(procedure_versions.c.id == version_id)
        ).first()

    # -- dossiers ----------------------------------------------------------------------------

    def dossier(self, connection: Connection, ref: str) -> Row[Any] | None:
        """The dossier with id or code ``ref`` (one index probe when it is the id)."""
        row = connection.execute(_DOSSIER_BY_ID, {"ref": ref}).first()
        if row is None:
            row = connection.execute(_DOSSIER_BY_CODE, {"ref": ref}).first()
        return row

    def insert_dossier(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Store a new dossier."""
        connection.execute(_INSERT_DOSSIER, row)

    def update_dossier(
        self, connection: Connection, dossier_id: str, expected: int, row: Mapping[str, Any]
    ) -> None:
        """Compare-and-set: update the dossier only if it is still at version ``expected``.

        Raises:
            ConcurrencyError: when another command moved it first.
        """
        result = connection.execute(
            _UPDATE_DOSSIER, {"b_id": dossier_id, "b_expected": expected, **row}
        )
        if result.rowcount != 1:
            raise ConcurrencyError(
                f"dossier {dossier_id} changed since version {expected}; retry the command"
            )

    def next_code_number(self, connection: Connection, agency: str, period: str) -> int:
        """The next number of the agency's dossier-code sequence for ``period``."""
        updated = connection.execute(
            code_sequences.update()
            .where(code_sequences.c.agency == agency, code_sequences.c.period == period)
            .values(last=code_sequences.c.last + 1)
            .returning(code_sequences.c.last)
        ).scalar()
        if updated is not None:
            return int(updated)
        connection.execute(code_sequences.insert().values(agency=agency, period=period, last=1))
        return 1

    # -- personal data -----------------------------------------------------------------------

    def insert_applicant(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Store an applicant's personal data (erasable)."""
        connection.execute(applicants.insert().values(**row))

    def insert_payload(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Store a personal payload (form, documents, receiver), erasable."""
        connection.execute(payloads.insert().values(**row))

    def erase(self, connection: Connection, dossier_id: str, at: dt.datetime) -> int:
        """Erase the personal data of a dossier (its payloads and its applicant); returns rows."""
        erased = connection.execute(
            payloads.update()
            .where(payloads.c.dossier_id == dossier_id, payloads.c.data.is_not(None))
            # sa.null(): a bare None in a JSON column is stored as the JSON text 'null'.
            .values(data=sa.null(), erased_at=at)
        ).rowcount
        applicant_id = connection.execute(
            sa.select(dossiers.c.applicant_id).where(dossiers.c.id == dossier_id)
        ).scalar()
        if applicant_id is not None:
            erased += connection.execute(
                applicants.update()
                .where(applicants.c.id == applicant_id, applicants.c.data.is_not(None))
                .values(data=sa.null(), erased_at=at)
            ).rowcount
        return int(erased)

    def personal(self, connection: Connection, dossier_id: str) -> dict[str, Any]:
        """The personal data of a dossier still held: applicant and payloads by kind."""
        found: dict[str, Any] = {}
        applicant = connection.execute(
            sa.select(applicants.c.data)
            .join(dossiers, dossiers.c.applicant_id == applicants.c.id)
            .where(dossiers.c.id == dossier_id)
        ).scalar()
        if applicant is not None:
            found["applicant"] = applicant
        rows = connection.execute(
            sa.select(payloads.c.kind, payloads.c.data).where(payloads.c.dossier_id == dossier_id)
        )
        found |= {kind: data for kind, data in rows if data is not None}
        return found

    # -- events and the chains -------------------------------------------------------------------

    @property
    def seals_in_command(self) -> bool:
        """Whether a command seals its own event (SQLite, whose writer lock orders commands).

        Elsewhere (PostgreSQL) commands write unsealed events and sealers chain them after
        commit, so that commands do not commit one at a time.
        """
        return self.dialect == "sqlite"

    def chain_head(self, connection: Connection) -> tuple[int, str]:
        """The database-wide chain's head as committed (no lock)."""
        row = connection.execute(_CHAIN_HEAD).one()
        return int(row.seq), str(row.mac)

    def claim_unsealed(
        self, connection: Connection, *, wait: bool, limit: int
    ) -> tuple[tuple[int, str], list[tuple[int, str]]] | None:
        """Lock the chain head for sealing (until the transaction ends) and read what to seal.

        Returns:
            The head and up to ``limit`` unsealed events ``(id, mac)``, oldest first; or
            ``None`` when another sealer holds the head and ``wait`` is false (PostgreSQL's
            ``SKIP LOCKED``): an opportunistic sealer leaves the work to that one. On SQLite
            the transaction's writer lock is the lock.
        """
        if self.dialect == "sqlite" or wait:
            # The events are read after the lock is had, in a snapshot of their own: a sealer
            # waited for has committed, and what it sealed is seen sealed.
            query = _CHAIN_HEAD if self.dialect == "sqlite" else _CHAIN_HEAD_LOCKED
            top = connection.execute(query).one()
            pending = connection.execute(_UNSEALED, {"b_limit": limit})
            return (int(top.seq), str(top.mac)), [(int(r.id), str(r.mac)) for r in pending]
        # One round trip. The events are read in the statement's snapshot, which can (rarely,
        # when a sealer commits as the statement starts) predate a sealing whose head this
        # one then locks: seal_events refuses an event sealed meanwhile, so such a batch rolls
        # back instead of numbering an event twice, and the opportunistic sealer gives up.
        rows = connection.execute(_CLAIM_SKIPPING, {"b_limit": limit}).all()
        if not rows:
            return None
        head = (int(rows[0].seq), str(rows[0].mac))
        return head, [(int(r.id), str(r.event_mac)) for r in rows if r.id is not None]

    def head_for_append(self, connection: Connection) -> tuple[int, str, bool]:
        """The chain head and whether unsealed events wait before it (one query, SQLite)."""
        row = connection.execute(_HEAD_AND_BACKLOG).one()
        return int(row.seq), str(row.mac), row.backlog is not None

    def append_event(self, connection: Connection, row: Mapping[str, Any]) -> None:
        """Append an event; one that carries its ``seq`` moves the chain head to it."""
        connection.execute(_INSERT_EVENT, row)
        if row.get("seq") is not None:
            connection.execute(_MOVE_HEAD, {"b_seq": row["seq"], "b_mac": row["chain_mac"]})

    def seal_events(
        self, connection: Connection, seals: Sequence[tuple[int, int, str]], head: tuple[int, str]
    ) -> None:
        """Give events ``(id, seq, chain_mac)`` their place in the chain; move the head.

        Raises:
            ConcurrencyError: when one of them was sealed (or deleted) meanwhile; the
                transaction must roll back.
        """
        moved = {"b_seq": head[0], "b_mac": head[1]}
        if self.dialect == "postgresql":
            ids, seqs, macs = (list(column) for column in zip(*seals, strict=True))
            count = connection.execute(
                _SEAL_MANY, {"ids": ids, "seqs": seqs, "macs": macs, **moved}
            ).scalar_one()
        else:
            count = connection.execute(
                _SEAL_ONE, [{"b_id": i, "b_seq": seq, "b_mac": mac} for i, seq, mac in seals]
            ).rowcount
            connection.execute(_MOVE_HEAD, moved)
        if count != len(seals):
            raise ConcurrencyError("another sealer sealed these events first; seal again")

    def events_of(self, connection: Connection, dossier_id: str) -> list[StoredEvent]:
        """A dossier's events, oldest first."""
        query = (
            sa.select(events)
            .where(events.c.dossier_id == dossier_id)
            .order_by(events.c.version, events.c.id)
        )
        return [_stored(row) for row in connection.execute(query)]

    def events_from(
        self, connection: Connection, first: int, last: int | None = None
    ) -> Iterator[StoredEvent]:
        """The database-wide chain from ``first`` (to ``last``), in order (sealed events only)."""
        query = sa.select(events).where(events.c.seq >= first).order_by(events.c.seq)
        if last is not None:
            query = query.where(events.c.seq <= last)
        for row in connection.execute(query):
            yield _stored(row)

    def chain_mac_at(self, connection: Connection, seq: int) -> str | None:
        """The chain MAC of event ``seq`` (``GENESIS`` for 0)."""
        if seq == 0:
            return GENESIS
        value = connection.execute(
            sa.select(events.c.chain_mac).where(events.c.seq == seq)
        ).scalar()
        return None if value is None else str(value)

    # -- a command's writes --------------------------------------------------------------

    def write(self, connection: Connection, writes: Writes) -> None:
        """A command's writes after its read, in one statement on PostgreSQL.

        The dossier's compare-and-set update, its event, cancelled and new timers, outbox
        rows and the command id with its outcome. PostgreSQL gets them as one statement,
        since each round trip to the server costs more than the writes themselves; SQLite,
        in-process, one statement each.

        Raises:
            ConcurrencyError: when another command moved the dossier first.
        """
        if self.dialect == "postgresql" and writes.event.get("seq") is None:
            self._write_folded(connection, writes)
            return
        if writes.update is not None:
            self.update_dossier(connection, writes.dossier_id, writes.expected, writes.update)
        self.append_event(connection, writes.event)
        if writes.cancel:
            self.cancel_timers(connection, writes.dossier_id, sorted(writes.cancel))
        self.add_outbox(connection, writes.outbox)
        self.add_timers(connection, writes.timers)
        if writes.command is not None:
            connection.execute(_INSERT_COMMAND, writes.command)

    def _write_folded(self, connection: Connection, writes: Writes) -> None:
        cancel = None if not writes.cancel else "*" if "*" in writes.cancel else "names"
        shape = _Shape(
            None if writes.update is None else tuple(sorted(writes.update)),
            len(writes.outbox),
            len(writes.timers),
            cancel,
            writes.command is not None,
        )
        statement = self._folded.get(shape)
        if statement is None:
            statement = self._folded[shape] = _fold(shape)
        params: dict[str, Any] = {"b_id": writes.dossier_id, "b_expected": writes.expected}
        params |= {f"d_{name}": value for name, value in (writes.update or {}).items()}
        params |= {f"e_{name}": writes.event[name] for name in _EVENT_COLUMNS}
        for n, row in enumerate(writes.outbox):
            params |= {f"o{n}_{name}": row[name] for name in _OUTBOX_COLUMNS}
        for n, row in enumerate(writes.timers):
            params |= {f"t{n}_{name}": row[name] for name in _TIMER_COLUMNS}
        if cancel == "names":
            params["c_names"] = sorted(writes.cancel)
        if writes.command is not None:
            params |= {f"k_{name}": writes.command[name] for name in _COMMAND_COLUMNS}
        updated = connection.execute(statement, params).scalar_one()
        if writes.update is not None and updated != 1:
            raise ConcurrencyError(
                f"dossier {writes.dossier_id} changed since version {writes.expected}; "
                "retry the command"
            )

    # -- commands, outbox and timers ---------------------------------------------------------

    def recorded_command(self, connection: Connection, command_id: str) -> Row[Any] | None:
        """A command seen before, with its fingerprint and outcome."""
        return connection.execute(_COMMAND, {"b_id": command_id}).first()

    def add_outbox(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue effects for the outbox worker."""
        if rows:
            connection.execute(_INSERT_OUTBOX, list(rows))

    def outbox_rows(self, connection: Connection, dossier_id: str | None = None) -> list[Row[Any]]:
        """Queued effects, oldest first (all, or one dossier's)."""
        query = sa.select(outbox).order_by(outbox.c.id)
        if dossier_id is not None:
            query = query.where(outbox.c.dossier_id == dossier_id)
        return list(connection.execute(query))

    def add_timers(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Set timers."""
        if rows:
            connection.execute(timers.insert(), list(rows))

    def cancel_timers(self, connection: Connection, dossier_id: str, names: Sequence[str]) -> None:
        """Deactivate a dossier's timers by name (``"*"``: all of them)."""
        query = timers.update().where(timers.c.dossier_id == dossier_id, timers.c.active.is_(True))
        if "*" not in names:
            query = query.where(timers.c.name.in_(list(names)))
        connection.execute(query.values(active=False))

    def due_timers(self, connection: Connection, now: dt.datetime, limit: int) -> list[Row[Any]]:
        """Active timers due at ``now``, earliest first: candidates, each claimed on firing.

        One index range (``active, due_at``): the sweeper reads only what is due.
        """
        return list(connection.execute(_DUE_TIMERS, {"b_now": now, "b_limit": limit}))

    def claim_timer(self, connection: Connection, timer_id: int, now: dt.datetime) -> bool:
        """Mark a timer fired in the firing transaction, if no one else did: exactly once.

        On PostgreSQL the row is claimed ``FOR UPDATE SKIP LOCKED``: a timer that another
        sweeper is firing at this moment is passed over at once instead of waited for (should
        that transaction roll back, the timer stays due for the next tick). On SQLite the
        writer lock serialises claims and the ``active`` test alone makes them exactly-once.
        """
        query = _CLAIM_TIMER if self.dialect == "sqlite" else _CLAIM_TIMER_SKIP_LOCKED
        result = connection.execute(query, {"b_id": timer_id, "b_now": now})
        return result.rowcount == 1

    def timers_of(self, connection: Connection, dossier_id: str) -> list[Row[Any]]:
        """A dossier's timers, all of them."""
        return list(
            connection.execute(
                sa.select(timers).where(timers.c.dossier_id == dossier_id).order_by(timers.c.id)
            )
        )

    # -- queries -------------------------------------------------------------------------------

    def find(  # noqa: PLR0913 - one keyword per filter
        self,
        connection: Connection,
        *,
        national_status: int | None = None,
        agency: str | None = None,
        procedure: str | None = None,
        owner: str | None = None,
        applicant_digest: str | None = None,
        due_before: dt.datetime | None = None,
        unresolved: bool = False,
        ended: Collection[str] = (),
        after: tuple[Any, ...] | None = None,
        limit: int = 50,
    ) -> list[Row[Any]]:
        """Dossiers matching every filter given, in keyset order ((due_at, id) or id).

        ``unresolved`` keeps dossiers without a result that are not in one of the ``ended``
        states.
        """
        query = sa.select(dossiers)
        if national_status is not None:
            query = query.where(dossiers.c.national_status == national_status)
        if agency is not None:
            query = query.where(dossiers.c.agency == agency)
        if procedure is not None:
            query = query.where(dossiers.c.procedure_code == procedure)
        if owner is not None:
            query = query.where(dossiers.c.owner == owner)
        if applicant_digest is not None:
            query = query.join(applicants, applicants.c.id == dossiers.c.applicant_id).where(
                applicants.c.identifier_digest == applicant_digest
            )
        if unresolved:
            query = query.where(
                dossiers.c.resolved_at.is_(None), dossiers.c.state.not_in(list(ended))
            )
        if due_before is not None:
            query = query.where(dossiers.c.due_at.is_not(None), dossiers.c.due_at < due_before)
            if after is not None:
                query = query.where(sa.tuple_(dossiers.c.due_at, dossiers.c.id) > sa.tuple_(*after))
            query = query.order_by(dossiers.c.due_at, dossiers.c.id)
        else:
            if after is not None:
                query = query.where(dossiers.c.id > after[0])
            query = query.order_by(dossiers.c.id)
        return list(connection.execute(query.limit(limit)))

    def count(self, connection: Connection, table: str) -> int:
        """Rows in one of dvcflow's tables (for tests, the demo and benchmarks)."""
        tables = {
            t.name: t for t in (dossiers, events, outbox, timers, commands, applicants, payloads)
        }
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(tables[table])).scalar_one()
        )


@attrs.define
class Writes:
    """What a command writes after its read (see `Store.write`)."""

    dossier_id: str
    update: dict[str, Any] | None = None
    """The dossier's changed columns; ``None`` for a new dossier, inserted before."""
    expected: int = 0
    """The version the update expects the dossier at."""
    event: Mapping[str, Any] = attrs.field(factory=dict)
    cancel: set[str] = attrs.field(factory=set)
    """Names of the dossier's timers to deactivate (``"*"``: all)."""
    outbox: list[Mapping[str, Any]] = attrs.field(factory=list)
    timers: list[Mapping[str, Any]] = attrs.field(factory=list)
    command: Mapping[str, Any] | None = None


class _Shape(NamedTuple):
    """What a folded statement writes: one statement is built (and cached) per shape."""

    update: tuple[str, ...] | None
    outbox: int
    timers: int
    cancel: str | None
    command: bool


_EVENT_COLUMNS = ("dossier_id", "version", "trigger", "at", "body", "mac")
_OUTBOX_COLUMNS = (
    "key",
    "dossier_id",
    "kind",
    "data",
    "created_at",
    "status",
    "attempts",
    "next_attempt_at",
)
_TIMER_COLUMNS = ("dossier_id", "name", "trigger", "due_at", "active")
_COMMAND_COLUMNS = ("id", "dossier_id", "fingerprint", "version", "outcome", "created_at")


def _fold(shape: _Shape) -> sa.Select[Any]:
    """PostgreSQL: a command's writes as one statement of data-modifying CTEs.

    The main query counts the dossier rows the compare-and-set updated; when it is not one,
    the caller raises and the transaction (with whatever the other parts wrote) rolls back.
    """

    def values(table: sa.Table, prefix: str, names: Sequence[str]) -> dict[str, Any]:
        return {name: sa.bindparam(f"{prefix}_{name}", type_=table.c[name].type) for name in names}

    # A part per row: SQLAlchemy caches the compiled form of single-row inserts only.
    parts = [events.insert().values(values(events, "e", _EVENT_COLUMNS)).cte("e")]
    parts += [
        outbox.insert().values(values(outbox, f"o{n}", _OUTBOX_COLUMNS)).cte(f"o{n}")
        for n in range(shape.outbox)
    ]
    parts += [
        timers.insert().values(values(timers, f"t{n}", _TIMER_COLUMNS)).cte(f"t{n}")
        for n in range(shape.timers)
    ]
    if shape.cancel is not None:
        # Cancelled before any new timer of the same name is set: a statement's parts all
        # see the table as it was before the statement.
        cancelled = timers.update().where(
            timers.c.dossier_id == sa.bindparam("b_id"), timers.c.active.is_(True)
        )
        if shape.cancel == "names":
            names = sa.bindparam("c_names", type_=postgresql.ARRAY(timers.c.name.type))
            cancelled = cancelled.where(timers.c.name == sa.any_(names))
        parts.append(cancelled.values(active=False).cte("c"))
    if shape.command:
        parts.append(commands.insert().values(values(commands, "k", _COMMAND_COLUMNS)).cte("k"))
    if shape.update is None:
        return sa.select(sa.literal(1)).add_cte(*parts)
    updated = (
        dossiers.update()
        .where(
            dossiers.c.id == sa.bindparam("b_id"), dossiers.c.version == sa.bindparam("b_expected")
        )
        .values(values(dossiers, "d", shape.update))
        .returning(dossiers.c.id)
        .cte("d")
    )
    return sa.select(sa.func.count()).select_from(updated).add_cte(*parts)


# Statements of the command path, built once: building and hashing a new SQLAlchemy statement
# on every call cost more than executing it.
_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit TO OFF")
_DOSSIER_BY_ID = sa.select(dossiers).where(dossiers.c.id == sa.bindparam("ref"))
_DOSSIER_BY_CODE = sa.select(dossiers).where(dossiers.c.code == sa.bindparam("ref"))
_INSERT_DOSSIER = dossiers.insert()
_UPDATE_DOSSIER = dossiers.update().where(
    dossiers.c.id == sa.bindparam("b_id"),
    dossiers.c.version == sa.bindparam("b_expected"),
)
_CHAIN_HEAD = sa.select(chain_head.c.seq, chain_head.c.mac).where(chain_head.c.id == 1)
_CHAIN_HEAD_LOCKED = _CHAIN_HEAD.with_for_update()
_CLAIM_SKIPPING = sa.text(
    "SELECT set_config('synchronous_commit', 'off', true) AS lazy, h.seq, h.mac, e.id, "
    "e.mac AS event_mac FROM chain_head AS h LEFT JOIN LATERAL (SELECT id, mac FROM events "
    "WHERE seq IS NULL ORDER BY id LIMIT :b_limit) AS e ON true WHERE h.id = 1 "
    "FOR UPDATE OF h SKIP LOCKED"
)
"""PostgreSQL, an opportunistic sealer: lock the head unless another sealer holds it, read a
batch of unsealed events, in one statement; and commit without waiting for the disk.

Sealing is derived from durable events and redone if lost: a server crash can undo the
newest such batches (their events are sealed again, perhaps in another order), never a
checkpoint, whose waiting sealer commits durably and so flushes every batch before it.
"""
_HEAD_AND_BACKLOG = sa.select(
    chain_head.c.seq,
    chain_head.c.mac,
    sa.select(events.c.id)
    .where(events.c.seq.is_(None))
    .limit(1)
    .scalar_subquery()
    .label("backlog"),
).where(chain_head.c.id == 1)
_UNSEALED = (
    sa.select(events.c.id, events.c.mac)
    .where(events.c.seq.is_(None))
    .order_by(events.c.id)
    .limit(sa.bindparam("b_limit"))
)
_SEAL_ONE = (
    events.update()
    .where(events.c.id == sa.bindparam("b_id"), events.c.seq.is_(None))
    .values(seq=sa.bindparam("b_seq"), chain_mac=sa.bindparam("b_mac"))
)
_SEAL_MANY = sa.text(
    "WITH sealed AS (UPDATE events SET seq = v.seq, chain_mac = v.mac "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:seqs AS bigint[]), CAST(:macs AS text[])) "
    "AS v(id, seq, mac) WHERE events.id = v.id AND events.seq IS NULL RETURNING 1), "
    "moved AS (UPDATE chain_head SET seq = :b_seq, mac = :b_mac WHERE id = 1) "
    "SELECT count(*) FROM sealed"
)
"""PostgreSQL: a batch of seals and the head moved, in one statement; counts what it sealed."""
_INSERT_EVENT = events.insert()
_MOVE_HEAD = (
    chain_head.update()
    .where(chain_head.c.id == 1)
    .values(seq=sa.bindparam("b_seq"), mac=sa.bindparam("b_mac"))
)
_COMMAND = sa.select(commands).where(commands.c.id == sa.bindparam("b_id"))
_INSERT_COMMAND = commands.insert()
_INSERT_OUTBOX = outbox.insert()
_DUE_TIMERS = (
    sa.select(timers)
    .where(timers.c.active.is_(True), timers.c.due_at <= sa.bindparam("b_now"))
    .order_by(timers.c.due_at, timers.c.id)
    .limit(sa.bindparam("b_limit"))
)
_CLAIM_TIMER = (
    timers.update()
    .where(timers.c.id == sa.bindparam("b_id"), timers.c.active.is_(True))
    .values(active=False, fired_at=sa.bindparam("b_now"))
)
_CLAIM_TIMER_SKIP_LOCKED = (
    timers.update()
    .where(
        timers.c.id
        == sa.select(timers.c.id)
        .where(timers.c.id == sa.bindparam("b_id"), timers.c.active.is_(True))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(active=False, fired_at=sa.bindparam("b_now"))
)


def _stored(row: Row[Any]) -> StoredEvent:
    return StoredEvent(row.seq, row.dossier_id, row.version, row.body, row.mac, row.chain_mac)


def _unique_violation(exc: IntegrityError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code == "23505" or "unique constraint" in str(exc.orig).lower()


_BUSY_STATES = frozenset({"40001", "40P01", "55P03", "57014"})
"""PostgreSQL: serialization failure, deadlock, lock not available, statement timeout."""
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})
"""PostgreSQL: the server ended the session (terminated, crashed, shutting down)."""


def _translate(exc: DBAPIError) -> DvcflowError:
    state = getattr(exc.orig, "sqlstate", None)
    text = str(exc.orig).lower()
    if state in _BUSY_STATES or (
        state is None and ("locked" in text or "busy" in text or "deadlock" in text)
    ):
        return ConcurrencyError(f"the database is busy: {exc.orig}; retry the command")
    if exc.connection_invalidated or state in _LOST_STATES or (state or "").startswith("08"):
        # The pool drops the dead connection; a retry gets a fresh one. A command lost during
        # its commit may have been written: a retry with the same command_id returns it.
        return ConcurrencyError(
            f"the database connection was lost: {exc.orig}; retry the command "
            "(with the same command_id)"
        )
    if isinstance(exc, OperationalError):
        return StoreUnavailableError(f"the database is unreachable: {exc.orig}")
    return StoreUnavailableError(f"database error: {exc.orig}")


def _check_server_version(info: Sequence[int | str] | None) -> None:
    """Refuse a PostgreSQL server older than `MIN_POSTGRESQL`, before anything is written."""
    major = info[0] if info else None
    if isinstance(major, int) and major < MIN_POSTGRESQL:
        have = ".".join(str(part) for part in info or ())
        raise StoreUnavailableError(
            f"PostgreSQL {have} is older than the oldest supported, {MIN_POSTGRESQL}: "
            "upgrade the server"
        )


def default_key_path(store: Store) -> Path | None:
    """Where the embedded default keeps its history key: beside the SQLite file."""
    path = store.database_path
    return None if path is None else path.with_name(path.name + ".key")


KEY_BYTES = 32
"""The size of the embedded default's random history key."""


def read_or_create_key(path: Path) -> tuple[bytes, bool]:
    """The key in ``path``, creating a random one (owner-only) when there is none.

    Several processes opening a new database at once all end up with the same key: the file
    is written in full under a temporary name, then linked into place only if still absent.

    Returns:
        The key and whether it was just created.

    Raises:
        ConfigurationError: the file does not hold a key (64 hex digits).
        OSError: the file cannot be read or written.
    """
    if path.exists():
        return _read_key(path), False
    key = os.urandom(KEY_BYTES)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_key(path), False
    finally:
        temporary.unlink(missing_ok=True)
    return key, True


def _read_key(path: Path) -> bytes:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        # Never guess: a wrong key would make every history look tampered with.
        raise ConfigurationError(
            [
                Problem(
                    str(path),
                    "",
                    f"not a history key (want {2 * KEY_BYTES} hex digits); restore the file "
                    "this database was written with",
                )
            ],
        )
    return key
