"""A deterministic in-memory back end of every family, for tests, demos and local development.

Configure it as a provider of type ``"fake"``::

    [providers.fake]
    type = "fake"

    [routing]
    payment = "fake"
    notification = "fake"
    delivery = "fake"

Everything it is asked is captured in order; payments wait for `FakeBackend.pay` (which builds
a signed callback, as a gateway would send it) or answer a query with their current state.
Calls carrying an idempotency key seen before are captured again but applied once, as a well
behaved peer does, so `applied` counts each effect once however often the outbox delivers it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from collections import Counter
from collections.abc import Mapping

import attrs

from dvcflow._backends import (
    CallbackReply,
    DeliveryReceipt,
    DeliveryRequest,
    Notification,
    NotificationReceipt,
    PaymentLink,
    PaymentOutcome,
    PaymentQuery,
    PaymentReport,
    PaymentRequest,
    Provider,
    RefundRequest,
    RefundResult,
)
from dvcflow._values import Money
from dvcflow.errors import BackendError, CallbackError, SignatureError
from dvcflow.hookspecs import hookimpl

__all__ = ["FAKE", "SIGNATURE_HEADER", "FakeBackend", "FakePayment"]

FAKE = "fake"
"""The provider type the fake serves."""
SIGNATURE_HEADER = "x-fake-signature"
"""The header carrying the hex HMAC-SHA256 of a fake callback's body."""


@attrs.define
class FakePayment:
    """A payment the fake was asked for, and where it stands."""

    request: PaymentRequest
    provider_ref: str
    outcome: PaymentOutcome = PaymentOutcome.PENDING
    paid: Money | None = None


class FakeBackend:
    """Payments, deliveries and notifications kept in memory; thread-safe and deterministic.

    Args:
        secret: the key fake callbacks are signed with.
    """

    def __init__(self, *, secret: bytes = b"dvcflow-fake-secret") -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self.payments: dict[str, FakePayment] = {}
        """Payments by dvcflow's reference."""
        self.calls: list[tuple[str, object]] = []
        """Every call in order: ``(hook name, request)``, repeats included."""
        self.applied: Counter[str] = Counter()
        """How many times each idempotency key took effect: 1 each, for a correct outbox."""
        self.notifications: list[Notification] = []
        self.deliveries: list[DeliveryRequest] = []
        self.refunds: list[RefundRequest] = []
        self.cancelled: list[str] = []
        self._failures: dict[str, list[BackendError]] = {}

    # -- steering (tests and demos) ---------------------------------------------------------

    def fail_next(self, hook: str, times: int = 1, *, retryable: bool = True) -> None:
        """Make the next ``times`` calls of ``hook`` (e.g. ``"send_notification"``) fail."""
        error = BackendError(f"fake {hook} failure", retryable=retryable)
        with self._lock:
            self._failures.setdefault(hook, []).extend([error] * times)

    def pay(
        self,
        reference: str,
        *,
        outcome: PaymentOutcome = PaymentOutcome.SUCCEEDED,
        amount: int | None = None,
        event_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Settle a payment at the fake and return the callback a gateway would send.

        Args:
            reference: dvcflow's payment reference (from the payment link).
            outcome: what happened.
            amount: the amount reported (the requested one by default).
            event_id: the callback's id (a fresh one by default; repeat one to replay).

        Returns:
            The body and headers to pass to ``engine.payments.callback("fake", ...)``.
        """
        with self._lock:
            payment = self.payments.get(reference)
            number = next(self._numbers)
            if payment is not None:
                payment.outcome = outcome
                payment.paid = Money(payment.request.amount.amount if amount is None else amount)
        reported = (
            amount if amount is not None or payment is None else payment.request.amount.amount
        )
        body = json.dumps(
            {
                "event_id": event_id or f"FAKE-EV-{number}",
                "reference": reference,
                "outcome": outcome.value,
                "amount": reported,
                "provider_ref": None if payment is None else payment.provider_ref,
                "receipt": f"FAKE-BL-{number}" if outcome is PaymentOutcome.SUCCEEDED else None,
            },
            sort_keys=True,
        ).encode()
        return body, {SIGNATURE_HEADER: self.sign(body)}

    def sign(self, body: bytes) -> str:
        """The signature the fake puts on a callback body."""
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    # -- hooks ------------------------------------------------------------------------------

    def _take(self, hook: str, request: object, key: str | None) -> bool:
        """Record a call; raise a planned failure; whether the key takes effect now."""
        with self._lock:
            self.calls.append((hook, request))
            planned = self._failures.get(hook)
            if planned:
                raise planned.pop(0)
            if key is None:
                return True
            self.applied[key] += 1
            return self.applied[key] == 1

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The fake serves type ``fake``."""
        return [FAKE]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Any settings are fine for the fake."""
        return [] if provider.type == FAKE else None

    @hookimpl
    def dvcflow_create_payment(
        self, provider: Provider, request: PaymentRequest
    ) -> PaymentLink | None:
        """A link for the request; the same reference always gets the same link."""
        if provider.type != FAKE:
            return None
        self._take("create_payment", request, request.idempotency_key)
        with self._lock:
            payment = self.payments.get(request.reference)
            if payment is None:
                payment = FakePayment(request, f"FAKE-TX-{next(self._numbers)}")
                self.payments[request.reference] = payment
        return PaymentLink(
            f"https://pay.fake.invalid/{request.reference}",
            payment.provider_ref,
            request.expires_at,
        )

    @hookimpl
    def dvcflow_verify_callback(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> PaymentReport | None:
        """Check the HMAC header, then parse the JSON body."""
        if provider.type != FAKE:
            return None
        given = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given, self.sign(body)):
            raise SignatureError("fake callback: the signature does not match the body")
        try:
            data = json.loads(body)
            amount = data["amount"]
            return PaymentReport(
                event_id=str(data["event_id"]),
                reference=str(data["reference"]),
                outcome=PaymentOutcome(data["outcome"]),
                amount=None if amount is None else Money(int(amount)),
                provider_ref=data.get("provider_ref"),
                receipt=data.get("receipt"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackError("malformed", f"not a fake callback: {exc}") from None

    @hookimpl
    def dvcflow_callback_reply(
        self,
        provider: Provider,
        accepted: bool,  # noqa: FBT001 - hooks are always called with keyword arguments
        error: str | None,
    ) -> CallbackReply | None:
        """A small JSON acknowledgement."""
        if provider.type != FAKE:
            return None
        body = json.dumps({"ok": accepted, "error": error}).encode()
        return CallbackReply(200 if accepted else 400, body, {"content-type": "application/json"})

    @hookimpl
    def dvcflow_query_payment(
        self, provider: Provider, query: PaymentQuery
    ) -> PaymentReport | None:
        """The payment's current state."""
        if provider.type != FAKE:
            return None
        self._take("query_payment", query, None)
        with self._lock:
            payment = self.payments.get(query.reference)
            if payment is None:
                raise BackendError(f"fake: no payment {query.reference}", retryable=False)
            return PaymentReport(
                event_id=f"query:{payment.provider_ref}:{payment.outcome.value}",
                reference=query.reference,
                outcome=payment.outcome,
                amount=payment.paid,
                provider_ref=payment.provider_ref,
                receipt=None if payment.paid is None else f"FAKE-BL-{payment.provider_ref}",
            )

    @hookimpl
    def dvcflow_cancel_payment(self, provider: Provider, query: PaymentQuery) -> bool | None:
        """Cancel a pending payment."""
        if provider.type != FAKE:
            return None
        if self._take("cancel_payment", query, f"cancel:{query.idempotency_key}"):
            with self._lock:
                self.cancelled.append(query.reference)
                payment = self.payments.get(query.reference)
                if payment is not None and payment.outcome is PaymentOutcome.PENDING:
                    payment.outcome = PaymentOutcome.CANCELLED
        return True

    @hookimpl
    def dvcflow_refund_payment(
        self, provider: Provider, refund: RefundRequest
    ) -> RefundResult | None:
        """Refund at once."""
        if provider.type != FAKE:
            return None
        if self._take("refund_payment", refund, refund.idempotency_key):
            with self._lock:
                self.refunds.append(refund)
        return RefundResult(PaymentOutcome.SUCCEEDED, f"FAKE-RF-{refund.reference}")

    @hookimpl
    def dvcflow_send_notification(
        self, provider: Provider, notification: Notification
    ) -> NotificationReceipt | None:
        """Keep the notification."""
        if provider.type != FAKE:
            return None
        if self._take("send_notification", notification, notification.key):
            with self._lock:
                self.notifications.append(notification)
        return NotificationReceipt(f"FAKE-MSG-{notification.key}", "delivered")

    @hookimpl
    def dvcflow_dispatch_delivery(
        self, provider: Provider, delivery: DeliveryRequest
    ) -> DeliveryReceipt | None:
        """Keep the delivery."""
        if provider.type != FAKE:
            return None
        if self._take("dispatch_delivery", delivery, delivery.key):
            with self._lock:
                self.deliveries.append(delivery)
        return DeliveryReceipt(f"FAKE-DLV-{delivery.key}", "delivered")
