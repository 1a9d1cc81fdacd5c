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
from typing import Any

import attrs

from dvcflow._backends import (
    CallbackReply,
    DeliveryReceipt,
    DeliveryReport,
    DeliveryRequest,
    DeliveryStatus,
    DocumentSignature,
    Message,
    MessageChannel,
    MessageReceipt,
    MessageStatus,
    NotificationReceipt,
    PaymentLink,
    PaymentOutcome,
    PaymentQuery,
    PaymentReport,
    PaymentRequest,
    Provider,
    RefundRequest,
    RefundResult,
    StoredFile,
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
        self.messages: list[Message] = []
        """Messages sent, once each."""
        self.deliveries: list[DeliveryRequest] = []
        self.refunds: list[RefundRequest] = []
        self.cancelled: list[str] = []
        self._failures: dict[str, list[BackendError]] = {}
        self._refused: set[MessageChannel] = set()
        self.files: dict[str, bytes] = {}
        """Stored content by digest."""
        self.delivery_status: dict[str, DeliveryStatus] = {}
        """Deliveries by dvcflow's reference."""

    # -- steering (tests and demos) ---------------------------------------------------------

    def fail_next(self, hook: str, times: int = 1, *, retryable: bool = True) -> None:
        """Make the next ``times`` calls of ``hook`` (e.g. ``"send_message"``) fail."""
        error = BackendError(f"fake {hook} failure", retryable=retryable)
        with self._lock:
            self._failures.setdefault(hook, []).extend([error] * times)

    def refuse_channel(self, channel: MessageChannel) -> None:
        """Refuse every address on ``channel`` for good (as Zalo does a non-follower)."""
        with self._lock:
            self._refused.add(channel)

    def receipt(
        self, message: Message, status: MessageStatus, *, event_id: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The signed delivery receipt of a message, for ``engine.notifications.receipt``."""
        with self._lock:
            number = next(self._numbers)
        body = json.dumps(
            {
                "event_id": event_id or f"FAKE-RC-{number}",
                "reference": message.reference,
                "status": status.value,
            },
            sort_keys=True,
        ).encode()
        return body, {SIGNATURE_HEADER: self.sign(body)}

    def courier(
        self,
        reference: str,
        status: DeliveryStatus,
        *,
        receiver: dict[str, str] | None = None,
        event_id: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Move a delivery and return the courier's signed report, for the deliveries intake."""
        with self._lock:
            number = next(self._numbers)
            self.delivery_status[reference] = status
        body = json.dumps(
            {
                "event_id": event_id or f"FAKE-DR-{number}",
                "reference": reference,
                "status": status.value,
                "waybill": f"FAKE-WB-{reference}",
                "receiver": receiver or {},
            },
            sort_keys=True,
            ensure_ascii=False,
        ).encode()
        return body, {SIGNATURE_HEADER: self.sign(body)}

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
    def dvcflow_send_message(
        self, provider: Provider, message: Message
    ) -> NotificationReceipt | None:
        """Keep the message; a refused channel fails it for good."""
        if provider.type != FAKE:
            return None
        if message.channel in self._refused:
            self._take("send_message", message, None)
            msg = f"fake: the {message.channel.value} channel refuses this address"
            raise BackendError(msg, retryable=False)
        if self._take("send_message", message, message.key):
            with self._lock:
                self.messages.append(message)
        return NotificationReceipt(f"FAKE-MSG-{message.reference}", "sending")

    @hookimpl
    def dvcflow_parse_receipt(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> MessageReceipt | None:
        """Check the HMAC header, then parse the JSON receipt."""
        if provider.type != FAKE:
            return None
        data = self._verified(body, headers)
        try:
            return MessageReceipt(
                event_id=str(data["event_id"]),
                reference=str(data["reference"]),
                status=MessageStatus(data["status"]),
            )
        except (KeyError, ValueError) as exc:
            raise CallbackError("malformed", f"not a fake receipt: {exc}") from None

    @hookimpl
    def dvcflow_dispatch_delivery(
        self, provider: Provider, delivery: DeliveryRequest
    ) -> DeliveryReceipt | None:
        """Register the delivery; it moves when `courier` reports."""
        if provider.type != FAKE:
            return None
        if self._take("dispatch_delivery", delivery, delivery.key):
            with self._lock:
                self.deliveries.append(delivery)
                self.delivery_status.setdefault(delivery.reference, DeliveryStatus.REGISTERED)
        return DeliveryReceipt(f"FAKE-WB-{delivery.reference}", DeliveryStatus.REGISTERED.value)

    @hookimpl
    def dvcflow_verify_delivery_callback(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> DeliveryReport | None:
        """Check the HMAC header, then parse the courier's JSON report."""
        if provider.type != FAKE:
            return None
        data = self._verified(body, headers)
        try:
            return DeliveryReport(
                event_id=str(data["event_id"]),
                reference=str(data["reference"]),
                status=DeliveryStatus(data["status"]),
                provider_ref=data.get("waybill"),
                receiver=dict(data.get("receiver") or {}),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CallbackError("malformed", f"not a fake courier report: {exc}") from None

    @hookimpl
    def dvcflow_track_delivery(
        self, provider: Provider, reference: str, provider_ref: str | None
    ) -> DeliveryReport | None:
        """The delivery's current status."""
        if provider.type != FAKE:
            return None
        with self._lock:
            status = self.delivery_status.get(reference)
        if status is None:
            raise BackendError(f"fake: no delivery {reference}", retryable=False)
        return DeliveryReport(f"track:{reference}:{status.value}", reference, status, provider_ref)

    @hookimpl
    def dvcflow_cancel_delivery(
        self, provider: Provider, reference: str, provider_ref: str | None
    ) -> bool | None:
        """Cancel a delivery not yet picked up."""
        if provider.type != FAKE:
            return None
        del provider_ref
        with self._lock:
            status = self.delivery_status.get(reference)
            if status is None or status.rank >= DeliveryStatus.PICKED_UP.rank:
                return False
            self.delivery_status[reference] = DeliveryStatus.CANCELLED
        return True

    @hookimpl
    def dvcflow_store_file(
        self, provider: Provider, content: bytes, media_type: str, name: str
    ) -> StoredFile | None:
        """Keep the content by its SHA-256."""
        if provider.type != FAKE:
            return None
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        with self._lock:
            self.files[digest] = content
        return StoredFile(digest, len(content), media_type, name)

    @hookimpl
    def dvcflow_load_file(self, provider: Provider, digest: str) -> bytes | None:
        """The content kept under ``digest``."""
        if provider.type != FAKE:
            return None
        with self._lock:
            content = self.files.get(digest)
        if content is None:
            raise BackendError(f"fake: nothing stored under {digest}", retryable=False)
        return content

    @hookimpl
    def dvcflow_sign_document(self, provider: Provider, digest: str) -> DocumentSignature | None:
        """An HMAC standing in for a signature (deterministic, not a real one)."""
        if provider.type != FAKE:
            return None
        value = hmac.new(self._secret, digest.encode(), hashlib.sha256).hexdigest()
        return DocumentSignature("fake-hmac-sha256", "fake", value)

    @hookimpl
    def dvcflow_verify_document(
        self, provider: Provider, digest: str, signature: DocumentSignature
    ) -> bool | None:
        """Whether the stand-in signature matches."""
        if provider.type != FAKE:
            return None
        expected = hmac.new(self._secret, digest.encode(), hashlib.sha256).hexdigest()
        return signature.algorithm == "fake-hmac-sha256" and hmac.compare_digest(
            expected, signature.value
        )

    def _verified(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        given = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given, self.sign(body)):
            raise SignatureError("fake: the signature does not match the body")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise CallbackError("malformed", f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CallbackError("malformed", "not a JSON object")
        return data
