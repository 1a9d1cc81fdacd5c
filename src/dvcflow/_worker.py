"""The outbox worker: claims effects in batches, calls the back ends, retries, opens incidents."""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy.engine import Row

from dvcflow._backend_config import WorkerSettings
from dvcflow._clock import to_utc
from dvcflow._kernel import EffectKind
from dvcflow.errors import BackendError, ConcurrencyError, DvcflowError

if TYPE_CHECKING:
    from dvcflow._engine import Engine
    from dvcflow._notifications import Journal

__all__ = ["Worker", "WorkerReport"]

logger = logging.getLogger("dvcflow")

_PAYMENT_KINDS = frozenset(
    {EffectKind.REQUEST_PAYMENT, EffectKind.CANCEL_PAYMENT, EffectKind.REFUND}
)
_MESSAGE_KINDS = frozenset({EffectKind.NOTIFY.value, EffectKind.ISSUE_DOCUMENT.value})


@attrs.frozen
class WorkerReport:
    """What one round (or a whole run) of the worker did."""

    claimed: int = 0
    done: int = 0
    retried: int = 0
    incidents: int = 0

    def __add__(self, other: WorkerReport) -> WorkerReport:
        return WorkerReport(
            self.claimed + other.claimed,
            self.done + other.done,
            self.retried + other.retried,
            self.incidents + other.incidents,
        )


class Worker:
    """Delivers the outbox's effects to the back ends, at least once each.

    A row is claimed with a lease (its next attempt time moves to the end of the lease) in a
    short transaction of its own, dispatched outside any transaction with its idempotency key,
    then marked done; a worker that dies mid-dispatch leaves its rows to be claimed again when
    the lease runs out. A failure is retried with exponential backoff and jitter; after
    ``max_attempts``, or at once for a failure that cannot improve, the row becomes an incident
    (`Engine.incidents`).

    Args:
        engine: the engine whose database and back ends the worker uses.
        name: shown in ``outbox.claimed_by``; host, process and a random suffix by default.
        settings: the configuration's ``[worker]`` by default.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        name: str | None = None,
        settings: WorkerSettings | None = None,
        random_unit: Callable[[], float] = random.random,
    ) -> None:
        self.engine = engine
        self.settings = settings or engine.config.worker
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._random = random_unit
        self._last_reconcile: float | None = None

    def _now(self, now: dt.datetime | None) -> dt.datetime:
        return to_utc(now if now is not None else self.engine.clock.now(), "now")

    def backoff(self, attempts: int) -> dt.timedelta:
        """The delay before the next attempt after ``attempts`` failed ones (with jitter)."""
        base = self.settings.backoff_ms / 1000 * 2 ** max(attempts - 1, 0)
        delay = min(base, self.settings.max_backoff_s) * (0.5 + self._random())
        return dt.timedelta(seconds=delay)

    def run_once(self, *, now: dt.datetime | None = None, limit: int | None = None) -> WorkerReport:
        """Claim one batch of due effects and dispatch it."""
        at = self._now(now)
        store, ledger = self.engine.store, self.engine.store.ledger
        lease = at + dt.timedelta(seconds=self.settings.lease_s)
        with store.transaction(durable=False) as connection:
            rows = ledger.claim(
                connection,
                now=at,
                lease_until=lease,
                worker=self.name,
                limit=limit or self.settings.batch,
            )
        if not rows:
            return WorkerReport()
        with store.connect() as connection:
            dossiers = ledger.dossier_refs(connection, {row.dossier_id for row in rows})
        journal = self.engine.notifications.journal(
            [row for row in rows if row.kind in _MESSAGE_KINDS]
        )
        done: list[int] = []
        failed: list[tuple[Row[Any], BackendError]] = []
        for row in rows:
            try:
                self._dispatch(row, dossiers.get(row.dossier_id), at, journal)
            except BackendError as exc:
                failed.append((row, exc))
            except DvcflowError as exc:
                failed.append((row, BackendError(str(exc), retryable=False)))
            except Exception as exc:
                logger.exception("dvcflow back end failed", extra={"effect": row.key})
                failed.append((row, BackendError(f"{type(exc).__name__}: {exc}")))
            else:
                done.append(row.id)
        retried = parked = 0
        # Incidents are kept durably; completions and retries need not be (see Store).
        with store.transaction(durable=not failed) as connection:
            self.engine.notifications.write(connection, journal)
            ledger.finish(connection, done, at)
            for row, error in failed:
                if not error.retryable or row.attempts >= self.settings.max_attempts:
                    incident = ledger.park(connection, row, at, str(error))
                    logger.warning(
                        "dvcflow incident opened",
                        extra={"incident": incident, "effect": row.key, "error": str(error)},
                    )
                    parked += 1
                else:
                    ledger.retry_later(
                        connection, row.id, at + self.backoff(row.attempts), str(error)
                    )
                    retried += 1
        return WorkerReport(len(rows), len(done), retried, parked)

    def drain(self, *, now: dt.datetime | None = None, rounds: int = 10_000) -> WorkerReport:
        """Run rounds until nothing is due at ``now`` (retries scheduled later stay queued)."""
        total = WorkerReport()
        for _ in range(rounds):
            report = self.run_once(now=now)
            total += report
            if not report.claimed:
                break
        return total

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        concurrency: int = 1,
        once: bool = False,
    ) -> WorkerReport:
        """Work in ``concurrency`` threads until ``stop`` is set (``once``: until nothing is due).

        Each thread claims its own batches; on PostgreSQL several workers, here or on other
        machines, never claim the same row. Payments that got no callback are reconciled
        every ``reconcile_every_s`` seconds.
        """
        stop = stop or threading.Event()
        reports: list[WorkerReport] = []
        lock = threading.Lock()

        def loop() -> None:
            total = WorkerReport()
            while not stop.is_set():
                try:
                    self._maybe_reconcile()
                    report = self.run_once()
                except ConcurrencyError:
                    # Another claimer held the lock (SQLite) or a connection dropped: retry.
                    stop.wait(self.settings.poll_ms / 1000 * self._random())
                    continue
                total += report
                if not report.claimed:
                    if once:
                        break
                    stop.wait(self.settings.poll_ms / 1000)
            with lock:
                reports.append(total)

        threads = [
            threading.Thread(target=loop, name=f"dvcflow-worker-{index}", daemon=True)
            for index in range(max(concurrency, 1))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result = WorkerReport()
        for report in reports:
            result += report
        return result

    def _maybe_reconcile(self) -> None:
        every = self.settings.reconcile_every_s
        now = time.monotonic()
        if self._last_reconcile is not None and now - self._last_reconcile < every:
            return
        self._last_reconcile = now
        try:
            self.engine.payments.reconcile()
        except DvcflowError as exc:
            logger.warning("dvcflow reconcile failed", extra={"error": str(exc)})

    def _dispatch(
        self, row: Row[Any], dossier: Row[Any] | None, now: dt.datetime, journal: Journal
    ) -> None:
        if dossier is None:
            msg = f"effect {row.key}: dossier {row.dossier_id} is not in the database"
            raise BackendError(msg, retryable=False)
        kind = EffectKind(row.kind)
        if kind in _PAYMENT_KINDS:
            self.engine.payments.dispatch(kind, row, dossier, now)
            return
        if kind is EffectKind.DELIVER:
            self.engine.deliveries.dispatch(row, dossier, now)
            return
        # Notifications, and the forms (receipt, guidance, refusal, apology) the applicant gets.
        self.engine.notifications.dispatch(row, dossier, now, journal)
