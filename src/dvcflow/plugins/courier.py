"""Results (and dossiers) by public post through a courier's JSON-over-HTTP API.

Configure it as a provider of type ``"http_courier"``::

    [providers.post]
    type = "http_courier"
    settings = { url = "https://courier.example.vn/api/v1", account = "G09.20-DVC" }
    secrets = { secret = "DVCFLOW_COURIER_SECRET" }

    [routing]
    delivery = "post"

Public post under Decision 45/2016/QĐ-TTg (dịch vụ bưu chính công ích): the portal registers a
parcel, the courier picks it up and gives a waybill (số vận đơn), carries it and delivers it or
returns it to the sender; it is revocable until pickup. The courier's real API (VNPost's or
another's) is not published to us: the message shapes, paths, header names, status words and
error codes below are this library's design, kept in this module's tables and in
``docs/delivery.md``, so fitting a real API changes them and nothing else.

Every request carries ``X-Courier-Account`` (the agency's customer code) and
``X-Courier-Signature``, the hex HMAC-SHA256 of the exact body under the shared secret; those
that change something carry ``Idempotency-Key``. The courier signs its status callbacks the
same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from dvcflow._backends import (
    DeliveryReceipt,
    DeliveryReport,
    DeliveryRequest,
    DeliveryStatus,
    Provider,
)
from dvcflow._values import DeliveryMethod
from dvcflow.errors import BackendError, CallbackError, SignatureError
from dvcflow.hookspecs import hookimpl
from dvcflow.plugins._http import HTTPStatusError, encode_json, is_http_url, post_json

__all__ = [
    "ACCOUNT_HEADER",
    "ERROR_CODES",
    "HTTP_COURIER",
    "IDEMPOTENCY_HEADER",
    "MAX_MESSAGE_BYTES",
    "PATHS",
    "SIGNATURE_HEADER",
    "STATUSES",
    "HttpCourier",
    "build_shipment",
    "parse_event",
    "sign",
    "verify",
]

logger = logging.getLogger("dvcflow.courier")

HTTP_COURIER = "http_courier"
"""The provider type this plugin serves."""

SIGNATURE_HEADER = "X-Courier-Signature"
"""Hex HMAC-SHA256 of the body under the shared secret, on requests and callbacks."""
ACCOUNT_HEADER = "X-Courier-Account"
"""The agency's customer code at the courier (``settings.account``), on requests."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
"""On create and cancel: the same key and body get the first answer again."""

PATHS: Mapping[str, str] = MappingProxyType(
    {"create": "/shipments", "track": "/shipments/track", "cancel": "/shipments/cancel"}
)
"""Each request's path under ``settings.url``; every request is a POST of a JSON object."""

STATUSES: Mapping[str, DeliveryStatus] = MappingProxyType(
    {
        "created": DeliveryStatus.REGISTERED,
        "pickup_requested": DeliveryStatus.PICKUP_REQUESTED,
        "picked_up": DeliveryStatus.PICKED_UP,
        "in_transit": DeliveryStatus.IN_TRANSIT,
        "out_for_delivery": DeliveryStatus.IN_TRANSIT,
        "delivered": DeliveryStatus.DELIVERED,
        "delivery_failed": DeliveryStatus.FAILED,
        "returning": DeliveryStatus.FAILED,
        "returned": DeliveryStatus.RETURNED_TO_SENDER,
        "cancelled": DeliveryStatus.CANCELLED,
    }
)
"""The courier's status words and what they are in dvcflow's terms.

``returning`` (on its way back) stays `DeliveryStatus.FAILED` until ``returned``.
"""

ERROR_CODES: Mapping[str, str] = MappingProxyType(
    {
        "bad_signature": "the courier does not accept the signature: check secrets.secret",
        "unknown_account": "the courier does not know settings.account",
        "malformed": "the courier could not read the request",
        "invalid_recipient": "the courier refuses the recipient's details",
        "unserviceable": "the courier does not serve the recipient's address",
        "idempotency_conflict": "the idempotency key was used before for another request",
        "not_found": "the courier has no such shipment",
        "not_cancellable": "the shipment was picked up: it can no longer be revoked",
    }
)
"""``error.code`` of a courier's error answer (``{"error": {"code", "message"}}``).

Whether trying again can help follows the HTTP status (408, 429 and 5xx can); the courier's
``error.message`` is never quoted, since it may echo the recipient's details.
"""

MAX_MESSAGE_BYTES = 64 * 1024
"""A reply or callback larger than this is not a message of the courier."""
TIMEOUT_S = 15.0
"""Default read timeout (``settings.timeout_s``)."""
CONNECT_TIMEOUT_S = 5.0
"""Default connect timeout (``settings.connect_timeout_s``)."""
SERVICE = "public_post"
"""Default ``service`` of a shipment (``settings.service``)."""
DIRECTIONS = ("outbound", "inbound")
REQUIRED_RECIPIENT: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"outbound": ("name", "phone", "address"), "inbound": ("name", "phone")}
)
"""What a shipment needs of the applicant: an inbound one may be handed in at a post office."""
PARTY_FIELDS = ("name", "phone", "address")
RECEIVER_FIELDS = ("name", "relation")
_TEXT_LIMIT = 200

SETTINGS = (
    "account",
    "connect_timeout_s",
    "request_pickup",
    "sender",
    "service",
    "timeout_s",
    "url",
)


# -- the signature and messages (pure) ------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The ``X-Courier-Signature`` of a body: hex HMAC-SHA256 under ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the body's `sign` (constant-time)."""
    return hmac.compare_digest(signature.strip().lower().encode(), sign(secret, body).encode())


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def build_shipment(
    delivery: DeliveryRequest,
    *,
    service: str = SERVICE,
    sender: Mapping[str, str] | None = None,
    request_pickup: bool = True,
) -> dict[str, Any]:
    """The create-shipment message for a delivery.

    ``sender`` is always the agency (its code and, when configured, the return address);
    ``recipient`` is always the applicant: for an ``inbound`` shipment the courier collects
    from the applicant and brings the parcel to the agency.

    Raises:
        BackendError: not retryable, for a delivery that is not by post, has no reference or
            an unknown direction, or lacks a recipient field the direction needs (named,
            its value never shown).
    """
    where = f"delivery {delivery.reference or '<no reference>'}"
    if delivery.method is not DeliveryMethod.POSTAL:
        raise BackendError(
            f"{where}: the courier carries postal deliveries, not {delivery.method.value}",
            retryable=False,
        )
    if not delivery.reference:
        raise BackendError(f"{where}: a shipment needs the delivery's reference", retryable=False)
    if delivery.direction not in DIRECTIONS:
        raise BackendError(
            f"{where}: direction must be one of {', '.join(DIRECTIONS)}", retryable=False
        )
    for name in REQUIRED_RECIPIENT[delivery.direction]:
        if not _text(delivery.recipient.get(name)):
            raise BackendError(
                f"{where}: recipient.{name} is required for an {delivery.direction} parcel",
                retryable=False,
            )
    recipient = {name: _text(delivery.recipient.get(name)) for name in PARTY_FIELDS}
    return {
        "reference": delivery.reference,
        "direction": delivery.direction,
        "dossier_code": delivery.dossier_code,
        "sender": {"agency": delivery.agency, **dict(sender or {})},
        "recipient": recipient,
        "documents": list(delivery.documents),
        "service": service,
        "request_pickup": request_pickup,
    }


def _instant(value: object) -> dt.datetime | None:
    """An ISO 8601 time with its offset, as UTC; ``None`` when absent.

    Raises:
        ValueError: not such a time (a time without an offset is ambiguous).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("at: must be an ISO 8601 time")  # noqa: TRY004 - one error for all
    at = dt.datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError("at: needs an offset")
    return at.astimezone(dt.UTC)


def parse_event(message: Mapping[str, Any], *, event_required: bool = True) -> DeliveryReport:
    """Read a status event: a callback, or a tracking answer (its latest event).

    Args:
        message: ``{event_id, reference, waybill, status, at, receiver, detail}``.
        event_required: a tracking answer may lack ``event_id``: one is made of the waybill
            and the status.

    Raises:
        CallbackError: ``"malformed"``, naming the field that is missing or wrong.
    """
    reference, waybill = message.get("reference"), message.get("waybill")
    if not isinstance(reference, str) or not reference:
        raise CallbackError("malformed", "courier event: reference is missing")
    if waybill is not None and (not isinstance(waybill, str) or not waybill):
        raise CallbackError("malformed", "courier event: waybill must be a string")
    word = message.get("status")
    status = STATUSES.get(word) if isinstance(word, str) else None
    if status is None:
        raise CallbackError("malformed", f"courier event: unknown status {str(word)[:40]!r}")
    event_id = message.get("event_id")
    if event_id is None and not event_required:
        event_id = f"track:{waybill or reference}:{word}"
    if not isinstance(event_id, str) or not event_id:
        raise CallbackError("malformed", "courier event: event_id is missing")
    try:
        at = _instant(message.get("at"))
    except ValueError:
        raise CallbackError("malformed", "courier event: at is not an ISO 8601 time") from None
    receiver = message.get("receiver")
    detail = message.get("detail")
    return DeliveryReport(
        event_id=event_id,
        reference=reference,
        status=status,
        provider_ref=waybill,
        at=at,
        receiver={
            name: receiver[name][:_TEXT_LIMIT]
            for name in RECEIVER_FIELDS
            if isinstance(receiver, Mapping) and isinstance(receiver.get(name), str)
        },
        detail=detail[:_TEXT_LIMIT] if isinstance(detail, str) and detail else None,
    )


# -- exchanges ------------------------------------------------------------------------------------


def _where(provider: Provider, action: str) -> str:
    return f"http courier {provider.name!r}: {action}"


def _error_code(error: HTTPStatusError) -> str | None:
    """The courier's ``error.code`` if it is one of `ERROR_CODES`."""
    reply = error.reply or {}
    detail = reply.get("error")
    code = detail.get("code") if isinstance(detail, Mapping) else None
    return code if isinstance(code, str) and code in ERROR_CODES else None


def _post(
    provider: Provider, action: str, message: Mapping[str, Any], key: str | None
) -> dict[str, Any]:
    """Sign and send one request; the courier's reply.

    Raises:
        BackendError: see `post_json`; an error answer names its known ``error.code``.
    """
    body = encode_json(message)
    headers = {
        ACCOUNT_HEADER: str(provider.setting("account")),
        SIGNATURE_HEADER: sign(provider.secret("secret"), body),
    }
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    where = _where(provider, action)
    try:
        return post_json(
            str(provider.setting("url")).rstrip("/") + PATHS[action],
            body,
            connect_timeout=float(provider.setting("connect_timeout_s", CONNECT_TIMEOUT_S)),
            read_timeout=float(provider.setting("timeout_s", TIMEOUT_S)),
            max_bytes=MAX_MESSAGE_BYTES,
            where=where,
            headers=headers,
        )
    except HTTPStatusError as exc:
        code = _error_code(exc)
        if code is None:
            raise
        raise HTTPStatusError(
            f"{where}: HTTP {exc.status} {code}: {ERROR_CODES[code]}",
            status=exc.status,
            reply=exc.reply,
            retryable=exc.retryable,
        ) from None


def _same_reference(provider: Provider, action: str, sent: str, reply: Mapping[str, Any]) -> None:
    if reply.get("reference") != sent:
        raise BackendError(
            f"{_where(provider, action)}: the reply is about another reference", retryable=False
        )


# -- the plugin -----------------------------------------------------------------------------------


class HttpCourier:
    """Public post through a courier's JSON API: shipments, tracking, revoking, callbacks."""

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The plugin serves type ``http_courier``."""
        return [HTTP_COURIER]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Every problem with the provider's settings and secret, each naming the setting."""
        if provider.type != HTTP_COURIER:
            return None
        return _problems(provider)

    @hookimpl
    def dvcflow_dispatch_delivery(
        self, provider: Provider, delivery: DeliveryRequest
    ) -> DeliveryReceipt | None:
        """Register the parcel; its waybill and status (``registered`` or ``pickup_requested``).

        Raises:
            BackendError: see `build_shipment` and `post_json`.
        """
        if provider.type != HTTP_COURIER:
            return None
        message = build_shipment(
            delivery,
            service=str(provider.setting("service", SERVICE)),
            sender=provider.setting("sender"),
            request_pickup=bool(provider.setting("request_pickup", default=True)),
        )
        reply = _post(provider, "create", message, delivery.key)
        _same_reference(provider, "create", delivery.reference, reply)
        where = _where(provider, "create")
        waybill, word = reply.get("waybill"), reply.get("status")
        if not isinstance(waybill, str) or not waybill:
            raise BackendError(f"{where}: the courier answered without a waybill")
        status = STATUSES.get(word) if isinstance(word, str) else None
        if status is None:
            raise BackendError(f"{where}: unknown status {str(word)[:40]!r}", retryable=False)
        logger.debug("shipment %s -> %s (%s)", delivery.reference, waybill, status.value)
        return DeliveryReceipt(provider_ref=waybill, status=status.value)

    @hookimpl
    def dvcflow_verify_delivery_callback(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> DeliveryReport | None:
        """Authenticate ``X-Courier-Signature`` over the body, then read the event.

        Raises:
            CallbackError: ``"malformed"``: oversize, unsigned (not the courier's), not JSON,
                or not an event (a field missing, an unknown status).
            SignatureError: signed, but not with the shared secret (forged or altered).
        """
        if provider.type != HTTP_COURIER:
            return None
        if len(body) > MAX_MESSAGE_BYTES:
            raise CallbackError("malformed", f"larger than {MAX_MESSAGE_BYTES} bytes")
        lowered = {name.lower(): value for name, value in headers.items()}
        given = lowered.get(SIGNATURE_HEADER.lower())
        if not given:
            raise CallbackError("malformed", f"no {SIGNATURE_HEADER} header: not a courier event")
        if not verify(provider.secret("secret"), body, given):
            raise SignatureError("courier callback: the signature does not match the body")
        try:
            message = json.loads(body)
        except ValueError:
            raise CallbackError("malformed", "courier event: not JSON") from None
        if not isinstance(message, dict):
            raise CallbackError("malformed", "courier event: not a JSON object")
        return parse_event(message)

    @hookimpl
    def dvcflow_track_delivery(
        self, provider: Provider, reference: str, provider_ref: str | None
    ) -> DeliveryReport | None:
        """The shipment's latest event, found by waybill when known, else by reference.

        Raises:
            BackendError: see `post_json`; not retryable for an answer about another shipment
                or one that is not an event.
        """
        if provider.type != HTTP_COURIER:
            return None
        message = {"reference": reference, "waybill": provider_ref}
        reply = _post(provider, "track", message, None)
        _same_reference(provider, "track", reference, reply)
        where = _where(provider, "track")
        if provider_ref is not None and reply.get("waybill") not in (None, provider_ref):
            raise BackendError(f"{where}: the reply is about another waybill", retryable=False)
        try:
            report = parse_event(reply, event_required=False)
        except CallbackError as exc:
            raise BackendError(f"{where}: {exc}", retryable=False) from None
        logger.debug("track %s: %s", reference, report.status.value)
        return report

    @hookimpl
    def dvcflow_cancel_delivery(
        self, provider: Provider, reference: str, provider_ref: str | None
    ) -> bool | None:
        """Revoke the shipment: ``True`` when cancelled, ``False`` once it was picked up.

        The courier refuses with ``not_cancellable`` after pickup; that is an answer, not a
        failure: the parcel goes on, and tracking and callbacks follow it.

        Raises:
            BackendError: see `post_json` (``not_found`` is not retryable).
        """
        if provider.type != HTTP_COURIER:
            return None
        message = {"reference": reference, "waybill": provider_ref}
        try:
            reply = _post(provider, "cancel", message, f"cancel:{reference}")
        except HTTPStatusError as exc:
            if _error_code(exc) == "not_cancellable":
                logger.debug("cancel %s: already picked up", reference)
                return False
            raise
        _same_reference(provider, "cancel", reference, reply)
        cancelled = reply.get("status") == "cancelled"
        logger.debug("cancel %s: %s", reference, "cancelled" if cancelled else "refused")
        return cancelled


# -- settings -------------------------------------------------------------------------------------


def _problems(provider: Provider) -> list[str]:
    problems = [
        f"settings.{name}: unknown setting (known: {', '.join(SETTINGS)})"
        for name in sorted(provider.settings)
        if name not in SETTINGS
    ]
    if not is_http_url(provider.setting("url")):
        problems.append("settings.url: required, an http(s) URL of the courier's API")
    if not _text(provider.setting("account")):
        problems.append("settings.account: required, the agency's customer code at the courier")
    if not _text(provider.setting("service", SERVICE)):
        problems.append("settings.service: must be the courier's service code, a string")
    if not isinstance(provider.setting("request_pickup", default=True), bool):
        problems.append("settings.request_pickup: must be true or false")
    problems.extend(_sender_problems(provider.setting("sender", {})))
    for name in ("timeout_s", "connect_timeout_s"):
        value = provider.setting(name, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
            problems.append(f"settings.{name}: must be a number of seconds in (0, 300]")
    if not provider.secrets.get("secret"):
        problems.append(
            "secrets.secret: required, the environment variable holding the shared secret"
        )
    return problems


def _sender_problems(sender: object) -> list[str]:
    if not isinstance(sender, Mapping):
        return ["settings.sender: must be a table (name, phone, address of the agency's office)"]
    problems = []
    for name, value in sender.items():
        if name not in PARTY_FIELDS:
            problems.append(f"settings.sender.{name}: unknown ({', '.join(PARTY_FIELDS)})")
        elif not _text(value):
            problems.append(f"settings.sender.{name}: must be a non-empty string")
    return problems
