"""Several OS processes on one database (SQLite file or PostgreSQL).

No lost update, unique codes, every command once in history, timers fired exactly once.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dvcflow import Actor, Applicant, ApplicantType, Catalog, Channel, Engine, FrozenClock
from dvcflow._history import GENESIS, verify_chain
from pg import ENVIRON, KEY_ENV, Database

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
AGENCY = "UBND-XA.002"
OFFICER = Actor.staff("officer-1", roles={"receiving_officer"}, agency=AGENCY)
HEAD = Actor.staff("head-1", roles={"department_head"}, agency=AGENCY)
SPECIALIST = Actor.staff("specialist-1", roles={"specialist"}, agency=AGENCY)
FORM = {"business_name": "Tạp hóa An", "capital_vnd": 1, "business_lines": "bán lẻ"}
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)

WORKER = r"""
import datetime as dt, json, sys, time
from pathlib import Path

from dvcflow import Actor, Applicant, ApplicantType, Catalog, Channel, ConcurrencyError, Engine
from dvcflow import Config, FrozenClock, retry

mode, url, name, folder, at, raw = sys.argv[1:7]
args = json.loads(raw)
agency = "UBND-XA.002"


def wait_for_the_others():
    Path(folder, "ready-" + name).touch()
    deadline = time.monotonic() + 30
    while not Path(folder, "go").exists():
        if time.monotonic() > deadline:
            sys.exit("the other workers never got ready")
        time.sleep(0.001)


if args.get("fresh"):
    # Everybody opens a database nobody created yet, at the same moment.
    wait_for_the_others()
catalog = Catalog.from_path(args["catalog"]) if args.get("catalog") else None
options = {}
if args.get("key_env"):
    # PostgreSQL: the history key comes from the configured environment variable.
    options["config"] = Config.from_data({"history": {"key_env": args["key_env"]}})
    options["environ"] = {args["key_env"]: args["key"]}
engine = Engine.open(
    url, catalog=catalog, clock=FrozenClock(dt.datetime.fromisoformat(at)), **options
)
try:
    if not args.get("fresh"):
        wait_for_the_others()
    result = []
    seal = args.get("seal")
    if seal:
        # Every process seals the backlog at the same moment, a few events per transaction.
        retry(lambda: engine.seal(batch=seal), attempts=40, backoff=0.002)
    if mode == "fire":
        head = Actor.staff("head-1", roles={"department_head"}, agency=agency)
        for number in range(args["count"]):
            for dossier in args["dossiers"]:
                specialist = f"{name}-{dossier[:8]}-{number}"
                command = f"{name}:{dossier}:{number}"

                def assign(dossier=dossier, specialist=specialist, command=command):
                    return engine.fire(
                        dossier,
                        "assign",
                        actor=head,
                        payload={"specialist": specialist},
                        command_id=command,
                    )

                try:
                    snapshot = retry(assign, attempts=40, backoff=0.002)
                except ConcurrencyError as exc:
                    result.append({"command": command, "error": str(exc)})
                    continue
                # The repeat also waits for SQLite's writer lock: under load it may need a retry.
                again = retry(assign, attempts=40, backoff=0.002)
                if seal:
                    retry(lambda: engine.seal(batch=seal), attempts=40, backoff=0.002)
                result.append(
                    {
                        "command": command,
                        "dossier": dossier,
                        "specialist": specialist,
                        "version": snapshot.version,
                        "again": again.version,
                    }
                )
    elif mode == "intake":
        officer = Actor.staff("officer-" + name, roles={"receiving_officer"}, agency=agency)
        applicant = Applicant(ApplicantType.CITIZEN, "001099012345", "Nguyen Van An",
                              phone="0912345678")
        form = {"business_name": "Tap hoa", "capital_vnd": 1, "business_lines": "ban le"}
        for number in range(args["count"]):
            def receive(number=number):
                return engine.submit(
                    "2.000575",
                    applicant=applicant,
                    actor=officer,
                    channel=Channel.IN_PERSON,
                    form=form,
                    documents=["application"],
                    fees_collected=True,
                    command_id=f"intake:{name}:{number}",
                )
            result.append(retry(receive, attempts=40, backoff=0.002).code)
        if args.get("shared"):
            # The same command sent by every process: one dossier, one outcome for all.
            clerk = Actor.staff("officer-x", roles={"receiving_officer"}, agency="UBND-XA.001")
            shared = retry(
                lambda: engine.submit(
                    "2.000815",
                    applicant=applicant,
                    actor=clerk,
                    channel=Channel.IN_PERSON,
                    documents=["original"],
                    fees_collected=True,
                    command_id="shared-intake",
                ),
                attempts=40,
                backoff=0.002,
            )
            result.append(shared.id)
    elif mode == "tick":
        now = dt.datetime.fromisoformat(args["now"])
        for _ in range(args["rounds"]):
            result += retry(lambda: engine.tick(now, limit=args["limit"]), attempts=40,
                            backoff=0.002)
    print(json.dumps(result))
finally:
    engine.close()
"""


def launch(folder: Path, db: Database, mode: str, workers: int, **args: Any) -> list[Any]:
    """Start ``workers`` processes, release them together, and return what each printed."""
    if db.dialect == "postgresql":
        args |= {"key_env": KEY_ENV, "key": ENVIRON[KEY_ENV]}
    url = db.url
    go = folder / "go"
    go.unlink(missing_ok=True)
    for ready in folder.glob("ready-*"):
        ready.unlink()
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [
                sys.executable,
                "-c",
                WORKER,
                mode,
                url,
                f"w{number}",
                str(folder),
                START.isoformat(),
                json.dumps(args),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(workers)
    ]
    try:
        deadline = time.monotonic() + 30
        while len(list(folder.glob("ready-*"))) < workers:
            assert time.monotonic() < deadline, "the workers did not start"
            assert all(process.poll() is None for process in processes), "a worker died"
            time.sleep(0.01)
        go.touch()
        outputs = []
        for process in processes:
            out, err = process.communicate(timeout=45)
            assert process.returncode == 0, err
            outputs.append(json.loads(out))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    return outputs


@pytest.fixture
def engine(db: Database, catalog: Catalog) -> Iterator[Engine]:
    """The test's own engine on the shared database (it creates the schema and the key)."""
    engine = Engine.open(db.url, **db.options({"catalog": catalog, "clock": FrozenClock(START)}))
    yield engine
    engine.close()


def receive(engine: Engine) -> str:
    """A household dossier received at the counter; its id."""
    return engine.submit(
        "2.000575",
        applicant=AN,
        actor=OFFICER,
        channel=Channel.IN_PERSON,
        form=FORM,
        documents=["application"],
        fees_collected=True,
    ).id


class TestConcurrentCommands:
    def test_no_lost_update_and_every_command_once(
        self, engine: Engine, db: Database, tmp_path: Path
    ) -> None:
        """4 processes assign the same 3 dossiers 10 times each: 120 events, versions add up."""
        dossiers = [receive(engine) for _ in range(3)]
        for dossier in dossiers:
            engine.fire(dossier, "start", actor=HEAD, payload={"specialist": "first"})
        outputs = launch(tmp_path, db, "fire", 4, dossiers=dossiers, count=10)
        done = [item for output in outputs for item in output]
        assert [item for item in done if "error" in item] == []
        assert len(done) == 120
        assert all(item["again"] == item["version"] for item in done)
        for dossier in dossiers:
            mine = [item for item in done if item["dossier"] == dossier]
            snapshot = engine.get(dossier)
            assert snapshot.version == 2 + len(mine) == 42
            assert sorted(item["version"] for item in mine) == list(range(3, 43))
            newest = max(mine, key=lambda item: item["version"])
            assert snapshot.dossier.assignee == newest["specialist"]
            history = engine.history(dossier)
            assigned = collections.Counter(event.data.get("specialist") for event in history)
            assert all(assigned[item["specialist"]] == 1 for item in mine)
            by_version = {event.version: event.data["specialist"] for event in history[2:]}
            assert by_version == {item["version"]: item["specialist"] for item in mine}
            assert engine.verify_history(dossier, checkpoint=engine.checkpoint()) == 42

    def test_codes_are_unique_under_concurrent_intake(
        self, engine: Engine, db: Database, tmp_path: Path
    ) -> None:
        """4 processes each receive 25 dossiers of one agency on one day: codes 1..100."""
        outputs = launch(tmp_path, db, "intake", 4, count=25, shared=True)
        shared = {output.pop() for output in outputs}
        assert len(shared) == 1
        assert engine.get(shared.pop()).code == "UBND-XA.001-20260302-0000001"
        codes = [code for output in outputs for code in output]
        assert len(codes) == len(set(codes)) == 100
        prefix = f"{AGENCY}-20260302-"
        assert all(code.startswith(prefix) for code in codes)
        assert sorted(int(code.removeprefix(prefix)) for code in codes) == list(range(1, 101))
        for output in outputs:
            numbers = [int(code.removeprefix(prefix)) for code in output]
            assert numbers == sorted(numbers)
        page = engine.find(agency=AGENCY, limit=1000)
        assert sorted(snapshot.code or "" for snapshot in page.items) == sorted(codes)
        assert len(engine.find(agency="UBND-XA.001").items) == 1

    def test_processes_opening_a_new_database_at_once_share_schema_and_key(
        self, examples_dir: Path, db: Database, tmp_path: Path
    ) -> None:
        """4 processes create one new database together: one schema, one key, codes 1..20."""
        outputs = launch(tmp_path, db, "intake", 4, count=5, fresh=True, catalog=str(examples_dir))
        codes = sorted(code for output in outputs for code in output)
        assert codes == [f"{AGENCY}-20260302-{n:07d}" for n in range(1, 21)]
        if db.path is not None:
            assert len(list(db.path.parent.glob("dvcflow.db.key*"))) == 1
        engine = Engine.open(db.url, **db.options({"clock": FrozenClock(START)}))
        try:
            checkpoint = engine.checkpoint()
            assert checkpoint.seq == 20
            for snapshot in engine.find(limit=1000).items:
                assert engine.verify_history(snapshot.id, checkpoint=checkpoint) == 1
        finally:
            engine.close()


class TestConcurrentSealing:
    @staticmethod
    def backlog(engine: Engine, db: Database) -> list[str]:
        """Three dossiers whose 9 events all wait to be sealed.

        On PostgreSQL they are made while another session holds the chain head, so commands
        leave them unsealed; on SQLite, where commands seal their own events, they are
        unsealed afterwards, the state a backlog would leave.
        """
        with db.engine.connect() as holder:
            if db.dialect == "postgresql":
                holder.exec_driver_sql("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE")
            dossiers = [receive(engine) for _ in range(3)]
            for dossier in dossiers:
                engine.fire(dossier, "start", actor=HEAD, payload={"specialist": "first"})
                engine.fire(dossier, "assign", actor=HEAD, payload={"specialist": "second"})
            holder.rollback()
        if db.dialect == "sqlite":
            db.execute(
                "UPDATE events SET seq = NULL, chain_mac = NULL",
                ("UPDATE chain_head SET seq = 0, mac = ?", (GENESIS,)),
            )
        assert db.rows("SELECT count(*) FROM events WHERE seq IS NULL") == [(9,)]
        return dossiers

    def test_each_event_is_sealed_once_and_the_numbers_have_no_gaps(
        self, engine: Engine, db: Database, tmp_path: Path
    ) -> None:
        """4 processes seal a backlog at once, then command and seal in turns: 1..N, one chain."""
        dossiers = self.backlog(engine, db)
        outputs = launch(tmp_path, db, "fire", 4, dossiers=dossiers, count=5, seal=2)
        done = [item for output in outputs for item in output]
        assert [item for item in done if "error" in item] == []
        assert len(done) == 60
        ((total,),) = db.rows("SELECT count(*) FROM events")
        assert total == 9 + 60
        assert db.rows("SELECT count(*) FROM events WHERE seq IS NULL OR chain_mac IS NULL") == [
            (0,)
        ]
        numbers = [seq for (seq,) in db.rows("SELECT seq FROM events ORDER BY seq")]
        assert numbers == list(range(1, total + 1))
        checkpoint = engine.checkpoint()
        assert checkpoint.seq == total
        with engine.store.connect() as connection:
            assert verify_chain(db.key(), engine.store.events_from(connection, 1)) == checkpoint
        for dossier in dossiers:
            assert engine.verify_history(dossier, checkpoint=checkpoint) == 3 + 20


class TestConcurrentTick:
    def test_each_timer_fires_exactly_once(
        self, engine: Engine, db: Database, tmp_path: Path
    ) -> None:
        """3 processes tick at once over reminders and supplement expiries: each fires once."""
        plain = [receive(engine) for _ in range(12)]
        waiting = []
        for _ in range(8):
            dossier = receive(engine)
            engine.fire(dossier, "start", actor=HEAD, payload={"specialist": "cv"})
            engine.fire(
                dossier, "request_supplement", actor=SPECIALIST, payload={"reason": "thiếu"}
            )
            waiting.append(dossier)
        with engine.store.connect() as connection:
            timers = engine.store.count(connection, "timers")
        assert timers == 2 * 12 + 3 * 8
        now = (START + dt.timedelta(days=60)).isoformat()
        outputs = launch(tmp_path, db, "tick", 3, now=now, rounds=2, limit=7)
        fired = [tuple(item) for output in outputs for item in output]
        assert [item for item, times in collections.Counter(fired).items() if times > 1] == []
        expected = {
            (dossier, name, "notified")
            for dossier in plain
            for name in ("due_reminder", "due_escalation")
        }
        expected |= {(dossier, "supplement_expiry", "fired") for dossier in waiting}
        # Expiry stops the dossier and cancels its reminders, which may have fired first.
        reminders = {item for item in fired if item[0] in waiting and item[2] == "notified"}
        assert set(fired) == expected | reminders
        assert engine.tick(dt.datetime.fromisoformat(now)) == []
        with engine.store.connect() as connection:
            outbox = [row.key for row in engine.store.outbox_rows(connection)]
        assert len([key for key in outbox if key.startswith("timer:")]) == 24 + len(reminders)
        for dossier in waiting:
            history = engine.history(dossier)
            assert [event.trigger for event in history].count("expire_supplement") == 1
            assert engine.get(dossier).state == "stopped"
            assert engine.verify_history(dossier, checkpoint=engine.checkpoint()) == 4
