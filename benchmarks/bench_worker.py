"""Benchmark: the outbox worker on PostgreSQL, one row at a time beside batches, 1 and 2 workers.

Run ``python benchmarks/bench_worker.py`` (``--quick``: fewer effects; ``--url``: an existing
empty database instead of a throwaway server). Without ``--url`` it starts its own durable
cluster on loopback (fsync and synchronous commit on) with the tests' helper.

Each contender drains the same outbox of notification effects (reset between runs) to the
in-memory fake back end, with worker processes forked after the outbox is filled; the fakes
report the idempotency keys they applied, and the run fails if any effect was applied twice
or not at all.

Target (issue 7), from one run: with the in-memory back ends, >= 5,000 effects/s with 2
workers on PostgreSQL, no effect twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_engine import ENVIRON, EXAMPLE, KEY_ENV, START, _to_processing  # noqa: E402

from dvcflow import Catalog, Config, Engine, FrozenClock, WorkerSettings  # noqa: E402
from dvcflow._schema import messages, outbox  # noqa: E402
from dvcflow.plugins import FakeBackend  # noqa: E402
from pg import Cluster, missing_reason  # noqa: E402

TARGET = 5_000.0
NOW = START + dt.timedelta(days=1)
BACKENDS = {
    "history": {"key_env": KEY_ENV},
    "providers": {"fake": {"type": "fake"}},
    "routing": {"payment": "fake", "notification": "fake", "delivery": "fake"},
}


class Sizes(NamedTuple):
    effects: int
    dossiers: int


FULL = Sizes(effects=40_000, dossiers=40)
QUICK = Sizes(effects=8_000, dossiers=10)


def _open(url: str, catalog: Catalog | None = None, clock: FrozenClock | None = None) -> Engine:
    return Engine.open(
        url,
        catalog=catalog,
        config=Config.from_data(BACKENDS),
        clock=clock or FrozenClock(NOW),
        environ=ENVIRON,
    )


def _fill(url: str, sizes: Sizes) -> None:
    """Real dossiers, then ``effects`` notification rows spread over them."""
    catalog, clock = Catalog.from_path(EXAMPLE), FrozenClock(START)
    engine = _open(url, catalog, clock)
    try:
        ids = [_to_processing(engine, clock, catalog) for _ in range(sizes.dossiers)]
    finally:
        engine.close()
    rows = [
        {
            "key": f"bench:{number}",
            "dossier_id": ids[number % len(ids)],
            "kind": "notify",
            "data": {"event": "assigned", "to": "officer", "account": f"cv-{number % 7}"},
            "created_at": NOW,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": NOW,
        }
        for number in range(sizes.effects)
    ]
    database = sa.create_engine(url)
    try:
        with database.begin() as connection:
            connection.execute(outbox.delete())
            for first in range(0, len(rows), 5_000):
                connection.execute(outbox.insert(), rows[first : first + 5_000])
    finally:
        database.dispose()


def _reset(url: str) -> int:
    """Every effect pending again, the dead row versions vacuumed; how many there are."""
    database = sa.create_engine(url)
    try:
        with database.begin() as connection:
            # A message recorded as sent is not sent again: start each run without them.
            connection.execute(messages.delete())
            connection.execute(
                outbox.update().values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=NOW,
                    done_at=None,
                    claimed_by=None,
                    last_error=None,
                )
            )
        with database.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE outbox"))
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
            )
    finally:
        database.dispose()


def _work(url: str, batch: int, start: Any, out: Any) -> None:  # noqa: ANN401 - mp objects
    engine = _open(url)
    worker = engine.outbox.worker(settings=WorkerSettings(batch=batch))
    fake = engine.backends.plugin(FakeBackend)
    engine.store.engine.connect().close()  # warm the pool before the clock starts
    start.wait()
    began = time.perf_counter()
    while worker.run_once(now=NOW).claimed:
        pass
    elapsed = time.perf_counter() - began
    out.put((elapsed, dict(fake.applied)))
    engine.close()


class Result(NamedTuple):
    per_second: float
    per_worker: float
    seconds: float


def _measure(url: str, batch: int, workers: int) -> Result:
    total = _reset(url)
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(workers + 1), context.Queue()
    processes = [
        context.Process(target=_work, args=(url, batch, start, out)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    results = [out.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
        if process.exitcode != 0:
            msg = "a worker failed"
            raise RuntimeError(msg)
    applied: Counter[str] = Counter()
    for _, keys in results:
        # A message's key is its effect's key and its channel.
        applied.update({key.rsplit(":", 1)[0]: count for key, count in keys.items()})
    twice = [key for key, count in applied.items() if count > 1]
    if twice or len(applied) != total:
        msg = f"{len(twice)} effects applied twice, {total - len(applied)} never"
        raise AssertionError(msg)
    database = sa.create_engine(url)
    with database.connect() as connection:
        pending = connection.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status != "done")
        ).scalar_one()
    database.dispose()
    if pending:
        msg = f"{pending} effects not done"
        raise AssertionError(msg)
    return Result(total / elapsed, total / elapsed / workers, elapsed)


def _benchmark(url: str, sizes: Sizes) -> None:
    began = time.perf_counter()
    _fill(url, sizes)
    print(
        f"  {sizes.effects:,} notification effects on {sizes.dossiers} dossiers, queued in "
        f"{time.perf_counter() - began:.1f} s; each run drains them all, none twice (checked)"
    )
    contenders = [(1, 1), (10, 1), (50, 1), (10, 2), (50, 2)]
    results = {(batch, workers): _measure(url, batch, workers) for batch, workers in contenders}
    print("\n  claim batch  workers   effects/s   per worker   drained in")
    for (batch, workers), result in results.items():
        print(
            f"  {batch:>11}  {workers:>7}  {result.per_second:>10,.0f}  {result.per_worker:>11,.0f}"
            f"   {result.seconds:>7.2f} s"
        )
    one = results[1, 1].per_second
    print(
        f"\n  batch 50 against one row at a time (1 worker): {results[50, 1].per_second / one:.1f}x"
    )
    speedup = results[50, 2].per_second / results[50, 1].per_second
    print(f"  2 workers against 1 (batch 50): {speedup:.2f}x")
    best = results[50, 2].per_second
    verdict = "met" if best >= TARGET else "NOT met"
    print(
        f"\nTarget: >= {TARGET:,.0f} effects/s with 2 workers, none twice: {best:,.0f}: {verdict}"
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
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.effects:,} effects")
    parser.add_argument("--url", help="an existing empty PostgreSQL database to use")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _arguments(sys.argv[1:])
    main(quick=arguments.quick, url=arguments.url)
