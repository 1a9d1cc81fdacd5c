"""PostgreSQL only: connection handling, timeouts, pool settings, bad servers, SKIP LOCKED claims.

Everything else of the engine runs on both back ends through the ``db`` fixture (see
``tests/test_engine.py``, ``tests/test_history.py`` and ``tests/test_engine_processes.py``).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from dvcflow import (
    Catalog,
    Channel,
    ConcurrencyError,
    Config,
    Engine,
    FrozenClock,
    SchemaError,
    StoreUnavailableError,
    retry,
)
from dvcflow._store import MIN_POSTGRESQL, _check_server_version
from pg import ENVIRON, KEY_ENV, SCRAM_ROLE, Cluster, Database
from support import AN, FORM, HEAD, OFFICER, START


@pytest.fixture
def admin(pg_url: str) -> Iterator[Database]:
    """Raw SQL on the test's database, outside dvcflow."""
    database = Database("postgresql", pg_url)
    yield database
    database.close()


@pytest.fixture
def opened(pg_url: str, catalog: Catalog) -> Iterator[Any]:
    """Open engines on the test's PostgreSQL database; all closed after."""
    engines: list[Engine] = []

    def open_engine(**settings: Any) -> Engine:
        config = Config(history_key_env=KEY_ENV, **settings)
        engine = Engine.open(
            pg_url, catalog=catalog, config=config, environ=ENVIRON, clock=FrozenClock(START)
        )
        engines.append(engine)
        return engine

    yield open_engine
    for engine in engines:
        engine.close()


def started(engine: Engine) -> str:
    """A dossier received and started; its id."""
    snapshot = engine.submit(
        "2.000575",
        applicant=AN,
        actor=OFFICER,
        channel=Channel.IN_PERSON,
        form=FORM,
        documents=["application"],
        fees_collected=True,
    )
    engine.fire(snapshot.id, "start", actor=HEAD, payload={"specialist": "first"})
    return snapshot.id


def terminate_others(admin: Database) -> int:
    """Kill every other session on the database (as a failover or an admin would)."""
    ((killed,),) = admin.rows(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return int(killed)


def assign(engine: Engine, dossier: str, specialist: str, command: str | None = None) -> int:
    """Assign the dossier; its new version."""
    return engine.fire(
        dossier, "assign", actor=HEAD, payload={"specialist": specialist}, command_id=command
    ).version


class TestDroppedConnections:
    def test_connection_killed_between_commands_is_recovered(
        self, opened: Any, admin: Database
    ) -> None:
        """pg_terminate_backend on the engine's pooled connections: the next command works."""
        engine = opened()
        dossier = started(engine)
        assert terminate_others(admin) >= 1
        assert retry(lambda: assign(engine, dossier, "after-kill", "c-1")) == 3
        assert engine.get(dossier).dossier.assignee == "after-kill"
        assert engine.verify_history(dossier, checkpoint=engine.checkpoint()) == 3

    def test_connection_killed_mid_transaction_is_a_retryable_concurrency_error(
        self, opened: Any, admin: Database
    ) -> None:
        """Lost inside a transaction: ConcurrencyError, nothing written, retry() recovers."""
        engine = opened()
        dossier = started(engine)
        with (  # noqa: PT012 - the loss happens inside the transaction
            pytest.raises(ConcurrencyError, match="connection was lost"),
            engine.store.transaction() as connection,
        ):
            engine.store.update_dossier(
                connection, dossier, 2, {"version": 3, "state": "lost", "updated_at": START}
            )
            terminate_others(admin)
            connection.execute(sa.text("SELECT 1"))
        assert engine.get(dossier).version == 2
        calls = []

        def once_killed() -> int:
            calls.append(1)
            if len(calls) == 1:
                # The first attempt loses its connection in the middle of the command.
                with engine.store.transaction() as connection:
                    terminate_others(admin)
                    connection.execute(sa.text("SELECT 1"))
            return assign(engine, dossier, "retried", "c-2")

        assert retry(once_killed, backoff=0.001) == 3
        assert len(calls) == 2
        assert [event.trigger for event in engine.history(dossier)] == [
            "receive",
            "start",
            "assign",
        ]


class TestSettings:
    def test_statement_timeout_and_pool_size_are_applied(self, opened: Any) -> None:
        """The configured statement timeout is every connection's; the pool has its size."""
        engine = opened(statement_timeout_ms=1234, pool_size=3)
        with engine.store.connect() as connection:
            assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "1234ms"
        assert engine.store.engine.pool.size() == 3  # type: ignore[attr-defined]

    def test_a_command_past_the_statement_timeout_is_busy_then_retried(
        self, opened: Any, admin: Database
    ) -> None:
        """A row locked by someone else past the timeout: ConcurrencyError, nothing written."""
        engine = opened(statement_timeout_ms=200)
        dossier = started(engine)
        with admin.engine.connect() as blocker:
            blocker.execute(
                sa.text("SELECT id FROM dossiers WHERE id = :d FOR UPDATE"), {"d": dossier}
            )
            began = time.monotonic()
            with pytest.raises(ConcurrencyError, match="busy"):
                assign(engine, dossier, "blocked")
            assert time.monotonic() - began < 5
            blocker.rollback()
        assert engine.get(dossier).version == 2
        assert retry(lambda: assign(engine, dossier, "later")) == 3


class TestBadServers:
    def test_unreachable_server_is_unavailable_and_says_what_to_check(
        self, catalog: Catalog
    ) -> None:
        """Nothing listens on the port: StoreUnavailableError naming the server, no hang."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"postgresql+psycopg://nobody:secret@127.0.0.1:{port}/dvcflow"
        with pytest.raises(StoreUnavailableError, match=r"server running") as caught:
            Engine.open(
                url, catalog=catalog, config=Config(history_key_env=KEY_ENV), environ=ENVIRON
            )
        assert "secret" not in str(caught.value)
        assert f"127.0.0.1:{port}" in str(caught.value)

    def test_wrong_password_is_unavailable_and_names_the_credentials(
        self, pg_cluster: Cluster, pg_url: str, catalog: Catalog, admin: Database
    ) -> None:
        """A refused password: StoreUnavailableError about the user name and password."""
        admin.execute(f"CREATE ROLE {SCRAM_ROLE} LOGIN PASSWORD 'right'")
        try:
            url = sa.make_url(pg_url).set(username=SCRAM_ROLE, password="wrong")  # noqa: S106
            with pytest.raises(StoreUnavailableError, match="user name and password"):
                Engine.open(
                    url.render_as_string(hide_password=False),
                    catalog=catalog,
                    config=Config(history_key_env=KEY_ENV),
                    environ=ENVIRON,
                )
            assert admin.tables() == []
        finally:
            admin.close()
            pg_cluster.execute(f"DROP ROLE {SCRAM_ROLE}")

    def test_missing_database_is_unavailable_and_says_create_it(
        self, pg_cluster: Cluster, catalog: Catalog
    ) -> None:
        """A database that does not exist: StoreUnavailableError saying to create it."""
        with pytest.raises(StoreUnavailableError, match="create the database"):
            Engine.open(
                pg_cluster.url("no_such_database"),
                catalog=catalog,
                config=Config(history_key_env=KEY_ENV),
                environ=ENVIRON,
            )

    def test_missing_history_key_writes_nothing(
        self, pg_url: str, catalog: Catalog, admin: Database
    ) -> None:
        """PostgreSQL without a configured key: ConfigurationError before any table exists."""
        with pytest.raises(Exception, match="history key"):
            Engine.open(pg_url, catalog=catalog)
        assert admin.tables() == []

    def test_newer_schema_is_refused_and_untouched(
        self, opened: Any, pg_url: str, admin: Database
    ) -> None:
        """A revision from a newer dvcflow: SchemaError, the tables as they were."""
        opened().close()
        admin.execute("UPDATE alembic_version SET version_num = '0042_future'")
        before = admin.rows("SELECT count(*) FROM procedure_versions")
        with pytest.raises(SchemaError, match="newer"):
            Engine.open(pg_url, config=Config(history_key_env=KEY_ENV), environ=ENVIRON)
        assert admin.rows("SELECT count(*) FROM procedure_versions") == before

    def test_the_real_servers_version_passes_the_check(self, opened: Any, admin: Database) -> None:
        """The server the tests run on reports its version to the check, which lets it pass."""
        engine = opened()
        ((number,),) = admin.rows("SHOW server_version_num")
        info = engine.store.engine.dialect.server_version_info
        assert info is not None
        assert info[0] == int(number) // 10000 >= MIN_POSTGRESQL
        _check_server_version(info)

    def test_a_server_reporting_an_older_version_is_refused_before_any_write(
        self, pg_url: str, admin: Database
    ) -> None:
        """The real server made to answer version() as 13.16: refused by name, nothing written.

        ``pg_catalog.version()`` is what SQLAlchemy asks; it is replaced in this test's
        database only (a superuser may, with ``allow_system_table_mods``).
        """
        admin.execute(
            "SET allow_system_table_mods = on",
            "CREATE OR REPLACE FUNCTION pg_catalog.version() RETURNS text LANGUAGE sql AS "
            "$$ SELECT 'PostgreSQL 13.16 on x86_64-pc-linux-gnu, compiled by gcc' $$",
        )
        with pytest.raises(
            StoreUnavailableError,
            match=rf"PostgreSQL 13\.16 is older than the oldest supported, {MIN_POSTGRESQL}: "
            "upgrade the server",
        ):
            Engine.open(pg_url, config=Config(history_key_env=KEY_ENV), environ=ENVIRON)
        assert admin.tables() == []

    @pytest.mark.parametrize(("version", "refused"), [((13, 16), True), ((14, 0), False)])
    def test_server_older_than_supported_is_refused(self, version: Any, refused: bool) -> None:
        """The version check run before anything is written (the server's own version passes)."""
        if refused:
            with pytest.raises(StoreUnavailableError, match=f"oldest supported, {MIN_POSTGRESQL}"):
                _check_server_version(version)
        else:
            _check_server_version(version)


class TestCommandPath:
    def test_a_command_is_a_read_and_one_write_statement_compiled_once(self, opened: Any) -> None:
        """Round trips are the cost on a server: a reassign sends two statements, both cached.

        (With no sealing due: the engine sealed moments ago.)
        """
        engine = opened(seal_interval_ms=60_000)
        dossier = started(engine)
        assign(engine, dossier, "warm-up")
        sent: list[tuple[str, bool]] = []

        def record(_conn: Any, _cursor: Any, statement: str, *rest: Any) -> None:
            context = rest[1]
            sent.append(
                (statement.split(maxsplit=1)[0], context.cache_hit == context.dialect.CACHE_HIT)
            )

        sa.event.listen(engine.store.engine, "after_cursor_execute", record)
        try:
            for number in range(3):
                assign(engine, dossier, f"cv-{number}")
        finally:
            sa.event.remove(engine.store.engine, "after_cursor_execute", record)
        assert sent == [("SELECT", True), ("WITH", True)] * 3


class TestSweeperClaims:
    def test_a_timer_another_sweeper_holds_is_skipped_not_waited_for(
        self, opened: Any, admin: Database
    ) -> None:
        """FOR UPDATE SKIP LOCKED: a locked timer is passed over at once, fired on a later tick."""
        engine = opened(statement_timeout_ms=5000)
        dossiers = [started(engine) for _ in range(2)]
        later = START + dt.timedelta(days=60)
        with admin.engine.connect() as other:
            locked = other.execute(
                sa.text(
                    "SELECT id FROM timers WHERE dossier_id = :d AND active ORDER BY id "
                    "LIMIT 1 FOR UPDATE"
                ),
                {"d": dossiers[0]},
            ).scalar_one()
            began = time.monotonic()
            fired = engine.tick(later)
            assert time.monotonic() - began < 2
            other.rollback()
        with engine.store.connect() as connection:
            left = [row.id for row in engine.store.due_timers(connection, later, 100)]
        assert left == [locked]
        assert len(engine.tick(later)) == 1
        assert len(fired) >= 1
        assert engine.tick(later) == []
