"""Deliveries: results by public post and electronically, their reports applied once and in order.

A ``deliver`` effect, decided when a result is ready and its fees are paid, reaches the outbox
worker here. A postal one is registered with the courier the configuration assigns, with the
applicant's name, phone and delivery address (personal data, read at dispatch, never stored in
the delivery's row); an electronic one waits for its first download (`Results.open`). The
courier's signed status reports move a delivery forward only (registered, pickup requested,
picked up, in transit, delivered or failed, returned to sender); ``delivered`` returns the
result as ``system`` through the command path, with the receiver the courier recorded, in the
same transaction as the report's record. A parcel that fails or comes back is an officer's
notification. Before pickup, a delivery can be revoked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy.engine import Connection, Row

from dvcflow._backends import CallbackReply, DeliveryRequest, DeliveryStatus, Family
from dvcflow._clock import to_utc
from dvcflow._kernel import EffectKind
from dvcflow._ledger import payment_reference
from dvcflow._outbox_store import queued
from dvcflow._snapshots import aware
from dvcflow._values import DeliveryMethod
from dvcflow.errors import (
    BackendError,
    ConcurrencyError,
    NotFoundError,
    RefusedError,
)

if TYPE_CHECKING:
    from dvcflow._engine import Engine

__all__ = ["Deliveries", "DeliveryRecord"]


@attrs.frozen
class DeliveryRecord:
    """A delivery of a dossier and where it stands (no personal data)."""

    reference: str
    method: DeliveryMethod
    direction: str
    provider: str | None
    provider_ref: str | None
    """The waybill, for a parcel."""
    status: DeliveryStatus
    detail: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _record(row: Row[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        row.reference,
        DeliveryMethod(row.method),
        row.direction,
        row.provider,
        row.provider_ref,
        DeliveryStatus(row.status),
        row.detail,
        aware(row.created_at),
        aware(row.updated_at),
    )


class Deliveries:
    """The engine's deliveries: ``engine.deliveries``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._store = engine.store
        self._rows = engine.store.deliveries

    def _now(self, now: dt.datetime | None) -> dt.datetime:
        return to_utc(now if now is not None else self._engine.clock.now(), "now")

    def of(self, dossier: str) -> list[DeliveryRecord]:
        """A dossier's deliveries, oldest first."""
        with self._store.connect() as connection:
            row = self._store.dossier(connection, dossier)
            if row is None:
                raise NotFoundError(f"no dossier {dossier!r}")
            return [_record(d) for d in self._rows.deliveries_of(connection, row.id)]

    # -- the worker's side ---------------------------------------------------------------------

    def dispatch(self, row: Row[Any], dossier: Row[Any], now: dt.datetime) -> None:
        """Register a ``deliver`` effect's delivery (idempotent by the effect's key).

        Raises:
            BackendError: the courier failed (retryable) or refused (an incident), or the
                applicant's delivery address is missing (erased).
        """
        self._register(row.key, row.data, dossier, now)

    def _register(
        self, key: str, data: Mapping[str, Any], dossier: Row[Any], now: dt.datetime
    ) -> None:
        with self._store.connect() as connection:
            if self._rows.delivery(connection, key=key) is not None:
                return
        method = DeliveryMethod(data.get("method", DeliveryMethod.ELECTRONIC.value))
        reference = payment_reference("D", key)
        direction = str(data.get("direction", "outbound"))
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "reference": reference,
            "key": key,
            "dossier_id": dossier.id,
            "method": method.value,
            "direction": direction,
            "created_at": now,
            "updated_at": now,
        }
        if method is DeliveryMethod.POSTAL:
            provider = self._engine.backends.provider_for(
                Family.DELIVERY, procedure=dossier.procedure_code, agency=dossier.agency
            )
            receipt = self._engine.backends.dispatch_delivery(
                provider, self._request(key, direction, dossier, reference)
            )
            try:
                status = DeliveryStatus(receipt.status)
            except ValueError:
                msg = f"courier {provider.name} answered status {receipt.status!r}"
                raise BackendError(msg, retryable=False) from None
            values |= {
                "provider": provider.name,
                "provider_ref": receipt.provider_ref,
                "status": status.value,
            }
        else:
            values["status"] = DeliveryStatus.REGISTERED.value
        try:
            with self._store.transaction() as connection:
                self._rows.insert_delivery(connection, **values)
        except ConcurrencyError:
            return  # another worker recorded it (the courier deduplicated by key)

    def _request(
        self, key: str, direction: str, dossier: Row[Any], reference: str
    ) -> DeliveryRequest:
        with self._store.connect() as connection:
            personal = self._store.personal(connection, dossier.id)
            address = self._rows.personal_kind(connection, dossier.id, "delivery_address")
        applicant = personal.get("applicant") or {}
        if not address or not applicant.get("name"):
            msg = f"dossier {dossier.id} has no delivery address (erased, or never given)"
            raise BackendError(msg, retryable=False)
        recipient = {
            "name": str(address.get("name") or applicant["name"]),
            "phone": str(address.get("phone") or applicant.get("phone") or ""),
            "address": str(address.get("address", "")),
        }
        value = self._engine.get(dossier.id).dossier
        outbound = direction == "outbound"
        return DeliveryRequest(
            key=key,
            dossier_id=dossier.id,
            dossier_code=dossier.code,
            procedure=dossier.procedure_code,
            agency=dossier.agency,
            method=DeliveryMethod.POSTAL,
            data={"kind": "result" if outbound else "dossier"},
            reference=reference,
            recipient=recipient,
            direction=direction,
            documents=(value.result_ref,) if outbound and value.result_ref else (),
        )

    # -- courier reports -------------------------------------------------------------------------

    def callback(
        self,
        provider: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        now: dt.datetime | None = None,
    ) -> str:
        """Apply a courier's status report; what it did.

        ``"applied"``, ``"duplicate"`` (seen before) or ``"stale"`` (it would move the
        delivery backwards, or it is over).

        Raises:
            SignatureError: the report does not authenticate.
            CallbackError: malformed, oversize, for an unknown provider or delivery (each in
                the security log; nothing else changed).
        """
        at = self._now(now)
        _backend, report = self._engine.intake.verified(
            "report",
            provider,
            body=body,
            headers=headers,
            parse=self._engine.backends.verify_delivery_callback,
            at=at,
        )
        with self._store.connect() as connection:
            if self._rows.report(connection, provider, report.event_id) is not None:
                return "duplicate"
            delivery = self._rows.delivery(connection, reference=report.reference)
        if delivery is None or delivery.provider != provider:
            raise self._engine.intake.reject(
                f"report:{provider}",
                "unknown_reference",
                f"no delivery {report.reference!r}",
                body,
                at,
            )
        current = DeliveryStatus(delivery.status)
        fresh = report.status.rank > current.rank and not current.terminal
        row = {
            "provider": provider,
            "event_id": report.event_id,
            "delivery_id": delivery.id,
            "status": report.status.value,
            "received_at": at,
            "raw": body,
        }

        def record(connection: Connection, result: str) -> None:
            self._rows.record_report(connection, result=result, **row)
            if result == "applied":
                self._rows.update_delivery(
                    connection,
                    delivery.id,
                    status=report.status.value,
                    provider_ref=report.provider_ref or delivery.provider_ref,
                    detail=report.detail,
                    updated_at=at,
                )

        try:
            if not fresh:
                with self._store.transaction() as connection:
                    record(connection, "stale")
                return "stale"
            if report.status is DeliveryStatus.DELIVERED and delivery.direction == "outbound":
                self._delivered(delivery, dict(report.receiver), record, at)
                return "applied"
            with self._store.transaction() as connection:
                record(connection, "applied")
                if report.status in {DeliveryStatus.FAILED, DeliveryStatus.RETURNED_TO_SENDER}:
                    self._tell_officer(connection, delivery, report.status, at)
                elif report.status is DeliveryStatus.DELIVERED:
                    # An inbound parcel (the applicant's dossier) has reached the agency.
                    self._tell_officer(
                        connection, delivery, report.status, at, event="dossier_arrived"
                    )
        except ConcurrencyError:
            return "duplicate"
        return "applied"

    def _delivered(
        self,
        delivery: Row[Any],
        receiver: dict[str, str],
        record: Callable[[Connection, str], None],
        at: dt.datetime,
    ) -> None:
        payload = {
            "receiver": {
                "name": receiver.get("name") or "",
                "relation": receiver.get("relation") or "holder",
            }
        }
        try:
            self._engine.fire_internal(
                delivery.dossier_id,
                "return_result",
                payload,
                command_id=f"delivery:{delivery.reference}:delivered",
                now=at,
                before=lambda connection: record(connection, "applied"),
            )
        except RefusedError as refusal:
            # The parcel is delivered whatever the dossier says now: record it, tell an officer.
            with self._store.transaction() as connection:
                record(connection, "applied")
                self._tell_officer(connection, delivery, DeliveryStatus.DELIVERED, at, refusal)

    def _tell_officer(  # noqa: PLR0913 - the delivery and what to say of it
        self,
        connection: Connection,
        delivery: Row[Any],
        status: DeliveryStatus,
        at: dt.datetime,
        refusal: RefusedError | None = None,
        *,
        event: str = "delivery_failed",
    ) -> None:
        data: dict[str, Any] = {"event": event, "to": "officer", "status": status.value}
        if refusal is not None:
            data["reasons"] = list(refusal.reasons)
        key = f"delivery:{delivery.reference}:{status.value}"
        self._store.add_outbox(
            connection, [queued(key, delivery.dossier_id, EffectKind.NOTIFY.value, data, at)]
        )

    def endpoint(self, provider: str) -> Callable[[bytes, Mapping[str, str]], CallbackReply]:
        """A courier report endpoint for the portal's web framework: 204 accepted, 400 not."""
        return self._engine.intake.endpoint(
            lambda body, headers: self.callback(provider, body, headers)
        )

    # -- collecting a dossier by post -----------------------------------------------------------

    def collect(
        self,
        dossier: str,
        *,
        address: Mapping[str, str] | None = None,
        now: dt.datetime | None = None,
    ) -> DeliveryRecord:
        """Have the courier collect a dossier's papers from the applicant (inbound post).

        The same postal flow as a result's, the other way: the courier's reports move the
        parcel, and its arrival at the agency tells an officer (``dossier_arrived``), who then
        receives or accepts the papers as usual. ``address`` is where to collect (the one
        given at intake by default).

        Raises:
            NotFoundError: no such dossier.
            BackendError: the courier refused or failed, or there is no address.
        """
        at = self._now(now)
        with self._store.connect() as connection:
            row = self._store.dossier(connection, dossier)
            if row is None:
                raise NotFoundError(f"no dossier {dossier!r}")
            number = len(self._rows.deliveries_of(connection, row.id))
        key = f"{row.id}:collect:{number}"
        if address is not None:
            with self._store.transaction() as connection:
                self._store.insert_payload(
                    connection,
                    id=str(uuid.uuid4()),
                    dossier_id=row.id,
                    kind="delivery_address",
                    digest=self._engine.recorder.personal_digest(dict(address)),
                    data=dict(address),
                )
        inbound = {"method": DeliveryMethod.POSTAL.value, "direction": "inbound"}
        self._register(key, inbound, row, at)
        return next(d for d in self.of(row.id) if d.reference == payment_reference("D", key))

    # -- revoking -------------------------------------------------------------------------------

    def revoke(self, dossier: str, *, now: dt.datetime | None = None) -> DeliveryRecord:
        """Cancel a dossier's parcel before the courier picks it up.

        Raises:
            NotFoundError: the dossier has no parcel under way.
            RefusedError: ``picked_up``: too late, the courier has it.
        """
        at = self._now(now)
        with self._store.connect() as connection:
            row = self._store.dossier(connection, dossier)
            if row is None:
                raise NotFoundError(f"no dossier {dossier!r}")
            open_ = [
                d
                for d in self._rows.deliveries_of(connection, row.id)
                if d.method == DeliveryMethod.POSTAL.value and not DeliveryStatus(d.status).terminal
            ]
        if not open_:
            raise NotFoundError(f"dossier {row.id} has no parcel under way")
        delivery = open_[-1]
        if DeliveryStatus(delivery.status).rank >= DeliveryStatus.PICKED_UP.rank:
            raise RefusedError("revoke", ["picked_up"], message="the courier has the parcel")
        provider = self._engine.backends.provider(delivery.provider)
        if not self._engine.backends.cancel_delivery(
            provider, delivery.reference, delivery.provider_ref
        ):
            raise RefusedError("revoke", ["picked_up"], message="the courier refused to cancel")
        with self._store.transaction() as connection:
            self._rows.update_delivery(
                connection, delivery.id, status=DeliveryStatus.CANCELLED.value, updated_at=at
            )
        return next(d for d in self.of(row.id) if d.reference == delivery.reference)
