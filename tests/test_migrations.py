"""Schema migrations: a database written at revision 0001 upgrades with its history intact."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dvcflow import Actor, Checkpoint, Config, Engine, FrozenClock, TamperedHistoryError
from dvcflow._schema import metadata
from dvcflow._store import Store
from pg import Database
from support import migrations_head

HISTORY_0001 = Path(__file__).parent / "data" / "history_0001.json"
"""Rows written by dvcflow at revision 0001 (see ``data/make_history_0001.py``)."""
KEY_ENV = "DVCFLOW_0001_KEY"
ORDER = (
    "procedure_versions",
    "applicants",
    "dossiers",
    "payloads",
    "events",
    "chain_head",
    "commands",
    "outbox",
    "timers",
    "code_sequences",
)
HEAD = Actor.staff("head-1", roles={"department_head"}, agency="UBND-XA.002")
LATER = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def saved() -> dict[str, Any]:
    """The rows of the 0001 database, its key and the checkpoint printed before it was closed."""
    data: dict[str, Any] = json.loads(HISTORY_0001.read_text(encoding="utf-8"))
    return data


def ids(saved: dict[str, Any]) -> list[str]:
    """The saved dossiers' ids, in the order they were received."""
    return [row["id"] for row in sorted(saved["dossiers"], key=lambda row: row["code"])]


def at_revision(db: Database, revision: str) -> None:
    """Create (or move) the schema to ``revision`` with dvcflow's own migrations."""
    store = Store(db.url)
    try:
        with store.connect(read=False) as connection:
            command.upgrade(store._alembic(connection), revision)
            connection.commit()
    finally:
        store.close()


def load(db: Database, rows: dict[str, Any]) -> None:
    """Insert the saved rows into a database at revision 0001, as 0001 wrote them."""
    at_revision(db, "0001")
    tables = sa.MetaData()
    with db.engine.begin() as connection:
        tables.reflect(connection)
        for name in ORDER:
            table = tables.tables[name]
            instants = {c.name for c in table.columns if isinstance(c.type, sa.DateTime)}
            values = [
                {
                    column: dt.datetime.fromisoformat(cell) if column in instants and cell else cell
                    for column, cell in row.items()
                }
                for row in rows[name]
            ]
            if values:
                connection.execute(table.insert(), values)
        if db.dialect == "postgresql":
            # Rows inserted with their ids leave the serial counters behind, unlike 0001 itself.
            for name in ("outbox", "timers"):
                counter = f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id))"
                connection.execute(sa.text(f"{counter} FROM {name}"))


@pytest.fixture
def upgraded(db: Database, saved: dict[str, Any]) -> Iterator[Engine]:
    """The 0001 database opened by this dvcflow, which upgrades it to head."""
    load(db, saved)
    engine = Engine.open(
        db.url,
        config=Config(history_key_env=KEY_ENV),
        environ={KEY_ENV: saved["key"]},
        clock=FrozenClock(LATER),
    )
    yield engine
    engine.close()


def drift(db: Database) -> list[Any]:
    """What differs between the database's schema and the tables dvcflow declares."""
    with db.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


class TestFrom0001:
    def test_data_is_intact_and_every_history_verifies(
        self, upgraded: Engine, db: Database, saved: dict[str, Any]
    ) -> None:
        """Every row survives; events keep their numbers, bodies and MACs and verify."""
        assert db.rows("SELECT version_num FROM alembic_version") == [(migrations_head(),)]
        for table in ORDER:
            assert len(db.rows(f"SELECT * FROM {table}")) == len(saved[table]), table  # noqa: S608
        stored = db.rows("SELECT id, seq, dossier_id, version, body, mac, chain_mac FROM events")
        assert sorted(stored) == sorted(
            (e["seq"], e["seq"], e["dossier_id"], e["version"], e["body"], e["mac"], e["chain_mac"])
            for e in saved["events"]
        )
        checkpoint = Checkpoint.parse(saved["checkpoint"])
        assert upgraded.checkpoint() == checkpoint
        for dossier in ids(saved):
            version = upgraded.get(dossier).version
            assert upgraded.verify_history(dossier, checkpoint=checkpoint) == version
            history = upgraded.history(dossier)
            assert all(event.seq is not None for event in history)
        assert all('"seq":' in event["body"] for event in saved["events"])

    def test_the_chains_go_on_after_the_upgrade(
        self, upgraded: Engine, db: Database, saved: dict[str, Any]
    ) -> None:
        """A new event follows the old ones in both chains; recorded commands still answer."""
        old = Checkpoint.parse(saved["checkpoint"])
        dossier = ids(saved)[1]
        again = upgraded.fire(
            dossier, "assign", actor=HEAD, payload={"specialist": "cv-9"}, command_id="c-9"
        )
        assert again.version == 3
        snapshot = upgraded.fire(dossier, "assign", actor=HEAD, payload={"specialist": "cv-10"})
        assert snapshot.version == 4
        checkpoint = upgraded.checkpoint()
        assert checkpoint.seq == old.seq + 1
        ((seq, body),) = db.rows(
            "SELECT seq, body FROM events WHERE dossier_id = ? AND version = 4", dossier
        )
        assert seq == old.seq + 1
        assert '"seq":' not in body
        assert upgraded.verify_history(dossier, checkpoint=checkpoint) == 4
        assert upgraded.verify_history(dossier, checkpoint=old) == 4

    def test_tampering_with_an_upgraded_history_is_named(
        self, upgraded: Engine, db: Database, saved: dict[str, Any]
    ) -> None:
        """An old event edited after the upgrade is named as before."""
        dossier = ids(saved)[0]
        ((seq, body),) = db.rows(
            "SELECT seq, body FROM events WHERE dossier_id = ? AND version = 2", dossier
        )
        db.execute(
            ("UPDATE events SET body = ? WHERE seq = ?", (body.replace("cv-0", "cv-7"), seq))
        )
        with pytest.raises(TamperedHistoryError, match=rf"event 2 \(seq {seq}\) was edited"):
            upgraded.verify_history(dossier)

    @pytest.mark.usefixtures("upgraded")
    def test_the_upgraded_schema_is_the_declared_one(self, db: Database) -> None:
        """Columns, keys and indexes of the upgraded database match dvcflow's tables."""
        assert drift(db) == []

    def test_downgrade_and_upgrade_again_keep_the_history(
        self, db: Database, saved: dict[str, Any]
    ) -> None:
        """Down to 0001 and back: the events and their chain are unchanged."""
        load(db, saved)
        at_revision(db, "head")
        before = db.rows("SELECT seq, body, mac, chain_mac FROM events ORDER BY seq")
        store = Store(db.url)
        try:
            with store.connect(read=False) as connection:
                command.downgrade(store._alembic(connection), "0001")
                connection.commit()
        finally:
            store.close()
        assert db.rows("SELECT version_num FROM alembic_version") == [("0001",)]
        assert db.rows("SELECT seq, body, mac, chain_mac FROM events ORDER BY seq") == before
        at_revision(db, "head")
        assert db.rows("SELECT seq, body, mac, chain_mac FROM events ORDER BY seq") == before
        assert drift(db) == []


class TestNewDatabase:
    def test_a_new_schema_is_the_declared_one(self, db: Database) -> None:
        """A database created from nothing by the migrations matches dvcflow's tables."""
        at_revision(db, "head")
        assert drift(db) == []
