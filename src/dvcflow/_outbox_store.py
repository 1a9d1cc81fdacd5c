"""The store's statements for the outbox, incidents, payments, refunds, callbacks, security log."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from dvcflow._schema import (
    callbacks,
    dossiers,
    incidents,
    outbox,
    payment_attempts,
    payments,
    refunds,
    security_log,
)

__all__ = ["OPEN_PAYMENT_STATES", "OutboxStore", "queued"]

OPEN_PAYMENT_STATES = ("pending", "awaiting")
"""Payment requests that may still be paid."""
EXCERPT_BYTES = 512
"""How much of a rejected body the security log keeps (escaped)."""


_PENDING = sa.text("outbox.status = 'pending'")


def queued(
    key: str, dossier_id: str, kind: str, data: Mapping[str, Any], at: dt.datetime
) -> dict[str, Any]:
    """A new outbox row: an effect due at once, with its idempotency key."""
    return {
        "key": key,
        "dossier_id": dossier_id,
        "kind": kind,
        "data": dict(data),
        "created_at": at,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
    }


def _due(*, skip_locked: bool) -> sa.Select[Any]:
    query = (
        sa.select(outbox.c.id)
        # A literal, not a parameter: the planner must see it matches the partial index.
        .where(_PENDING, outbox.c.next_attempt_at <= sa.bindparam("b_now"))
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(sa.bindparam("b_limit"))
    )
    return query.with_for_update(skip_locked=True) if skip_locked else query


def _claim(*, skip_locked: bool) -> sa.Update:
    # The lease is the next attempt time: a claimed row is not due again until it runs out, so
    # a worker that dies mid-dispatch lets another take its rows then, and no sooner.
    return (
        outbox.update()
        .where(outbox.c.id.in_(_due(skip_locked=skip_locked).scalar_subquery()))
        .values(
            next_attempt_at=sa.bindparam("b_lease"),
            attempts=outbox.c.attempts + 1,
            claimed_by=sa.bindparam("b_worker"),
        )
        .returning(*outbox.c)
    )


_CLAIM = _claim(skip_locked=False)
_CLAIM_SKIP_LOCKED = _claim(skip_locked=True)
_FINISH = (
    outbox.update()
    .where(outbox.c.id.in_(sa.bindparam("b_ids", expanding=True)), outbox.c.status == "pending")
    .values(status="done", done_at=sa.bindparam("b_now"), last_error=None)
)
_DOSSIER_REFS = sa.select(
    dossiers.c.id,
    dossiers.c.code,
    dossiers.c.procedure_code,
    dossiers.c.procedure_version,
    dossiers.c.agency,
    dossiers.c.due_at,
).where(dossiers.c.id.in_(sa.bindparam("b_ids", expanding=True)))


_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F) if code not in {0x09, 0x0A}}


def _escaped(raw: bytes) -> str:
    """Bytes as text safe for any database column: invalid UTF-8 and control bytes escaped."""
    return raw.decode("utf-8", "backslashreplace").translate(_CONTROLS)


class OutboxStore:
    """Statements the outbox worker and the payment ledger run, on SQLite or PostgreSQL."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    # -- outbox --------------------------------------------------------------------------------

    def claim(
        self,
        connection: Connection,
        *,
        now: dt.datetime,
        lease_until: dt.datetime,
        worker: str,
        limit: int,
    ) -> list[Row[Any]]:
        """Claim up to ``limit`` due rows for ``worker`` until ``lease_until``, oldest first.

        On PostgreSQL rows another worker is claiming are skipped (``FOR UPDATE SKIP
        LOCKED``), so any number of workers claim disjoint batches without waiting; on SQLite
        the writer lock makes claims one at a time.
        """
        query = _CLAIM if self.dialect == "sqlite" else _CLAIM_SKIP_LOCKED
        rows = connection.execute(
            query, {"b_now": now, "b_limit": limit, "b_lease": lease_until, "b_worker": worker}
        )
        return sorted(rows, key=lambda row: row.id)

    def finish(self, connection: Connection, ids: Sequence[int], now: dt.datetime) -> None:
        """Mark rows done."""
        if ids:
            connection.execute(_FINISH, {"b_ids": list(ids), "b_now": now})

    def retry_later(
        self, connection: Connection, outbox_id: int, at: dt.datetime, error: str
    ) -> None:
        """Leave a row pending until ``at``, with the error of its latest attempt."""
        connection.execute(
            outbox.update()
            .where(outbox.c.id == outbox_id, outbox.c.status == "pending")
            .values(next_attempt_at=at, last_error=error)
        )

    def park(self, connection: Connection, row: Row[Any], now: dt.datetime, error: str) -> int:
        """Turn a row into an incident for an operator; returns the incident's id."""
        connection.execute(
            outbox.update().where(outbox.c.id == row.id).values(status="incident", last_error=error)
        )
        return int(
            connection.execute(
                incidents.insert()
                .values(
                    outbox_id=row.id,
                    dossier_id=row.dossier_id,
                    kind=row.kind,
                    opened_at=now,
                    attempts=row.attempts,
                    error=error,
                    status="open",
                )
                .returning(incidents.c.id)
            ).scalar_one()
        )

    def purge(self, connection: Connection, before: dt.datetime) -> int:
        """Delete rows delivered before ``before`` (those an incident refers to stay)."""
        result = connection.execute(
            outbox.delete().where(
                outbox.c.status == "done",
                outbox.c.done_at < before,
                outbox.c.id.not_in(sa.select(incidents.c.outbox_id)),
            )
        )
        return int(result.rowcount)

    def dossier_refs(self, connection: Connection, ids: Collection[str]) -> dict[str, Row[Any]]:
        """Code, procedure and agency of each dossier, by id."""
        if not ids:
            return {}
        rows: list[Row[Any]] = list(connection.execute(_DOSSIER_REFS, {"b_ids": sorted(ids)}))
        return {row.id: row for row in rows}

    def outbox_row(self, connection: Connection, outbox_id: int) -> Row[Any] | None:
        """One outbox row."""
        return connection.execute(sa.select(outbox).where(outbox.c.id == outbox_id)).first()

    def outbox_row_by_key(self, connection: Connection, key: str) -> Row[Any] | None:
        """The outbox row of an effect, by its idempotency key."""
        return connection.execute(sa.select(outbox).where(outbox.c.key == key)).first()

    def outbox_counts(self, connection: Connection) -> dict[str, int]:
        """Outbox rows by status."""
        rows = connection.execute(
            sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
        )
        return {status: int(count) for status, count in rows}

    # -- incidents ------------------------------------------------------------------------------

    def incidents(
        self, connection: Connection, *, status: str | None = "open", limit: int = 100
    ) -> list[Row[Any]]:
        """Incidents, oldest first (``status=None``: all of them)."""
        query = sa.select(incidents).order_by(incidents.c.id).limit(limit)
        if status is not None:
            query = query.where(incidents.c.status == status)
        return list(connection.execute(query))

    def incident(self, connection: Connection, incident_id: int) -> Row[Any] | None:
        """One incident."""
        return connection.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()

    def resolve_incident(  # noqa: PLR0913 - the resolution's parts
        self,
        connection: Connection,
        incident: Row[Any],
        *,
        action: str,
        actor: str,
        note: str | None,
        now: dt.datetime,
    ) -> None:
        """Retry (the effect is due again, with fresh attempts) or skip an open incident."""
        connection.execute(
            incidents.update()
            .where(incidents.c.id == incident.id)
            .values(
                status="retried" if action == "retry" else "skipped",
                resolved_at=now,
                resolved_by=actor,
                note=note,
            )
        )
        values: dict[str, Any] = (
            {"status": "pending", "attempts": 0, "next_attempt_at": now}
            if action == "retry"
            else {"status": "skipped", "done_at": now}
        )
        connection.execute(
            outbox.update().where(outbox.c.id == incident.outbox_id).values(**values)
        )

    # -- payments -------------------------------------------------------------------------------

    def insert_payment(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Record a payment request (or a payment taken at the counter)."""
        connection.execute(payments.insert().values(**row))

    def payments_of(self, connection: Connection, dossier_id: str) -> list[Row[Any]]:
        """A dossier's payments, oldest first."""
        query = (
            sa.select(payments)
            .where(payments.c.dossier_id == dossier_id)
            .order_by(payments.c.created_at, payments.c.reference)
        )
        return list(connection.execute(query))

    def payment(
        self,
        connection: Connection,
        *,
        reference: str | None = None,
        outbox_key: str | None = None,
        payment_id: str | None = None,
    ) -> Row[Any] | None:
        """The payment with a reference or an id, or the one a request effect created."""
        if reference is not None:
            where = payments.c.reference == reference
        elif payment_id is not None:
            where = payments.c.id == payment_id
        else:
            where = payments.c.outbox_key == outbox_key
        return connection.execute(sa.select(payments).where(where)).first()

    def update_payment(
        self,
        connection: Connection,
        payment_id: str,
        states: Collection[str],
        **values: Any,  # noqa: ANN401
    ) -> bool:
        """Update a payment still in one of ``states``; whether it was."""
        result = connection.execute(
            payments.update()
            .where(payments.c.id == payment_id, payments.c.state.in_(list(states)))
            .values(**values)
        )
        return result.rowcount == 1

    def close_open_payments(  # noqa: PLR0913 - which payments, and why
        self,
        connection: Connection,
        dossier_id: str,
        fee_kind: str,
        *,
        reason: str,
        key: str | None,
        now: dt.datetime,
        keep: str | None = None,
    ) -> None:
        """Cancel the dossier's open requests of one fee kind (but ``keep``, a payment id)."""
        query = payments.update().where(
            payments.c.dossier_id == dossier_id,
            payments.c.fee_kind == fee_kind,
            payments.c.state.in_(OPEN_PAYMENT_STATES),
        )
        if keep is not None:
            query = query.where(payments.c.id != keep)
        connection.execute(
            query.values(state="cancelled", cancel_reason=reason, cancel_key=key, updated_at=now)
        )

    def cancelled_by(self, connection: Connection, key: str) -> list[Row[Any]]:
        """The payments a cancelling effect cancelled."""
        return list(connection.execute(sa.select(payments).where(payments.c.cancel_key == key)))

    def paid_payment(
        self, connection: Connection, dossier_id: str, fee_kind: str
    ) -> Row[Any] | None:
        """The newest paid payment of one fee kind."""
        return connection.execute(
            sa.select(payments)
            .where(
                payments.c.dossier_id == dossier_id,
                payments.c.fee_kind == fee_kind,
                payments.c.state.in_(("paid", "refunded")),
            )
            .order_by(payments.c.paid_at.desc())
            .limit(1)
        ).first()

    def awaiting_payments(
        self, connection: Connection, *, before: dt.datetime, limit: int
    ) -> list[Row[Any]]:
        """Payment links issued before ``before`` and never settled: the reconciler's work."""
        return list(
            connection.execute(
                sa.select(payments)
                .where(payments.c.state == "awaiting", payments.c.updated_at < before)
                .order_by(payments.c.updated_at)
                .limit(limit)
            )
        )

    def add_attempt(self, connection: Connection, **row: Any) -> int:  # noqa: ANN401
        """Record a call to the provider about to be made; returns its id."""
        return int(
            connection.execute(
                payment_attempts.insert().values(**row).returning(payment_attempts.c.id)
            ).scalar_one()
        )

    def end_attempt(
        self,
        connection: Connection,
        attempt_id: int,
        *,
        state: str,
        now: dt.datetime,
        error: str | None = None,
    ) -> None:
        """Record how a call to the provider ended."""
        connection.execute(
            payment_attempts.update()
            .where(payment_attempts.c.id == attempt_id)
            .values(state=state, finished=True, updated_at=now, error=error)
        )

    def attempts_of(self, connection: Connection, payment_id: str) -> list[Row[Any]]:
        """The calls made about one payment, oldest first."""
        return list(
            connection.execute(
                sa.select(payment_attempts)
                .where(payment_attempts.c.payment_id == payment_id)
                .order_by(payment_attempts.c.id)
            )
        )

    # -- refunds --------------------------------------------------------------------------------

    def insert_refund(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Record a refund owed."""
        connection.execute(refunds.insert().values(**row))

    def refund(self, connection: Connection, outbox_key: str) -> Row[Any] | None:
        """The refund a refund effect created."""
        return connection.execute(
            sa.select(refunds).where(refunds.c.outbox_key == outbox_key)
        ).first()

    def refunds_of(self, connection: Connection, dossier_id: str) -> list[Row[Any]]:
        """A dossier's refunds, oldest first."""
        return list(
            connection.execute(
                sa.select(refunds)
                .where(refunds.c.dossier_id == dossier_id)
                .order_by(refunds.c.created_at, refunds.c.reference)
            )
        )

    def update_refund(
        self,
        connection: Connection,
        refund_id: str,
        states: Collection[str],
        **values: Any,  # noqa: ANN401
    ) -> bool:
        """Update a refund still in one of ``states``; whether it was."""
        result = connection.execute(
            refunds.update()
            .where(refunds.c.id == refund_id, refunds.c.state.in_(list(states)))
            .values(**values)
        )
        return result.rowcount == 1

    def add_refunded(
        self, connection: Connection, payment_id: str, amount: int, now: dt.datetime
    ) -> None:
        """Count a refund against its payment."""
        connection.execute(
            payments.update()
            .where(payments.c.id == payment_id)
            .values(
                refunded_amount=payments.c.refunded_amount + amount,
                state="refunded",
                updated_at=now,
            )
        )

    # -- callbacks and the security log ---------------------------------------------------------

    def callback(self, connection: Connection, provider: str, event_id: str) -> Row[Any] | None:
        """A callback seen before."""
        return connection.execute(
            sa.select(callbacks).where(
                callbacks.c.provider == provider, callbacks.c.event_id == event_id
            )
        ).first()

    def record_callback(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Keep a verified callback, raw, with what it did."""
        connection.execute(callbacks.insert().values(**row))

    def callbacks_of(self, connection: Connection, payment_id: str) -> list[Row[Any]]:
        """The verified callbacks about one payment, oldest first."""
        return list(
            connection.execute(
                sa.select(callbacks)
                .where(callbacks.c.payment_id == payment_id)
                .order_by(callbacks.c.id)
            )
        )

    def log_security(  # noqa: PLR0913 - the record's parts
        self,
        connection: Connection,
        *,
        source: str,
        kind: str,
        detail: str,
        raw: bytes,
        now: dt.datetime,
    ) -> None:
        """Append a rejected request to the security log (digest, size and an excerpt)."""
        connection.execute(
            security_log.insert().values(
                at=now,
                source=source,
                kind=kind,
                detail=detail[:2000],
                size=len(raw),
                digest=hashlib.sha256(raw).hexdigest(),
                excerpt=_escaped(raw[:EXCERPT_BYTES]),
            )
        )

    def security_log(self, connection: Connection, *, limit: int = 100) -> list[Row[Any]]:
        """The security log, newest first."""
        query = sa.select(security_log).order_by(security_log.c.id.desc()).limit(limit)
        return list(connection.execute(query))

    def counts(self, connection: Connection, table: str) -> int:
        """Rows in one of the tables here (for tests and the demo)."""
        tables: Mapping[str, sa.Table] = {
            t.name: t
            for t in (callbacks, incidents, payment_attempts, payments, refunds, security_log)
        }
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(tables[table])).scalar_one()
        )
