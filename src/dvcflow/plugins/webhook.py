"""Signed webhooks: an event POSTed as JSON to a system (an officer inbox, a partner agency).

Configure it as a provider of type ``"webhook"``::

    [providers.inbox]
    type = "webhook"
    settings = { url = "https://inbox.example.gov.vn/dvcflow" }
    secrets = { secret = "DVCFLOW_WEBHOOK_SECRET" }

A message goes to its address when that is an http(s) URL, else to ``settings.url``. Each POST
carries ``X-Dvcflow-Timestamp`` (Unix seconds), ``X-Dvcflow-Signature: sha256=<hex>`` (the
HMAC-SHA256 of ``"<timestamp>.<body>"`` with the shared secret) and ``Idempotency-Key``. A
receiver checks them with `verify_signature`; ``docs/channels.md`` shows how, in other
languages too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from dvcflow._backends import Message, MessageChannel, NotificationReceipt, Provider
from dvcflow._clock import Clock, SystemClock
from dvcflow.errors import BackendError
from dvcflow.hookspecs import hookimpl
from dvcflow.plugins._http import is_http_url, post, retryable_status

__all__ = [
    "KEY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_S",
    "WEBHOOK",
    "Webhook",
    "build_body",
    "signature",
    "verify_signature",
]

logger = logging.getLogger("dvcflow.webhook")

WEBHOOK = "webhook"
"""The provider type this plugin serves."""

SIGNATURE_HEADER = "X-Dvcflow-Signature"
"""``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
TIMESTAMP_HEADER = "X-Dvcflow-Timestamp"
"""When the request was signed, in whole Unix seconds."""
KEY_HEADER = "Idempotency-Key"
"""The message's idempotency key: a receiver applies each key once."""

TOLERANCE_S = 300
"""How far a timestamp may be from the receiver's clock, by default (replays are older)."""
TIMEOUT_S = 10.0
"""Default read timeout (``settings.timeout_s``)."""
CONNECT_TIMEOUT_S = 5.0
"""Default connect timeout (``settings.connect_timeout_s``)."""
MAX_REPLY_BYTES = 16 * 1024
"""Only this much of a receiver's answer is read (for its ``id``)."""

SETTINGS = ("allowed_hosts", "connect_timeout_s", "timeout_s", "url")


# -- the signature (pure) -------------------------------------------------------------------------


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def signature(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The `SIGNATURE_HEADER` value: ``sha256=`` and the hex HMAC of ``"<timestamp>.<body>"``."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(_key(secret), signed, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | bytes | Sequence[str | bytes],
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether a webhook request is dvcflow's, unaltered and recent (for receivers).

    Args:
        body: the request body exactly as received (before any JSON parsing).
        headers: the request headers (any case).
        secret: the shared secret, or several (the new and the old while rotating it).
        tolerance_s: how many seconds the timestamp may be from ``now``, either way.
        now: the receiver's time in Unix seconds (``time.time()`` by default).

    Returns:
        ``True`` when one of the ``sha256=`` signatures (comma-separated) matches under one of
        the secrets and the timestamp is within the tolerance; ``False`` otherwise, never an
        exception. Compare in constant time; apply each ``Idempotency-Key`` once.
    """
    stamp, given = _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER)
    if stamp is None or given is None:
        return False
    stamp = stamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return False
    moment = time.time() if now is None else now
    if abs(moment - int(stamp)) > tolerance_s:
        return False
    secrets = [secret] if isinstance(secret, str | bytes) else list(secret)
    offered = [part.strip().lower().encode("ascii", "replace") for part in given.split(",")]
    matched = False
    for key in secrets:
        expected = signature(body, key, int(stamp)).encode()
        for candidate in offered:
            # Every pair is compared, so the time taken says nothing of which one matched.
            matched |= hmac.compare_digest(candidate, expected)
    return matched


# -- the message (pure) ---------------------------------------------------------------------------


def build_body(message: Message, sent_at: dt.datetime) -> bytes:
    """The JSON body of a webhook: the event, its texts and plain data, UTF-8."""
    stamp = sent_at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    document: dict[str, Any] = {
        "event": message.event,
        "reference": message.reference,
        "dossier_code": message.dossier_code,
        "locale": message.locale,
        "subject": message.subject,
        "text": message.text,
        "data": dict(message.data),
        "sent_at": stamp,
    }
    return json.dumps(document, ensure_ascii=False, default=str).encode()


# -- the plugin -----------------------------------------------------------------------------------


class Webhook:
    """Webhook messages (``channel = webhook``), signed with the provider's secret.

    Args:
        clock: where the timestamp and ``sent_at`` come from (the system clock by default).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The plugin serves type ``webhook``."""
        return [WEBHOOK]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Every problem with the provider's settings and secret, each naming the setting."""
        if provider.type != WEBHOOK:
            return None
        return _problems(provider)

    @hookimpl
    def dvcflow_send_message(
        self, provider: Provider, message: Message
    ) -> NotificationReceipt | None:
        """POST the signed event; a 2xx answer means delivered.

        Raises:
            BackendError: not retryable for a message of another channel, no URL to send to,
                a host outside ``settings.allowed_hosts``, or a 4xx answer (but 408 and 429);
                retryable for a receiver that cannot be reached, times out or answers 5xx.
        """
        if provider.type != WEBHOOK:
            return None
        where = f"webhook {provider.name!r}"
        url, private = _target(provider, message, where)
        now = self._clock.now()
        body = build_body(message, now)
        timestamp = int(now.timestamp())
        reply = post(
            url,
            body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                KEY_HEADER: message.key,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: signature(body, provider.secret("secret"), timestamp),
            },
            connect_timeout=float(provider.setting("connect_timeout_s", CONNECT_TIMEOUT_S)),
            read_timeout=float(provider.setting("timeout_s", TIMEOUT_S)),
            max_bytes=MAX_REPLY_BYTES,
            where=where,
            private_url=private,
        )
        if not 200 <= reply.status < 300:
            raise BackendError(
                f"{where}: HTTP {reply.status}", retryable=retryable_status(reply.status)
            )
        logger.debug("delivered %s", message.reference)
        return NotificationReceipt(_reply_id(reply.body), "delivered")


def _target(provider: Provider, message: Message, where: str) -> tuple[str, bool]:
    """Where to POST, and whether that URL is the message's own (personal) address.

    Raises:
        BackendError: not retryable, when the message cannot be sent anywhere allowed.
    """
    if message.channel is not MessageChannel.WEBHOOK:
        raise BackendError(
            f"{where}: sends webhooks only, not {message.channel.value}", retryable=False
        )
    if is_http_url(message.address):
        allowed = provider.setting("allowed_hosts")
        host = (urllib.parse.urlsplit(message.address).hostname or "").lower()
        if allowed is not None and host not in {str(name).lower() for name in allowed}:
            raise BackendError(
                f"{where}: the address's host is not in settings.allowed_hosts", retryable=False
            )
        return message.address, True
    url = provider.setting("url")
    if not is_http_url(url):
        raise BackendError(
            f"{where}: the address is not an http(s) URL and settings.url is not set",
            retryable=False,
        )
    return str(url), False


def _reply_id(body: bytes) -> str | None:
    """The receiver's ``id`` for the event, when it answers a JSON object with one."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    ident = answer.get("id") if isinstance(answer, dict) else None
    return str(ident) if isinstance(ident, str | int) and not isinstance(ident, bool) else None


# -- settings -------------------------------------------------------------------------------------


def _problems(provider: Provider) -> list[str]:
    problems = [
        f"settings.{name}: unknown setting (known: {', '.join(SETTINGS)})"
        for name in sorted(provider.settings)
        if name not in SETTINGS
    ]
    url = provider.setting("url")
    if url is not None and not is_http_url(url):
        problems.append("settings.url: must be an http(s) URL (used for messages without one)")
    allowed = provider.setting("allowed_hosts")
    if allowed is not None and (
        isinstance(allowed, str)
        or not isinstance(allowed, Sequence)
        or not all(isinstance(name, str) and name for name in allowed)
    ):
        problems.append("settings.allowed_hosts: must be a list of host names")
    for name in ("timeout_s", "connect_timeout_s"):
        value = provider.setting(name, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
            problems.append(f"settings.{name}: must be a number of seconds in (0, 300]")
    if not provider.secrets.get("secret"):
        problems.append(
            "secrets.secret: required, the environment variable holding the shared secret"
        )
    return problems
