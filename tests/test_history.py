"""Tamper-evident history on a real SQLite file: canonical bodies, both MAC chains, erasure."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Channel,
    Checkpoint,
    Config,
    DeliveryMethod,
    Dossier,
    Engine,
    FrozenClock,
    TamperedHistoryError,
    replay,
)
from dvcflow._demo import happy_path
from dvcflow._dossier import encode_changes
from dvcflow._history import GENESIS, canonical, chain_mac, digest, event_mac
from pg import Database

VN = ZoneInfo("Asia/Ho_Chi_Minh")
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=VN)
AGENCY = "UBND-XA.002"
OFFICER = Actor.staff("officer-1", roles={"receiving_officer"}, agency=AGENCY)
HEAD = Actor.staff("head-1", roles={"department_head"}, agency=AGENCY)
SPECIALIST = Actor.staff("specialist-1", roles={"specialist"}, agency=AGENCY)
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)
PERSONAL = ("Nguyễn Văn An", "001099012345", "0912345678", "an@example.vn", "Tạp hóa An")
"""Personal values the tests put in applicants, forms and receivers."""
TABLES = ("applicants", "payloads", "dossiers", "events", "outbox", "timers", "commands")


def execute(db: Database, statement: str, *args: object) -> None:
    """Change the database behind dvcflow's back, as someone with database access could."""
    db.execute((statement, args))


def select(db: Database, query: str, *args: object) -> list[tuple[Any, ...]]:
    """Read the database directly."""
    return db.rows(query, *args)


def event(path: Path, dossier_id: str, version: int) -> dict[str, Any]:
    """One event row as a dict."""
    columns = ("seq", "dossier_id", "version", "trigger", "at", "body", "mac", "chain_mac")
    (row,) = select(
        path,
        f"SELECT {', '.join(columns)} FROM events WHERE dossier_id = ? AND version = ?",  # noqa: S608
        dossier_id,
        version,
    )
    return dict(zip(columns, row, strict=True))


def needles(value: str) -> set[str]:
    """How a value would look in a column: as text, or JSON-escaped (SQLAlchemy's JSON type)."""
    return {value, json.dumps(value)[1:-1]}


def containing(db: Database, value: str, tables: tuple[str, ...] = TABLES) -> list[str]:
    """The ``table.column`` places where ``value`` appears, grepping every row."""
    found = []
    with db.engine.connect() as connection:
        for table in tables:
            # Every column as the database's text: JSON as stored, not parsed by the driver.
            result = connection.exec_driver_sql(f"SELECT * FROM {table}")  # noqa: S608
            names = list(result.keys())
            for row in result:
                for name, cell in zip(names, row, strict=True):
                    text = (
                        cell.decode("latin-1")
                        if isinstance(cell, bytes)
                        else cell
                        if isinstance(cell, str)
                        else json.dumps(cell)
                        if isinstance(cell, dict | list)
                        else str(cell)
                    )
                    if any(needle in text for needle in needles(value)):
                        found.append(f"{table}.{name}")
    return sorted(set(found))


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen on a Monday morning in Hanoi."""
    return FrozenClock(START)


@pytest.fixture
def engine(db: Database, catalog: Catalog, clock: FrozenClock) -> Iterator[Engine]:
    """An engine on a fresh database (SQLite file or PostgreSQL), sealing after each command.

    So every event has its place in the database-wide chain when a test looks (on
    PostgreSQL a busy engine seals at most every ``seal_interval_ms``: see test_sealing).
    """
    options = {"catalog": catalog, "clock": clock, "config": Config(seal_interval_ms=0)}
    engine = Engine.open(db.url, **db.options(options))
    yield engine
    engine.close()


def receive(engine: Engine) -> str:
    """A household-business dossier received at the counter; its id."""
    return engine.submit(
        "2.000575",
        applicant=AN,
        actor=OFFICER,
        channel=Channel.IN_PERSON,
        form={"business_name": "Tạp hóa An", "capital_vnd": 50_000_000, "business_lines": "bán lẻ"},
        documents=["application"],
        fees_collected=True,
    ).id


@pytest.fixture
def two(engine: Engine, clock: FrozenClock) -> tuple[str, str]:
    """Dossiers A (4 events) and B (3 events), their events interleaved in the global chain.

    Global order: A1 B1 A2 B2 A3 B3 A4.
    """
    a, b = receive(engine), receive(engine)
    for specialist in ("cv-1", "cv-2"):
        clock.advance(dt.timedelta(minutes=30))
        for ref in (a, b):
            trigger = "start" if engine.get(ref).state == "received" else "assign"
            engine.fire(ref, trigger, actor=HEAD, payload={"specialist": specialist})
    engine.fire(a, "request_supplement", actor=SPECIALIST, payload={"reason": "thiếu giấy tờ"})
    return a, b


class TestCanonical:
    def test_sorted_keys_no_spaces_utf8(self) -> None:
        """Keys sorted at every depth, no spaces between tokens, non-ASCII kept as UTF-8."""
        value = {"b": {"z": 1, "a": [1, 2]}, "a": "Nguyễn", "c": None}
        assert canonical(value) == '{"a":"Nguyễn","b":{"a":[1,2],"z":1},"c":null}'
        assert digest(value) == hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()

    @pytest.mark.usefixtures("two")
    def test_stored_bodies_are_canonical(self, db: Database) -> None:
        """Every stored body is its own canonical form, with Vietnamese text unescaped."""
        bodies = [body for (body,) in select(db, "SELECT body FROM events ORDER BY seq")]
        assert len(bodies) == 7
        for body in bodies:
            assert body == canonical(json.loads(body))
        assert "thiếu giấy tờ" in bodies[-1]
        assert "\\u" not in bodies[-1]

    @pytest.mark.usefixtures("two")
    def test_macs_follow_the_documented_scheme(self, engine: Engine, db: Database) -> None:
        """mac = HMAC(key, previous mac + body); chain_mac = HMAC(key, previous + seq + mac)."""
        key = db.key()
        previous_chain = GENESIS
        previous_mac: dict[str, str] = {}
        for seq, dossier_id, body, mac, chained in select(
            db, "SELECT seq, dossier_id, body, mac, chain_mac FROM events ORDER BY seq"
        ):
            previous = previous_mac.get(dossier_id, GENESIS)
            expected = hmac.new(key, f"{previous}\n{body}".encode(), hashlib.sha256).hexdigest()
            assert mac == expected == event_mac(key, body, previous)
            assert chained == chain_mac(key, seq, mac, previous_chain)
            assert json.loads(body)["previous"] == previous
            previous_mac[dossier_id], previous_chain = mac, chained
        assert str(engine.checkpoint()) == f"7:{previous_chain}"


class TestTamperedDossierChain:
    def test_intact_history_verifies(self, engine: Engine, two: tuple[str, str]) -> None:
        """Both dossiers verify, also against a checkpoint."""
        a, b = two
        checkpoint = engine.checkpoint()
        assert engine.verify_history(a, checkpoint=checkpoint) == 4
        assert engine.verify_history(b, checkpoint=checkpoint) == 3

    def test_edited_body_is_named(self, engine: Engine, two: tuple[str, str], db: Database) -> None:
        """An edited body (still valid JSON) no longer matches its MAC."""
        a, _ = two
        body = event(db, a, 3)["body"]
        assert "cv-2" in body
        execute(db, "UPDATE events SET body = ? WHERE seq = ?", body.replace("cv-2", "cv-9"), 5)
        with pytest.raises(TamperedHistoryError, match=r"event 3 \(seq 5\) was edited"):
            engine.verify_history(a)

    @pytest.mark.parametrize("garbage", ["not json", "[]", "", '{"previous": 7}'])
    def test_body_replaced_by_garbage_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database, garbage: str
    ) -> None:
        """A body that is not an event at all is reported as tampered, not as a parse error."""
        a, _ = two
        execute(db, "UPDATE events SET body = ? WHERE seq = 5", garbage)
        with pytest.raises(TamperedHistoryError, match=r"event 3 \(seq 5\)"):
            engine.verify_history(a)

    def test_edited_mac_is_named(self, engine: Engine, two: tuple[str, str], db: Database) -> None:
        """A rewritten MAC matches neither its body nor the next event's link."""
        a, _ = two
        execute(db, "UPDATE events SET mac = ? WHERE seq = 3", "ab" * 32)
        with pytest.raises(TamperedHistoryError, match=r"event 2 \(seq 3\)"):
            engine.verify_history(a)

    def test_deleted_middle_event_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A deleted event leaves a gap in the versions."""
        a, _ = two
        execute(db, "DELETE FROM events WHERE dossier_id = ? AND version = 2", a)
        with pytest.raises(TamperedHistoryError, match="event 2 is missing"):
            engine.verify_history(a)

    def test_inserted_forged_event_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A forged newest event (and the dossier row bumped to match) fails its MAC."""
        a, _ = two
        newest = event(db, a, 4)
        body = json.loads(newest["body"]) | {"version": 5, "seq": 8, "trigger": "resolve"}
        execute(
            db,
            "INSERT INTO events (seq, dossier_id, version, trigger, at, body, mac, chain_mac) "
            "VALUES (8, ?, 5, 'resolve', ?, ?, ?, ?)",
            a,
            newest["at"],
            canonical(body),
            "cd" * 32,
            "ef" * 32,
        )
        execute(db, "UPDATE dossiers SET version = 5 WHERE id = ?", a)
        with pytest.raises(TamperedHistoryError, match=r"event 5 \(seq 8\) was edited or inserted"):
            engine.verify_history(a)

    def test_inserted_copy_of_an_event_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """An authentic event replayed as a new version does not follow its predecessor."""
        a, _ = two
        copied = event(db, a, 2)
        execute(
            db,
            "INSERT INTO events (seq, dossier_id, version, trigger, at, body, mac, chain_mac) "
            "VALUES (8, ?, 5, ?, ?, ?, ?, ?)",
            a,
            copied["trigger"],
            copied["at"],
            copied["body"],
            copied["mac"],
            copied["chain_mac"],
        )
        execute(db, "UPDATE dossiers SET version = 5 WHERE id = ?", a)
        with pytest.raises(
            TamperedHistoryError, match=r"event 5 \(seq 8\) does not follow event 4"
        ):
            engine.verify_history(a)

    def test_swapped_events_are_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """Two events exchanging places (versions swapped) break the order."""
        a, _ = two
        db.execute(
            *(
                (
                    "UPDATE events SET version = ? WHERE dossier_id = ? AND version = ?",
                    (new, a, old),
                )
                for old, new in ((2, -1), (3, 2), (-1, 3))
            )
        )
        with pytest.raises(
            TamperedHistoryError, match=r"event 2 \(seq 5\) does not follow event 1"
        ):
            engine.verify_history(a)

    def test_swapped_contents_are_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """Two events exchanging bodies and MACs (rows kept) are reordered history."""
        a, _ = two
        second, third = event(db, a, 2), event(db, a, 3)
        for target, source in ((second, third), (third, second)):
            execute(
                db,
                "UPDATE events SET body = ?, mac = ? WHERE seq = ?",
                source["body"],
                source["mac"],
                target["seq"],
            )
        with pytest.raises(TamperedHistoryError, match=r"event 2 \(seq 3\) does not follow"):
            engine.verify_history(a)

    def test_event_moved_to_another_dossier_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A's newest event appended to B (B's row bumped): B names it; A misses it."""
        a, b = two
        execute(
            db,
            "UPDATE events SET dossier_id = ?, version = 4 WHERE dossier_id = ? AND version = 4",
            b,
            a,
        )
        execute(db, "UPDATE dossiers SET version = 4 WHERE id = ?", b)
        with pytest.raises(
            TamperedHistoryError, match=r"event 4 \(seq 7\) does not follow event 3"
        ):
            engine.verify_history(b)
        with pytest.raises(TamperedHistoryError, match=r"3 events but the dossier is at version 4"):
            engine.verify_history(a)

    def test_whole_history_moved_to_another_dossier_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """Every event of A given to a copy of A's row: the first event names its dossier."""
        a, _ = two
        execute(
            db,
            "INSERT INTO dossiers SELECT 'impostor', NULL, procedure_code, procedure_version, "
            "agency, owner, applicant_id, state, national_status, due_at, resolved_at, "
            "created_at, updated_at, version, data, last_mac FROM dossiers WHERE id = ?",
            a,
        )
        execute(db, "UPDATE events SET dossier_id = 'impostor' WHERE dossier_id = ?", a)
        with pytest.raises(TamperedHistoryError, match=f"event 1 .* was moved.*{a}"):
            engine.verify_history("impostor")

    def test_deleted_newest_event_is_caught_by_the_dossier_version(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """With the dossier row left at its version, a deleted newest event is detected."""
        a, _ = two
        execute(db, "DELETE FROM events WHERE dossier_id = ? AND version = 4", a)
        with pytest.raises(TamperedHistoryError, match="3 events but the dossier is at version 4"):
            engine.verify_history(a)


class TestTamperedDatabaseChain:
    @staticmethod
    def rewind(path: Database, dossier_id: str, version: int) -> None:
        """Delete a dossier's newest event and set its row back: a per-dossier-perfect cover-up."""
        execute(
            path, "DELETE FROM events WHERE dossier_id = ? AND version = ?", dossier_id, version
        )
        execute(path, "DELETE FROM outbox WHERE key LIKE ?", f"{dossier_id}:{version}:%")
        bodies = select(
            path, "SELECT body FROM events WHERE dossier_id = ? ORDER BY version", dossier_id
        )
        before = replay(json.loads(body)["changes"] for (body,) in bodies)
        data = encode_changes({f.name: getattr(before, f.name) for f in attrs.fields(Dossier)})
        (newest,) = select(
            path,
            "SELECT mac FROM events WHERE dossier_id = ? AND version = ?",
            dossier_id,
            version - 1,
        )[0]
        execute(
            path,
            "UPDATE dossiers SET version = ?, state = ?, data = ?, last_mac = ? WHERE id = ?",
            version - 1,
            before.state,
            json.dumps(data),
            newest,
            dossier_id,
        )

    def test_deleted_newest_event_with_a_rewound_row_needs_a_checkpoint(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """The per-dossier chain cannot see the cover-up; a saved checkpoint does."""
        a, _ = two
        saved = engine.checkpoint()
        self.rewind(db, a, 4)
        assert engine.verify_history(a) == 3
        with pytest.raises(TamperedHistoryError, match="ends at event 6 but checkpoint 7"):
            engine.verify_history(a, checkpoint=saved)

    def test_deleted_event_in_the_middle_of_the_database_chain(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """B's newest event is seq 6 of 7: with a checkpoint the gap is named, from A too."""
        a, b = two
        saved = engine.checkpoint()
        self.rewind(db, b, 3)
        assert engine.verify_history(b) == 2
        with pytest.raises(TamperedHistoryError, match="missing event 6"):
            engine.verify_history(b, checkpoint=saved)
        with pytest.raises(TamperedHistoryError, match=r"event 4 \(seq 7\)"):
            engine.verify_history(a)

    def test_edited_chain_mac_is_named(
        self, engine: Engine, two: tuple[str, str], db: Database
    ) -> None:
        """A rewritten database-wide MAC is caught even without a checkpoint."""
        a, _ = two
        execute(db, "UPDATE events SET chain_mac = ? WHERE seq = 3", "01" * 32)
        with pytest.raises(TamperedHistoryError, match=r"event 2 \(seq 3\)"):
            engine.verify_history(a)

    def test_rewritten_history_after_the_checkpoint_is_caught(
        self, engine: Engine, two: tuple[str, str], db: Database, clock: FrozenClock
    ) -> None:
        """Newest event deleted, chain head rewound, a new event written: the checkpoint differs."""
        a, _ = two
        saved = engine.checkpoint()
        self.rewind(db, a, 4)
        (chained,) = select(db, "SELECT chain_mac FROM events WHERE seq = 6")[0]
        execute(db, "UPDATE chain_head SET seq = 6, mac = ?", chained)
        clock.advance(dt.timedelta(hours=1))
        engine.fire(a, "assign", actor=HEAD, payload={"specialist": "cv-other"})
        assert engine.verify_history(a) == 4
        assert event(db, a, 4)["seq"] == 7
        with pytest.raises(TamperedHistoryError, match="does not match the saved checkpoint"):
            engine.verify_history(a, checkpoint=saved)

    def test_an_older_checkpoint_still_verifies_later_history(
        self, engine: Engine, two: tuple[str, str], clock: FrozenClock
    ) -> None:
        """A checkpoint saved earlier keeps verifying as history grows."""
        a, b = two
        saved = engine.checkpoint()
        clock.advance(dt.timedelta(hours=1))
        engine.fire(b, "assign", actor=HEAD, payload={"specialist": "cv-3"})
        assert engine.verify_history(a, checkpoint=saved) == 4
        assert engine.checkpoint().seq == saved.seq + 1

    @pytest.mark.usefixtures("two")
    def test_checkpoint_text_round_trips(self, engine: Engine) -> None:
        """`seq:mac` as printed parses back; anything else is a ValueError."""
        saved = engine.checkpoint()
        assert Checkpoint.parse(str(saved)) == saved
        for text in ("7", "x:" + "a" * 64, "7:abc"):
            with pytest.raises(ValueError, match="not a checkpoint"):
                Checkpoint.parse(text)


class TestErasure:
    @pytest.fixture
    def finished(self, engine: Engine, clock: FrozenClock, catalog: Catalog) -> list[str]:
        """Dossiers run to the end (returned in person, by post, online) and one supplemented."""
        ids = []
        for code in ("1.000894", "2.000488", "1.001193"):
            commands = happy_path(catalog.get(code))
            trigger, actor, payload = next(commands)
            snapshot = engine.submit(
                code,
                applicant=payload["applicant"],
                actor=actor,
                channel=Channel.ONLINE if trigger == "submit" else Channel.IN_PERSON,
                form=payload["form"],
                documents=payload["documents"],
                delivery=DeliveryMethod(payload["delivery"]),
                fees_collected=bool(payload.get("fees_collected")),
            )
            while True:
                try:
                    trigger, actor, payload = commands.send(snapshot.dossier)
                except StopIteration:
                    break
                clock.advance(dt.timedelta(minutes=30))
                snapshot = engine.fire(snapshot.id, trigger, actor=actor, payload=payload)
            assert snapshot.state == "returned"
            ids.append(snapshot.id)
        waiting = receive(engine)
        engine.fire(waiting, "start", actor=HEAD, payload={"specialist": "cv-1"})
        engine.fire(waiting, "request_supplement", actor=SPECIALIST, payload={"reason": "thiếu"})
        engine.fire(
            waiting, "supplement", actor=OFFICER, payload={"documents": ["members_minutes"]}
        )
        return [*ids, waiting]

    def test_personal_data_is_held_apart_from_history(
        self, engine: Engine, finished: list[str], db: Database
    ) -> None:
        """Names, ids, phones and emails are in applicants and payloads, never in the history."""
        data = engine.personal_data(finished[0])
        assert data["applicant"]["identifier"] == "001099012345"
        assert data["receiver"]["name"] == "Nguyễn Văn An"
        assert {"applicant", "documents", "form", "receiver"} <= set(data)
        for value in PERSONAL[:4]:
            assert containing(db, value, ("applicants",)) == ["applicants.data"]
        assert containing(db, "Nguyễn Văn An", ("payloads",)) == ["payloads.data"]
        for value in PERSONAL:
            assert containing(db, value, ("events", "outbox", "dossiers", "commands")) == []
        # Events refer to each personal payload by its row id and digest.
        refs = engine.history(finished[0])[-1].personal["receiver"]
        assert select(db, "SELECT kind, digest FROM payloads WHERE id = ?", refs["id"]) == [
            ("receiver", refs["digest"])
        ]
        refs = engine.history(finished[0])[0].personal["applicant"]
        assert select(db, "SELECT digest FROM applicants WHERE id = ?", refs["id"]) == [
            (refs["digest"],)
        ]

    def test_erasure_leaves_every_chain_verifiable(
        self, engine: Engine, finished: list[str], db: Database
    ) -> None:
        """After erasing every dossier's personal data, all histories and the chain verify."""
        checkpoint = engine.checkpoint()
        versions = {ref: engine.get(ref).version for ref in finished}
        for ref in finished:
            assert engine.erase_personal_data(ref) > 0
            assert engine.personal_data(ref) == {}
            assert engine.erase_personal_data(ref) == 0
        for ref in finished:
            assert engine.verify_history(ref, checkpoint=checkpoint) == versions[ref]
        for value in PERSONAL:
            assert containing(db, value) == [], value
        erased = select(db, "SELECT COUNT(*) FROM payloads WHERE erased_at IS NULL")
        assert erased == [(0,)]
        assert engine.history(finished[0])[0].personal["applicant"]["digest"]

    def test_digests_do_not_confirm_a_guess(
        self, engine: Engine, finished: list[str], db: Database
    ) -> None:
        """A guessed receiver or applicant cannot be confirmed from the digests left behind."""
        data = engine.personal_data(finished[0])
        for ref in finished:
            engine.erase_personal_data(ref)
        guesses = [digest(data["receiver"]), digest(data["applicant"]), digest(data["form"])]
        for guess in guesses:
            assert containing(db, guess) == []
