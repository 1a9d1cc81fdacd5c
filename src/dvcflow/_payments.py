"""Payments through providers: links, callbacks verified and applied once, reconciling, refunds.

What a provider reports comes back as an ordinary command: a verified success fires
``confirm_payment`` as ``system`` through the engine's command path, in the same transaction
as the callback's record, with the command id ``payment:<reference>`` so however often and
in whatever order a provider repeats itself, the dossier is paid once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy.engine import Connection, Row

from dvcflow._backends import (
    CallbackReply,
    Family,
    PaymentOutcome,
    PaymentQuery,
    PaymentReport,
    PaymentRequest,
    Provider,
    RefundRequest,
)
from dvcflow._clock import to_utc
from dvcflow._intake import SecurityRecord
from dvcflow._kernel import EffectKind
from dvcflow._ledger import payment_reference
from dvcflow._outbox_store import OPEN_PAYMENT_STATES, queued
from dvcflow._snapshots import aware
from dvcflow._values import FeeKind, Money
from dvcflow.errors import (
    BackendError,
    CallbackError,
    ConcurrencyError,
    DvcflowError,
    NotFoundError,
    RefusedError,
    SignatureError,
)

if TYPE_CHECKING:
    from dvcflow._engine import Engine

__all__ = ["PaymentRecord", "Payments", "RefundRecord"]

logger = logging.getLogger("dvcflow")


@attrs.frozen
class PaymentRecord:
    """A payment request of a dossier and what came of it."""

    reference: str
    fee_kind: FeeKind
    amount: Money
    method: str
    state: str
    """``pending`` (no link yet), ``awaiting`` (link issued), ``paid``, ``cancelled``,
    ``refunded``."""
    provider: str | None
    provider_ref: str | None
    url: str | None
    expires_at: dt.datetime | None
    paid_at: dt.datetime | None
    paid_amount: Money | None
    receipt: str | None
    refunded: Money
    cancel_reason: str | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> PaymentRecord:
        """The record of a ``payments`` row."""
        return cls(
            reference=row.reference,
            fee_kind=FeeKind(row.fee_kind),
            amount=Money(row.amount),
            method=row.method,
            state=row.state,
            provider=row.provider,
            provider_ref=row.provider_ref,
            url=row.url,
            expires_at=None if row.expires_at is None else aware(row.expires_at),
            paid_at=None if row.paid_at is None else aware(row.paid_at),
            paid_amount=None if row.paid_amount is None else Money(row.paid_amount),
            receipt=row.receipt,
            refunded=Money(row.refunded_amount),
            cancel_reason=row.cancel_reason,
        )


@attrs.frozen
class RefundRecord:
    """A refund owed to the applicant and where it stands."""

    reference: str
    fee_kind: FeeKind
    amount: Money
    state: str
    """``requested``, ``submitted`` (provider working on it), ``succeeded``, ``counter``
    (given back at the counter by a cashier)."""
    reason: str
    provider_ref: str | None


class Payments:
    """The engine's payments: ``engine.payments``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._store = engine.store
        self._ledger = engine.store.ledger

    def _now(self, now: dt.datetime | None = None) -> dt.datetime:
        return to_utc(now if now is not None else self._engine.clock.now(), "now")

    # -- reading -------------------------------------------------------------------------------

    def of(self, dossier: str) -> list[PaymentRecord]:
        """A dossier's payment requests and payments, oldest first."""
        with self._store.connect() as connection:
            row = self._engine.store.dossier(connection, dossier)
            if row is None:
                raise NotFoundError(f"no dossier {dossier!r}")
            return [PaymentRecord.from_row(p) for p in self._ledger.payments_of(connection, row.id)]

    def refunds(self, dossier: str) -> list[RefundRecord]:
        """A dossier's refunds, oldest first."""
        with self._store.connect() as connection:
            row = self._engine.store.dossier(connection, dossier)
            if row is None:
                raise NotFoundError(f"no dossier {dossier!r}")
            return [
                RefundRecord(
                    r.reference,
                    FeeKind(r.fee_kind),
                    Money(r.amount),
                    r.state,
                    r.reason,
                    r.provider_ref,
                )
                for r in self._ledger.refunds_of(connection, row.id)
            ]

    def security_log(self, *, limit: int = 100) -> list[SecurityRecord]:
        """Rejected callbacks, reports and receipts, newest first."""
        return self._engine.intake.records(limit=limit)

    # -- callbacks -------------------------------------------------------------------------------

    def callback(
        self,
        provider: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        now: dt.datetime | None = None,
    ) -> CallbackReply:
        """Verify and apply a callback a provider sent; the reply to send back.

        A callback seen before (by the provider's event id), one that reports what is already
        known, or one that would move a payment backwards (failed after paid) is accepted and
        changes nothing.

        Raises:
            SignatureError: the callback does not authenticate.
            CallbackError: malformed, oversize, for an unknown provider or payment reference,
                or with an amount other than the one requested. Every rejection is written to
                the security log; the dossier and its history are unchanged.
        """
        at = self._now(now)
        backend, report = self._engine.intake.verified(
            "callback",
            provider,
            body=body,
            headers=headers,
            parse=self._engine.backends.verify_callback,
            at=at,
        )
        self.apply(backend, report, body, now=at)
        return self._engine.backends.callback_reply(backend, accepted=True, error=None)

    def endpoint(self, provider: str) -> Callable[[bytes, Mapping[str, str]], CallbackReply]:
        """A callback endpoint for a portal's web framework: bytes and headers in, reply out.

        Rejections become the provider's error reply instead of raising (they are in the
        security log); only a database that cannot be reached raises.
        """

        def handle(body: bytes, headers: Mapping[str, str]) -> CallbackReply:
            try:
                return self.callback(provider, body, headers)
            except (SignatureError, CallbackError) as exc:
                kind = exc.kind if isinstance(exc, CallbackError) else "bad_signature"
                try:
                    backend = self._engine.backends.provider(provider)
                    return self._engine.backends.callback_reply(backend, accepted=False, error=kind)
                except (NotFoundError, BackendError):
                    return CallbackReply(400, kind.encode(), {"content-type": "text/plain"})

        return handle

    def apply(
        self,
        provider: Provider,
        report: PaymentReport,
        raw: bytes,
        *,
        now: dt.datetime | None = None,
    ) -> str:
        """Apply a verified report (callback or query answer); returns what it did.

        ``"applied"``, ``"duplicate"`` (seen before, or nothing new), ``"stale"`` (it would move
        the payment backwards) or ``"unowed"`` (money received for a fee the dossier no
        longer owes: a refund is queued).

        Raises:
            CallbackError: ``unknown_reference`` or ``amount_mismatch`` (security-logged).
        """
        at = self._now(now)
        source = f"callback:{provider.name}"
        with self._store.connect() as connection:
            if self._ledger.callback(connection, provider.name, report.event_id) is not None:
                return "duplicate"
            payment = self._ledger.payment(connection, reference=report.reference)
        if payment is None or payment.provider not in {None, provider.name}:
            raise self._engine.intake.reject(
                source, "unknown_reference", f"no payment {report.reference!r}", raw, at
            )
        if report.outcome is PaymentOutcome.SUCCEEDED and (
            report.amount is None or report.amount.amount != payment.amount
        ):
            raise self._engine.intake.reject(
                source,
                "amount_mismatch",
                f"payment {payment.reference} is for {payment.amount}, the report says "
                f"{None if report.amount is None else report.amount.amount}",
                raw,
                at,
            )
        row = {
            "provider": provider.name,
            "event_id": report.event_id,
            "payment_id": payment.id,
            "outcome": report.outcome.value,
            "received_at": at,
            "raw": raw,
        }
        settled = payment.state in {"paid", "refunded"}
        if report.outcome is not PaymentOutcome.SUCCEEDED or settled:
            if settled:
                result = "duplicate" if report.outcome is PaymentOutcome.SUCCEEDED else "stale"
            else:
                result = "applied" if report.outcome.terminal else "duplicate"
            return self._record(row, payment, report, result, at)
        return self._confirm(row, payment, report, at)

    def _record(
        self,
        row: Mapping[str, Any],
        payment: Row[Any],
        report: PaymentReport,
        result: str,
        at: dt.datetime,
    ) -> str:
        try:
            with self._store.transaction() as connection:
                self._ledger.record_callback(connection, result=result, **row)
                if result == "applied":
                    # A failed, expired or cancelled attempt closes the link; the dossier
                    # keeps waiting until the payment is requested again or expires.
                    self._ledger.update_payment(
                        connection,
                        payment.id,
                        OPEN_PAYMENT_STATES,
                        state="cancelled",
                        cancel_reason=report.outcome.value,
                        updated_at=at,
                    )
        except ConcurrencyError:
            # The same event recorded by a concurrent delivery of it.
            return "duplicate"
        return result

    def _confirm(
        self, row: Mapping[str, Any], payment: Row[Any], report: PaymentReport, at: dt.datetime
    ) -> str:
        def record(connection: Connection) -> None:
            self._ledger.record_callback(connection, result="applied", **row)

        payload = {
            "method": "online",
            "kind": payment.fee_kind,
            "amount": payment.amount,
            "reference": payment.reference,
            "receipt": report.receipt,
        }
        try:
            self._engine.fire_internal(
                payment.dossier_id,
                "confirm_payment",
                payload,
                command_id=f"payment:{payment.reference}",
                now=at,
                before=record,
            )
        except ConcurrencyError:
            with self._store.connect() as connection:
                if self._ledger.callback(connection, row["provider"], row["event_id"]):
                    return "duplicate"
            raise
        except RefusedError as exc:
            return self._unowed(row, payment, report, at, exc)
        return "applied"

    def _unowed(
        self,
        row: Mapping[str, Any],
        payment: Row[Any],
        report: PaymentReport,
        at: dt.datetime,
        refusal: RefusedError,
    ) -> str:
        """Money received that the dossier does not owe (paid already, or ended): refund it."""
        key = f"unowed:{payment.reference}"
        logger.warning(
            "dvcflow payment for a fee not owed",
            extra={"reference": payment.reference, "reasons": refusal.reasons},
        )
        with self._store.transaction() as connection:
            self._ledger.record_callback(connection, result="unowed", **row)
            self._ledger.update_payment(
                connection,
                payment.id,
                (*OPEN_PAYMENT_STATES, "cancelled"),
                state="paid",
                paid_at=at,
                paid_amount=payment.amount,
                receipt=report.receipt,
                updated_at=at,
            )
            self._ledger.insert_refund(
                connection,
                id=str(uuid.uuid4()),
                reference=payment_reference("R", key),
                payment_id=payment.id,
                dossier_id=payment.dossier_id,
                fee_kind=payment.fee_kind,
                amount=payment.amount,
                state="requested",
                outbox_key=key,
                reason="unowed",
                created_at=at,
                updated_at=at,
            )
            refund = {"kind": payment.fee_kind, "amount": payment.amount}
            self._store.add_outbox(
                connection,
                [queued(key, payment.dossier_id, EffectKind.REFUND.value, refund, at)],
            )
        return "unowed"

    # -- reconciling -----------------------------------------------------------------------------

    def reconcile(
        self, *, now: dt.datetime | None = None, limit: int = 100
    ) -> list[tuple[str, str]]:
        """Query the provider about payment links that got no callback for a while.

        Returns:
            ``(payment reference, what the answer did)`` for each payment asked about; a
            payment still pending is asked again after another ``reconcile_after_s``.
        """
        at = self._now(now)
        wait = dt.timedelta(seconds=self._engine.config.payments.reconcile_after_s)
        with self._store.connect() as connection:
            rows = self._ledger.awaiting_payments(connection, before=at - wait, limit=limit)
        done = []
        for payment in rows:
            try:
                provider = self._engine.backends.provider(payment.provider or "")
                report = self._engine.backends.query_payment(provider, _query(payment))
            except (NotFoundError, BackendError) as exc:
                logger.warning(
                    "dvcflow could not query a payment",
                    extra={"reference": payment.reference, "error": str(exc)},
                )
                done.append((payment.reference, f"error: {exc}"))
                continue
            if report.outcome is PaymentOutcome.PENDING:
                with self._store.transaction() as connection:
                    self._ledger.update_payment(
                        connection, payment.id, ("awaiting",), updated_at=at
                    )
                done.append((payment.reference, "pending"))
                continue
            raw = json.dumps(
                {
                    "query": payment.reference,
                    "outcome": report.outcome.value,
                    "amount": None if report.amount is None else report.amount.amount,
                    "provider_ref": report.provider_ref,
                },
                sort_keys=True,
            ).encode()
            try:
                done.append((payment.reference, self.apply(provider, report, raw, now=at)))
            except DvcflowError as exc:
                done.append((payment.reference, f"rejected: {exc}"))
        return done

    # -- the worker's side -------------------------------------------------------------------------

    def dispatch(
        self, kind: EffectKind, row: Row[Any], dossier: Row[Any], now: dt.datetime
    ) -> None:
        """Carry out a payment effect claimed by the outbox worker.

        Raises:
            BackendError: the provider failed; the worker retries or opens an incident.
        """
        if kind is EffectKind.REQUEST_PAYMENT:
            self._create(row, dossier, now)
        elif kind is EffectKind.CANCEL_PAYMENT:
            with self._store.connect() as connection:
                cancelled = self._ledger.cancelled_by(connection, row.key)
            for payment in cancelled:
                if payment.provider is not None:
                    provider = self._engine.backends.provider(payment.provider)
                    self._call(
                        payment,
                        "cancel",
                        row.key,
                        now,
                        self._engine.backends.cancel_payment,
                        provider,
                        _query(payment),
                    )
        elif kind is EffectKind.REFUND:
            self._refund(row, now)

    def _create(self, row: Row[Any], dossier: Row[Any], now: dt.datetime) -> None:
        with self._store.connect() as connection:
            payment = self._ledger.payment(connection, outbox_key=row.key)
        if payment is None or payment.method != "online" or payment.state != "pending":
            # Counter payments are taken by a cashier; a request cancelled or paid since
            # needs no link.
            return
        backends = self._engine.backends
        provider = backends.provider_for(
            Family.PAYMENT, procedure=dossier.procedure_code, agency=dossier.agency
        )
        kernel = self._engine.kernel(dossier.procedure_version)
        fee_name = next(
            (
                fee.name
                for case in kernel.procedure.cases
                for fee in case.fees
                if fee.kind.value == payment.fee_kind
            ),
            payment.fee_kind,
        )
        request = PaymentRequest(
            reference=payment.reference,
            idempotency_key=row.key,
            dossier_id=dossier.id,
            dossier_code=dossier.code,
            procedure=dossier.procedure_code,
            agency=dossier.agency,
            fee_kind=FeeKind(payment.fee_kind),
            amount=Money(payment.amount),
            description=f"{dossier.code or dossier.id}: {fee_name}"[:210],
            expires_at=None if payment.expires_at is None else aware(payment.expires_at),
        )
        link = self._call(
            payment, "create", row.key, now, backends.create_payment, provider, request
        )
        with self._store.transaction() as connection:
            linked = self._ledger.update_payment(
                connection,
                payment.id,
                ("pending",),
                state="awaiting",
                provider=provider.name,
                provider_ref=link.provider_ref,
                url=link.url,
                expires_at=link.expires_at or request.expires_at,
                updated_at=now,
            )
        if not linked:
            # Cancelled while the link was being made: the link must not be paid.
            self._call(
                payment, "cancel", row.key, now, backends.cancel_payment, provider, _query(payment)
            )

    def _refund(self, row: Row[Any], now: dt.datetime) -> None:
        with self._store.connect() as connection:
            refund = self._ledger.refund(connection, row.key)
            payment = None
            if refund is not None and refund.payment_id is not None:
                payment = self._ledger.payment(connection, payment_id=refund.payment_id)
        if refund is None or refund.state != "requested":
            return
        if payment is None or payment.method != "online" or payment.provider is None:
            # Paid at the counter: given back at the counter.
            with self._store.transaction() as connection:
                self._ledger.update_refund(
                    connection, refund.id, ("requested",), state="counter", updated_at=now
                )
            return
        provider = self._engine.backends.provider(payment.provider)
        request = RefundRequest(
            reference=refund.reference,
            payment_reference=payment.reference,
            provider_ref=payment.provider_ref,
            fee_kind=FeeKind(refund.fee_kind),
            amount=Money(refund.amount),
            idempotency_key=row.key,
            reason=refund.reason,
        )
        result = self._call(
            payment, "refund", row.key, now, self._engine.backends.refund_payment, provider, request
        )
        if result.outcome is PaymentOutcome.FAILED:
            msg = f"provider {provider.name} refused refund {refund.reference}"
            raise BackendError(msg, retryable=False)
        with self._store.transaction() as connection:
            state = "succeeded" if result.outcome is PaymentOutcome.SUCCEEDED else "submitted"
            if (
                self._ledger.update_refund(
                    connection,
                    refund.id,
                    ("requested",),
                    state=state,
                    provider_ref=result.provider_ref,
                    updated_at=now,
                )
                and state == "succeeded"
            ):
                self._ledger.add_refunded(connection, payment.id, refund.amount, now)

    def _call(
        self,
        payment: Row[Any],
        call: str,
        key: str,
        now: dt.datetime,
        function: Callable[..., Any],
        *arguments: Any,  # noqa: ANN401
    ) -> Any:  # noqa: ANN401 - the hook's typed result
        """Make one provider call about a payment, recorded as a payment attempt."""
        with self._store.transaction() as connection:
            attempt = self._ledger.add_attempt(
                connection,
                payment_id=payment.id,
                call=call,
                idempotency_key=key,
                state="started",
                finished=False,
                created_at=now,
                updated_at=now,
            )
        try:
            result = function(*arguments)
        except BackendError as exc:
            state = "error" if exc.retryable else "failed"
            self._end(attempt, state, now, str(exc))
            raise
        except Exception as exc:
            self._end(attempt, "error", now, f"{type(exc).__name__}: {exc}")
            raise
        self._end(attempt, "succeeded", now, None)
        return result

    def _end(self, attempt: int, state: str, now: dt.datetime, error: str | None) -> None:
        with self._store.transaction() as connection:
            self._ledger.end_attempt(connection, attempt, state=state, now=now, error=error)


def _query(payment: Row[Any]) -> PaymentQuery:
    return PaymentQuery(
        reference=payment.reference,
        provider_ref=payment.provider_ref,
        amount=Money(payment.amount),
        idempotency_key=f"query:{payment.reference}",
    )
