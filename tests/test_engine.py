"""The engine on a real SQLite file: commands, reads, idempotency, codes, queries, timers."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

import dvcflow
from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Channel,
    CodeFormat,
    CodePeriod,
    CommandConflictError,
    ConcurrencyError,
    Config,
    ConfigurationError,
    DeliveryMethod,
    Dossier,
    DossierSnapshot,
    Duration,
    DurationUnit,
    Engine,
    FrozenClock,
    InvalidValueError,
    NationalStatus,
    NotFoundError,
    PermissionDeniedError,
    ProcedureSpec,
    RefusedError,
    SchemaError,
    StoreUnavailableError,
    TamperedHistoryError,
    Text,
    replay,
    retry,
)
from pg import Database
from support import HALF_HOUR, drive, migrations_head

VN = ZoneInfo("Asia/Ho_Chi_Minh")
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=VN)
"""A Monday morning in Hanoi."""

TABLES = (
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

HOUSEHOLD = "2.000575"
"""Household business registration: level 2, in person or by post, a charge before reception."""
HOUSEHOLD_AGENCY = "UBND-XA.002"
BIRTH = "1.001193"
"""Birth registration: level 4, full-process online."""
CERTIFY = "2.000815"
"""Certified copies: level 1, in person, another agency (UBND-XA.001) than the household one."""
CODE = re.compile(r"^(?P<agency>.+)-(?P<date>\d{8})-(?P<seq>\d{7})$")

AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)
BINH = Applicant(
    ApplicantType.CITIZEN,
    "079188004321",
    "Trần Thị Bình",
    phone="0987654321",
    email="binh@example.vn",
    vneid_verified=True,
)
HOUSEHOLD_FORM = {
    "business_name": "Tạp hóa An",
    "capital_vnd": 50_000_000,
    "business_lines": "bán lẻ",
}
BIRTH_FORM = {
    "child_full_name": "Nguyễn Văn Bé",
    "child_birth_date": "2026-02-20",
    "child_sex": "nam",
    "relationship": "cha",
}


def staff(role: str, agency: str = HOUSEHOLD_AGENCY, name: str | None = None) -> Actor:
    """A staff member of ``agency`` holding one role."""
    return Actor.staff(name or f"{role}-1", roles={role}, agency=agency)


OFFICER = staff("receiving_officer")
HEAD = staff("department_head")
SPECIALIST = staff("specialist")
LEADER = staff("leader")
CITIZEN = Actor.citizen("citizen-1")


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every dvcflow table, read straight from the database."""
    return {table: db.rows(f"SELECT * FROM {table} ORDER BY 1") for table in TABLES}  # noqa: S608


def rows(db: Database, query: str, *args: object) -> list[tuple[Any, ...]]:
    """The rows of one query on the database (``?`` placeholders on both back ends)."""
    return db.rows(query, *args)


def receive(  # noqa: PLR0913 - the parts of an intake, all keyword-only
    engine: Engine,
    *,
    applicant: Applicant = AN,
    actor: Actor = OFFICER,
    channel: Channel = Channel.IN_PERSON,
    command_id: str | None = None,
    form: dict[str, Any] | None = None,
) -> DossierSnapshot:
    """Receive a household-business dossier at the counter, its charge collected."""
    return engine.submit(
        HOUSEHOLD,
        applicant=applicant,
        actor=actor,
        channel=channel,
        form=HOUSEHOLD_FORM if form is None else form,
        documents=["application"],
        fees_collected=True,
        command_id=command_id,
    )


def submit_birth(
    engine: Engine, *, applicant: Applicant = AN, command_id: str | None = None
) -> DossierSnapshot:
    """Submit a birth registration online as the citizen."""
    return engine.submit(
        BIRTH,
        applicant=applicant,
        actor=CITIZEN,
        form=BIRTH_FORM,
        documents=["declaration", "birth_notice"],
        delivery=DeliveryMethod.ELECTRONIC,
        command_id=command_id,
    )


def to_processing(engine: Engine, clock: FrozenClock) -> DossierSnapshot:
    """A household-business dossier received and assigned: in ``processing``."""
    received = receive(engine)
    clock.advance(HALF_HOUR)
    return engine.fire(received.id, "start", actor=HEAD, payload={"specialist": "specialist-1"})


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen on a Monday morning in Hanoi."""
    return FrozenClock(START)


@pytest.fixture
def url(db: Database) -> str:
    """The test database's URL (SQLite file or PostgreSQL database)."""
    return db.url


@pytest.fixture
def opened(db: Database, catalog: Catalog, clock: FrozenClock) -> Iterator[Callable[..., Engine]]:
    """Open engines on the test database (catalogue and clock by default); all closed after."""
    engines: list[Engine] = []

    def open_engine(**options: Any) -> Engine:
        options.setdefault("catalog", catalog)
        options.setdefault("clock", clock)
        engine = Engine.open(db.url, **db.options(options))
        engines.append(engine)
        return engine

    yield open_engine
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(opened: Callable[..., Engine]) -> Engine:
    """An engine on a fresh database with the example catalogue."""
    return opened()


class TestSubmit:
    def test_online_submission_creates_a_submitted_dossier(self, engine: Engine) -> None:
        """An online submission by the citizen is `submitted`, owned by them, without a code."""
        snapshot = submit_birth(engine)
        assert snapshot.state == "submitted"
        assert snapshot.national_status is NationalStatus.RECEIVING
        assert snapshot.version == 1
        assert snapshot.code is None
        assert snapshot.due_at is None
        assert snapshot.dossier.owner == CITIZEN.id
        assert snapshot.dossier.channel is Channel.ONLINE
        assert snapshot.procedure == BIRTH

    def test_representative_files_for_the_owner(self, engine: Engine, db: Database) -> None:
        """A representative's submission is owned by the person represented, and says so."""
        representative = Actor.representative("rep-1", acting_for="citizen-9")
        snapshot = engine.submit(
            BIRTH,
            applicant=AN,
            actor=representative,
            form=BIRTH_FORM,
            documents=["declaration", "birth_notice"],
            delivery=DeliveryMethod.ELECTRONIC,
        )
        assert (snapshot.dossier.owner, snapshot.dossier.filed_by) == ("citizen-9", "rep-1")
        first = engine.history(snapshot.id)[0]
        assert (first.actor, first.acting_for, first.roles) == (
            "rep-1",
            "citizen-9",
            ("representative",),
        )
        ((body,),) = rows(db, "SELECT body FROM events WHERE dossier_id = ?", snapshot.id)
        recorded = json.loads(body)
        assert recorded["channel"] == "online"
        assert recorded["procedure_version"] == engine.current_version(BIRTH)
        assert set(recorded["personal"]) == {"applicant", "documents", "form"}
        assert all(len(ref["digest"]) == 64 for ref in recorded["personal"].values())

    def test_in_person_intake_is_received_with_a_code_and_a_due_date(self, engine: Engine) -> None:
        """A counter intake is received at once: code, due date, receipt time, a visit."""
        snapshot = receive(engine)
        assert snapshot.state == "received"
        assert snapshot.national_status is NationalStatus.NEW
        assert snapshot.code == f"{HOUSEHOLD_AGENCY}-20260302-0000001"
        assert snapshot.dossier.received_at == START.astimezone(dt.UTC)
        # Three working days from Monday 09:00: the end of Thursday's office hours, local time.
        assert snapshot.due_at == dt.datetime(2026, 3, 5, 17, 0, tzinfo=VN)
        assert engine.history(snapshot.id)[0].visit is True

    def test_postal_intake_is_received_by_the_officer(self, engine: Engine) -> None:
        """A dossier that came by post is received by the officer with the postal channel."""
        snapshot = receive(engine, channel=Channel.POSTAL)
        assert snapshot.state == "received"
        assert snapshot.dossier.channel is Channel.POSTAL
        assert engine.history(snapshot.id)[0].visit is False

    def test_applicant_given_as_plain_data_is_accepted(self, engine: Engine) -> None:
        """The applicant may come as a mapping, as a web form gives it."""
        snapshot = engine.submit(
            HOUSEHOLD,
            applicant={"kind": "citizen", "identifier": "001099012345", "name": "Nguyễn Văn An"},
            actor=OFFICER,
            channel=Channel.IN_PERSON,
            form=HOUSEHOLD_FORM,
            documents=["application"],
            fees_collected=True,
        )
        assert snapshot.state == "received"
        assert engine.personal_data(snapshot.id)["applicant"]["name"] == "Nguyễn Văn An"

    def test_unknown_procedure_is_not_found_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """Submitting to a procedure never published raises NotFoundError and writes nothing."""
        before = dump(db)
        with pytest.raises(NotFoundError, match=r"9\.999999"):
            engine.submit("9.999999", applicant=AN, actor=CITIZEN, form={}, command_id="c-1")
        assert dump(db) == before

    def test_actor_without_the_role_is_denied_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """A citizen cannot receive at the counter: PermissionDeniedError, nothing written."""
        before = dump(db)
        with pytest.raises(PermissionDeniedError) as caught:
            receive(engine, actor=CITIZEN, command_id="c-1")
        assert caught.value.reasons == ("role_missing",)
        assert dump(db) == before

    def test_officer_of_another_agency_is_denied_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """An officer of another agency cannot receive the dossier: wrong_agency."""
        before = dump(db)
        with pytest.raises(PermissionDeniedError) as caught:
            receive(engine, actor=staff("receiving_officer", "UBND-XA.001"))
        assert caught.value.reasons == ("wrong_agency",)
        assert dump(db) == before

    def test_form_that_does_not_match_the_fields_is_refused_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """A wrong type and a missing required field are refused as form_invalid."""
        before = dump(db)
        bad = {"business_name": "Tạp hóa An", "capital_vnd": "nhiều"}
        with pytest.raises(RefusedError) as caught:
            receive(engine, form=bad, command_id="c-1")
        assert type(caught.value) is RefusedError
        assert caught.value.reasons == ("form_invalid",)
        assert "capital_vnd" in str(caught.value)
        assert "business_lines" in str(caught.value)
        assert dump(db) == before

    def test_unpaid_charge_is_refused_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """A counter intake of a prepaid procedure without the charge collected is refused."""
        before = dump(db)
        with pytest.raises(RefusedError) as caught:
            engine.submit(
                HOUSEHOLD,
                applicant=AN,
                actor=OFFICER,
                channel=Channel.IN_PERSON,
                form=HOUSEHOLD_FORM,
                documents=["application"],
            )
        assert caught.value.reasons == ("fees_unpaid",)
        assert dump(db) == before


class TestFire:
    @pytest.mark.parametrize(
        "code", ["1.000894", "1.001193", "1.002804", "1.009994", "2.000488", "2.000575", "2.000815"]
    )
    def test_happy_path_reaches_returned_and_replays_after_every_command(
        self, engine: Engine, clock: FrozenClock, catalog: Catalog, code: str
    ) -> None:
        """Each example procedure runs to `returned`; history replays to the dossier each time."""
        fired: list[str] = []

        def check(snapshot: DossierSnapshot, trigger: str) -> None:
            fired.append(trigger)
            stored = engine.get(snapshot.id)
            assert stored == snapshot
            history = engine.history(snapshot.id)
            assert replay(event.changes for event in history) == stored.dossier
            assert len(history) == stored.version == len(fired)

        final = drive(engine, clock, catalog.get(code), each=check)
        assert final.state == "returned"
        assert final.national_status is NationalStatus.DONE
        triggers = [event.trigger for event in engine.history(final.id)]
        assert triggers[1:] == fired[1:]
        assert triggers[0] in {"submit", "receive"}
        assert engine.verify_history(final.id, checkpoint=engine.checkpoint()) == final.version

    def test_dossier_is_addressed_by_id_or_by_code(self, engine: Engine) -> None:
        """A command sent to the code acts on the dossier with that code."""
        received = receive(engine)
        assert received.code is not None
        started = engine.fire(received.code, "start", actor=HEAD, payload={"specialist": "cv-7"})
        assert started.id == received.id
        assert started.state == "processing"
        assert started.dossier.assignee == "cv-7"

    def test_unknown_dossier_is_not_found_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """Firing at a dossier that does not exist raises NotFoundError and writes nothing."""
        receive(engine)
        before = dump(db)
        with pytest.raises(NotFoundError, match="no-such-dossier"):
            engine.fire("no-such-dossier", "start", actor=HEAD, payload={"specialist": "cv-7"})
        assert dump(db) == before

    def test_actor_without_the_role_is_denied_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """A specialist cannot assign: PermissionDeniedError with the triggers allowed instead."""
        received = receive(engine)
        before = dump(db)
        with pytest.raises(PermissionDeniedError) as caught:
            engine.fire(received.id, "start", actor=SPECIALIST, payload={"specialist": "cv-7"})
        assert caught.value.reasons == ("role_missing",)
        assert dump(db) == before

    def test_trigger_not_possible_in_the_state_is_refused_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """Resolving a dossier that was only received is invalid_in_state; nothing written."""
        received = receive(engine)
        before = dump(db)
        with pytest.raises(RefusedError) as caught:
            engine.fire(received.id, "resolve", actor=LEADER, payload={"result": "r"})
        assert caught.value.reasons == ("invalid_in_state",)
        assert dump(db) == before
        assert engine.get(received.id) == received

    def test_each_command_writes_one_event_and_moves_the_version(
        self, engine: Engine, clock: FrozenClock, db: Database
    ) -> None:
        """A successful command adds exactly one event and one to the dossier's version."""
        snapshot = to_processing(engine, clock)
        events = len(rows(db, "SELECT seq FROM events"))
        after = engine.fire(snapshot.id, "assign", actor=HEAD, payload={"specialist": "cv-9"})
        assert after.version == snapshot.version + 1
        assert len(rows(db, "SELECT seq FROM events")) == events + 1
        assert rows(db, "SELECT version FROM dossiers WHERE id = ?", after.id) == [(3,)]


class TestGet:
    def test_get_by_id_and_by_code_are_the_same_snapshot(self, engine: Engine) -> None:
        """`get` accepts the id or the code and returns what the command returned."""
        received = receive(engine)
        assert received.code is not None
        assert engine.get(received.id) == received
        assert engine.get(received.code) == received

    def test_snapshots_are_immutable_values(self, engine: Engine) -> None:
        """A snapshot is a frozen attrs value holding the kernel's dossier, not an ORM row."""
        snapshot = engine.get(receive(engine).id)
        assert type(snapshot) is DossierSnapshot
        assert type(snapshot.dossier) is Dossier
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            snapshot.dossier.state = "returned"  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            snapshot.national_status = NationalStatus.DONE  # type: ignore[misc]
        assert hash(snapshot) == hash(engine.get(snapshot.id))

    def test_unknown_dossier_is_not_found(self, engine: Engine) -> None:
        """`get`, `history`, `available` and `verify_history` of an unknown dossier: NotFound."""
        for call in (
            lambda: engine.get("nope"),
            lambda: engine.history("nope"),
            lambda: engine.available("nope", OFFICER),
            lambda: engine.verify_history("nope"),
            lambda: engine.personal_data("nope"),
        ):
            with pytest.raises(NotFoundError, match="nope"):
                call()


class TestAvailable:
    def test_lists_allowed_and_refused_triggers_without_writing(
        self, engine: Engine, db: Database
    ) -> None:
        """The officer may receive or refuse a submitted dossier; the citizen may not."""
        submitted = submit_birth(engine)
        before = dump(db)
        officer = staff("receiving_officer", "UBND-XA.001")
        actions = {action.trigger: action for action in engine.available(submitted.id, officer)}
        assert actions["receive"].allowed
        assert actions["refuse"].allowed
        citizen = {action.trigger: action for action in engine.available(submitted.id, CITIZEN)}
        assert not citizen["receive"].allowed
        assert citizen["receive"].reasons == ("role_missing",)
        assert dump(db) == before


class TestHistory:
    def test_history_is_oldest_first_with_actors_and_changes(
        self, engine: Engine, clock: FrozenClock
    ) -> None:
        """Events come in version order, with seq rising, the actors and the states crossed."""
        snapshot = to_processing(engine, clock)
        clock.advance(HALF_HOUR)
        snapshot = engine.fire(snapshot.id, "assign", actor=HEAD, payload={"specialist": "cv-2"})
        # On PostgreSQL the newest events may wait for a sealer to get their seq.
        engine.seal()
        history = engine.history(snapshot.code or "")
        assert [event.version for event in history] == [1, 2, 3]
        assert [event.trigger for event in history] == ["receive", "start", "assign"]
        seqs = [event.seq for event in history]
        assert None not in seqs
        assert seqs == sorted(seqs)
        assert [(e.source, e.target) for e in history] == [
            ("initial", "received"),
            ("received", "processing"),
            ("processing", "processing"),
        ]
        assert history[0].actor == OFFICER.id
        assert history[0].agency == HOUSEHOLD_AGENCY
        assert history[1].at == history[0].at + HALF_HOUR
        assert history[2].changes == {"assignee": "cv-2", "state": "processing", "version": 3}
        assert set(history[0].personal) == {"applicant", "documents", "form"}
        assert engine.history(snapshot.id) == history

    def test_due_dates_and_timers_are_recorded(self, engine: Engine, db: Database) -> None:
        """Reception records the due-date change and sets a reminder and an escalation."""
        received = receive(engine)
        first = engine.history(received.id)[0]
        assert first.data["due_change"]["new"] == received.due_at.isoformat()  # type: ignore[union-attr]
        timers = rows(
            db, "SELECT name, trigger, active FROM timers WHERE dossier_id = ?", received.id
        )
        assert sorted(timers) == [("due_escalation", None, 1), ("due_reminder", None, 1)]


class TestIdempotency:
    def test_repeated_submit_returns_the_outcome_and_writes_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """The same intake sent twice with one command id creates one dossier."""
        first = receive(engine, command_id="intake-1")
        before = dump(db)
        again = receive(engine, command_id="intake-1")
        assert again == first
        assert dump(db) == before
        assert len(before["dossiers"]) == 1

    def test_repeated_fire_returns_the_recorded_outcome_even_later(
        self, engine: Engine, clock: FrozenClock, db: Database
    ) -> None:
        """A command id repeated after later commands returns the outcome it had."""
        received = receive(engine)
        started = engine.fire(
            received.id, "start", actor=HEAD, payload={"specialist": "cv-1"}, command_id="s-1"
        )
        clock.advance(HALF_HOUR)
        engine.fire(received.id, "assign", actor=HEAD, payload={"specialist": "cv-2"})
        before = dump(db)
        again = engine.fire(
            received.id, "start", actor=HEAD, payload={"specialist": "cv-1"}, command_id="s-1"
        )
        assert again == started
        assert again.version == 2
        assert dump(db) == before
        assert engine.get(received.id).version == 3

    def test_repeated_fire_by_code_returns_the_outcome_recorded_by_id(
        self, engine: Engine, db: Database
    ) -> None:
        """The same command addressed by code instead of id is the same command."""
        received = receive(engine)
        assert received.code is not None
        started = engine.fire(
            received.id, "start", actor=HEAD, payload={"specialist": "cv-1"}, command_id="s-1"
        )
        before = dump(db)
        again = engine.fire(
            received.code, "start", actor=HEAD, payload={"specialist": "cv-1"}, command_id="s-1"
        )
        assert again == started
        assert dump(db) == before

    @pytest.mark.parametrize(
        ("trigger", "actor", "payload"),
        [
            ("start", HEAD, {"specialist": "cv-2"}),
            ("start", staff("department_head", name="head-2"), {"specialist": "cv-1"}),
            ("assign", HEAD, {"specialist": "cv-1"}),
        ],
        ids=["payload", "actor", "trigger"],
    )
    def test_same_id_for_another_command_is_a_conflict_and_writes_nothing(
        self,
        engine: Engine,
        db: Database,
        trigger: str,
        actor: Actor,
        payload: dict[str, Any],
    ) -> None:
        """A command id reused with another payload, actor or trigger: CommandConflictError."""
        received = receive(engine)
        engine.fire(
            received.id, "start", actor=HEAD, payload={"specialist": "cv-1"}, command_id="s-1"
        )
        before = dump(db)
        with pytest.raises(CommandConflictError, match="s-1"):
            engine.fire(received.id, trigger, actor=actor, payload=payload, command_id="s-1")
        assert dump(db) == before

    def test_same_id_on_another_dossier_is_a_conflict(self, engine: Engine) -> None:
        """A command id used on one dossier cannot act on another."""
        first, second = receive(engine), receive(engine)
        engine.fire(first.id, "start", actor=HEAD, payload={"specialist": "cv"}, command_id="s-1")
        with pytest.raises(CommandConflictError):
            engine.fire(
                second.id, "start", actor=HEAD, payload={"specialist": "cv"}, command_id="s-1"
            )
        assert engine.get(second.id).state == "received"

    def test_same_id_for_another_intake_is_a_conflict(self, engine: Engine) -> None:
        """An intake command id reused with another form: CommandConflictError, one dossier."""
        receive(engine, command_id="intake-1")
        other = HOUSEHOLD_FORM | {"capital_vnd": 1}
        with pytest.raises(CommandConflictError):
            receive(engine, command_id="intake-1", form=other)
        assert len(engine.find().items) == 1

    def test_refused_command_records_nothing_and_is_evaluated_again(
        self, engine: Engine, clock: FrozenClock, db: Database
    ) -> None:
        """A refused command leaves no command id; the same id later succeeds when possible."""
        submitted = engine.submit(
            "2.000488",
            applicant=AN,
            actor=CITIZEN,
            form={"purpose": "xin việc", "copies": 1},
            documents=["request_form", "identity_document"],
            delivery=DeliveryMethod.POSTAL,
            address={"address": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"},
        )
        officer = staff("receiving_officer", "STP.01")
        before = dump(db)
        with pytest.raises(RefusedError) as caught:
            engine.fire(submitted.id, "receive", actor=officer, command_id="r-1")
        assert caught.value.reasons == ("fees_unpaid",)
        assert dump(db) == before
        assert rows(db, "SELECT id FROM commands WHERE id = 'r-1'") == []
        clock.advance(HALF_HOUR)
        engine.fire(
            submitted.id,
            "confirm_payment",
            actor=Actor.system(),
            payload={"kind": "fee", "amount": 200_000, "method": "online", "reference": "T-1"},
        )
        received = engine.fire(submitted.id, "receive", actor=officer, command_id="r-1")
        assert received.state == "received"
        assert received.version == 3


class TestCodes:
    def test_codes_count_per_agency_and_day(self, engine: Engine, clock: FrozenClock) -> None:
        """Each agency has its own daily sequence, starting at 1 again the next local day."""
        household = [receive(engine).code for _ in range(3)]
        other = staff("receiving_officer", "UBND-XA.001")
        certified = engine.submit(
            CERTIFY,
            applicant=AN,
            actor=other,
            channel=Channel.IN_PERSON,
            documents=["original"],
            fees_collected=True,
        )
        clock.advance(dt.timedelta(days=1))
        tomorrow = receive(engine).code
        assert household == [f"{HOUSEHOLD_AGENCY}-20260302-000000{n}" for n in (1, 2, 3)]
        assert certified.code == "UBND-XA.001-20260302-0000001"
        assert tomorrow == f"{HOUSEHOLD_AGENCY}-20260303-0000001"

    @pytest.mark.parametrize(
        ("utc", "day"),
        [
            (dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC), "20260303"),
            (dt.datetime(2026, 3, 2, 16, 59, tzinfo=dt.UTC), "20260302"),
            (dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC), "20260303"),
        ],
    )
    def test_the_date_is_local_to_hanoi(self, engine: Engine, clock: FrozenClock, utc, day) -> None:
        """A receipt at 23:30 UTC is the next day in Asia/Ho_Chi_Minh (UTC+7)."""
        clock.set(utc)
        code = receive(engine).code
        assert code == f"{HOUSEHOLD_AGENCY}-{day}-0000001"

    def test_online_dossier_gets_its_code_at_reception(self, engine: Engine) -> None:
        """A submitted dossier has no code; receiving it gives the next one of the agency."""
        submitted = submit_birth(engine)
        assert submitted.code is None
        engine.fire(
            submitted.id,
            "receive",
            actor=staff("receiving_officer", "UBND-XA.001"),
        )
        code = engine.get(submitted.id).code
        assert code is not None
        match = CODE.match(code)
        assert match is not None
        assert match["agency"] == "UBND-XA.001"
        assert match["seq"] == "0000001"

    def test_format_and_period_come_from_the_configuration(
        self, opened: Callable[..., Engine], clock: FrozenClock
    ) -> None:
        """A monthly five-digit format from Config keeps counting across days of the month."""
        codes = CodeFormat("{agency}/{date:%Y%m}/{seq:05d}", period=CodePeriod.MONTH)
        engine = opened(config=Config(codes=codes))
        first = receive(engine).code
        clock.advance(dt.timedelta(days=2))
        second = receive(engine).code
        clock.set(dt.datetime(2026, 4, 1, 9, tzinfo=VN))
        april = receive(engine).code
        assert (first, second, april) == (
            f"{HOUSEHOLD_AGENCY}/202603/00001",
            f"{HOUSEHOLD_AGENCY}/202603/00002",
            f"{HOUSEHOLD_AGENCY}/202604/00001",
        )

    def test_a_refused_reception_does_not_use_a_number(self, engine: Engine) -> None:
        """The sequence only moves with a reception that commits."""
        with pytest.raises(RefusedError):
            receive(engine, form={})
        assert receive(engine).code == f"{HOUSEHOLD_AGENCY}-20260302-0000001"


class TestFind:
    @pytest.fixture
    def population(self, engine: Engine, clock: FrozenClock) -> dict[str, list[str]]:
        """Seven household dossiers over seven days (two of them Bình's), three online births."""
        made: dict[str, list[str]] = {"household": [], "binh": [], "births": []}
        for day in range(7):
            applicant = BINH if day in {2, 5} else AN
            snapshot = receive(engine, applicant=applicant)
            made["household"].append(snapshot.id)
            if applicant is BINH:
                made["binh"].append(snapshot.id)
            clock.advance(dt.timedelta(days=1))
        made["births"] = [submit_birth(engine).id for _ in range(3)]
        return made

    def test_filters_by_status_agency_procedure_and_applicant(
        self, engine: Engine, population: dict[str, list[str]]
    ) -> None:
        """Each filter returns exactly the dossiers matching it."""

        def ids(**filters: Any) -> set[str]:
            return {snapshot.id for snapshot in engine.find(limit=1000, **filters).items}

        assert ids(national_status=NationalStatus.NEW) == set(population["household"])
        assert ids(national_status=1) == set(population["births"])
        assert ids(agency=HOUSEHOLD_AGENCY) == set(population["household"])
        assert ids(agency="UBND-XA.001") == set(population["births"])
        assert ids(procedure=BIRTH) == set(population["births"])
        assert ids(applicant=BINH.identifier) == set(population["binh"])
        assert ids(applicant="001099099999") == set()
        assert ids(owner=CITIZEN.id) == set(population["births"])
        assert ids(agency=HOUSEHOLD_AGENCY, applicant=AN.identifier) == (
            set(population["household"]) - set(population["binh"])
        )

    @pytest.mark.parametrize("limit", [1, 2, 3, 4])
    def test_keyset_pages_have_no_duplicates_and_no_gaps(
        self, engine: Engine, population: dict[str, list[str]], limit: int
    ) -> None:
        """Walking the pages returns every dossier once, in id order."""
        seen: list[str] = []
        cursor = None
        while True:
            page = engine.find(after=cursor, limit=limit)
            assert len(page.items) <= limit
            seen += [snapshot.id for snapshot in page.items]
            if page.next is None:
                break
            cursor = page.next
        everything = population["household"] + population["births"]
        assert seen == sorted(everything)

    @pytest.mark.parametrize("limit", [1, 2, 5])
    def test_due_before_pages_in_due_date_order(
        self, engine: Engine, population: dict[str, list[str]], limit: int
    ) -> None:
        """`due_before` pages through (due date, id) without duplicates or gaps."""
        horizon = dt.datetime(2026, 3, 12, 0, 0, tzinfo=VN)
        seen: list[DossierSnapshot] = []
        cursor = None
        while True:
            page = engine.find(due_before=horizon, after=cursor, limit=limit)
            seen += page.items
            if page.next is None:
                break
            cursor = page.next
        expected = [
            engine.get(i)
            for i in population["household"]
            if (due := engine.get(i).due_at) is not None and due < horizon
        ]
        assert len({s.id for s in seen}) == len(seen)
        assert seen == sorted(expected, key=lambda s: (s.due_at, s.id))
        assert 0 < len(seen) < len(population["household"])

    def test_due_before_compares_instants_not_wall_clocks(
        self, engine: Engine, population: dict[str, list[str]]
    ) -> None:
        """A bound one hour before a due date excludes it, whatever the bound's time zone."""
        first = engine.get(population["household"][0])
        assert first.due_at is not None
        bound = first.due_at - dt.timedelta(hours=1)
        for zone in (dt.UTC, VN, ZoneInfo("America/New_York")):
            found = {s.id for s in engine.find(due_before=bound.astimezone(zone)).items}
            assert first.id not in found, zone

    def test_overdue_lists_unresolved_dossiers_past_their_due_date(
        self, engine: Engine, clock: FrozenClock, population: dict[str, list[str]]
    ) -> None:
        """Overdue means past the due date now and not resolved nor ended."""
        now = clock.now()
        late = {
            i
            for i in population["household"]
            if (due := engine.get(i).due_at) is not None and due < now
        }
        assert 0 < len(late) < len(population["household"])
        # One late dossier is stopped by its leader: ended, so no longer overdue.
        stopped = min(late)
        engine.fire(stopped, "start", actor=HEAD, payload={"specialist": "cv-1"})
        engine.fire(stopped, "stop", actor=LEADER, payload={"reason": "giải thể"})
        found = [snapshot.id for snapshot in engine.find(overdue=True).items]
        assert set(found) == late - {stopped}
        pages = [s.id for s in engine.find(overdue=True, limit=1).items]
        assert pages == found[:1]

    def test_bad_limit_and_bad_cursor_are_invalid(self, engine: Engine) -> None:
        """A limit outside 1..1000 or a cursor this query never returned: InvalidValueError."""
        with pytest.raises(InvalidValueError, match="limit"):
            engine.find(limit=0)
        with pytest.raises(InvalidValueError, match="after"):
            engine.find(overdue=True, after="not-a-cursor")


class TestTick:
    def test_due_timers_fire_exactly_once(
        self, engine: Engine, clock: FrozenClock, db: Database
    ) -> None:
        """The reminder and escalation fire once when due, then never again."""
        received = receive(engine)
        assert engine.tick() == []
        clock.advance(dt.timedelta(days=10))
        fired = engine.tick()
        assert sorted(fired) == [
            (received.id, "due_escalation", "notified"),
            (received.id, "due_reminder", "notified"),
        ]
        assert engine.tick() == []
        reminders = rows(db, "SELECT key FROM outbox WHERE key LIKE 'timer:%'")
        assert len(reminders) == 2
        assert rows(db, "SELECT COUNT(*) FROM timers WHERE active") == [(0,)]

    def test_two_engines_on_one_file_fire_each_timer_once(
        self, opened: Callable[..., Engine], clock: FrozenClock
    ) -> None:
        """Ticking from a second engine on the same file fires nothing the first fired."""
        first, second = opened(), opened()
        for _ in range(3):
            receive(first)
        clock.advance(dt.timedelta(days=10))
        fired = first.tick(clock.now() - dt.timedelta(days=7)) + second.tick() + first.tick()
        assert len(fired) == 6
        assert len(set(fired)) == 6

    def test_tick_at_a_given_instant(self, engine: Engine) -> None:
        """`tick(now)` fires what is due at that instant, not at the engine clock's."""
        received = receive(engine)
        assert received.due_at is not None
        assert engine.tick(received.due_at - dt.timedelta(days=3)) == []
        assert len(engine.tick(received.due_at + dt.timedelta(days=1))) == 2

    def test_supplement_expiry_stops_the_dossier(
        self, engine: Engine, clock: FrozenClock, db: Database
    ) -> None:
        """An unanswered supplement request stops processing when its timer fires (policy)."""
        processing = to_processing(engine, clock)
        waiting = engine.fire(
            processing.id, "request_supplement", actor=SPECIALIST, payload={"reason": "thiếu"}
        )
        assert waiting.state == "awaiting_supplement"
        due = waiting.dossier.supplement_due
        assert due is not None
        assert all(name != "supplement_expiry" for _, name, _ in engine.tick(due - HALF_HOUR))
        fired = engine.tick(due)
        assert (processing.id, "supplement_expiry", "fired") in fired
        stopped = engine.get(processing.id)
        assert stopped.state == "stopped"
        assert stopped.national_status is NationalStatus.UNRESOLVED
        last = engine.history(processing.id)[-1]
        assert (last.trigger, last.actor) == ("expire_supplement", "system")
        assert rows(db, "SELECT COUNT(*) FROM timers WHERE active") == [(0,)]
        assert engine.tick(due + dt.timedelta(days=60)) == []
        assert engine.verify_history(processing.id) == stopped.version
        assert replay(e.changes for e in engine.history(processing.id)) == stopped.dossier

    def test_supplement_expiry_withdraws_under_a_withdraw_policy(
        self, opened: Callable[..., Engine], clock: FrozenClock, tmp_path: Path
    ) -> None:
        """With a rule pack whose expiry policy is `withdraw`, the timer withdraws the dossier."""
        (tmp_path / "packs.toml").write_text(
            '[[packs]]\nname = "vneid-2024"\ntitle = "t"\neffective_from = 2024-07-01\n'
            'model = "classes"\ncontact = "vneid"\n'
            '[packs.clock]\nsupplement_expiry = "withdraw"\n',
            encoding="utf-8",
        )
        config = Config.from_data({"rule_packs": {"file": "packs.toml"}}, base=tmp_path)
        engine = opened(config=config)
        processing = to_processing(engine, clock)
        waiting = engine.fire(
            processing.id, "request_supplement", actor=SPECIALIST, payload={"reason": "thiếu"}
        )
        assert waiting.dossier.supplement_due is not None
        engine.tick(waiting.dossier.supplement_due)
        assert engine.get(processing.id).state == "withdrawn"

    def test_timer_whose_command_is_refused_is_reported_and_spent(
        self, engine: Engine, clock: FrozenClock
    ) -> None:
        """A supplement received in time makes the expiry refused; the dossier is unchanged."""
        processing = to_processing(engine, clock)
        waiting = engine.fire(
            processing.id, "request_supplement", actor=SPECIALIST, payload={"reason": "thiếu"}
        )
        supplemented = engine.fire(
            processing.id, "supplement", actor=OFFICER, payload={"documents": ["application"]}
        )
        assert waiting.dossier.supplement_due is not None
        fired = engine.tick(waiting.dossier.supplement_due)
        assert (processing.id, "supplement_expiry", "refused: invalid_in_state") in fired
        assert engine.get(processing.id) == supplemented
        assert engine.tick(waiting.dossier.supplement_due + dt.timedelta(days=1)) == []


class TestPublish:
    @staticmethod
    def changed(catalog: Catalog, days: int = 5, name: str = "mới") -> ProcedureSpec:
        """The household procedure with another duration and name: a new version."""
        procedure = catalog.get(HOUSEHOLD)
        duration = Duration(days, DurationUnit.WORKING_DAYS)
        case = attrs.evolve(
            procedure.cases[0],
            durations=tuple((channel, duration) for channel, _ in procedure.cases[0].durations),
        )
        return attrs.evolve(procedure, cases=(case,), name=Text(f"Hộ kinh doanh ({name})"))

    def test_a_changed_procedure_is_a_new_version_and_pins_new_dossiers_only(
        self, engine: Engine, clock: FrozenClock, catalog: Catalog, db: Database
    ) -> None:
        """Running dossiers stay on their version; new ones use the new version's durations."""
        old = engine.current_version(HOUSEHOLD)
        running = receive(engine)
        assert engine.publish(catalog) == []
        created = engine.publish([self.changed(catalog)])
        new = engine.current_version(HOUSEHOLD)
        assert created == [new]
        assert new != old
        assert engine.publish([self.changed(catalog)]) == []
        fresh = receive(engine)
        assert fresh.dossier.procedure_version == new
        assert fresh.due_at == dt.datetime(2026, 3, 9, 17, 0, tzinfo=VN)
        clock.advance(HALF_HOUR)
        started = engine.fire(running.id, "start", actor=HEAD, payload={"specialist": "cv"})
        assert started.dossier.procedure_version == old
        assert started.due_at == running.due_at
        stored = rows(db, "SELECT id FROM procedure_versions WHERE code = ?", HOUSEHOLD)
        assert sorted(stored) == sorted([(old,), (new,)])
        assert engine.history(running.id)[-1].changes.get("procedure_version") is None

    def test_the_newest_version_stays_current_after_reopening(
        self, opened: Callable[..., Engine], catalog: Catalog
    ) -> None:
        """Versions published at the same instant: a reopened engine pins to the last one."""
        engine = opened()
        for number in range(6):
            engine.publish([self.changed(catalog, days=4 + number, name=str(number))])
            current = engine.current_version(HOUSEHOLD)
            reopened = opened(catalog=None)
            assert reopened.current_version(HOUSEHOLD) == current, number

    def test_versions_are_immutable_rows(
        self, engine: Engine, catalog: Catalog, db: Database
    ) -> None:
        """A stored version's definition is its content hash's canonical JSON, never rewritten."""
        version = engine.current_version(HOUSEHOLD)
        before = rows(db, "SELECT definition FROM procedure_versions WHERE id = ?", version)
        engine.publish([self.changed(catalog)])
        engine.publish(catalog)
        after = rows(db, "SELECT definition FROM procedure_versions WHERE id = ?", version)
        assert before == after
        assert dvcflow._kernel.content_hash(catalog.get(HOUSEHOLD)) == version

    def test_an_unpublished_version_is_not_found(self, engine: Engine) -> None:
        """Asking for a version that was never stored raises NotFoundError."""
        with pytest.raises(NotFoundError):
            engine.kernel("0" * 64)
        with pytest.raises(NotFoundError):
            engine.current_version("9.999999")


class TestMigration:
    @staticmethod
    def without_site_inspection(catalog: Catalog) -> ProcedureSpec:
        """The construction permit without its site-inspection step: a new version."""
        procedure = catalog.get("1.009994")
        steps = tuple(step for step in procedure.steps if step.name != "site_inspection")
        return attrs.evolve(procedure, steps=steps)

    @pytest.fixture
    def dossiers(self, engine: Engine, clock: FrozenClock, catalog: Catalog) -> dict[str, str]:
        """Construction dossiers in appraisal, in site inspection, and returned."""
        procedure = catalog.get("1.009994")
        made = {
            "appraisal": drive(engine, clock, procedure, stop_after="appraisal").id,
            "site_inspection": drive(engine, clock, procedure, stop_after="site_inspection").id,
            "returned": drive(engine, clock, procedure).id,
        }
        engine.publish([self.without_site_inspection(catalog)])
        return made

    def test_plan_lists_running_dossiers_and_refuses_unmapped_states(
        self, engine: Engine, dossiers: dict[str, str], db: Database
    ) -> None:
        """The dry run lists running dossiers; one in a state the new version lacks is refused."""
        before = dump(db)
        plan = engine.plan_migration("1.009994")
        assert dump(db) == before
        items = {item.dossier_id: item for item in plan.items}
        assert set(items) == {dossiers["appraisal"], dossiers["site_inspection"]}
        assert items[dossiers["appraisal"]].ok
        assert items[dossiers["appraisal"]].to_state == "appraisal"
        refused = items[dossiers["site_inspection"]]
        assert not refused.ok
        assert "site_inspection" in (refused.refused or "")
        assert plan.to_version == engine.current_version("1.009994")

    def test_plan_refuses_a_map_into_a_final_state_and_an_unknown_state(
        self, engine: Engine, dossiers: dict[str, str]
    ) -> None:
        """Mapping to a final state refuses the dossier; mapping to no state is invalid."""
        plan = engine.plan_migration("1.009994", state_map={"site_inspection": "returned"})
        item = next(i for i in plan.items if i.dossier_id == dossiers["site_inspection"])
        assert "final" in (item.refused or "")
        with pytest.raises(InvalidValueError, match="state_map"):
            engine.plan_migration("1.009994", state_map={"site_inspection": "nowhere"})
        with pytest.raises(InvalidValueError, match="to_version"):
            engine.plan_migration("1.009994", to_version=engine.current_version(HOUSEHOLD))

    def test_apply_moves_each_dossier_with_an_audit_event(
        self, engine: Engine, clock: FrozenClock, dossiers: dict[str, str]
    ) -> None:
        """Apply: compare-and-set per dossier, a `migrate` event, history and replay still hold."""
        target = engine.current_version("1.009994")
        plan = engine.plan_migration("1.009994", state_map={"site_inspection": "appraisal"})
        admin = Actor.staff("admin-1", roles={"admin"}, agency="UBND-HUYEN.003")
        with pytest.raises(PermissionDeniedError):
            engine.apply_migration(plan, actor=staff("leader", "UBND-HUYEN.003"))
        applied = engine.apply_migration(plan, actor=admin)
        assert len(applied.movable) == 2
        assert not applied.refused
        for ref in (dossiers["appraisal"], dossiers["site_inspection"]):
            snapshot = engine.get(ref)
            assert snapshot.dossier.procedure_version == target
            assert snapshot.state == "appraisal"
            last = engine.history(ref)[-1]
            assert last.trigger == "migrate"
            assert last.actor == "admin-1"
            assert last.data["to_version"] == target
            assert engine.verify_history(ref, checkpoint=engine.checkpoint()) == snapshot.version
            assert replay(e.changes for e in engine.history(ref)) == snapshot.dossier
        assert engine.plan_migration("1.009994").items == ()
        assert engine.get(dossiers["returned"]).dossier.procedure_version != target
        # The moved dossier goes on under the new version's lifecycle.
        clock.advance(HALF_HOUR)
        moved = engine.fire(dossiers["site_inspection"], "hand_over", actor=SPECIALIST_3)
        assert moved.state == "approval"

    def test_a_wait_returning_to_a_lost_state_is_refused_unless_mapped(
        self, engine: Engine, clock: FrozenClock, catalog: Catalog
    ) -> None:
        """A supplement wait that would return to a removed step must be mapped, then works."""
        procedure = catalog.get("1.009994")
        dossier = drive(engine, clock, procedure, stop_after="site_inspection").id
        leader = staff("leader", "UBND-HUYEN.003")
        engine.fire(
            dossier, "approve_document", actor=leader, payload={"document": "supplement_request"}
        )
        engine.fire(dossier, "request_supplement", actor=SPECIALIST_3, payload={"reason": "bản vẽ"})
        engine.publish([self.without_site_inspection(catalog)])
        (item,) = engine.plan_migration("1.009994").items
        assert item.from_state == "awaiting_supplement"
        assert not item.ok
        assert "site_inspection" in (item.refused or "")
        plan = engine.plan_migration("1.009994", state_map={"site_inspection": "appraisal"})
        admin = Actor.staff("admin-1", roles={"admin"}, agency="UBND-HUYEN.003")
        assert engine.apply_migration(plan, actor=admin).movable == plan.items
        moved = engine.get(dossier)
        assert moved.state == "awaiting_supplement"
        assert moved.dossier.resume_state == "appraisal"
        assert replay(e.changes for e in engine.history(dossier)) == moved.dossier
        officer = staff("receiving_officer", "UBND-HUYEN.003")
        engine.fire(dossier, "supplement", actor=officer, payload={"documents": ["drawings"]})
        back = engine.fire(dossier, "accept_supplement", actor=officer)
        assert back.state == "appraisal"

    def test_a_dossier_changed_since_the_plan_is_refused(
        self, engine: Engine, clock: FrozenClock, dossiers: dict[str, str]
    ) -> None:
        """A dossier that moved after the dry run is left where it is and reported."""
        plan = engine.plan_migration("1.009994")
        clock.advance(HALF_HOUR)
        changed = engine.fire(dossiers["appraisal"], "hand_over", actor=SPECIALIST_3)
        admin = Actor.staff("admin-1", roles={"admin"}, agency="UBND-HUYEN.003")
        applied = engine.apply_migration(plan, actor=admin)
        item = next(i for i in applied.items if i.dossier_id == dossiers["appraisal"])
        assert "changed since the plan" in (item.refused or "")
        assert engine.get(dossiers["appraisal"]) == changed


SPECIALIST_3 = staff("specialist", "UBND-HUYEN.003")


class TestOpen:
    def test_dossiers_survive_close_and_reopen(
        self, db: Database, catalog: Catalog, clock: FrozenClock
    ) -> None:
        """A reopened engine (no catalogue given) reads, verifies and moves the same dossiers."""
        engine = Engine.open(db.url, **db.options({"catalog": catalog, "clock": clock}))
        try:
            received = receive(engine)
            checkpoint = engine.checkpoint()
        finally:
            engine.close()
        engine = Engine.open(db.url, **db.options({"clock": clock}))
        try:
            assert engine.get(received.id) == received
            assert engine.verify_history(received.id, checkpoint=checkpoint) == 1
            started = engine.fire(received.id, "start", actor=HEAD, payload={"specialist": "cv"})
            assert started.version == 2
            assert receive(engine).code == f"{HOUSEHOLD_AGENCY}-20260302-0000002"
        finally:
            engine.close()

    @pytest.mark.parametrize("db", ["sqlite"], indirect=True)
    def test_embedded_key_is_owner_only_and_reused(
        self,
        opened: Callable[..., Engine],
        db: Database,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The key file beside the database is 0600, said once, and the same on reopening."""
        assert db.path is not None
        key_path = db.path.with_name("dvcflow.db.key")
        with caplog.at_level(logging.WARNING, logger="dvcflow"):
            engine = opened()
            received = receive(engine)
        assert key_path.stat().st_mode & 0o777 == 0o600
        assert len(bytes.fromhex(key_path.read_text(encoding="ascii"))) == 32
        said = [r.getMessage() for r in caplog.records if "history key" in r.getMessage()]
        assert len(said) == 1
        assert "production must supply its own" in said[0]
        key = key_path.read_bytes()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dvcflow"):
            again = opened()
        assert caplog.records == []
        assert key_path.read_bytes() == key
        assert again.verify_history(received.id) == 1

    @pytest.mark.parametrize("db", ["sqlite"], indirect=True)
    def test_configured_key_comes_from_the_environment(
        self, opened: Callable[..., Engine], db: Database
    ) -> None:
        """With `history.key_env` no key file is made; another key fails verification."""
        config = Config(history_key_env="DVCFLOW_TEST_KEY")
        engine = opened(config=config, environ={"DVCFLOW_TEST_KEY": "11" * 32})
        received = receive(engine)
        assert db.path is not None
        assert not db.path.with_name("dvcflow.db.key").exists()
        assert opened(config=config, environ={"DVCFLOW_TEST_KEY": "11" * 32}).verify_history(
            received.id
        )
        wrong = opened(config=config, environ={"DVCFLOW_TEST_KEY": "22" * 32})
        with pytest.raises(TamperedHistoryError):
            wrong.verify_history(received.id)

    def test_missing_configured_key_is_a_configuration_error_and_writes_nothing(
        self, url: str, db: Database, catalog: Catalog
    ) -> None:
        """A configured key variable that is not set: ConfigurationError naming it, no database."""
        config = Config(history_key_env="DVCFLOW_TEST_KEY")
        with pytest.raises(ConfigurationError, match="DVCFLOW_TEST_KEY is not set"):
            Engine.open(url, catalog=catalog, config=config, environ={})
        assert db.untouched()

    def test_bad_configuration_file_is_a_configuration_error(
        self, url: str, db: Database, tmp_path: Path
    ) -> None:
        """An unknown key in the configuration file is reported with the file and the key."""
        path = tmp_path / "dvcflow.toml"
        path.write_text("[database]\nbusy_timeout = 10\n", encoding="utf-8")
        with pytest.raises(ConfigurationError, match=r"dvcflow\.toml.*busy_timeout"):
            Engine.open(url, config=path)
        assert db.untouched()

    @pytest.mark.parametrize("db", ["sqlite"], indirect=True)
    def test_configuration_file_is_read(
        self, opened: Callable[..., Engine], tmp_path: Path
    ) -> None:
        """A valid configuration file's code format applies."""
        path = tmp_path / "dvcflow.toml"
        path.write_text('[codes]\nformat = "{agency}.{date:%y%m%d}.{seq:04d}"\n', encoding="utf-8")
        engine = opened(config=str(path))
        assert receive(engine).code == f"{HOUSEHOLD_AGENCY}.260302.0001"

    def test_folder_that_does_not_exist_is_unavailable(self, tmp_path: Path) -> None:
        """A database in a missing folder raises StoreUnavailableError naming the folder."""
        url = f"sqlite:///{tmp_path / 'missing' / 'dvcflow.db'}"
        with pytest.raises(StoreUnavailableError, match="missing"):
            Engine.open(url)

    def test_a_file_that_is_not_a_database_is_unavailable(self, tmp_path: Path) -> None:
        """A file with other content raises StoreUnavailableError, not a SQLAlchemy error."""
        path = tmp_path / "notes.db"
        path.write_bytes(b"these are not the pages of a database" * 200)
        with pytest.raises(StoreUnavailableError):
            Engine.open(f"sqlite:///{path}")

    def test_newer_schema_is_refused_with_a_clear_message(
        self, opened: Callable[..., Engine], url: str, db: Database
    ) -> None:
        """A database at a revision this dvcflow does not know raises SchemaError, untouched."""
        opened().close()
        db.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
        before = dump(db)
        with pytest.raises(SchemaError, match=r"0099_from_the_future.*newer.*upgrade dvcflow"):
            Engine.open(url, **db.options({}))
        assert dump(db) == before

    def test_another_applications_database_is_refused(self, db: Database, url: str) -> None:
        """A database with its own `events` table and no dvcflow revision: SchemaError."""
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)")
        with pytest.raises(SchemaError, match=r"tables named events .* another application"):
            Engine.open(url, **db.options({}))
        assert db.tables() == ["events"]

    @pytest.mark.usefixtures("engine")
    def test_open_creates_the_schema_at_head(self, db: Database) -> None:
        """A new database is at the head revision with every table and a chain head."""
        assert rows(db, "SELECT version_num FROM alembic_version") == [(migrations_head(),)]
        assert rows(db, "SELECT seq FROM chain_head") == [(0,)]
        if db.dialect == "sqlite":
            assert rows(db, "PRAGMA journal_mode") == [("wal",)]
        assert len(dump(db)["procedure_versions"]) == 7


class TestRaces:
    def test_threads_sharing_one_engine_lose_no_update(
        self, engine: Engine, clock: FrozenClock
    ) -> None:
        """Four threads assigning one dossier through one engine: every command is one event."""
        processing = to_processing(engine, clock)
        errors: list[BaseException] = []

        def work(name: str) -> None:
            for number in range(10):
                try:
                    retry(
                        lambda number=number: engine.fire(
                            processing.id,
                            "assign",
                            actor=HEAD,
                            payload={"specialist": f"{name}-{number}"},
                            command_id=f"{name}-{number}",
                        ),
                        attempts=20,
                        backoff=0.001,
                    )
                except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                    errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert engine.get(processing.id).version == 42
        specialists = [event.data.get("specialist") for event in engine.history(processing.id)]
        assert sorted(specialists[2:]) == sorted(f"t{n}-{i}" for n in range(4) for i in range(10))
        assert engine.verify_history(processing.id) == 42

    def test_in_memory_database_is_shared_between_threads(
        self, catalog: Catalog, clock: FrozenClock
    ) -> None:
        """`sqlite://` is one database for every thread of the engine, not one per thread."""
        engine = Engine.open("sqlite://", catalog=catalog, clock=clock)
        try:
            processing = to_processing(engine, clock)
            seen: list[int] = []

            def work() -> None:
                for number in range(5):
                    engine.fire(
                        processing.id, "assign", actor=HEAD, payload={"specialist": f"{number}"}
                    )
                seen.append(engine.get(processing.id).version)

            threads = [threading.Thread(target=work) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(seen) == 3
            assert engine.get(processing.id).version == 17
            assert engine.verify_history(processing.id) == 17
        finally:
            engine.close()

    @pytest.mark.parametrize("timers", [False, True])
    def test_a_dossier_moved_after_the_read_is_a_concurrency_error_with_nothing_written(
        self,
        engine: Engine,
        clock: FrozenClock,
        db: Database,
        monkeypatch: pytest.MonkeyPatch,
        timers: bool,
    ) -> None:
        """The compare-and-set misses (no unique index involved): every other write is undone.

        On PostgreSQL the writes are one statement, whose other parts run all the same.
        """
        processing = to_processing(engine, clock)
        if timers:
            # A supplement request cancels and sets timers and queues notifications.
            processing = engine.fire(
                processing.id, "request_supplement", actor=SPECIALIST, payload={"reason": "x"}
            )
        write = engine.store.write

        def moved_first(connection: Any, writes: Any) -> None:
            connection.exec_driver_sql(
                "UPDATE dossiers SET version = version + 1 WHERE id = %s"
                if db.dialect == "postgresql"
                else "UPDATE dossiers SET version = version + 1 WHERE id = ?",
                (processing.id,),
            )
            write(connection, writes)

        monkeypatch.setattr(engine.store, "write", moved_first)
        before = dump(db)
        trigger, payload = (
            ("supplement", {"documents": ["members_minutes"]})
            if timers
            else ("assign", {"specialist": "cv-2"})
        )
        actor = OFFICER if timers else HEAD
        with pytest.raises(ConcurrencyError, match="changed since version"):
            engine.fire(processing.id, trigger, actor=actor, payload=payload, command_id="c-1")
        assert dump(db) == before

    def test_unique_index_collision_is_a_concurrency_error_with_nothing_written(
        self, engine: Engine, clock: FrozenClock, db: Database
    ) -> None:
        """A race that surfaces at the event index raises ConcurrencyError and writes nothing."""
        processing = to_processing(engine, clock)
        forged = (
            "INSERT INTO events (seq, dossier_id, version, trigger, at, body, mac, chain_mac) "
            "VALUES (999, ?, 3, 'assign', '2026-03-02 03:00:00', '{}', 'x', 'y')"
        )
        db.execute((forged, (processing.id,)))
        before = dump(db)
        with pytest.raises(ConcurrencyError, match=r"retry|first"):
            engine.fire(processing.id, "assign", actor=HEAD, payload={"specialist": "cv"})
        assert dump(db) == before

    @pytest.mark.parametrize("db", ["sqlite"], indirect=True)
    def test_busy_database_is_a_concurrency_error_then_retry_succeeds(
        self, opened: Callable[..., Engine], clock: FrozenClock, db: Database
    ) -> None:
        """A writer holding the lock past the busy timeout: ConcurrencyError, nothing written."""
        engine = opened(config=Config(busy_timeout_ms=50))
        processing = to_processing(engine, clock)
        assert db.path is not None
        blocker = sqlite3.connect(db.path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(ConcurrencyError, match="busy"):
                engine.fire(processing.id, "assign", actor=HEAD, payload={"specialist": "cv"})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert engine.get(processing.id) == processing
        done = retry(
            lambda: engine.fire(processing.id, "assign", actor=HEAD, payload={"specialist": "cv"})
        )
        assert done.version == 3

    def test_stale_compare_and_set_is_a_concurrency_error(
        self, engine: Engine, clock: FrozenClock
    ) -> None:
        """The store's versioned update refuses a version that moved on."""
        processing = to_processing(engine, clock)
        with (
            pytest.raises(ConcurrencyError, match="changed since version 1"),
            engine.store.transaction() as connection,
        ):
            engine.store.update_dossier(connection, processing.id, 1, {"state": "returned"})
        assert engine.get(processing.id) == processing


class TestRetry:
    def test_retries_concurrency_errors_with_growing_pauses(self) -> None:
        """Lost races are retried with exponential backoff until the operation succeeds."""
        pauses: list[float] = []
        outcomes: list[object] = [ConcurrencyError("a"), ConcurrencyError("b"), "done"]

        def operation() -> object:
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        assert retry(operation, backoff=0.1, sleep=pauses.append) == "done"
        assert len(pauses) == 2
        assert 0.05 <= pauses[0] <= 0.15
        assert 0.1 <= pauses[1] <= 0.3

    def test_gives_up_after_the_last_attempt(self) -> None:
        """The last ConcurrencyError is raised once every attempt lost."""
        calls: list[int] = []

        def operation() -> None:
            calls.append(1)
            raise ConcurrencyError(str(len(calls)))

        with pytest.raises(ConcurrencyError, match="3"):
            retry(operation, attempts=3, sleep=lambda _: None)
        assert len(calls) == 3

    def test_other_errors_are_not_retried(self) -> None:
        """A refusal is an answer, not a race: it is raised at once."""
        calls: list[int] = []

        def operation() -> None:
            calls.append(1)
            raise RefusedError("start", ["invalid_in_state"])

        with pytest.raises(RefusedError):
            retry(operation, sleep=lambda _: None)
        assert calls == [1]


class TestMoreBadInput:
    def test_unknown_case_and_trigger_are_refused_and_write_nothing(
        self, engine: Engine, db: Database
    ) -> None:
        """An unknown case or trigger is refused with its reason; nothing written."""
        received = receive(engine)
        before = dump(db)
        with pytest.raises(RefusedError) as caught:
            engine.submit(
                HOUSEHOLD,
                applicant=AN,
                actor=OFFICER,
                channel=Channel.IN_PERSON,
                case="no-such-case",
                form=HOUSEHOLD_FORM,
                documents=["application"],
                fees_collected=True,
            )
        assert caught.value.reasons == ("case_unknown",)
        with pytest.raises(RefusedError) as caught:
            engine.fire(received.id, "teleport", actor=HEAD)
        assert caught.value.reasons == ("unknown_trigger",)
        assert dump(db) == before

    def test_naive_due_bound_is_refused(self, engine: Engine) -> None:
        """A naive `due_before` is not guessed at: CalendarError (an InvalidValueError)."""
        with pytest.raises(InvalidValueError, match="due_before"):
            engine.find(due_before=dt.datetime(2026, 3, 5, 12))  # noqa: DTZ001 - the point

    @pytest.mark.parametrize("db", ["sqlite"], indirect=True)
    def test_corrupt_key_file_is_a_configuration_error(
        self, opened: Callable[..., Engine], url: str, db: Database
    ) -> None:
        """A key file that holds no key is refused instead of silently keying a new chain."""
        opened()
        assert db.path is not None
        db.path.with_name("dvcflow.db.key").write_text("", encoding="ascii")
        with pytest.raises(ConfigurationError, match=r"dvcflow\.db\.key.*not a history key"):
            Engine.open(url)

    @pytest.mark.parametrize("code", ["1.009994", "2.000488", "1.002804"])
    def test_reopened_engine_runs_from_stored_definitions(
        self, db: Database, catalog: Catalog, clock: FrozenClock, code: str
    ) -> None:
        """Without the catalogue, kernels are compiled from the stored versions and behave."""
        Engine.open(db.url, **db.options({"catalog": catalog, "clock": clock})).close()
        engine = Engine.open(db.url, **db.options({"clock": clock}))
        try:
            final = drive(engine, clock, catalog.get(code))
            assert final.state == "returned"
            assert final.dossier.procedure_version == dvcflow._kernel.content_hash(
                catalog.get(code)
            )
        finally:
            engine.close()
