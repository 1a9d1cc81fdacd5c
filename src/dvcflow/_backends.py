"""Values that cross the plugin boundary: providers, payment, delivery and notification messages.

Everything here is a frozen attrs value with plain fields, so a plugin can be written and
tested without an engine. None of them carries personal data unless a field says so: a
reference, an idempotency key or a description is safe to log and to send to a provider.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dvcflow._lifecycle import NationalStatus
from dvcflow._values import DeliveryMethod, FeeKind, Money
from dvcflow.errors import BackendError

__all__ = [
    "CallbackReply",
    "DeliveryReceipt",
    "DeliveryReport",
    "DeliveryRequest",
    "DeliveryStatus",
    "DocumentSignature",
    "Family",
    "Message",
    "MessageChannel",
    "MessageReceipt",
    "MessageStatus",
    "NotificationReceipt",
    "PaymentLink",
    "PaymentOutcome",
    "PaymentQuery",
    "PaymentReport",
    "PaymentRequest",
    "Provider",
    "RefundRequest",
    "RefundResult",
    "StoredFile",
    "TransitionRecord",
]


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def content_key(value: Mapping[str, Any]) -> str:
    """A mapping of plain data as one hashable value, for equality and hashing."""
    return json.dumps(value, sort_keys=True, default=str)


class Family(enum.Enum):
    """A family of back ends: which hooks a provider answers and which effects reach it."""

    PAYMENT = "payment"
    DELIVERY = "delivery"
    NOTIFICATION = "notification"
    STORAGE = "storage"
    SIGNING = "signing"


@attrs.frozen
class Provider:
    """A configured back end: its name, the plugin type serving it, its settings and secrets.

    The configuration file names providers under ``[providers.<name>]``; ``type`` says which
    plugin answers for it (``"national_payment"``, ``"fake"``, or a third-party plugin's).
    Secrets are read from the environment variables the file names, when the engine opens;
    they never appear in a ``repr``.
    """

    name: str
    type: str
    settings: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_mapping, eq=content_key
    )
    secrets: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=False, eq=False
    )

    def setting(self, name: str, default: Any = None) -> Any:  # noqa: ANN401 - plugin-defined
        """A setting of ``[providers.<name>.settings]``, or ``default``."""
        return self.settings.get(name, default)

    def secret(self, name: str) -> str:
        """The secret ``name`` (``[providers.<name>.secrets]``), read from the environment.

        Raises:
            BackendError: not retryable, when the configuration names no such secret.
        """
        try:
            return self.secrets[name]
        except KeyError:
            raise BackendError(
                f"provider {self.name!r} has no secret {name!r}: add it to "
                f"[providers.{self.name}.secrets] with the environment variable holding it",
                retryable=False,
            ) from None


class PaymentOutcome(enum.Enum):
    """Where a payment stands at the provider, in provider-neutral terms."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the payment will not change any more."""
        return self is not PaymentOutcome.PENDING


@attrs.frozen
class PaymentRequest:
    """Ask a provider for a payment link for one fee of one dossier.

    Attributes:
        reference: dvcflow's payment reference (the national platform's ``MaThamChieu``):
            unique, stable across retries, no personal data.
        idempotency_key: the outbox effect's key; the same key must never charge twice.
        description: what is paid for (procedure and fee names), no personal data.
    """

    reference: str
    idempotency_key: str
    dossier_id: str
    dossier_code: str | None
    procedure: str
    agency: str
    fee_kind: FeeKind
    amount: Money
    description: str
    expires_at: dt.datetime | None = None


@attrs.frozen
class PaymentLink:
    """A provider's answer to a `PaymentRequest`: where the applicant pays."""

    url: str
    provider_ref: str | None = None
    """The provider's transaction id, when it gives one at creation."""
    expires_at: dt.datetime | None = None


@attrs.frozen
class PaymentQuery:
    """Ask a provider about (or to cancel) a payment it was asked for."""

    reference: str
    provider_ref: str | None
    amount: Money
    idempotency_key: str


@attrs.frozen
class PaymentReport:
    """What a provider says of a payment: a verified callback, or the answer to a query.

    Attributes:
        event_id: the provider's id of this report; a report seen before is a no-op.
        reference: dvcflow's payment reference it is about.
        amount: what the provider says was paid; checked against what the dossier owes.
        receipt: the e-receipt (biên lai điện tử) reference, when the provider issues one.
    """

    event_id: str
    reference: str
    outcome: PaymentOutcome
    amount: Money | None = None
    provider_ref: str | None = None
    receipt: str | None = None
    at: dt.datetime | None = None


@attrs.frozen
class RefundRequest:
    """Give back (part of) a paid fee."""

    reference: str
    """The refund's own reference, unique and stable across retries."""
    payment_reference: str
    provider_ref: str | None
    fee_kind: FeeKind
    amount: Money
    idempotency_key: str
    reason: str


@attrs.frozen
class RefundResult:
    """A provider's answer to a `RefundRequest`."""

    outcome: PaymentOutcome
    provider_ref: str | None = None


@attrs.frozen
class CallbackReply:
    """The HTTP response a callback endpoint sends back to the provider."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_mapping, eq=content_key
    )


@attrs.frozen
class NotificationReceipt:
    """A notification provider's answer: its message id and status.

    ``status`` is a `MessageStatus` value: ``"sending"`` (accepted, a receipt will follow) or
    ``"delivered"`` (the provider knows it arrived).
    """

    provider_ref: str | None = None
    status: str = "sending"


class MessageChannel(enum.Enum):
    """How a message reaches its recipient."""

    EMAIL = "email"
    SMS = "sms"
    ZALO = "zalo"
    """Zalo Notification Service: only to people who follow the agency's official account."""
    WEBHOOK = "webhook"
    """A signed HTTP POST to a system (the portal's officer inbox, a partner agency)."""


class MessageStatus(enum.Enum):
    """Where a message stands (GOV.UK Notify's states)."""

    CREATED = "created"
    SENDING = "sending"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary-failure"
    """The recipient could not take it now (inbox full, phone off): the provider retries."""
    PERMANENT_FAILURE = "permanent-failure"
    """The address does not work (no such mailbox, not a Zalo follower): try the next channel."""
    TECHNICAL_FAILURE = "technical-failure"
    """The provider failed: dvcflow retries."""

    @property
    def terminal(self) -> bool:
        """Whether the message will not change any more."""
        return self in {MessageStatus.DELIVERED, MessageStatus.PERMANENT_FAILURE}

    @property
    def rank(self) -> int:
        """Order of the moves a message may make: a status never goes back to a lower rank."""
        return _MESSAGE_RANKS[self]


_MESSAGE_RANKS = {
    MessageStatus.CREATED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.TECHNICAL_FAILURE: 1,
    MessageStatus.TEMPORARY_FAILURE: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.PERMANENT_FAILURE: 3,
}


@attrs.frozen
class Message:
    """A notification rendered for one channel and one address, ready to send.

    Attributes:
        key: the idempotency key (``<effect key>:<channel>``); never personal data.
        reference: dvcflow's id of the message, given to the provider and found again in its
            receipts; never personal data.
        address: the one personal field: an email address, a mobile number, a Zalo user id or
            a webhook URL. It is not in the ``repr`` and never logged.
        text: the body (for SMS and Zalo, the whole message).
        template_version: the template and version it was rendered from, e.g.
            ``"received@2026-01:3fa9c1"``, recorded with the message.
    """

    key: str
    reference: str
    channel: MessageChannel
    address: str = attrs.field(repr=False)
    text: str
    subject: str | None = None
    html: str | None = None
    locale: str = "vi"
    event: str = ""
    template_version: str = ""
    dossier_code: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=content_key)
    """Plain, non-personal details of the event (for webhooks, which send data, not prose)."""


@attrs.frozen
class MessageReceipt:
    """What a provider reports of a message it sent (a delivery receipt)."""

    event_id: str
    """The provider's id of this report: a report seen before is a no-op."""
    reference: str
    """dvcflow's message reference."""
    status: MessageStatus
    provider_ref: str | None = None
    detail: str | None = None


class DeliveryStatus(enum.Enum):
    """Where a parcel or an electronic result stands (public post under Decision 45/2016)."""

    REGISTERED = "registered"
    PICKUP_REQUESTED = "pickup_requested"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    FAILED = "failed"
    RETURNED_TO_SENDER = "returned_to_sender"
    CANCELLED = "cancelled"
    """Revoked before pickup."""

    @property
    def rank(self) -> int:
        """Order of the moves a delivery may make: never back to a lower rank."""
        return _DELIVERY_RANKS[self]

    @property
    def terminal(self) -> bool:
        """Whether the delivery will not change any more."""
        return self in {
            DeliveryStatus.DELIVERED,
            DeliveryStatus.RETURNED_TO_SENDER,
            DeliveryStatus.CANCELLED,
        }


_DELIVERY_RANKS = {
    DeliveryStatus.REGISTERED: 0,
    DeliveryStatus.PICKUP_REQUESTED: 1,
    DeliveryStatus.CANCELLED: 2,
    DeliveryStatus.PICKED_UP: 2,
    DeliveryStatus.IN_TRANSIT: 3,
    DeliveryStatus.DELIVERED: 4,
    DeliveryStatus.FAILED: 4,
    DeliveryStatus.RETURNED_TO_SENDER: 5,
}


@attrs.frozen
class DeliveryRequest:
    """Send a dossier's result to the applicant (postal, electronic or for collection).

    Attributes:
        key: the idempotency key; never personal data.
        reference: dvcflow's id of the delivery, found again in the provider's reports.
        recipient: personal: ``name``, ``phone`` and ``address`` for a parcel (not in the
            ``repr``).
        direction: ``"outbound"`` (the result to the applicant) or ``"inbound"`` (a dossier
            the applicant posts to the agency).
        documents: digests of the files sent (``"sha256:..."``).
    """

    key: str
    dossier_id: str
    dossier_code: str | None
    procedure: str
    agency: str
    method: DeliveryMethod
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=content_key)
    reference: str = ""
    recipient: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_mapping, eq=content_key, repr=False
    )
    direction: str = "outbound"
    documents: tuple[str, ...] = ()


@attrs.frozen
class DeliveryReceipt:
    """A delivery provider's answer: its waybill or link reference and status.

    ``status`` is a `DeliveryStatus` value.
    """

    provider_ref: str | None = None
    status: str = "registered"


@attrs.frozen
class DeliveryReport:
    """What a courier reports of a delivery: a verified callback or a tracking answer.

    Attributes:
        event_id: the provider's id of this report; a report seen before is a no-op.
        reference: dvcflow's delivery reference.
        provider_ref: the waybill number (số vận đơn).
        receiver: personal: who took the parcel (``name``, ``relation``), on delivery.
    """

    event_id: str
    reference: str
    status: DeliveryStatus
    provider_ref: str | None = None
    at: dt.datetime | None = None
    receiver: Mapping[str, str] = attrs.field(
        factory=dict, converter=_frozen_mapping, eq=content_key, repr=False
    )
    detail: str | None = None


@attrs.frozen
class StoredFile:
    """A file in the result and attachment store, named by its content."""

    digest: str
    """``"sha256:<64 hex digits>"`` of the content."""
    size: int
    media_type: str
    name: str


@attrs.frozen
class DocumentSignature:
    """A digital signature over a stored file's digest."""

    algorithm: str
    """E.g. ``"ed25519"``."""
    key_id: str
    """Which key signed (a fingerprint of its public key)."""
    value: str
    """The signature, base64."""
    signed_at: dt.datetime | None = None


@attrs.frozen
class TransitionRecord:
    """A committed transition, as lifecycle observers see it (no personal data)."""

    dossier_id: str
    code: str | None
    procedure: str
    agency: str
    trigger: str
    source: str
    target: str
    version: int
    national_status: NationalStatus
    at: dt.datetime
