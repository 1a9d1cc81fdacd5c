"""The immutable values the engine returns: dossier snapshots, history events, query pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from dvcflow._clock import to_utc
from dvcflow._dossier import Dossier, encode_changes, load_dossier
from dvcflow._kernel import Event
from dvcflow._lifecycle import FINAL_STATES, NationalStatus

__all__ = ["DossierSnapshot", "HistoryEvent", "Page", "aware", "history_event"]


@attrs.frozen
class DossierSnapshot:
    """A dossier as stored after a command: an immutable value, never an ORM row."""

    dossier: Dossier
    national_status: NationalStatus
    updated_at: dt.datetime

    @property
    def id(self) -> str:
        """The opaque unique id given at creation."""
        return self.dossier.id

    @property
    def code(self) -> str | None:
        """The national-format dossier code, given at reception."""
        return self.dossier.code

    @property
    def state(self) -> str:
        """The lifecycle state."""
        return self.dossier.state

    @property
    def version(self) -> int:
        """How many commands have succeeded on the dossier."""
        return self.dossier.version

    @property
    def due_at(self) -> dt.datetime | None:
        """The due date (UTC), if the clock runs."""
        return self.dossier.due_at

    @property
    def procedure(self) -> str:
        """The procedure's national code."""
        return self.dossier.procedure

    def overdue(self, now: dt.datetime) -> bool:
        """Whether the dossier is past its due date at ``now`` (derived, never stored).

        The clock stops at resolution: a result resolved late stays overdue. A dossier that
        ended without a result (refused, stopped, withdrawn) is not overdue.
        """
        due, resolved = self.dossier.due_at, self.dossier.resolved_at
        if due is None or (resolved is None and self.dossier.state in FINAL_STATES):
            return False
        checked = min(to_utc(now, "now"), resolved) if resolved is not None else to_utc(now, "now")
        return checked > due

    def to_data(self) -> dict[str, Any]:
        """Plain data, as the command table records an outcome."""
        fields = {field.name: getattr(self.dossier, field.name) for field in attrs.fields(Dossier)}
        return {
            "dossier": encode_changes(fields),
            "national_status": self.national_status.code,
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DossierSnapshot:
        """The inverse of `to_data`."""
        return cls(
            load_dossier(data["dossier"]),
            NationalStatus(data["national_status"]),
            dt.datetime.fromisoformat(data["updated_at"]),
        )


@attrs.frozen
class HistoryEvent(Event):
    """One event of a dossier's history, as recorded.

    The kernel's event, plus where it sits in the database-wide chain (``seq``, ``None``
    until the event is sealed), the channel and procedure version it was decided under, and
    the references to its personal payloads.
    """

    seq: int | None = None
    channel: str | None = None
    procedure_version: str | None = None
    personal: Mapping[str, Any] = attrs.field(factory=dict)
    """References to personal payloads: ``{kind: {"id": ..., "digest": ...}}``."""


@attrs.frozen
class Page:
    """One page of a query, and the cursor of the next (``None``: no more)."""

    items: tuple[DossierSnapshot, ...]
    next: str | None


def history_event(seq: int | None, body: Mapping[str, Any]) -> HistoryEvent:
    """An event read back from its canonical body."""
    return HistoryEvent(
        dossier_id=body["dossier_id"],
        version=body["version"],
        trigger=body["trigger"],
        source=body["source"],
        target=body["target"],
        at=dt.datetime.fromisoformat(body["at"]),
        actor=body["actor"],
        roles=tuple(body["roles"]),
        acting_for=body["acting_for"],
        agency=body["agency"],
        data=body["data"],
        changes=body["changes"],
        visit=body["visit"],
        seq=seq,
        channel=body.get("channel"),
        procedure_version=body.get("procedure_version"),
        personal=body["personal"],
    )


def aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; dvcflow stores UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
