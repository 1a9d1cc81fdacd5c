"""Writing a decision: the dossier row, personal data apart, the chained event, outbox, timers."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from sqlalchemy.engine import Connection

from dvcflow._dossier import Dossier, encode_changes
from dvcflow._history import GENESIS, canonical, event_mac, keyed_digest
from dvcflow._kernel import Decision, EffectKind, Kernel
from dvcflow._ledger import PAYMENT_EFFECTS, record_payments
from dvcflow._outbox_store import queued
from dvcflow._sealing import Sealer
from dvcflow._snapshots import DossierSnapshot
from dvcflow._store import Store, Writes
from dvcflow._values import Applicant

__all__ = ["Recorder", "plain"]


def plain(value: Any) -> Any:  # noqa: ANN401, PLR0911 - any payload value, one return per type
    """A payload value as JSON-ready data, for command fingerprints and personal payloads."""
    if isinstance(value, Applicant):
        return {field.name: plain(getattr(value, field.name)) for field in attrs.fields(Applicant)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(plain(item) for item in value)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


class Recorder:
    """Writes decisions through the store, keyed with the history key."""

    def __init__(self, store: Store, key: bytes, sealer: Sealer) -> None:
        self.store = store
        self.sealer = sealer
        self._key = key

    def write(  # noqa: PLR0913 - the decision and where it lands
        self,
        connection: Connection,
        kernel: Kernel,
        before: Dossier | None,
        decision: Decision,
        now: dt.datetime,
        *,
        previous_mac: str = GENESIS,
        command: Mapping[str, str] | None = None,
    ) -> DossierSnapshot:
        """Write a decision: dossier row (changed columns only), personal data, event, effects.

        ``previous_mac`` is the MAC of the dossier's newest event, kept on its row;
        ``command`` (``{"id", "fingerprint"}``) is recorded with the outcome.
        """
        after = decision.dossier
        snapshot = DossierSnapshot(after, decision.status, now)
        refs = {
            kind: {"id": str(uuid.uuid4()), "digest": self.personal_digest(plain(value))}
            for kind, value in decision.personal.items()
        }
        columns = {
            # A migration moves a dossier to another version: the indexed column follows.
            "procedure_version": after.procedure_version,
            "code": after.code,
            "owner": after.owner,
            "state": after.state,
            "national_status": decision.status.code,
            "due_at": after.due_at,
            "resolved_at": after.resolved_at,
            "updated_at": now,
            "version": after.version,
            "data": encode_changes({f.name: getattr(after, f.name) for f in attrs.fields(Dossier)}),
        }
        # SQLite numbers the event now (its writer lock orders commands); elsewhere a sealer
        # numbers it after the commit.
        event, backlog = self.sealer.number(
            connection, self._event_row(kernel, decision, refs, previous_mac)
        )
        columns["last_mac"] = event["mac"]
        writes = self._effects(decision, now)
        if command is not None:
            writes.command = {
                **command,
                "dossier_id": after.id,
                "version": after.version,
                "outcome": snapshot.to_data(),
                "created_at": now,
            }
        applicant = decision.personal.get("applicant")
        if before is None:
            if isinstance(applicant, Applicant):
                self.store.insert_applicant(
                    connection,
                    id=refs["applicant"]["id"],
                    digest=refs["applicant"]["digest"],
                    kind=applicant.kind.national_code,
                    identifier_digest=self.identifier_digest(applicant.identifier),
                    data=plain(applicant),
                )
            self.store.insert_dossier(
                connection,
                id=after.id,
                procedure_code=after.procedure,
                agency=after.agency,
                applicant_id=refs["applicant"]["id"] if isinstance(applicant, Applicant) else None,
                created_at=now,
                **columns,
            )
        else:
            # Columns that did not change stay out of the UPDATE: rewriting an indexed column
            # with its own value still rewrites its index pages.
            unchanged = {
                "procedure_version": before.procedure_version,
                "code": before.code,
                "owner": before.owner,
                "state": before.state,
                "national_status": decision.status.code if before.state == after.state else None,
                "due_at": before.due_at,
                "resolved_at": before.resolved_at,
            }
            writes.update = {
                name: value
                for name, value in columns.items()
                if name not in unchanged or unchanged[name] != value
            }
            writes.expected = before.version
        for kind, value in decision.personal.items():
            if kind != "applicant" or before is not None:
                self.store.insert_payload(
                    connection,
                    id=refs[kind]["id"],
                    dossier_id=after.id,
                    kind=kind,
                    digest=refs[kind]["digest"],
                    data=plain(value),
                )
        writes.event = event
        self.store.write(connection, writes)
        if decision.event.trigger in {"confirm_payment", "receive"} or any(
            effect.kind in PAYMENT_EFFECTS for effect in decision.effects
        ):
            record_payments(self.store.ledger, connection, decision, now)
        if backlog:
            self.sealer.seal_backlog(connection)
        return snapshot

    def personal_digest(self, value: Any) -> str:  # noqa: ANN401 - any JSON-ready value
        """A keyed digest of personal data, which events keep after the data is erased.

        Keyed because names, ids and phone numbers are easy to guess: a plain hash left in
        the history would confirm a guess long after the data itself was erased.
        """
        return keyed_digest(self._key, "personal", value)

    def identifier_digest(self, identifier: str) -> str:
        """A keyed hash of a citizen id or tax code: finds an applicant without storing the id."""
        return hmac.new(self._key, f"identifier\n{identifier}".encode(), hashlib.sha256).hexdigest()

    def _event_row(
        self,
        kernel: Kernel,
        decision: Decision,
        personal: Mapping[str, Any],
        previous: str,
    ) -> dict[str, Any]:
        event = decision.event
        # No database-wide number in the body: the dossier's chain must not depend on the
        # order in which sealers number events (bodies written before revision 0002 have one).
        body = canonical(
            {
                "dossier_id": event.dossier_id,
                "version": event.version,
                "previous": previous,
                "trigger": event.trigger,
                "source": event.source,
                "target": event.target,
                "at": event.at.isoformat(),
                "actor": event.actor,
                "roles": list(event.roles),
                "acting_for": event.acting_for,
                "agency": event.agency,
                "channel": decision.dossier.channel.value,
                "procedure_version": kernel.version,
                "data": event.data,
                "changes": event.changes,
                "visit": event.visit,
                "personal": personal,
            },
        )
        mac = event_mac(self._key, body, previous)
        return {
            "dossier_id": event.dossier_id,
            "version": event.version,
            "trigger": event.trigger,
            "at": event.at,
            "body": body,
            "mac": mac,
        }

    def _effects(self, decision: Decision, now: dt.datetime) -> Writes:
        dossier_id = decision.dossier.id
        writes = Writes(dossier_id)
        for effect in decision.effects:
            if effect.kind is EffectKind.SET_TIMER:
                writes.timers.append(
                    {
                        "dossier_id": dossier_id,
                        "name": effect.data["name"],
                        "trigger": effect.data.get("trigger"),
                        "due_at": dt.datetime.fromisoformat(effect.data["at"]),
                        "active": True,
                    },
                )
            elif effect.kind is EffectKind.CANCEL_TIMERS:
                writes.cancel.update(effect.data["names"])
            else:
                writes.outbox.append(
                    queued(effect.key, dossier_id, effect.kind.value, effect.data, now)
                )
        return writes
