"""Sealing the database-wide chain after commit: unsealed events, backlogs, checkpoints."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dvcflow import (
    Catalog,
    Channel,
    Checkpoint,
    Config,
    Engine,
    FrozenClock,
    InvalidValueError,
    TamperedHistoryError,
)
from dvcflow._history import GENESIS, chain_mac, verify_chain
from pg import Database
from support import AN, FORM, HEAD, OFFICER, START


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen on a Monday morning in Hanoi."""
    return FrozenClock(START)


@pytest.fixture
def opened(db: Database, catalog: Catalog, clock: FrozenClock) -> Iterator[Callable[..., Engine]]:
    """Open engines whose statements give up after 3 s: a command waiting for a lock fails."""
    engines: list[Engine] = []

    def open_engine(**settings: Any) -> Engine:
        config = Config(statement_timeout_ms=3000, **settings)
        engine = Engine.open(
            db.url, **db.options({"catalog": catalog, "clock": clock, "config": config})
        )
        engines.append(engine)
        return engine

    yield open_engine
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(opened: Callable[..., Engine]) -> Engine:
    """An engine that seals after each command (when no other sealer holds the head)."""
    return opened(seal_interval_ms=0)


def receive(engine: Engine) -> str:
    """A household-business dossier received at the counter; its id."""
    return engine.submit(
        "2.000575",
        applicant=AN,
        actor=OFFICER,
        channel=Channel.IN_PERSON,
        form=FORM,
        documents=["application"],
        fees_collected=True,
    ).id


def assign(engine: Engine, dossier: str, specialist: str) -> int:
    """Start or reassign the dossier; its new version."""
    trigger = "start" if engine.get(dossier).state == "received" else "assign"
    return engine.fire(dossier, trigger, actor=HEAD, payload={"specialist": specialist}).version


@contextlib.contextmanager
def head_held(db: Database) -> Iterator[None]:
    """Another sealer at work: the chain head locked from another session (PostgreSQL)."""
    with db.engine.connect() as connection:
        connection.exec_driver_sql("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")
        yield
        connection.rollback()


def seqs(db: Database) -> list[int | None]:
    """Every event's chain number, by id (insertion order)."""
    return [seq for (seq,) in db.rows("SELECT seq FROM events ORDER BY id")]


def unseal_newest(db: Database, count: int) -> None:
    """Take the newest ``count`` events out of the chain and rewind its head, as if they had
    just been committed and not sealed yet.
    """
    ((total,),) = db.rows("SELECT max(seq) FROM events")
    keep = total - count
    ((mac,),) = db.rows("SELECT chain_mac FROM events WHERE seq = ?", keep) or [(GENESIS,)]
    db.execute(
        ("UPDATE events SET seq = NULL, chain_mac = NULL WHERE seq > ?", (keep,)),
        ("UPDATE chain_head SET seq = ?, mac = ?", (keep, mac)),
    )


def whole_chain(engine: Engine, db: Database) -> tuple[int, str]:
    """The database-wide chain verified from its first event; its head."""
    with engine.store.connect() as connection:
        head = verify_chain(db.key(), engine.store.events_from(connection, 1))
    return head.seq, head.mac


@pytest.fixture
def two(engine: Engine, clock: FrozenClock) -> tuple[str, str]:
    """Dossiers A (4 events) and B (3 events), their events interleaved: A1 B1 A2 B2 A3 B3 A4."""
    a, b = receive(engine), receive(engine)
    for specialist in ("cv-1", "cv-2"):
        clock.advance(dt.timedelta(minutes=30))
        for ref in (a, b):
            assign(engine, ref, specialist)
    assign(engine, a, "cv-3")
    return a, b


class TestUnsealed:
    @pytest.mark.usefixtures("two")
    def test_sealing_after_each_command_numbers_events_in_order(
        self, engine: Engine, db: Database
    ) -> None:
        """With no other sealer about, each command's event is sealed right after it: 1..7."""
        assert seqs(db) == [1, 2, 3, 4, 5, 6, 7]
        assert engine.seal() == 0
        assert whole_chain(engine, db) == (engine.checkpoint().seq, engine.checkpoint().mac)

    def test_a_backlog_verifies_per_dossier_then_seals_to_the_same_chain(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """Unsealed events verify in their dossier's chain; sealed, they get the same places."""
        a, b = two
        saved = engine.checkpoint()
        unseal_newest(db, 4)
        assert engine.verify_history(a) == 4
        assert engine.verify_history(b) == 3
        assert [event.seq for event in engine.history(a)] == [1, 3, None, None]
        assert [event.seq for event in engine.history(b)] == [2, None, None]
        assert engine.seal(batch=3) == 4
        assert seqs(db) == [1, 2, 3, 4, 5, 6, 7]
        assert engine.checkpoint() == saved
        assert engine.verify_history(a, checkpoint=saved) == 4

    def test_a_command_after_a_backlog_is_sealed_after_it(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A new event never takes a number before events that were waiting for theirs."""
        _, b = two
        unseal_newest(db, 3)
        assign(engine, b, "cv-4")
        assert seqs(db)[-4:] == [5, 6, 7, 8]
        assert engine.verify_history(b, checkpoint=engine.checkpoint()) == 4
        assert whole_chain(engine, db)[0] == 8

    @pytest.mark.parametrize("db", ["postgresql"], indirect=True)
    def test_commands_do_not_wait_for_another_sealer(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """With the head locked elsewhere, commands commit unsealed (a wait would time out)."""
        a, b = two
        with head_held(db):
            assert assign(engine, a, "cv-5") == 5
            assert assign(engine, b, "cv-5") == 4
            assert engine.verify_history(a) == 5
            assert engine.verify_history(b) == 4
            assert [event.seq for event in engine.history(a)][-2:] == [7, None]
            assert seqs(db)[-2:] == [None, None]
        assert engine.seal() == 2
        assert seqs(db) == list(range(1, 10))
        assert engine.verify_history(a, checkpoint=engine.checkpoint()) == 5

    @pytest.mark.parametrize("db", ["postgresql"], indirect=True)
    def test_a_checkpoint_covers_every_command_before_it(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """Commands left unsealed are sealed by the checkpoint, which then covers them all."""
        a, b = two
        with head_held(db):
            for n in range(3):
                assign(engine, a, f"cv-{n}")
                assign(engine, b, f"cv-{n}")
        assert seqs(db).count(None) == 6
        checkpoint = engine.checkpoint()
        assert checkpoint.seq == 13
        assert None not in seqs(db)
        assert engine.verify_history(a, checkpoint=checkpoint) == 7
        assert engine.verify_history(b, checkpoint=checkpoint) == 6

    @pytest.mark.parametrize("db", ["postgresql"], indirect=True)
    def test_tick_seals_what_commands_left(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A sweeper's tick seals, even when no timer is due."""
        a, _ = two
        with head_held(db):
            assign(engine, a, "cv-9")
        assert seqs(db)[-1] is None
        assert engine.tick(START) == []
        assert seqs(db) == list(range(1, 9))

    @pytest.mark.parametrize("db", ["postgresql"], indirect=True)
    def test_a_busy_engine_seals_once_per_interval(
        self, opened: Callable[..., Engine], db: Database
    ) -> None:
        """Within ``seal_interval_ms`` of its last sealing an engine's commands leave theirs."""
        engine = opened(seal_interval_ms=60_000)
        a = receive(engine)
        assert seqs(db) == [1]
        assign(engine, a, "cv-1")
        assign(engine, a, "cv-2")
        assert seqs(db) == [1, None, None]
        assert engine.verify_history(a) == 3
        assert engine.checkpoint().seq == 3
        assert seqs(db) == [1, 2, 3]

    @pytest.mark.parametrize("db", ["postgresql"], indirect=True)
    def test_once_the_interval_has_passed_a_command_seals_the_backlog(
        self, opened: Callable[..., Engine], db: Database
    ) -> None:
        """The first command after the interval seals every event waiting, its own included."""
        engine = opened(seal_interval_ms=200)
        a = receive(engine)
        assign(engine, a, "cv-1")
        assert seqs(db) == [1, None]
        time.sleep(0.25)
        assign(engine, a, "cv-2")
        assert seqs(db) == [1, 2, 3]

    @pytest.mark.parametrize("db", ["postgresql"], indirect=True)
    def test_a_checkpoint_waiting_for_another_sealer_finds_its_work_done(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """Another sealer seals the backlog while a checkpoint waits for the head: no conflict.

        The waiting sealer reads the unsealed events only once it has the head, so it sees
        them sealed and reports the other's head.
        """
        a, b = two
        with head_held(db):
            assign(engine, a, "cv-8")
            assign(engine, b, "cv-8")
        key = db.key()
        with db.engine.connect() as other:
            ((seq, mac),) = other.exec_driver_sql(
                "SELECT seq, mac FROM chain_head WHERE id = 1 FOR UPDATE"
            ).all()
            waiting: list[Checkpoint | BaseException] = []

            def checkpoint() -> None:
                try:
                    waiting.append(engine.checkpoint())
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    waiting.append(exc)

            thread = threading.Thread(target=checkpoint)
            thread.start()
            deadline = time.monotonic() + 10
            while not db.rows(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ):
                assert time.monotonic() < deadline, "the checkpoint never waited for the head"
                time.sleep(0.01)
            pending = other.exec_driver_sql(
                "SELECT id, mac FROM events WHERE seq IS NULL ORDER BY id"
            ).all()
            for event_id, event_mac in pending:
                seq, mac = seq + 1, chain_mac(key, seq + 1, event_mac, mac)
                other.exec_driver_sql(
                    "UPDATE events SET seq = %s, chain_mac = %s WHERE id = %s",
                    (seq, mac, event_id),
                )
            other.exec_driver_sql(
                "UPDATE chain_head SET seq = %s, mac = %s WHERE id = 1", (seq, mac)
            )
            other.commit()
            thread.join(timeout=10)
        assert len(pending) == 2
        assert waiting == [Checkpoint(9, mac)]
        assert engine.verify_history(a, checkpoint=waiting[0]) == 5

    @pytest.mark.usefixtures("two")
    def test_batch_must_be_positive(self, engine: Engine) -> None:
        """`seal(batch=0)` is invalid input, not an endless loop."""
        with pytest.raises(InvalidValueError, match="batch"):
            engine.seal(batch=0)


class TestTampered:
    def test_a_removed_chain_number_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A sealed event made to look unsealed: its dossier's later sealed event names it."""
        a, _ = two
        saved = engine.checkpoint()
        db.execute("UPDATE events SET seq = NULL, chain_mac = NULL WHERE seq = 3")
        with pytest.raises(
            TamperedHistoryError,
            match=r"event 3 \(seq 5\) is sealed but event 2 \(unsealed\) is not",
        ):
            engine.verify_history(a)

        db.execute("UPDATE events SET seq = NULL, chain_mac = NULL WHERE seq IN (5, 7)")
        assert engine.verify_history(a) == 4
        with pytest.raises(TamperedHistoryError, match="missing event 3"):
            engine.verify_history(a, checkpoint=saved)

    def test_a_nulled_chain_mac_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A sealed event whose chain MAC was removed is not where the chain put it."""
        a, _ = two
        db.execute("UPDATE events SET chain_mac = NULL WHERE seq = 5")
        with pytest.raises(TamperedHistoryError, match=r"event 3 \(seq 5\) is not where"):
            engine.verify_history(a)
