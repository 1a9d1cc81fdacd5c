"""The payment ledger as a decision changes it: requests, payments and refunds, in its transaction.

The kernel decides what is owed and paid (a dossier's fee obligations); the ledger keeps the
requests sent to providers and what came of them, so a payment link, a gateway's transaction
id and an e-receipt are never lost and a refund always knows the payment it gives back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy.engine import Connection

from dvcflow._kernel import Decision, EffectKind
from dvcflow._outbox_store import OPEN_PAYMENT_STATES, OutboxStore

__all__ = ["PAYMENT_EFFECTS", "payment_reference", "record_payments"]

PAYMENT_EFFECTS = frozenset(
    {EffectKind.REQUEST_PAYMENT, EffectKind.CANCEL_PAYMENT, EffectKind.REFUND}
)
"""Effects that change the ledger when they are decided."""


def payment_reference(prefix: str, key: str) -> str:
    """A reference for a provider: stable for one effect key, free of personal data.

    ``P`` for payments, ``R`` for refunds, then 20 hex digits of the key's SHA-256 (the key
    holds only the dossier's opaque id, its version and an index).
    """
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:20].upper()


def _payments_made(decision: Decision) -> Iterator[Mapping[str, Any]]:
    """The payments a decision records: a confirmed one, or fees collected at reception."""
    event = decision.event
    if event.trigger == "confirm_payment":
        yield event.data
    elif event.trigger == "receive":
        yield from event.data.get("payments", ())


def record_payments(
    ledger: OutboxStore, connection: Connection, decision: Decision, now: dt.datetime
) -> None:
    """Write what a decision did to the dossier's payments, refunds and payment requests."""
    dossier_id = decision.dossier.id
    expiry = None
    for effect in decision.effects:
        if effect.kind is EffectKind.SET_TIMER and effect.data["name"] == "payment_expiry":
            expiry = dt.datetime.fromisoformat(effect.data["at"])
    for index, made in enumerate(_payments_made(decision)):
        key = f"{dossier_id}:{decision.event.version}:p{index}"
        _paid(ledger, connection, decision, made, key=key, now=now)
    for effect in decision.effects:
        if effect.kind is EffectKind.REQUEST_PAYMENT:
            kind = effect.data["kind"]
            # A new request replaces an open one: the newest link is the one to pay.
            ledger.close_open_payments(
                connection, dossier_id, kind, reason="superseded", key=None, now=now
            )
            online = effect.data.get("method") == "online"
            ledger.insert_payment(
                connection,
                id=str(uuid.uuid4()),
                reference=payment_reference("P", effect.key),
                dossier_id=dossier_id,
                fee_kind=kind,
                amount=effect.data["amount"],
                method=effect.data.get("method", "online"),
                state="pending",
                outbox_key=effect.key,
                expires_at=expiry if online else None,
                created_at=now,
                updated_at=now,
                refunded_amount=0,
            )
        elif effect.kind is EffectKind.CANCEL_PAYMENT:
            ledger.close_open_payments(
                connection,
                dossier_id,
                effect.data["kind"],
                reason=str(effect.data.get("reason", "cancelled")),
                key=effect.key,
                now=now,
            )
        elif effect.kind is EffectKind.REFUND:
            paid = ledger.paid_payment(connection, dossier_id, effect.data["kind"])
            ledger.insert_refund(
                connection,
                id=str(uuid.uuid4()),
                reference=payment_reference("R", effect.key),
                payment_id=None if paid is None else paid.id,
                dossier_id=dossier_id,
                fee_kind=effect.data["kind"],
                amount=effect.data["amount"],
                state="requested",
                outbox_key=effect.key,
                reason=decision.event.trigger,
                created_at=now,
                updated_at=now,
            )


def _paid(  # noqa: PLR0913 - the payment and where it lands
    ledger: OutboxStore,
    connection: Connection,
    decision: Decision,
    made: Mapping[str, Any],
    *,
    key: str,
    now: dt.datetime,
) -> None:
    dossier_id, kind = decision.dossier.id, made["kind"]
    method = made.get("method", "counter")
    values = {
        "state": "paid",
        "paid_at": now,
        "paid_amount": made["amount"],
        "receipt": made.get("receipt"),
        "updated_at": now,
    }
    payment = None
    reference = made.get("reference")
    if reference:
        payment = ledger.payment(connection, reference=reference)
        if payment is not None and payment.dossier_id != dossier_id:
            payment = None
    if payment is None and method == "counter":
        payment = next(
            (
                row
                for row in ledger.payments_of(connection, dossier_id)
                if row.fee_kind == kind and row.method == "counter" and row.state == "pending"
            ),
            None,
        )
    if payment is not None:
        # A late success on a cancelled link is still money received.
        ledger.update_payment(connection, payment.id, (*OPEN_PAYMENT_STATES, "cancelled"), **values)
        kept = payment.id
    else:
        kept = str(uuid.uuid4())
        ledger.insert_payment(
            connection,
            id=kept,
            reference=payment_reference("P", key),
            dossier_id=dossier_id,
            fee_kind=kind,
            amount=made["amount"],
            method=method,
            outbox_key=None,
            created_at=now,
            refunded_amount=0,
            **values,
        )
    ledger.close_open_payments(
        connection, dossier_id, kind, reason="settled", key=None, now=now, keep=kept
    )
