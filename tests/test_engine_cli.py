"""The database commands of the command line: db upgrade, show, checkpoint, tick, migrate.

On SQLite and on PostgreSQL (where the command line reads the history key from the variable
its configuration file names).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Channel,
    Config,
    Engine,
    FrozenClock,
)
from dvcflow._cli import EXIT_ENVIRONMENT, EXIT_INVALID, EXIT_OK, main
from dvcflow._demo import happy_path
from pg import ENVIRON, KEY_ENV, Database
from support import migrations_head

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
AGENCY = "UBND-XA.002"
OFFICER = Actor.staff("officer-1", roles={"receiving_officer"}, agency=AGENCY)
HEAD = Actor.staff("head-1", roles={"department_head"}, agency=AGENCY)
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)


def run(*argv: str) -> tuple[int, str]:
    """Run the command line; its exit code and what it printed."""
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def url(db: Database) -> str:
    """The test database's URL (SQLite file or PostgreSQL database)."""
    return db.url


@pytest.fixture
def target(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ...]]:
    """``--db URL``, and on PostgreSQL ``--config`` naming the history key's variable."""
    if db.dialect == "sqlite":
        yield ("--db", db.url)
        return
    config = tmp_path / "dvcflow.toml"
    config.write_text(f'[history]\nkey_env = "{KEY_ENV}"\n', encoding="utf-8")
    monkeypatch.setenv(KEY_ENV, ENVIRON[KEY_ENV])
    yield ("--db", db.url, "--config", str(config))


def opened(db: Database, **options: object) -> Engine:
    """An engine on the test database that seals after each command (no unsealed events)."""
    options.setdefault("config", Config(seal_interval_ms=0))
    return Engine.open(db.url, **db.options(dict(options)))


@pytest.fixture
def received(db: Database, catalog: Catalog) -> dict[str, str]:
    """A database with one household dossier received and started; its id and code."""
    clock = FrozenClock(START)
    engine = opened(db, catalog=catalog, clock=clock)
    try:
        snapshot = engine.submit(
            "2.000575",
            applicant=AN,
            actor=OFFICER,
            channel=Channel.IN_PERSON,
            form={"business_name": "Tạp hóa An", "capital_vnd": 1, "business_lines": "bán lẻ"},
            documents=["application"],
            fees_collected=True,
        )
        clock.advance(dt.timedelta(hours=1))
        engine.fire(snapshot.id, "start", actor=HEAD, payload={"specialist": "cv-7"})
    finally:
        engine.close()
    assert snapshot.code is not None
    return {"id": snapshot.id, "code": snapshot.code}


class TestDbUpgrade:
    def test_creates_then_keeps_the_schema(
        self, url: str, target: tuple[str, ...], db: Database
    ) -> None:
        """`db upgrade` creates the schema at the head revision, and is idempotent."""
        assert run("db", "upgrade", *target) == (
            EXIT_OK,
            f"{url}: schema at revision {migrations_head()}\n",
        )
        assert run("db", "upgrade", *target)[0] == EXIT_OK
        tables = set(db.tables())
        assert {"dossiers", "events", "outbox", "timers", "commands", "chain_head"} <= tables

    def test_missing_folder_is_an_environment_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A database in a folder that does not exist exits 3 and says which folder."""
        url = f"sqlite:///{tmp_path / 'nowhere' / 'dvcflow.db'}"
        assert run("db", "upgrade", "--db", url) == (EXIT_ENVIRONMENT, "")
        assert "nowhere" in capsys.readouterr().err

    def test_newer_schema_is_an_environment_error(
        self, target: tuple[str, ...], db: Database, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A database from a newer dvcflow exits 3 with the reason."""
        run("db", "upgrade", *target)
        db.execute("UPDATE alembic_version SET version_num = '0042'")
        assert run("db", "upgrade", *target)[0] == EXIT_ENVIRONMENT
        assert "newer than this dvcflow" in capsys.readouterr().err

    def test_bad_configuration_is_invalid_input(
        self, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A configuration file with an unknown key exits 1 naming the key."""
        config = tmp_path / "dvcflow.toml"
        config.write_text("[database]\nbusy = 1\n", encoding="utf-8")
        assert run("db", "upgrade", "--db", url, "--config", str(config))[0] == EXIT_INVALID
        assert "busy" in capsys.readouterr().err


class TestShow:
    def test_prints_the_timeline_with_due_dates(
        self, target: tuple[str, ...], received: dict[str, str]
    ) -> None:
        """`show CODE` prints the dossier, its due date, each event and the verification."""
        code, out = run("show", received["code"], *target)
        assert code == EXIT_OK
        assert f"dossier {received['id']}  code {received['code']}" in out
        assert "state processing, national status 4 processing, version 2" in out
        assert "received 02/03/2026 09:00, due 05/03/2026 17:00" in out
        assert re.search(r"1 02/03/2026 09:00  receive .* initial -> received  by officer-1", out)
        assert "due -> 05/03/2026 17:00  [visit]" in out
        assert re.search(r"2 02/03/2026 10:00  start .* received -> processing  by head-1", out)
        assert out.endswith("history verified: 2 events\n")

    def test_show_by_id_is_the_same(
        self, target: tuple[str, ...], received: dict[str, str]
    ) -> None:
        """The id works as well as the code."""
        assert run("show", received["id"], *target) == run("show", received["code"], *target)

    def test_verifies_against_a_checkpoint(
        self, target: tuple[str, ...], received: dict[str, str]
    ) -> None:
        """`--checkpoint` with what `checkpoint` printed also verifies the database chain."""
        code, printed = run("checkpoint", *target)
        assert code == EXIT_OK
        assert re.fullmatch(r"2:[0-9a-f]{64}\n", printed)
        code, out = run("show", received["code"], *target, "--checkpoint", printed.strip())
        assert code == EXIT_OK
        assert out.endswith("history verified: 2 events, and the chain up to checkpoint 2\n")

    def test_bad_checkpoint_is_invalid_input(
        self, target: tuple[str, ...], received: dict[str, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A checkpoint that is not SEQ:MAC exits 1 naming the option."""
        assert run("show", received["code"], *target, "--checkpoint", "2:xyz")[0] == 1
        assert "--checkpoint" in capsys.readouterr().err

    def test_tampered_history_is_reported(
        self,
        target: tuple[str, ...],
        db: Database,
        received: dict[str, str],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """An edited event makes `show` exit 1 naming the event."""
        db.execute("UPDATE events SET body = replace(body, 'cv-7', 'cv-8')")
        assert run("show", received["code"], *target)[0] == EXIT_INVALID
        assert "event 2 (seq 2) was edited" in capsys.readouterr().err

    def test_deleted_newest_event_is_caught_with_the_checkpoint(
        self,
        target: tuple[str, ...],
        db: Database,
        received: dict[str, str],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The newest event deleted and the row rewound: only `--checkpoint` notices."""
        saved = run("checkpoint", *target)[1].strip()
        db.execute("DELETE FROM events WHERE seq = 2", "UPDATE dossiers SET version = 1")
        assert run("show", received["code"], *target)[0] == EXIT_OK
        assert run("show", received["code"], *target, "--checkpoint", saved)[0] == 1
        assert "newest events were deleted" in capsys.readouterr().err

    @pytest.mark.parametrize("db", ["postgresql"], indirect=True)
    def test_says_which_events_wait_to_be_sealed(
        self, target: tuple[str, ...], db: Database, catalog: Catalog
    ) -> None:
        """An event committed but not sealed yet is verified and counted; `checkpoint` seals it."""
        clock = FrozenClock(START)
        engine = opened(db, catalog=catalog, clock=clock, config=Config(seal_interval_ms=60_000))
        try:
            snapshot = engine.submit(
                "2.000575",
                applicant=AN,
                actor=OFFICER,
                channel=Channel.IN_PERSON,
                form={"business_name": "Tạp hóa An", "capital_vnd": 1, "business_lines": "bán lẻ"},
                documents=["application"],
                fees_collected=True,
            )
            engine.fire(snapshot.id, "start", actor=HEAD, payload={"specialist": "cv-7"})
        finally:
            engine.close()
        code, out = run("show", snapshot.id, *target)
        assert code == EXIT_OK
        assert out.endswith(
            "history verified: 2 events (1 not sealed into the database-wide chain yet)\n"
        )
        assert run("checkpoint", *target)[1].startswith("2:")
        assert run("show", snapshot.id, *target)[1].endswith("history verified: 2 events\n")

    @pytest.mark.usefixtures("received")
    def test_unknown_dossier_is_invalid_input(
        self, target: tuple[str, ...], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown dossier exits 1 naming it."""
        assert run("show", "UBND-XA.002-20260302-0000099", *target)[0] == EXIT_INVALID
        assert "UBND-XA.002-20260302-0000099" in capsys.readouterr().err

    def test_unreachable_database_is_an_environment_error(self, tmp_path: Path) -> None:
        """`show` and `checkpoint` on a database in a missing folder exit 3."""
        url = f"sqlite:///{tmp_path / 'gone' / 'dvcflow.db'}"
        assert run("show", "x", "--db", url)[0] == EXIT_ENVIRONMENT
        assert run("checkpoint", "--db", url)[0] == EXIT_ENVIRONMENT


class TestTick:
    def test_fires_due_timers_once(self, target: tuple[str, ...], received: dict[str, str]) -> None:
        """`tick --now` fires the reminder and the escalation, then nothing."""
        code, out = run("tick", *target, "--now", "2026-03-20T09:00+07:00")
        assert code == EXIT_OK
        assert f"{received['id']} due_reminder: notified" in out
        assert f"{received['id']} due_escalation: notified" in out
        assert out.endswith("2 timers fired\n")
        assert run("tick", *target, "--now", "2026-03-21T09:00+07:00") == (
            EXIT_OK,
            "0 timers fired\n",
        )

    @pytest.mark.usefixtures("received")
    def test_before_the_due_date_nothing_fires(self, target: tuple[str, ...]) -> None:
        """An instant before any timer fires nothing."""
        assert run("tick", *target, "--now", "2026-03-02T12:00+07:00") == (
            EXIT_OK,
            "0 timers fired\n",
        )

    @pytest.mark.parametrize("now", ["2026-03-20T09:00", "next tuesday"])
    @pytest.mark.usefixtures("received")
    def test_bad_instant_is_invalid_input(
        self, target: tuple[str, ...], now: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A naive or unreadable `--now` exits 1 naming the option."""
        assert run("tick", *target, "--now", now) == (EXIT_INVALID, "")
        assert "--now" in capsys.readouterr().err

    def test_unreachable_database_is_an_environment_error(self, tmp_path: Path) -> None:
        """A database in a missing folder exits 3."""
        url = f"sqlite:///{tmp_path / 'gone' / 'dvcflow.db'}"
        assert run("tick", "--db", url)[0] == EXIT_ENVIRONMENT


class TestMigrate:
    @pytest.fixture
    def permits(self, db: Database, catalog: Catalog) -> dict[str, str]:
        """Construction permits in appraisal and in site inspection, then a version without it."""
        procedure = catalog.get("1.009994")
        clock = FrozenClock(START)
        engine = opened(db, catalog=catalog, clock=clock)
        made = {}
        try:
            for stop in ("appraisal", "site_inspection"):
                commands = happy_path(procedure)
                trigger, actor, payload = next(commands)
                snapshot = engine.submit(
                    procedure.code,
                    applicant=payload["applicant"],
                    actor=actor,
                    form=payload["form"],
                    documents=payload["documents"],
                )
                while snapshot.state != stop:
                    clock.advance(dt.timedelta(minutes=30))
                    trigger, actor, payload = commands.send(snapshot.dossier)
                    snapshot = engine.fire(snapshot.id, trigger, actor=actor, payload=payload)
                assert snapshot.code is not None
                made[stop] = snapshot.code
            steps = tuple(s for s in procedure.steps if s.name != "site_inspection")
            engine.publish([attrs.evolve(procedure, steps=steps)])
            made["version"] = engine.current_version(procedure.code)
        finally:
            engine.close()
        return made

    def test_plan_lists_each_dossier_and_writes_nothing(
        self, target: tuple[str, ...], db: Database, permits: dict[str, str]
    ) -> None:
        """`migrate plan` prints each dossier's fate and the totals."""
        code, out = run("migrate", "plan", "1.009994", *target)
        assert code == EXIT_OK
        assert f"{permits['appraisal']}: would move appraisal -> appraisal" in out
        assert f"{permits['site_inspection']}: refused: state 'site_inspection'" in out
        assert out.endswith(f"1 would move, 1 refused (to version {permits['version'][:12]})\n")
        triggers = {trigger for (trigger,) in db.rows('SELECT "trigger" FROM events')}
        assert "migrate" not in triggers

    def test_apply_moves_what_it_can_and_exits_1_for_the_rest(
        self, target: tuple[str, ...], db: Database, permits: dict[str, str]
    ) -> None:
        """`migrate apply` moves the movable dossiers; a refused one makes the exit code 1."""
        code, out = run("migrate", "apply", "1.009994", *target, "--actor", "admin-9")
        assert code == EXIT_INVALID
        assert f"{permits['appraisal']}: moved appraisal -> appraisal" in out
        code, out = run(
            "migrate", "apply", "1.009994", *target, "--map", "site_inspection=appraisal"
        )
        assert code == EXIT_OK
        assert out.startswith(f"{permits['site_inspection']}: moved site_inspection -> appraisal")
        assert run("migrate", "plan", "1.009994", *target)[1].startswith("0 would move")
        engine = opened(db)
        try:
            for ref in (permits["appraisal"], permits["site_inspection"]):
                last = engine.history(ref)[-1]
                assert last.trigger == "migrate"
                assert engine.get(ref).dossier.procedure_version == permits["version"]
                assert engine.verify_history(ref, checkpoint=engine.checkpoint()) > 0
            assert engine.history(permits["appraisal"])[-1].actor == "admin-9"
        finally:
            engine.close()

    @pytest.mark.parametrize(
        ("argv", "says"),
        [
            (["--map", "site_inspection"], "--map"),
            (["--map", "site_inspection=nowhere"], "nowhere"),
            (["--to", "0" * 64], "0000000000"),
        ],
    )
    @pytest.mark.usefixtures("permits")
    def test_bad_arguments_are_invalid_input(
        self,
        target: tuple[str, ...],
        argv: list[str],
        says: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A malformed map, an unknown state or an unknown version exits 1 and says which."""
        assert run("migrate", "plan", "1.009994", *target, *argv)[0] == EXIT_INVALID
        assert says in capsys.readouterr().err

    @pytest.mark.usefixtures("permits")
    def test_unknown_procedure_is_invalid_input(
        self, target: tuple[str, ...], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A procedure never published exits 1."""
        assert run("migrate", "plan", "9.999999", *target)[0] == EXIT_INVALID
        assert "9.999999" in capsys.readouterr().err


class TestWorkerAndIncidents:
    @pytest.fixture
    def config(self, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """Notifications to the fake back end (and the history key on PostgreSQL)."""
        path = tmp_path / "worker.toml"
        text = '[providers.fake]\ntype = "fake"\n\n[routing]\nnotification = "fake"\n'
        if db.dialect != "sqlite":
            text += f'\n[history]\nkey_env = "{KEY_ENV}"\n'
            monkeypatch.setenv(KEY_ENV, ENVIRON[KEY_ENV])
        path.write_text(text, encoding="utf-8")
        return path

    def test_worker_once_delivers_and_exits(
        self, url: str, config: Path, received: dict[str, str]
    ) -> None:
        """`worker --once` delivers what is due, prints the tally and exits 0."""
        del received
        code, out = run("worker", "--db", url, "--config", str(config), "--once")
        lines = out.splitlines()
        assert code == EXIT_OK
        assert lines[0].startswith("worker ")
        assert lines[0].endswith(f"delivering the outbox of {url}")
        assert re.fullmatch(r"(\d+) effects claimed: \1 done, 0 to retry, 0 incidents", lines[1])
        assert run("worker", "--db", url, "--config", str(config), "--once")[1].splitlines()[1] == (
            "0 effects claimed: 0 done, 0 to retry, 0 incidents"
        )

    def test_incidents_list_retry_skip(
        self, target: tuple[str, ...], received: dict[str, str]
    ) -> None:
        """Without a notification provider every effect is an incident; list, retry, skip."""
        del received
        assert run("worker", *target, "--once")[0] == EXIT_OK
        code, listing = run("incidents", "list", *target)
        rows = listing.splitlines()
        assert code == EXIT_OK
        assert rows[-1] == f"{len(rows) - 1} incidents"
        assert all("no notification provider is configured" in row for row in rows[:-1])
        first, second = (int(row.split()[0]) for row in rows[:2])
        assert run("incidents", "retry", str(first), *target, "--actor", "ops-1") == (
            EXIT_OK,
            f"incident {first}: retried by ops-1\n",
        )
        assert run("incidents", "skip", str(second), *target)[0] == EXIT_INVALID
        assert run("incidents", "skip", str(second), *target, "--note", "sent by hand") == (
            EXIT_OK,
            f"incident {second}: skipped by cli-operator\n",
        )
        assert run("incidents", "retry", *target)[0] == EXIT_INVALID
        remaining = run("incidents", "list", *target)[1].splitlines()
        assert remaining[-1] == f"{len(rows) - 3} incidents"
        everything = run("incidents", "list", "--all", *target)[1].splitlines()
        assert everything[-1] == f"{len(rows) - 1} incidents"
