"""Benchmark: dvcflow commands on PostgreSQL beside a SQLAlchemy Core floor, 1 and 4 processes.

Run ``python benchmarks/bench_postgres.py`` (``--quick``: shorter runs and 100,000 dossiers
instead of 1,000,000 for the scale test; ``--url``: an existing empty database instead of a
throwaway server). Without ``--url`` it starts its own cluster on loopback with the tests'
helper (``tests/pg.py``) but durable: fsync and synchronous commit on, as in production.

Targets (issue 6), from one run:

* dvcflow commands/s >= 0.5 x a SQLAlchemy Core floor doing a dvcflow command's writes (read
  the dossier row, versioned UPDATE, event INSERT, outbox INSERT, commit), at 1 and at 4
  processes; the command is ``reassign`` by a department head on construction-permit dossiers
  in ``processing`` (as in ``bench_engine.py``), each process on its own dossiers. The
  floor's event is written once, with a chain number of its process's own range; dvcflow's
  is written unsealed and updated by a sealer later (with the default ``seal_interval_ms``),
  work the floor does not do. For reference, a second floor sends the same writes as one
  statement, as dvcflow does on PostgreSQL;
* dvcflow's throughput at 4 processes >= 2 x at 1;
* a command costs at most 1.2 x as much with the large database as with 1,000 dossiers (the
  large one is the small one plus SQL copies of a real dossier's row, events and timers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_engine import (  # noqa: E402 - after the path set-up
    ENVIRON,
    EXAMPLE,
    KEY_ENV,
    START,
    TRIGGER,
    _head,
    _specialist,
    _to_processing,
)

from dvcflow import Catalog, Config, Engine, FrozenClock  # noqa: E402
from dvcflow._schema import dossiers, events, outbox  # noqa: E402
from pg import Cluster, missing_reason  # noqa: E402

TARGET_RATIO = 0.5
TARGET_SPEEDUP = 2.0
TARGET_SCALE = 1.2
MAC = "f" * 64
NOW = START + dt.timedelta(days=60)


class Sizes(NamedTuple):
    seconds: float
    """How long each measurement runs."""
    dossiers: int
    """Dossiers made through the engine (the processes share them out)."""
    small: int
    big: int


FULL = Sizes(seconds=10.0, dossiers=200, small=1_000, big=1_000_000)
QUICK = Sizes(seconds=3.0, dossiers=80, small=1_000, big=100_000)


def _open(url: str, clock: FrozenClock) -> Engine:
    return Engine.open(
        url,
        catalog=Catalog.from_path(EXAMPLE),
        config=Config(history_key_env=KEY_ENV),
        clock=clock,
        environ=ENVIRON,
    )


# -- workers (forked: each opens its own connections) -------------------------------------------


def _dvcflow_worker(url: str, ids: Sequence[str], _worker: int) -> Callable[[int], object]:
    engine = _open(url, FrozenClock(NOW))
    head, count = _head(Catalog.from_path(EXAMPLE)), len(ids)

    def command(k: int) -> object:
        return engine.fire(
            ids[k % count], TRIGGER, actor=head, payload={"specialist": _specialist(k)}
        )

    return command


def _floor_worker(url: str, ids: Sequence[str], worker: int) -> Callable[[int], object]:
    """SQLAlchemy Core written for speed: statements built once, parameters bound."""
    engine = sa.create_engine(url)
    bind = sa.bindparam
    select = sa.select(dossiers).where(dossiers.c.id == bind("b_id"))
    update = dossiers.update().where(
        dossiers.c.id == bind("b_id"), dossiers.c.version == bind("b_version")
    )
    insert_event, insert_outbox = events.insert(), outbox.insert()
    with engine.connect() as connection:
        body = connection.execute(
            sa.select(events.c.body).where(events.c.trigger == TRIGGER).limit(1)
        ).scalar_one()
    # Each process numbers its events in a range of its own: no sequence round trip.
    seq, count = [10**12 * worker], len(ids)

    def command(k: int) -> object:
        dossier_id = ids[k % count]
        with engine.begin() as connection:
            row = connection.execute(select, {"b_id": dossier_id}).one()
            version = row.version + 1
            values = {
                "b_id": dossier_id,
                "b_version": row.version,
                "version": version,
                "updated_at": NOW,
                "owner": row.owner,
                "state": row.state,
                "last_mac": MAC,
                "data": row.data | {"version": version, "assignee": _specialist(k)},
            }
            if connection.execute(update, values).rowcount != 1:
                msg = f"lost the race on {dossier_id}"
                raise AssertionError(msg)
            connection.execute(
                insert_event,
                {
                    "seq": seq[0],
                    "dossier_id": dossier_id,
                    "version": version,
                    "trigger": TRIGGER,
                    "at": NOW,
                    "body": body,
                    "mac": MAC,
                    "chain_mac": MAC,
                },
            )
            connection.execute(
                insert_outbox,
                {
                    "key": f"floor:{dossier_id}:{version}",
                    "dossier_id": dossier_id,
                    "kind": "notify",
                    "data": {"event": "assigned", "to": "officer"},
                    "created_at": NOW,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": NOW,
                },
            )
        seq[0] += 1
        return None

    return command


def _folded_floor_worker(url: str, ids: Sequence[str], worker: int) -> Callable[[int], object]:
    """The floor's writes in one statement (data-modifying CTEs), as dvcflow sends them.

    For reference: how much of dvcflow's distance to the floor is round trips.
    """
    engine = sa.create_engine(url)
    bind = sa.bindparam
    select = sa.select(dossiers).where(dossiers.c.id == bind("b_id"))

    def values(table: sa.Table, prefix: str, names: Sequence[str]) -> dict[str, Any]:
        return {name: bind(f"{prefix}_{name}", type_=table.c[name].type) for name in names}

    changed = ("owner", "state", "updated_at", "version", "data", "last_mac")
    event_columns = ("seq", "dossier_id", "version", "trigger", "at", "body", "mac", "chain_mac")
    outbox_columns = ("key", "dossier_id", "kind", "data", "created_at", "status", "attempts")
    updated = (
        dossiers.update()
        .where(dossiers.c.id == bind("b_id"), dossiers.c.version == bind("b_version"))
        .values(values(dossiers, "d", changed))
        .returning(dossiers.c.id)
        .cte("d")
    )
    write = (
        sa.select(sa.func.count())
        .select_from(updated)
        .add_cte(
            events.insert().values(values(events, "e", event_columns)).cte("e"),
            outbox.insert()
            .values(values(outbox, "o", outbox_columns) | {"next_attempt_at": bind("o_created_at")})
            .cte("o"),
        )
    )
    with engine.connect() as connection:
        body = connection.execute(
            sa.select(events.c.body).where(events.c.trigger == TRIGGER).limit(1)
        ).scalar_one()
    seq, count = [10**12 * worker], len(ids)

    def command(k: int) -> object:
        dossier_id = ids[k % count]
        with engine.begin() as connection:
            row = connection.execute(select, {"b_id": dossier_id}).one()
            version = row.version + 1
            params = {
                "b_id": dossier_id,
                "b_version": row.version,
                "d_owner": row.owner,
                "d_state": row.state,
                "d_updated_at": NOW,
                "d_version": version,
                "d_data": row.data | {"version": version, "assignee": _specialist(k)},
                "d_last_mac": MAC,
                "e_seq": seq[0],
                "e_dossier_id": dossier_id,
                "e_version": version,
                "e_trigger": TRIGGER,
                "e_at": NOW,
                "e_body": body,
                "e_mac": MAC,
                "e_chain_mac": MAC,
                "o_key": f"folded:{dossier_id}:{version}",
                "o_dossier_id": dossier_id,
                "o_kind": "notify",
                "o_data": {"event": "assigned", "to": "officer"},
                "o_created_at": NOW,
                "o_status": "pending",
                "o_attempts": 0,
            }
            if connection.execute(write, params).scalar_one() != 1:
                msg = f"lost the race on {dossier_id}"
                raise AssertionError(msg)
        seq[0] += 1
        return None

    return command


WORKERS = {
    "dvcflow": _dvcflow_worker,
    "floor": _floor_worker,
    "folded": _folded_floor_worker,
}
LABELS = {
    "dvcflow": "dvcflow Engine.fire",
    "floor": "SQLAlchemy Core floor",
    "folded": "Core floor, one write statement",
}


def _run(  # noqa: PLR0913 - one process's share of a run
    kind: str,
    url: str,
    ids: Sequence[str],
    worker: int,
    *,
    seconds: float,
    start: Any,  # noqa: ANN401 - a multiprocessing barrier
    out: Any,  # noqa: ANN401 - a multiprocessing queue
) -> None:
    command = WORKERS[kind](url, ids, worker)
    command(0)  # warm up: connections, statement caches
    start.wait()
    done, latencies, k = 0, [], 1
    deadline = time.perf_counter() + seconds
    while (now := time.perf_counter()) < deadline:
        command(k)
        latencies.append(time.perf_counter() - now)
        done, k = done + 1, k + 1
    out.put((done, latencies))


_RUNS = iter(range(1, 1000))


def _measure(kind: str, url: str, ids: Sequence[str], processes: int, seconds: float) -> Result:
    run = next(_RUNS)
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(
            target=_run,
            args=(kind, url, ids[n::processes], run * 10 + n),
            kwargs={"seconds": seconds, "start": start, "out": out},
        )
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            msg = f"a {kind} worker failed"
            raise RuntimeError(msg)
    done = sum(count for count, _ in results)
    latencies = sorted(value for _, values in results for value in values)
    return Result(
        done / seconds,
        statistics.median(latencies) * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


class Result(NamedTuple):
    per_second: float
    p50_ms: float
    p99_ms: float


# -- the database ---------------------------------------------------------------------------


def _populate(url: str, count: int) -> list[str]:
    clock = FrozenClock(START)
    engine = _open(url, clock)
    try:
        catalog = Catalog.from_path(EXAMPLE)
        return [_to_processing(engine, clock, catalog) for _ in range(count)]
    finally:
        engine.close()


def _grow(url: str, template: str, total: int, batch: int = 100_000) -> float:
    """Copy a real dossier's row, events and timers until ``total`` dossiers; seconds taken."""
    began = time.perf_counter()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            have = connection.execute(sa.text("SELECT count(*) FROM dossiers")).scalar_one()
            first = (
                1
                + connection.execute(
                    sa.text("SELECT count(*) FROM dossiers WHERE code LIKE 'BULK-%'")
                ).scalar_one()
            )
        while have < total:
            last = first + min(batch, total - have) - 1
            params = {"t": template, "first": first, "last": last}
            with engine.begin() as connection:
                connection.execute(sa.text(_COPY_DOSSIERS), params)
                connection.execute(sa.text(_COPY_EVENTS), params)
                connection.execute(sa.text(_COPY_TIMERS), params)
            have += last - first + 1
            first = last + 1
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - began


_BULK_ID = "'b' || lpad(g::text, 35, '0')"
_COPY_DOSSIERS = f"""
INSERT INTO dossiers (id, code, procedure_code, procedure_version, agency, owner, applicant_id,
    state, national_status, due_at, resolved_at, created_at, updated_at, version, data, last_mac)
SELECT {_BULK_ID}, 'BULK-' || g, procedure_code, procedure_version, agency, owner, applicant_id,
    state, national_status, due_at, resolved_at, created_at, updated_at, version, data, last_mac
FROM dossiers, generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g WHERE id = :t
"""  # noqa: S608 - constant SQL
_COPY_EVENTS = f"""
INSERT INTO events (seq, dossier_id, version, trigger, at, body, mac, chain_mac)
SELECT -(g * 100 + version), {_BULK_ID}, version, trigger, at, body, mac, chain_mac
FROM events, generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
WHERE dossier_id = :t AND version <= 6
"""  # noqa: S608 - negative numbers: off the database-wide chain the engine extends
_COPY_TIMERS = f"""
INSERT INTO timers (dossier_id, name, trigger, due_at, active, fired_at)
SELECT {_BULK_ID}, name, trigger, due_at + (g % 400) * interval '1 day', active, fired_at
FROM timers, generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g
WHERE dossier_id = :t
"""  # noqa: S608


def _table_sizes(url: str) -> dict[str, tuple[int, int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            found = {}
            for table in ("dossiers", "events", "timers", "outbox"):
                rows = connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
                size = connection.execute(
                    sa.text("SELECT pg_total_relation_size(:t)"), {"t": table}
                ).scalar_one()
                found[table] = (int(rows), int(size))
            return found
    finally:
        engine.dispose()


# -- the report ---------------------------------------------------------------------------


def _line(label: str, result: Result) -> None:
    print(
        f"  {label:<45} {result.per_second:>8,.0f}/s   p50 {result.p50_ms:6.2f} ms   "
        f"p99 {result.p99_ms:6.2f} ms"
    )


def _verdict(name: str, value: float, target: float, *, at_most: bool = False) -> bool:
    met = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    print(f"  {name:<44} {value:6.2f} (target {sign} {target}): {'met' if met else 'NOT met'}")
    return met


def _reference(name: str, value: float) -> None:
    print(f"  {name:<44} {value:6.2f} (for reference)")


def _benchmark(url: str, sizes: Sizes) -> None:
    began = time.perf_counter()
    ids = _populate(url, sizes.dossiers)
    print(f"  {len(ids)} dossiers made through the engine in {time.perf_counter() - began:.1f} s")
    _grow(url, ids[0], sizes.small)
    results: dict[tuple[str, int], Result] = {}
    for processes in (1, 4):
        for kind in WORKERS:
            results[kind, processes] = _measure(kind, url, ids, processes, sizes.seconds)
    print(f"\n{sizes.small:,} dossiers, {sizes.seconds:.0f} s per run, commands/s (all processes)")
    for (kind, processes), result in results.items():
        _line(f"{LABELS[kind]}, {processes} process{'es' if processes > 1 else ''}", result)
    grown = _grow(url, ids[0], sizes.big)
    big = _measure("dvcflow", url, ids, 1, sizes.seconds)
    print(f"\n{sizes.big:,} dossiers (grown in {grown:.0f} s), 1 process")
    _line("dvcflow Engine.fire", big)
    for table, (rows, size) in _table_sizes(url).items():
        print(f"  {table:<10} {rows:>12,} rows {size / 1e6:>10,.1f} MB with indexes")
    print("\nTargets")
    small = results["dvcflow", 1]
    _verdict(
        "dvcflow / floor, 1 process",
        small.per_second / results["floor", 1].per_second,
        TARGET_RATIO,
    )
    _verdict(
        "dvcflow / floor, 4 processes",
        results["dvcflow", 4].per_second / results["floor", 4].per_second,
        TARGET_RATIO,
    )
    _verdict(
        "dvcflow 4 processes / 1 process",
        results["dvcflow", 4].per_second / small.per_second,
        TARGET_SPEEDUP,
    )
    _reference(
        "floor 4 processes / 1 process",
        results["floor", 4].per_second / results["floor", 1].per_second,
    )
    for processes in (1, 4):
        _reference(
            f"dvcflow / one-statement floor, {processes} process{'es' if processes > 1 else ''}",
            results["dvcflow", processes].per_second / results["folded", processes].per_second,
        )
    _verdict(
        f"cost at {sizes.big:,} / at {sizes.small:,} (p50)",
        big.p50_ms / small.p50_ms,
        TARGET_SCALE,
        at_most=True,
    )


def main(*, quick: bool = False, url: str | None = None) -> None:
    """Run the benchmark and print its figures (on a throwaway durable server by default)."""
    sizes = QUICK if quick else FULL
    if url is not None:
        _benchmark(url, sizes)
        return
    reason = missing_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    cluster = Cluster(durable=True).start()
    try:
        print(f"PostgreSQL on 127.0.0.1:{cluster.port} (fsync on, synchronous_commit on)")
        _benchmark(cluster.create_database("bench"), sizes)
    finally:
        cluster.stop()


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, 100,000 dossiers")
    parser.add_argument("--url", help="an existing empty PostgreSQL database to use")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _arguments(sys.argv[1:])
    main(quick=arguments.quick, url=arguments.url)
