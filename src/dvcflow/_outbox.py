"""The outbox as operators see it: what is queued, the incidents, and retrying or skipping them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy.engine import Row

from dvcflow._clock import to_utc
from dvcflow._snapshots import aware
from dvcflow._worker import Worker
from dvcflow.errors import InvalidValueError, NotFoundError, RefusedError

if TYPE_CHECKING:
    from dvcflow._engine import Engine

__all__ = ["Incident", "Outbox", "OutboxItem"]


@attrs.frozen
class Incident:
    """An effect that kept failing (or cannot succeed), parked for an operator."""

    id: int
    effect: str
    """The effect's idempotency key."""
    dossier_id: str
    kind: str
    opened_at: dt.datetime
    attempts: int
    error: str
    status: str
    """``open``, ``retried`` or ``skipped``."""
    resolved_at: dt.datetime | None
    resolved_by: str | None
    note: str | None


@attrs.frozen
class OutboxItem:
    """One queued effect."""

    id: int
    key: str
    dossier_id: str
    kind: str
    data: dict[str, Any]
    status: str
    """``pending``, ``done``, ``incident`` or ``skipped``."""
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None


def _item(row: Row[Any]) -> OutboxItem:
    return OutboxItem(
        row.id,
        row.key,
        row.dossier_id,
        row.kind,
        dict(row.data),
        row.status,
        row.attempts,
        aware(row.next_attempt_at),
        row.last_error,
    )


class Outbox:
    """The engine's outbox: ``engine.outbox``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._store = engine.store
        self._ledger = engine.store.ledger

    def worker(self, **options: Any) -> Worker:  # noqa: ANN401 - Worker's keyword arguments
        """A worker delivering this engine's outbox (see `Worker`)."""
        return Worker(self._engine, **options)

    def items(self, dossier: str | None = None) -> list[OutboxItem]:
        """Queued effects, oldest first: all of them, or one dossier's."""
        with self._store.connect() as connection:
            dossier_id = None
            if dossier is not None:
                row = self._store.dossier(connection, dossier)
                if row is None:
                    raise NotFoundError(f"no dossier {dossier!r}")
                dossier_id = row.id
            return [_item(row) for row in self._store.outbox_rows(connection, dossier_id)]

    def counts(self) -> dict[str, int]:
        """Effects by status (``pending``, ``done``, ``incident``, ``skipped``)."""
        with self._store.connect() as connection:
            return self._ledger.outbox_counts(connection)

    def purge(self, *, older_than: dt.timedelta) -> int:
        """Delete effects delivered more than ``older_than`` ago; how many went.

        Delivered rows are only the outbox's memory of having sent them (the history keeps
        what happened), so a portal purges them on a schedule of its choosing.
        """
        if older_than < dt.timedelta(0):
            raise InvalidValueError("older_than", "must not be negative")
        before = to_utc(self._engine.clock.now(), "now") - older_than
        with self._store.transaction() as connection:
            return self._ledger.purge(connection, before)

    def incidents(self, *, status: str | None = "open", limit: int = 100) -> list[Incident]:
        """Incidents, oldest first; ``status=None`` lists resolved ones too."""
        if status not in {None, "open", "retried", "skipped"}:
            raise InvalidValueError("status", "must be 'open', 'retried', 'skipped' or None")
        with self._store.connect() as connection:
            rows = self._ledger.incidents(connection, status=status, limit=limit)
            keys = {
                row.outbox_id: self._ledger.outbox_row(connection, row.outbox_id) for row in rows
            }
        return [_incident(row, keys[row.outbox_id]) for row in rows]

    def retry(self, incident: int, *, actor: str, note: str | None = None) -> Incident:
        """Queue an incident's effect again, with fresh attempts.

        Raises:
            NotFoundError: no such incident.
            RefusedError: it is not open any more.
        """
        return self._resolve(incident, "retry", actor, note)

    def skip(self, incident: int, *, actor: str, note: str) -> Incident:
        """Give up an incident's effect for good; ``note`` says why (it is kept).

        Raises:
            InvalidValueError: without a note.
            NotFoundError: no such incident.
            RefusedError: it is not open any more.
        """
        if not note or not note.strip():
            raise InvalidValueError("note", "say why the effect is skipped")
        return self._resolve(incident, "skip", actor, note)

    def _resolve(self, incident: int, action: str, actor: str, note: str | None) -> Incident:
        if not actor or not actor.strip():
            raise InvalidValueError("actor", "name who resolves the incident")
        now = to_utc(self._engine.clock.now(), "now")
        with self._store.transaction() as connection:
            row = self._ledger.incident(connection, incident)
            if row is None:
                raise NotFoundError(f"no incident {incident}")
            if row.status != "open":
                raise RefusedError(
                    f"incidents {action}",
                    ["incident_resolved"],
                    message=f"incident {incident} is {row.status}",
                )
            self._ledger.resolve_incident(
                connection, row, action=action, actor=actor, note=note, now=now
            )
            resolved = self._ledger.incident(connection, incident)
            effect = self._ledger.outbox_row(connection, row.outbox_id)
        return _incident(resolved or row, effect)


def _incident(row: Row[Any], effect: Row[Any] | None) -> Incident:
    return Incident(
        row.id,
        "" if effect is None else effect.key,
        row.dossier_id,
        row.kind,
        aware(row.opened_at),
        row.attempts,
        row.error,
        row.status,
        None if row.resolved_at is None else aware(row.resolved_at),
        row.resolved_by,
        row.note,
    )
