"""The outbox worker on SQLite and PostgreSQL: delivery, backoff, incidents, leases, threads."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from dvcflow import (
    Actor,
    Catalog,
    Config,
    Engine,
    FrozenClock,
    InvalidValueError,
    Message,
    NotFoundError,
    Provider,
    RefusedError,
    hookimpl,
)
from dvcflow.plugins import FakeBackend
from pg import Database
from support import drive

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
FAKE = {
    "providers": {"fake": {"type": "fake"}},
    "routing": {"payment": "fake", "notification": "fake", "delivery": "fake"},
}
HOUSEHOLD = "2.000575"


class Crashing:
    """A notification plugin with a bug: it raises something that is not a BackendError."""

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        return ["crashing"]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        return [] if provider.type == "crashing" else None

    @hookimpl
    def dvcflow_send_message(self, provider: Provider, message: Message) -> None:
        if provider.type == "crashing":
            raise KeyError(message.event)


def open_engine(
    db: Database, catalog: Catalog, config: dict[str, Any], plugins: list[object] | None = None
) -> tuple[Engine, FrozenClock]:
    clock = FrozenClock(NOW)
    options = db.options({"config": Config.from_data(config)})
    engine = Engine.open(db.url, catalog=catalog, clock=clock, plugins=plugins or [], **options)
    return engine, clock


@pytest.fixture
def setup(db: Database, catalog: Catalog) -> Iterator[tuple[Engine, FrozenClock, FakeBackend]]:
    engine, clock = open_engine(db, catalog, FAKE | {"worker": {"max_attempts": 3}})
    try:
        yield engine, clock, engine.backends.plugin(FakeBackend)
    finally:
        engine.close()


def walk(engine: Engine, clock: FrozenClock, catalog: Catalog) -> str:
    """A household business dossier from intake to its returned result; its id."""
    return drive(engine, clock, catalog.get(HOUSEHOLD)).id


def effect_of(message_key: str) -> str:
    """The effect a message was sent for (its key without the channel)."""
    return message_key.rsplit(":", 1)[0]


def one_effect(engine: Engine, clock: FrozenClock, catalog: Catalog) -> str:
    """Deliver a dossier's effects so far, then queue exactly one more (a reassignment)."""
    dossier = drive(engine, clock, catalog.get(HOUSEHOLD), stop_after="processing")
    no_jitter(engine).drain()
    head = Actor.staff("head-1", roles={"department_head"}, agency="UBND-XA.002")
    engine.fire(dossier.id, "reassign", actor=head, payload={"specialist": "s-2"})
    (pending,) = [item for item in engine.outbox.items() if item.status == "pending"]
    return pending.key


def no_jitter(engine: Engine, **options: Any):
    return engine.outbox.worker(random_unit=lambda: 0.5, **options)


class TestDelivery:
    def test_every_effect_reaches_its_back_end_once(self, setup, catalog: Catalog):
        """A drained outbox: each effect sent once with its key, every row done."""
        engine, clock, fake = setup
        dossier = walk(engine, clock, catalog)
        items = engine.outbox.items(dossier)
        report = no_jitter(engine).drain()
        assert (report.claimed, report.done, report.incidents) == (len(items), len(items), 0)
        assert {item.status for item in engine.outbox.items(dossier)} == {"done"}
        assert {effect_of(key) for key in fake.applied} == {item.key for item in items}
        assert set(fake.applied.values()) == {1}
        events = [m.event for m in fake.messages]
        assert {"received", "result_ready", "result_returned", "form_01"} <= set(events)
        assert all(m.dossier_code for m in fake.messages)
        assert no_jitter(engine).drain().claimed == 0

    def test_keys_carry_no_personal_data(self, setup, catalog: Catalog):
        """Idempotency keys and notification data name the dossier, never the applicant."""
        engine, clock, fake = setup
        walk(engine, clock, catalog)
        no_jitter(engine).drain()
        sent = repr([(m.key, m.reference, dict(m.data)) for m in fake.messages])
        for personal in ("001099012345", "Nguyễn", "0912345678", "an@example.vn"):
            assert personal not in sent


class TestRetries:
    def test_backoff_doubles_and_the_effect_lands_once(self, setup, catalog: Catalog):
        """Two failures, retried after 2 s and 4 s, then delivered; applied once."""
        engine, clock, fake = setup
        one_effect(engine, clock, catalog)
        fake.fail_next("send_message", 2)
        worker = no_jitter(engine, name="w-1")
        first = worker.drain()
        assert first.retried == 1
        (failing,) = [i for i in engine.outbox.items() if i.status == "pending"]
        assert failing.attempts == 1
        assert failing.next_attempt_at == clock.now() + dt.timedelta(seconds=2)
        assert failing.last_error == "fake send_message failure"
        assert worker.drain().claimed == 0  # not due yet
        clock.advance(dt.timedelta(seconds=2))
        assert worker.drain().retried == 1
        (again,) = [i for i in engine.outbox.items() if i.status == "pending"]
        assert again.next_attempt_at == clock.now() + dt.timedelta(seconds=4)
        clock.advance(dt.timedelta(seconds=4))
        assert worker.drain().done == 1
        assert [key for key in fake.applied if effect_of(key) == failing.key] != []
        assert set(fake.applied.values()) == {1}
        assert engine.outbox.counts() == {"done": len(engine.outbox.items())}

    def test_jitter_and_ceiling(self, setup):
        """Delays grow by doubling with ±50 % jitter and never pass max_backoff_s."""
        engine, _, _ = setup
        low = engine.outbox.worker(random_unit=lambda: 0.0)
        high = engine.outbox.worker(random_unit=lambda: 0.999)
        assert low.backoff(1) == dt.timedelta(seconds=1)
        assert high.backoff(3).total_seconds() == pytest.approx(8 * 1.499)
        assert high.backoff(40).total_seconds() == pytest.approx(3600 * 1.499)


class TestIncidents:
    def test_attempts_run_out_then_an_operator_retries(self, setup, catalog: Catalog):
        """After max_attempts the effect is an incident; retried, it is delivered."""
        engine, clock, fake = setup
        one_effect(engine, clock, catalog)
        fake.fail_next("send_message", 3)
        worker = no_jitter(engine)
        for _ in range(3):
            worker.drain()
            clock.advance(dt.timedelta(minutes=1))
        (incident,) = engine.outbox.incidents()
        assert (incident.status, incident.attempts, incident.kind) == ("open", 3, "notify")
        assert incident.error == "fake send_message failure"
        assert engine.outbox.counts()["incident"] == 1
        retried = engine.outbox.retry(incident.id, actor="ops-1", note="gateway back")
        assert (retried.status, retried.resolved_by, retried.note) == (
            "retried",
            "ops-1",
            "gateway back",
        )
        assert worker.drain().done == 1
        assert [effect_of(key) for key in fake.applied].count(incident.effect) == 1
        assert engine.outbox.incidents() == []
        assert [i.status for i in engine.outbox.incidents(status=None)] == ["retried"]
        with pytest.raises(RefusedError, match="is retried"):
            engine.outbox.retry(incident.id, actor="ops-1")

    def test_a_hopeless_failure_is_an_incident_at_once(self, setup, catalog: Catalog):
        """A failure marked not retryable skips the backoff."""
        engine, clock, fake = setup
        one_effect(engine, clock, catalog)
        fake.fail_next("send_message", retryable=False)
        assert no_jitter(engine).drain().incidents == 1
        (incident,) = engine.outbox.incidents()
        assert incident.attempts == 1

    def test_skip_needs_a_reason(self, setup, catalog: Catalog):
        """Skipping gives an effect up for good, and says why."""
        engine, clock, fake = setup
        one_effect(engine, clock, catalog)
        fake.fail_next("send_message", retryable=False)
        no_jitter(engine).drain()
        (incident,) = engine.outbox.incidents()
        with pytest.raises(InvalidValueError, match="note"):
            engine.outbox.skip(incident.id, actor="ops-1", note=" ")
        skipped = engine.outbox.skip(incident.id, actor="ops-1", note="applicant called instead")
        assert skipped.status == "skipped"
        assert engine.outbox.counts().get("skipped") == 1
        assert no_jitter(engine).drain().claimed == 0
        with pytest.raises(NotFoundError):
            engine.outbox.retry(10_000, actor="ops-1")

    def test_no_provider_configured(self, db: Database, catalog: Catalog):
        """Effects of a family without a provider become incidents naming the missing routing."""
        engine, clock = open_engine(db, catalog, {})
        try:
            walk(engine, clock, catalog)
            report = no_jitter(engine).drain()
            assert report.incidents == report.claimed > 0
            errors = {i.error for i in engine.outbox.incidents()}
            assert errors == {
                (
                    f"no notification provider is configured for procedure {HOUSEHOLD} at "
                    'UBND-XA.002: add [routing] notification = "<provider>"'
                )
            }
        finally:
            engine.close()

    def test_a_plugin_bug_is_retried_as_a_technical_failure(self, db: Database, catalog: Catalog):
        """An exception that is not a BackendError is retried, with its type in the error."""
        config = {"providers": {"c": {"type": "crashing"}}, "routing": {"notification": "c"}}
        engine, clock = open_engine(db, catalog, config, [Crashing()])
        try:
            walk(engine, clock, catalog)
            report = no_jitter(engine).drain()
            assert report.retried == report.claimed > 0
            assert {i.last_error for i in engine.outbox.items()} >= {"KeyError: 'received'"}
        finally:
            engine.close()


class TestPurge:
    def test_old_deliveries_are_purged_incidents_kept(self, setup, catalog: Catalog):
        """Purging deletes delivered rows older than asked; pending and incident rows stay."""
        engine, clock, fake = setup
        one_effect(engine, clock, catalog)
        fake.fail_next("send_message", retryable=False)
        no_jitter(engine).drain()
        delivered = engine.outbox.counts()["done"]
        assert engine.outbox.purge(older_than=dt.timedelta(days=1)) == 0
        clock.advance(dt.timedelta(days=2))
        assert engine.outbox.purge(older_than=dt.timedelta(days=1)) == delivered
        assert engine.outbox.counts() == {"incident": 1}
        with pytest.raises(InvalidValueError):
            engine.outbox.purge(older_than=dt.timedelta(days=-1))


class TestLeases:
    def test_a_claimed_row_waits_for_its_lease(self, setup, catalog: Catalog):
        """Rows claimed by a worker that vanished are claimed again only after the lease."""
        engine, clock, fake = setup
        walk(engine, clock, catalog)
        ledger, lease = engine.store.ledger, dt.timedelta(seconds=engine.config.worker.lease_s)
        with engine.store.transaction() as connection:
            lost = ledger.claim(
                connection, now=clock.now(), lease_until=clock.now() + lease, worker="gone", limit=3
            )
        worker = no_jitter(engine)
        report = worker.drain()
        assert report.claimed == len(engine.outbox.items()) - 3
        assert {row.key for row in lost}.isdisjoint(effect_of(key) for key in fake.applied)
        clock.advance(lease)
        assert worker.drain().done == 3
        assert set(fake.applied.values()) == {1}
        claimed_twice = {item.id for item in engine.outbox.items() if item.attempts == 2}
        assert claimed_twice == {row.id for row in lost}


class TestThreads:
    def test_concurrent_claimers_never_share_a_row(self, setup, catalog: Catalog):
        """Four threads running workers at once: every effect once, every row done."""
        engine, clock, fake = setup
        for _ in range(5):
            walk(engine, clock, catalog)
        workers = [engine.outbox.worker(settings=engine.config.worker) for _ in range(4)]
        reports = []
        errors: list[BaseException] = []

        def run(worker) -> None:
            try:
                reports.append(worker.run(once=True, concurrency=1))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        items = engine.outbox.items()
        assert sum(r.done for r in reports) == len(items)
        assert {effect_of(key) for key in fake.applied} == {item.key for item in items}
        assert set(fake.applied.values()) == {1}
        assert len([call for call in fake.calls if call[0] == "send_message"]) == len(
            [i for i in items if i.kind in {"notify", "issue_document"}]
        )
