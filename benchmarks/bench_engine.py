"""Benchmark: one dvcflow command on a SQLite file, beside a SQLAlchemy Core floor and sqlite3.

Run ``python benchmarks/bench_engine.py`` (``--quick``: smaller counts, under a minute, for CI;
``--profile``: where dvcflow's time goes even when the target is met, with cProfile's ranking;
``--big N``: the size of the large database). Targets (issue 5), measured in one run on real
SQLite files in a temporary folder (WAL, synchronous NORMAL, BEGIN IMMEDIATE, foreign keys on):

* a command that creates no dossier (``reassign`` by a department head, on dossiers of the
  construction-permit example in ``processing``) runs at >= 0.5 x the commands/s of a SQLAlchemy
  Core floor doing exactly its writes in one transaction: read the dossier row, versioned UPDATE
  of the same columns, event INSERT, outbox INSERT, commit, on dvcflow's own tables and a copy
  of the same rows; p50 and p99 reported, raw sqlite3 doing the same statements beside them;
* the same command costs at most 1.2 x as much with 1,000,000 dossiers in the database as with
  1,000. The large database is the small one plus bulk copies of a real dossier's row and
  events (fresh ids and codes), inserted with Core executemany in a few transactions.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import pstats
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import event as sa_event

from dvcflow import Actor, Catalog, Channel, Config, DeliveryMethod, Engine, FrozenClock
from dvcflow._demo import happy_path
from dvcflow._schema import dossiers, events, outbox

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "examples" / "procedures" / "giay-phep-xay-dung.toml"
)
START = dt.datetime(2025, 3, 3, 2, tzinfo=dt.UTC)  # a Monday, 09:00 in Hà Nội
KEY_ENV = "DVCFLOW_BENCH_HISTORY_KEY"
ENVIRON = {KEY_ENV: "5a" * 32}  # a fixed key: a benchmark's history need not be secret
TRIGGER = "reassign"
TARGET_RATIO = 0.5
TARGET_SCALE = 1.2
BULK_DAY = "20240101"  # the bulk copies' codes: a day no engine-made dossier is received on
MB = 1_000_000
PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=5000")
"""dvcflow's connection settings on SQLite (`_store.py`), for the floors' connections too."""


class Sizes(NamedTuple):
    """How much to measure."""

    dossiers: int
    """Dossiers made through the engine (the small database, and those the commands cycle on)."""
    rounds: int
    batch: int
    """Commands per contender per round; the contenders take turns, round after round."""
    warmup: int
    profiled: int
    big: int
    """Dossiers in the large database."""
    scale_rounds: int


FULL = Sizes(
    dossiers=1_000,
    rounds=10,
    batch=400,
    warmup=300,
    profiled=2_000,
    big=1_000_000,
    scale_rounds=20,
)
QUICK = Sizes(
    dossiers=300, rounds=4, batch=150, warmup=100, profiled=300, big=30_000, scale_rounds=4
)


class Contender(NamedTuple):
    """One way of running the command: ``command(k)`` runs the k-th command of its sequence."""

    label: str
    command: Callable[[int], object]
    close: Callable[[], None]
    engine: sa.Engine | None
    """The SQLAlchemy engine whose statements are counted (None: counted another way)."""
    path: Path


class Result(NamedTuple):
    """Latencies of one contender's timed commands (ns) and the wall time of its batches."""

    latencies: list[int]
    elapsed_ns: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / (self.elapsed_ns / 1e9)

    @property
    def mean_us(self) -> float:
        return self.elapsed_ns / len(self.latencies) / 1000

    @property
    def p50_us(self) -> float:
        return statistics.median(self.latencies) / 1000

    @property
    def p99_us(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] / 1000


# -- dossiers made through the engine ----------------------------------------------------------


def _open(path: Path, catalog: Catalog, clock: FrozenClock) -> Engine:
    return Engine.open(
        f"sqlite:///{path}",
        catalog=catalog,
        config=Config(history_key_env=KEY_ENV),
        clock=clock,
        environ=ENVIRON,
    )


def _to_processing(engine: Engine, clock: FrozenClock, catalog: Catalog) -> str:
    """Take a new dossier of the example through `happy_path` until it is in processing."""
    procedure = next(iter(catalog))
    commands = happy_path(procedure)
    trigger, actor, payload = next(commands)
    snapshot = engine.submit(
        procedure.code,
        applicant=payload["applicant"],
        actor=actor,
        channel=Channel.ONLINE if trigger == "submit" else Channel.IN_PERSON,
        form=payload["form"],
        documents=payload["documents"],
        delivery=DeliveryMethod(payload["delivery"]),
        fees_collected=bool(payload.get("fees_collected")),
    )
    while snapshot.state != "processing":
        clock.advance(dt.timedelta(minutes=1))
        trigger, actor, payload = commands.send(snapshot.dossier)
        snapshot = engine.fire(snapshot.id, trigger, actor=actor, payload=payload)
    return snapshot.id


def _populate(path: Path, catalog: Catalog, count: int) -> list[str]:
    """A database with ``count`` dossiers in processing, made through the engine; their ids."""
    clock = FrozenClock(START)
    engine = _open(path, catalog, clock)
    try:
        ids = [_to_processing(engine, clock, catalog) for _ in range(count)]
    finally:
        engine.close()
    _checkpoint(path)
    return ids


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the file, so that copying the file copies the database."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def _size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _head(catalog: Catalog) -> Actor:
    agency = next(iter(catalog)).agency
    return Actor.staff("department_head-1", roles={"department_head"}, agency=agency)


def _specialist(k: int) -> str:
    return f"specialist-{k % 10}"


# -- the contenders ----------------------------------------------------------------------------


def _dvcflow(
    path: Path, catalog: Catalog, ids: Sequence[str], *, command_ids: bool = False
) -> Contender:
    engine = _open(path, catalog, FrozenClock(START + dt.timedelta(days=60)))
    fire, head, count = engine.fire, _head(catalog), len(ids)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"

    def command(k: int) -> object:
        return fire(
            ids[k % count],
            TRIGGER,
            actor=head,
            payload={"specialist": _specialist(k)},
            command_id=f"{prefix}:{k}" if command_ids else None,
        )

    label = "dvcflow Engine.fire" + (", with a command_id" if command_ids else "")
    return Contender(label, command, engine.close, engine.store.engine, path)


def _core_engine(path: Path) -> sa.Engine:
    """A SQLAlchemy engine on the file, set up as dvcflow sets up its own."""
    engine = sa.create_engine(f"sqlite:///{path}")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:  # noqa: ANN401
        dbapi_connection.isolation_level = None
        for pragma in PRAGMAS:
            dbapi_connection.execute(f"PRAGMA {pragma}")

    def on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sa_event.listen(engine, "connect", on_connect)
    sa_event.listen(engine, "begin", on_begin)
    return engine


class _Writes(NamedTuple):
    """What dvcflow's command writes, for the floors to write the same."""

    columns: tuple[str, ...]
    """The dossier columns dvcflow's UPDATE sets, in its order (read from the SQL it sent)."""
    first_seq: int
    body: str
    """A real event body of the command: the floors' events have its size."""
    now: dt.datetime


def _writes(path: Path, sent: Sequence[tuple[str, Any]]) -> _Writes:
    """What the command wrote: the SQL dvcflow sent for one, and the event in its database."""
    updates = [
        statement for statement, _ in sent if re.match(r"UPDATE dossiers SET", statement.strip())
    ]
    if len(updates) != 1:
        msg = f"expected one UPDATE of the dossier in one command, saw {len(updates)}"
        raise AssertionError(msg)
    assignments = re.search(r"SET (.*?) WHERE", updates[0], re.DOTALL)
    if assignments is None:
        msg = f"cannot read the columns of {updates[0]!r}"
        raise AssertionError(msg)
    columns = tuple(
        part.split("=")[0].strip().strip('"') for part in assignments.group(1).split(",")
    )
    connection = sqlite3.connect(path)
    try:
        (seq,) = connection.execute("SELECT max(seq) FROM events").fetchone()
        row = connection.execute(
            'SELECT body FROM events WHERE "trigger" = ? ORDER BY seq DESC LIMIT 1', (TRIGGER,)
        ).fetchone()
    finally:
        connection.close()
    if row is None:
        msg = f"dvcflow wrote no {TRIGGER} event to copy the size of"
        raise AssertionError(msg)
    return _Writes(columns, seq + 1, row[0], START + dt.timedelta(days=60))


MAC = "f" * 64


def _dossier_values(writes: _Writes, row: Any, specialist: str) -> dict[str, Any]:  # noqa: ANN401
    """The dossier's new column values: the row's, one more version, the new assignee."""
    version = row.version + 1
    values = {name: getattr(row, name) for name in writes.columns}
    values |= {"updated_at": writes.now, "version": version}
    values["data"] = row.data | {"version": version, "assignee": specialist}
    return values


def _event_values(writes: _Writes, seq: int, dossier_id: str, version: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "dossier_id": dossier_id,
        "version": version,
        "trigger": TRIGGER,
        "at": writes.now,
        "body": writes.body,
        "mac": MAC,
        "chain_mac": MAC,
    }


def _outbox_values(writes: _Writes, dossier_id: str, version: int, to: str) -> dict[str, Any]:
    return {
        "key": f"{dossier_id}:{version}:0",
        "dossier_id": dossier_id,
        "kind": "notify",
        "data": {"event": "assigned", "to": "officer", "account": to},
        "created_at": writes.now,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": writes.now,
    }


def _core_floor(path: Path, ids: Sequence[str], writes: _Writes) -> Contender:
    """SQLAlchemy Core as one writes it for speed: statements built once, parameters bound."""
    engine = _core_engine(path)
    bind = sa.bindparam
    select = sa.select(dossiers).where(dossiers.c.id == bind("b_id"))
    # No .values(): the SET clause comes from the parameters' names.
    update = dossiers.update().where(
        dossiers.c.id == bind("b_id"), dossiers.c.version == bind("b_version")
    )
    insert_event, insert_outbox = events.insert(), outbox.insert()
    seq, count = [writes.first_seq], len(ids)

    def command(k: int) -> None:
        dossier_id, specialist = ids[k % count], _specialist(k)
        with engine.begin() as connection:
            row = connection.execute(select, {"b_id": dossier_id}).one()
            values = _dossier_values(writes, row, specialist)
            values |= {"b_id": dossier_id, "b_version": row.version}
            if connection.execute(update, values).rowcount != 1:
                msg = f"lost the race on {dossier_id}"
                raise AssertionError(msg)
            version = values["version"]
            connection.execute(insert_event, _event_values(writes, seq[0], dossier_id, version))
            connection.execute(
                insert_outbox, _outbox_values(writes, dossier_id, version, specialist)
            )
        seq[0] += 1

    return Contender("SQLAlchemy Core floor", command, engine.dispose, engine, path)


def _core_per_call(path: Path, ids: Sequence[str], writes: _Writes) -> Contender:
    """The same writes with statements built at each call, with values, as `_store.py` does."""
    engine = _core_engine(path)
    seq, count = [writes.first_seq], len(ids)

    def command(k: int) -> None:
        dossier_id, specialist = ids[k % count], _specialist(k)
        with engine.begin() as connection:
            row = connection.execute(sa.select(dossiers).where(dossiers.c.id == dossier_id)).one()
            values = _dossier_values(writes, row, specialist)
            update = (
                dossiers.update()
                .where(dossiers.c.id == dossier_id, dossiers.c.version == row.version)
                .values(**values)
            )
            if connection.execute(update).rowcount != 1:
                msg = f"lost the race on {dossier_id}"
                raise AssertionError(msg)
            version = values["version"]
            event = _event_values(writes, seq[0], dossier_id, version)
            connection.execute(events.insert().values(**event))
            notice = _outbox_values(writes, dossier_id, version, specialist)
            connection.execute(outbox.insert(), [notice])
        seq[0] += 1

    label = "Core, statements built per call"
    return Contender(label, command, engine.dispose, engine, path)


COLUMNS = tuple(column.name for column in dossiers.columns)
RAW_SELECT = f"SELECT {', '.join(COLUMNS)} FROM dossiers WHERE id = ?"  # noqa: S608 - our names
RAW_EVENT = (
    'INSERT INTO events (seq, dossier_id, version, "trigger", at, body, mac, chain_mac)'
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
RAW_OUTBOX = (
    "INSERT INTO outbox (key, dossier_id, kind, data, created_at, status, attempts,"
    " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite


def _raw(path: Path, ids: Sequence[str], writes: _Writes) -> tuple[Contender, sqlite3.Connection]:
    """The same statements on the sqlite3 module, JSON decoded and encoded as Core does."""
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        connection.execute(f"PRAGMA {pragma}")
    execute = connection.execute
    kept = [COLUMNS.index(name) for name in writes.columns]
    updated_at, version_at, data_at = (
        writes.columns.index(name) for name in ("updated_at", "version", "data")
    )
    assignments = ", ".join(f"{name} = ?" for name in writes.columns)
    update = f"UPDATE dossiers SET {assignments} WHERE id = ? AND version = ?"  # noqa: S608
    seq, count, now = [writes.first_seq], len(ids), writes.now
    version_column = COLUMNS.index("version")

    def command(k: int) -> None:
        dossier_id, specialist = ids[k % count], _specialist(k)
        execute("BEGIN IMMEDIATE")
        with connection:  # COMMIT, or ROLLBACK on an exception
            row = execute(RAW_SELECT, (dossier_id,)).fetchone()
            version = row[version_column] + 1
            at = now.strftime(SQLITE_TIME)
            values = [row[index] for index in kept]
            data = json.loads(values[data_at]) | {"version": version, "assignee": specialist}
            values[updated_at], values[version_at], values[data_at] = at, version, json.dumps(data)
            if execute(update, (*values, dossier_id, version - 1)).rowcount != 1:
                msg = f"lost the race on {dossier_id}"
                raise AssertionError(msg)
            execute(RAW_EVENT, (seq[0], dossier_id, version, TRIGGER, at, writes.body, MAC, MAC))
            notice = {"event": "assigned", "to": "officer", "account": specialist}
            key = f"{dossier_id}:{version}:0"
            execute(
                RAW_OUTBOX, (key, dossier_id, "notify", json.dumps(notice), at, "pending", 0, at)
            )
        seq[0] += 1

    label = "raw sqlite3, same statements"
    return Contender(label, command, connection.close, None, path), connection


# -- measuring ---------------------------------------------------------------------------------


def _measure(contenders: Sequence[Contender], sizes: Sizes) -> dict[str, Result]:
    """Warm each contender up, then time them in turns, ``sizes.batch`` commands at a time.

    The order of the turns rotates from round to round; each contender goes on with its own
    sequence of commands (``command(k)`` with the next ``k``).
    """
    clock = time.perf_counter_ns
    done = {contender.label: sizes.warmup for contender in contenders}
    for contender in contenders:
        for k in range(sizes.warmup):
            contender.command(k)
    latencies: dict[str, list[int]] = {contender.label: [] for contender in contenders}
    elapsed = dict.fromkeys(done, 0)
    for round_number in range(sizes.rounds):
        turn = round_number % len(contenders)
        for contender in [*contenders[turn:], *contenders[:turn]]:
            command, into, first = (
                contender.command,
                latencies[contender.label],
                done[contender.label],
            )
            started = clock()
            for k in range(first, first + sizes.batch):
                before = clock()
                command(k)
                into.append(clock() - before)
            elapsed[contender.label] += clock() - started
            done[contender.label] += sizes.batch
    return {label: Result(latencies[label], elapsed[label]) for label in latencies}


class Footprint(NamedTuple):
    """What one command sends and writes."""

    statements: float
    """SQL statements, BEGIN and COMMIT included."""
    pages: float
    """Pages appended to the WAL at commit (each page a command changes, once)."""


def _footprint(contender: Contender, raw: sqlite3.Connection | None, count: int = 40) -> Footprint:
    """Count statements and WAL pages over ``count`` more commands, after the timing.

    The WAL is emptied first (no checkpoint runs within: SQLite's comes at 1,000 pages).
    """
    seen = [0]

    def counted(*_args: object) -> None:
        seen[0] += 1

    side = sqlite3.connect(contender.path)
    engine = contender.engine
    if engine is not None:
        sa_event.listen(engine, "before_cursor_execute", counted)
        sa_event.listen(engine, "commit", counted)
    elif raw is not None:
        raw.set_trace_callback(counted)
    try:
        (busy, _pages, _done) = side.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        for k in range(10**9, 10**9 + count):
            contender.command(k)
        (_busy, pages, _done) = side.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if busy:  # the WAL was not emptied: its pages are not this command's alone
            pages = float("nan")
    finally:
        side.close()
        if engine is not None:
            sa_event.remove(engine, "before_cursor_execute", counted)
            sa_event.remove(engine, "commit", counted)
        elif raw is not None:
            raw.set_trace_callback(None)
    return Footprint(seen[0] / count, pages / count)


@contextlib.contextmanager
def _captured(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements the engine sends while the block runs, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:  # noqa: ANN401
        sent.append((args[2], args[3]))

    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)


# -- where dvcflow's time goes -----------------------------------------------------------------


class _Profile:
    """Inclusive times of named functions in a cProfile run, per command, in microseconds."""

    def __init__(self, stats: pstats.Stats, commands: int) -> None:
        self.table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
        self.commands = commands

    def keys(self, where: str, name: str) -> list[tuple[str, int, str]]:
        return [key for key in self.table if key[2] == name and key[0].endswith(where)]

    def inclusive(self, where: str, name: str) -> float | None:
        keys = self.keys(where, name)
        if not keys:
            return None
        return sum(self.table[key][3] for key in keys) * 1e6 / self.commands

    def own(self, where: str, name: str) -> float | None:
        keys = self.keys(where, name)
        if not keys:
            return None
        return sum(self.table[key][2] for key in keys) * 1e6 / self.commands

    def called_from(
        self, callee: tuple[str, str], callers: Sequence[tuple[str, str]]
    ) -> float | None:
        """Inclusive time of ``callee`` when called directly from any of ``callers``."""
        keys = self.keys(*callee)
        if not keys:
            return None
        total = 0.0
        for key in keys:
            for caller, edge in self.table[key][4].items():
                if any(
                    name in {"*", caller[2]} and caller[0].endswith(where)
                    for where, name in callers
                ):
                    total += edge[3]
        return total * 1e6 / self.commands


ENGINE, STORE, RECORDING = "dvcflow/_engine.py", "dvcflow/_store.py", "dvcflow/_recording.py"
HISTORY, KERNEL, DOSSIER = "dvcflow/_history.py", "dvcflow/_kernel.py", "dvcflow/_dossier.py"
SA_BASE = "sqlalchemy/engine/base.py"
BUILTIN = "~"
STORE_SQL = {
    "dossier": "SELECT dossier WHERE id = ? OR code = ?",
    "head_for_append": "SELECT the chain head (and whether events wait to be sealed)",
    "update_dossier": "UPDATE dossier WHERE id = ? AND version = ?",
    "append_event": "INSERT event + UPDATE chain head",
    "add_outbox": "INSERT outbox",
}


def _parts(profile: _Profile) -> list[tuple[str, float | None]]:
    """dvcflow's command, part by part: inclusive times, each part once; indented: within."""
    at = profile.inclusive
    from_engine = [(ENGINE, "*")]
    write = at(RECORDING, "write")
    inside = [
        (
            "encode_changes: the Dossier to the data column",
            profile.called_from((DOSSIER, "encode_changes"), [(RECORDING, "write")]),
        ),
        *((f"Store.{name}: {sql}", at(STORE, name)) for name, sql in STORE_SQL.items()),
        (
            "canonical(): the event body's JSON",
            profile.called_from((HISTORY, "canonical"), [(RECORDING, "_event_row")]),
        ),
        (
            "event_mac + chain_mac: two HMAC-SHA256",
            _total(at(HISTORY, "event_mac"), at(HISTORY, "chain_mac")),
        ),
    ]
    inside = [(label, value) for label, value in inside if not label.startswith("Store.dossier")]
    parts: list[tuple[str, float | None]] = [
        (
            "Engine._fingerprint: keyed digest of the command (with a command_id)",
            at(ENGINE, "_fingerprint"),
        ),
        (
            "Store.transaction: pool checkout, BEGIN IMMEDIATE, COMMIT, check-in",
            at(STORE, "transaction"),
        ),
        (f"Store.dossier: {STORE_SQL['dossier']}, JSON decode of data", at(STORE, "dossier")),
        (
            "load_dossier: the data column to a Dossier",
            profile.called_from((DOSSIER, "load_dossier"), from_engine),
        ),
        ("Kernel.decide", at(KERNEL, "decide")),
        ("Recorder.write: all that follows", write),
    ]
    known = [value for _, value in inside if value is not None]
    rest = None if write is None else write - sum(known)
    return [
        *parts,
        *((f"  {label}", value) for label, value in inside),
        ("  the rest of Recorder.write", rest),
    ]


def _total(*values: float | None) -> float | None:
    return None if None in values else sum(value for value in values if value is not None)


def _cross_cutting(profile: _Profile) -> list[tuple[str, float | None]]:
    """The same time cut another way: what kind of work it is."""
    building = 0.0
    for name in STORE_SQL:
        whole = profile.inclusive(STORE, name)
        executing = profile.called_from((SA_BASE, "execute"), [(STORE, name)])
        if whole is not None and executing is not None:
            building += whole - executing
    cache_keys = profile.called_from(
        ("sqlalchemy/sql/cache_key.py", "_generate_cache_key"),
        [("sqlalchemy/util/langhelpers.py", "oneshot")],
    )
    executing = profile.inclusive(SA_BASE, "execute")
    return [
        ("SQLAlchemy: building select/update/insert objects in Store methods", building),
        ("SQLAlchemy: cache keys of those fresh statement objects (at execute)", cache_keys),
        (
            "SQLAlchemy: Connection.execute, cache keys excluded, the driver included",
            None if executing is None or cache_keys is None else executing - cache_keys,
        ),
        (
            "sqlite3: Cursor.execute (SQLite itself: B-trees, pages)",
            profile.own(BUILTIN, "<method 'execute' of 'sqlite3.Cursor' objects>"),
        ),
        (
            "sqlite3: Connection.commit (WAL append, checkpoints)",
            profile.own(BUILTIN, "<method 'commit' of 'sqlite3.Connection' objects>"),
        ),
        (
            "json.dumps + json.loads (data column, outbox, event body, fingerprint)",
            sum(
                value
                for value in (
                    profile.inclusive("json/__init__.py", "dumps"),
                    profile.inclusive("json/__init__.py", "loads"),
                )
                if value is not None
            ),
        ),
        (
            "Logger.info('dvcflow command') (disabled level)",
            profile.inclusive("logging/__init__.py", "info"),
        ),
    ]


def _profile(contender: Contender, first: int, count: int) -> tuple[_Profile, pstats.Stats]:
    profiler = cProfile.Profile()
    command = contender.command
    profiler.enable()
    for k in range(first, first + count):
        command(k)
    profiler.disable()
    stats = pstats.Stats(profiler)
    return _Profile(stats, count), stats


def _print_breakdown(profile: _Profile, unprofiled_us: float) -> None:
    total = profile.inclusive(ENGINE, "fire")
    if total is None:
        print("(Engine.fire is not in the profile)")
        return
    scale = unprofiled_us / total
    print(
        f"where dvcflow's time goes: cProfile over {profile.commands} commands, {total:.0f} us"
        f" per command profiled, {unprofiled_us:.0f} us unprofiled (mean); '~us' scales each"
        f" part by {scale:.2f}"
    )
    print("(cProfile inflates many small calls more than a few big ones: '~us' is an estimate)")
    width = 76

    def line(label: str, value: float | None) -> None:
        if value is None:
            print(f"{label:<{width}} | {'not called':>10} | {'':>6} | {'':>5}")
        else:
            print(
                f"{label:<{width}} | {value:>7.1f} us | {value * scale:>6.1f} |"
                f" {value / total:>5.0%}"
            )

    for title, rows in (
        ("Engine.fire, part by part (inclusive; indented: within the part above)", _parts(profile)),
        ("the same time by kind of work", _cross_cutting(profile)),
    ):
        header = f"{title:<{width}} | {'profiled':>10} | {'~us':>6} | {'share':>5}"
        print()
        print(header)
        print("-" * len(header))
        accounted = 0.0
        for label, value in rows:
            line(label, value)
            if value is not None and not label.startswith(" "):
                accounted += value
        if rows is not None and title.startswith("Engine.fire"):
            line("the rest: DossierSnapshot, logging, the engine's glue", total - accounted)


# -- the large database ------------------------------------------------------------------------


def _columns(table: sa.Table) -> str:
    return ", ".join(f'"{column.name}"' for column in table.columns)


def _insert(table: sa.Table) -> str:
    """An INSERT of every column of ``table`` with positional parameters, for executemany."""
    marks = ", ".join("?" for _ in table.columns)
    return f"INSERT INTO {table.name} ({_columns(table)}) VALUES ({marks})"  # noqa: S608


def _grow(path: Path, template: str, total: int, batch: int = 20_000) -> list[str]:
    """Add bulk copies of dossier ``template`` (its row and events) until ``total`` dossiers.

    Each copy gets a fresh id (a random UUID, inserted in sorted order so the B-trees fill from
    the right) and a fresh code, in its row, its data column and its events' bodies; events take
    fresh numbers of the database-wide chain. The copies share the template's applicant, and
    have no payloads, timers or valid MACs: enough for commands, not for ``verify_history``.
    Rows go in as stored values (no SQLAlchemy type processing), 20,000 dossiers to an
    executemany, 100,000 to a transaction.

    Returns:
        The copies' ids.
    """
    names = [column.name for column in dossiers.columns]
    at_id, at_code, at_data = (names.index(name) for name in ("id", "code", "data"))
    event_names = [column.name for column in events.columns]
    at_event, at_seq, at_dossier, at_body = (
        event_names.index(name) for name in ("id", "seq", "dossier_id", "body")
    )
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        # One writer, a throw-away file: no journal, no syncing, a big page cache.
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144"):
            connection.exec_driver_sql(f"PRAGMA {pragma}")
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        existing = connection.exec_driver_sql("SELECT count(*) FROM dossiers").scalar_one()
        select = f"SELECT {_columns(dossiers)} FROM dossiers WHERE id = ?"  # noqa: S608
        row = list(connection.exec_driver_sql(select, (template,)).one())
        select = f"SELECT {_columns(events)} FROM events WHERE dossier_id = ? ORDER BY version"  # noqa: S608
        history = [list(event) for event in connection.exec_driver_sql(select, (template,))]
        seq = connection.exec_driver_sql("SELECT seq FROM chain_head WHERE id = 1").scalar_one()
        ids = sorted(str(uuid.uuid4()) for _ in range(total - existing))
        code, data = row[at_code], row[at_data]
        prefix = code.rsplit("-", 2)[0]
        insert_dossier, insert_event = _insert(dossiers), _insert(events)
        for start in range(0, len(ids), batch):
            rows, chain = [], []
            for number, copy in enumerate(ids[start : start + batch], start + 1):
                new_code = f"{prefix}-{BULK_DAY}-{number:07d}"
                row[at_id], row[at_code] = copy, new_code
                row[at_data] = data.replace(template, copy).replace(code, new_code)
                rows.append(tuple(row))
                for event in history:
                    seq += 1
                    body = event[at_body]
                    # A NULL id: SQLite numbers the row (the id is its rowid).
                    event[at_event], event[at_seq], event[at_dossier] = None, seq, copy
                    event[at_body] = body.replace(template, copy)
                    chain.append(tuple(event))
                    event[at_body] = body
            connection.exec_driver_sql(insert_dossier, rows)
            connection.exec_driver_sql(insert_event, chain)
            if (start // batch) % 5 == 4:
                connection.commit()
        connection.exec_driver_sql("UPDATE chain_head SET seq = ? WHERE id = 1", (seq,))
        connection.commit()
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    engine.dispose()
    return ids


def _bytes_per_copy(path: Path, template: str) -> float:
    """About what a bulk copy of the dossier takes on disk: its data and event bodies, twice."""
    connection = sqlite3.connect(path)
    try:
        (data,) = connection.execute(
            "SELECT length(data) FROM dossiers WHERE id = ?", (template,)
        ).fetchone()
        (bodies,) = connection.execute(
            "SELECT sum(length(body)) FROM events WHERE dossier_id = ?", (template,)
        ).fetchone()
    finally:
        connection.close()
    return 2.0 * (data + bodies)


def _plans(path: Path, sent: Sequence[tuple[str, Any]]) -> list[str]:
    """SQLite's query plan for each statement of a command that reads or updates rows."""
    connection = sqlite3.connect(path)
    lines = []
    try:
        for statement, parameters in sent:
            verb = statement.split(None, 1)[0].upper()
            if verb not in {"SELECT", "UPDATE"}:
                continue
            plan = connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            steps = "; ".join(step[-1] for step in plan)
            flat = " ".join(statement.split())
            short = re.sub(r"^(SELECT|UPDATE \w+ SET) .*? (FROM|WHERE) ", r"\1 ... \2 ", flat)
            lines.append(f"  {short}\n      -> {steps}")
    finally:
        connection.close()
    return lines


# -- the report --------------------------------------------------------------------------------


def _print_contenders(results: Mapping[str, Result], footprints: Mapping[str, Footprint]) -> float:
    """The side-by-side table; returns dvcflow / Core floor in commands/s."""
    ours = results["dvcflow Engine.fire"].rate
    floor = results["SQLAlchemy Core floor"].rate
    columns = ("commands/s", "mean", "p50", "p99", "statements", "WAL pages", "dvcflow / it")
    label_width = 42
    print(f"{'one command, 1 process':<{label_width}} | " + " | ".join(f"{c:>12}" for c in columns))
    print("-" * label_width + "-+-" + "-+-".join("-" * 12 for _ in columns))
    for label, result in results.items():
        cells = (
            f"{result.rate:,.0f}",
            f"{result.mean_us:.0f} us",
            f"{result.p50_us:.0f} us",
            f"{result.p99_us:.0f} us",
            f"{footprints[label].statements:.0f}",
            f"{footprints[label].pages:.1f}",
            f"{ours / result.rate:.2f}x",
        )
        print(f"{label:<{label_width}} | " + " | ".join(f"{cell:>12}" for cell in cells))
    return ours / floor


def _print_scale(results: Mapping[str, Result], files: Mapping[str, tuple[int, int, int]]) -> float:
    """The small-against-large table; returns the large database's cost over the small one's."""
    labels = list(results)
    small = results[labels[0]]
    slow = 3 * small.p50_us * 1000
    columns = ("file", "events", "commands/s", "mean", "p50", "p99", "slow", "their time")
    columns += ("cost ratio",)
    label_width = 24
    print(
        f"{'dossiers in the database':<{label_width}} | " + " | ".join(f"{c:>11}" for c in columns)
    )
    print("-" * label_width + "-+-" + "-+-".join("-" * 11 for _ in columns))
    for label, result in results.items():
        size, count, event_count = files[label]
        cells = (
            f"{size / MB:,.0f} MB",
            f"{event_count:,}",
            f"{result.rate:,.0f}",
            f"{result.mean_us:.0f} us",
            f"{result.p50_us:.0f} us",
            f"{result.p99_us:.0f} us",
            f"{sum(1 for ns in result.latencies if ns > slow) / len(result.latencies):.1%}",
            f"{sum(ns for ns in result.latencies if ns > slow) / sum(result.latencies):.0%}",
            f"{result.mean_us / small.mean_us:.2f}x",
        )
        print(f"{count:<{label_width},} | " + " | ".join(f"{cell:>11}" for cell in cells))
    large = results[labels[-1]]
    print(
        f"cost ratio: mean time per command against the {labels[0]} database (p50 ratio"
        f" {large.p50_us / small.p50_us:.2f}x, p99 ratio {large.p99_us / small.p99_us:.2f}x);"
        f" slow: the commands over {slow / 1e6:.1f} ms (3 x the small p50), and their share of"
        " the time"
    )
    return large.mean_us / small.mean_us


def _counts(path: Path) -> tuple[int, int]:
    connection = sqlite3.connect(path)
    try:
        dossier_count = connection.execute("SELECT count(*) FROM dossiers").fetchone()[0]
        event_count = connection.execute("SELECT max(seq) FROM events").fetchone()[0]
    finally:
        connection.close()
    return int(dossier_count), int(event_count)


class Setup(NamedTuple):
    """The dossiers made through the engine, in a database the contenders get copies of."""

    folder: Path
    pristine: Path
    catalog: Catalog
    ids: list[str]
    sizes: Sizes


def _compare(setup: Setup, *, profile: bool) -> None:
    """Parts 1-3: dvcflow beside the Core floor and raw sqlite3, then where its time goes."""
    folder, pristine, catalog, ids, sizes = setup
    ours = _dvcflow(_copy(pristine, folder / "dvcflow.sqlite"), catalog, ids)
    with _captured(ours.engine) as sent:  # type: ignore[arg-type]
        ours.command(0)
    writes = _writes(folder / "dvcflow.sqlite", sent)
    raw, raw_connection = _raw(_copy(pristine, folder / "raw.sqlite"), ids, writes)
    contenders = [
        ours,
        _dvcflow(_copy(pristine, folder / "dvcflow-ids.sqlite"), catalog, ids, command_ids=True),
        _core_floor(_copy(pristine, folder / "core.sqlite"), ids, writes),
        _core_per_call(_copy(pristine, folder / "core-per-call.sqlite"), ids, writes),
        raw,
    ]
    try:
        results = _measure(contenders, sizes)
        footprints = {
            contender.label: _footprint(contender, raw_connection if contender is raw else None)
            for contender in contenders
        }
        print(
            f"one '{TRIGGER}' by a department head with a new specialist, cycling over"
            f" {len(ids):,} dossiers of {next(iter(catalog)).code} in processing; each contender"
            f" on its own copy of the same database; {sizes.rounds} rounds of {sizes.batch}"
            f" commands each, in turns, after {sizes.warmup} to warm up"
        )
        print(
            f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sa.__version__},"
            f" Python {sys.version.split()[0]}; WAL, synchronous NORMAL, BEGIN IMMEDIATE,"
            " foreign keys on"
        )
        print()
        ratio = _print_contenders(results, footprints)
        print(
            "The floors write what the command writes: the dossier row (the columns dvcflow's"
            " UPDATE sets, data as JSON),\nan event of the same size, one outbox row. dvcflow"
            " also reads the chain head (the dossier's previous MAC is on its row)\nand moves"
            " the chain head. p99: the commits that run SQLite's automatic WAL checkpoint (at 1,000"
            " pages)."
        )
        print()
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        by_p50 = results["SQLAlchemy Core floor"].p50_us / results[ours.label].p50_us
        print(
            f"target: dvcflow >= {TARGET_RATIO} x the Core floor's commands/s: {verdict}"
            f" ({ratio:.2f}x; {by_p50:.2f}x by p50, without the checkpoints' share)"
        )
        if verdict == "MISSED" or profile:
            print()
            first = 2 * 10**9
            found, stats = _profile(ours, first, sizes.profiled)
            _print_breakdown(found, results[ours.label].mean_us)
            if profile:
                print("\ncProfile's ranking (own time):")
                stats.sort_stats(pstats.SortKey.TIME).print_stats(25)
    finally:
        for contender in contenders:
            contender.close()


def _scale(setup: Setup) -> None:
    """Part 4: the command on the small database and on the large one."""
    folder, pristine, catalog, ids, sizes = setup
    small_path = _copy(pristine, folder / "small.sqlite")
    big_path = folder / "big.sqlite"
    per_dossier = _bytes_per_copy(pristine, ids[0])
    free = shutil.disk_usage(folder).free
    big = sizes.big
    if per_dossier * big * 1.3 > free:
        fits = int(free / (per_dossier * 1.3))
        print(
            f"(not enough disk in {folder} for {big:,} dossiers, about"
            f" {per_dossier * big / MB:,.0f} MB: measuring {fits:,})"
        )
        big = fits
    started = time.perf_counter()
    copies = _grow(_copy(pristine, big_path), ids[0], big)
    built = time.perf_counter() - started
    sample = random.Random(20250303).sample(copies, min(len(ids), len(copies)))
    small = _dvcflow(small_path, catalog, ids)
    large = _dvcflow(big_path, catalog, sample)
    labels = (f"{len(ids):,}", f"{big:,}")
    contenders = [small._replace(label=labels[0]), large._replace(label=labels[1])]
    try:
        with _captured(large.engine) as sent:  # type: ignore[arg-type]
            large.command(0)
        results = _measure(contenders, sizes._replace(rounds=sizes.scale_rounds))
    finally:
        for contender in contenders:
            contender.close()
    files = {}
    for label, path in zip(labels, (small_path, big_path), strict=True):
        files[label] = (_size(path), *_counts(path))
    print(
        f"the same command with {len(ids):,} dossiers in the database and with {big:,}: the"
        f" large one is the small one plus {len(copies):,} bulk copies of a real dossier"
        f" (row and {_counts(pristine)[1] // len(ids)} events each) built in {built:.0f} s;"
        f" commands cycle over {len(ids):,} dossiers (random copies in the large one)"
    )
    print()
    ratio = _print_scale(results, files)
    print("query plans of the command's reads and updates on the large database:")
    for line in _plans(big_path, sent):
        print(line)
    print()
    verdict = "met" if ratio <= TARGET_SCALE else "MISSED"
    print(
        f"target: the cost with {big:,} dossiers within {TARGET_SCALE} x the cost with"
        f" {len(ids):,}: {verdict} ({ratio:.2f}x)"
    )


def main(*, quick: bool = False, profile: bool = False, big: int | None = None) -> None:
    """Measure and print the tables."""
    sizes = QUICK if quick else FULL
    if big is not None:
        if big <= sizes.dossiers:
            msg = f"--big must be more than the {sizes.dossiers:,} dossiers made through the engine"
            raise ValueError(msg)
        sizes = sizes._replace(big=big)
    catalog = Catalog.from_path(EXAMPLE)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dvcflow-bench-") as name:
        folder = Path(name)
        pristine = folder / "pristine.sqlite"
        ids = _populate(pristine, catalog, sizes.dossiers)
        print(
            f"{sizes.dossiers:,} dossiers made through the engine in"
            f" {time.perf_counter() - started:.1f} s, in {folder}"
        )
        print()
        setup = Setup(folder, pristine, catalog, ids, sizes)
        _compare(setup, profile=profile)
        print()
        _scale(setup)
    print(f"\n(the whole benchmark took {time.perf_counter() - started:.0f} s)")


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, under a minute")
    parser.add_argument("--profile", action="store_true", help="always show where time goes")
    parser.add_argument("--big", type=int, help="dossiers in the large database")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _arguments(sys.argv[1:])
    main(quick=arguments.quick, profile=arguments.profile, big=arguments.big)
