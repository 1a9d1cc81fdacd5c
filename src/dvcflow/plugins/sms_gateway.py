"""SMS and Zalo messages through a JSON-over-HTTP gateway (the telecom's or an aggregator's).

Configure one provider of type ``"sms_gateway"`` per channel; ``settings.channel`` says which
(``"sms"`` by default, or ``"zalo"`` for Zalo messages to followers of the agency's Official
Account)::

    [providers.sms]
    type = "sms_gateway"
    settings = { url = "https://sms.example.vn/v1/messages", sender = "UBND-HN" }
    secrets = { secret = "DVCFLOW_SMS_SECRET" }

    [providers.zalo]
    type = "sms_gateway"
    settings = { url = "https://zalo.example.vn/v1/messages", channel = "zalo" }
    secrets = { secret = "DVCFLOW_ZALO_SECRET" }

A message is POSTed as ``{channel, to, text, reference, sender}`` with an ``Idempotency-Key``
and ``X-Signature: sha256=<hex HMAC-SHA256 of the body>``; the gateway's delivery receipts
come back signed the same way. ``docs/channels.md`` describes the messages, the error codes
(`ERROR_CODES`) and the statuses (`STATUSES`); SMS length follows `sms_segments`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dvcflow._backends import (
    Message,
    MessageReceipt,
    MessageStatus,
    NotificationReceipt,
    Provider,
)
from dvcflow.errors import BackendError, CallbackError, SignatureError
from dvcflow.hookspecs import hookimpl
from dvcflow.plugins._http import Reply, is_http_url, post, retryable_status

__all__ = [
    "CHANNELS",
    "ERROR_CODES",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "MAX_MESSAGE_BYTES",
    "SIGNATURE_HEADER",
    "SMS_GATEWAY",
    "STATUSES",
    "SmsGateway",
    "SmsSegments",
    "normalise_mobile",
    "parse_receipt",
    "sign",
    "sms_segments",
    "verify",
]

logger = logging.getLogger("dvcflow.sms_gateway")

SMS_GATEWAY = "sms_gateway"
"""The provider type this plugin serves."""

SIGNATURE_HEADER = "X-Signature"
"""The header of a request and a receipt: ``sha256=<hex HMAC-SHA256 of the body>``."""

CHANNELS = ("sms", "zalo")
"""``settings.channel``: the one channel a provider serves."""

MAX_SEGMENTS = 3
"""Default ``settings.max_segments``: the most SMS parts one message may take."""
MAX_LENGTH = 2000
"""Default ``settings.max_length``: the most characters of one Zalo message."""
TIMEOUT_S = 10.0
"""Default read timeout (``settings.timeout_s``)."""
CONNECT_TIMEOUT_S = 5.0
"""Default connect timeout (``settings.connect_timeout_s``)."""
MAX_MESSAGE_BYTES = 64 * 1024
"""A reply or a receipt larger than this is not a message of the gateway."""

SETTINGS = (
    "channel",
    "connect_timeout_s",
    "max_length",
    "max_segments",
    "sender",
    "timeout_s",
    "url",
)

ERROR_CODES: Mapping[str, tuple[bool, str]] = MappingProxyType(
    {
        "invalid_number": (False, "not a mobile number in service"),
        "not_follower": (False, "not a follower of the agency's Zalo Official Account"),
        "blocked": (False, "the recipient blocked the sender or opted out"),
        "too_long": (False, "over the gateway's length limit"),
        "invalid_request": (False, "the gateway cannot read the request"),
        "bad_signature": (False, "the signature does not verify: check secrets.secret"),
        "idempotency_conflict": (False, "the Idempotency-Key was sent before with another body"),
        "rate_limited": (True, "too many requests, try later"),
        "unavailable": (True, "the gateway or the carrier is down"),
    }
)
"""The ``error`` of a refusal: ``(retryable, meaning)``; an unknown code follows the HTTP status.

The first three refuse the address: the message moves to the next channel of its chain.
"""

STATUSES: Mapping[str, MessageStatus] = MappingProxyType(
    {
        "sent": MessageStatus.SENDING,
        "delivered": MessageStatus.DELIVERED,
        "expired": MessageStatus.TEMPORARY_FAILURE,
        "undeliverable": MessageStatus.PERMANENT_FAILURE,
        "failed": MessageStatus.TECHNICAL_FAILURE,
    }
)
"""A receipt's ``status``, and what it means for dvcflow.

``sent``: handed to the carrier; ``expired``: the phone stayed off or out of reach for the
whole validity period; ``undeliverable``: the number, the Zalo user or the sender is refused
for good (``detail`` says why, e.g. ``not_follower``); ``failed``: the gateway or the carrier
failed.
"""

_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
"""A machine code (an error code, a receipt's detail): never a number or a text."""


# -- SMS length (pure) ----------------------------------------------------------------------------

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet, in code order (0x1B is the escape to `GSM7_EXTENSION`)."""
GSM7_EXTENSION = "\f^{}\\[~]|€"
"""Characters of the GSM 03.38 extension table: each takes two septets (escape, code)."""

_GSM7 = frozenset(GSM7_BASIC) - {"\x1b"}
_GSM7_DOUBLE = frozenset(GSM7_EXTENSION)


@attrs.frozen
class SmsSegments:
    """How a text travels as SMS.

    Attributes:
        encoding: ``"gsm7"`` when every character is in the GSM 03.38 alphabet (with its
            extension), else ``"ucs2"`` (any Vietnamese letter with a tone mark, for one).
        units: septets (GSM-7) or UTF-16 code units (UCS-2) of the whole text.
        parts: how many SMS it takes: one up to 160 septets or 70 units, else parts of 153
            septets or 67 units (the rest of each is the concatenation header).
    """

    encoding: str
    units: int
    parts: int


def sms_segments(text: str) -> SmsSegments:
    """The encoding and number of SMS parts ``text`` takes.

    A character is never split between two parts: an extension character's escape stays with
    its code, and a character outside the Basic Multilingual Plane (an emoji) keeps its two
    UTF-16 units together, as phones and gateways split them.
    """
    if all(char in _GSM7 or char in _GSM7_DOUBLE for char in text):
        encoding, single, per_part = "gsm7", 160, 153
        sizes = [2 if char in _GSM7_DOUBLE else 1 for char in text]
    else:
        encoding, single, per_part = "ucs2", 70, 67
        sizes = [2 if ord(char) > 0xFFFF else 1 for char in text]
    units = sum(sizes)
    if units <= single:
        return SmsSegments(encoding, units, 1)
    parts, used = 1, 0
    for size in sizes:
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return SmsSegments(encoding, units, parts)


# -- addresses (pure) -----------------------------------------------------------------------------

_SEPARATORS = str.maketrans("", "", " .-")
_MOBILE_FIRST_DIGITS = frozenset("35789")
"""After the leading 0, Việt Nam's mobile numbers start with 3, 5, 7, 8 or 9 (since 2018)."""


def normalise_mobile(text: str) -> str | None:
    """A Vietnamese mobile number as ``84`` and its 9 digits, or ``None`` when it is not one.

    Accepts ``0912345678``, ``+84912345678`` and ``84912345678``, with spaces, dots or hyphens
    between digits; refuses landlines (``024...``) and anything else.
    """
    digits = text.strip().translate(_SEPARATORS)
    if digits.startswith("+84"):
        national = digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        return None
    if len(national) != 9 or not (national.isascii() and national.isdigit()):
        return None
    return f"84{national}" if national[0] in _MOBILE_FIRST_DIGITS else None


def _zalo_user(text: str) -> str | None:
    """A Zalo user id (of a follower of the Official Account), or ``None``."""
    user = text.strip()
    if not user or len(user) > 128 or not user.isprintable() or " " in user:
        return None
    return user


# -- the signature (pure) -------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """The `SIGNATURE_HEADER` value of ``body``: ``sha256=`` and its hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str, secret: str) -> bool:
    """Whether ``signature`` (with or without ``sha256=``) signs ``body`` (constant-time)."""
    given = signature.strip().lower().removeprefix("sha256=")
    expected = sign(body, secret).removeprefix("sha256=")
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode())


# -- exchanges ------------------------------------------------------------------------------------


def _where(provider: Provider) -> str:
    return f"sms gateway {provider.name!r}"


def _recipient(provider: Provider, message: Message) -> str:
    """The ``to`` of the request, after every check of the channel's own limits.

    Raises:
        BackendError: not retryable, for a message the channel refuses.
    """
    where = _where(provider)
    channel = str(provider.setting("channel", "sms"))
    if message.channel.value != channel:
        raise BackendError(
            f"{where}: serves {channel} only, not {message.channel.value}", retryable=False
        )
    if not message.text:
        raise BackendError(f"{where}: the message has no text", retryable=False)
    if channel == "sms":
        to = normalise_mobile(message.address)
        if to is None:
            raise BackendError(
                f"{where}: the address is not a Vietnamese mobile number", retryable=False
            )
        size = sms_segments(message.text)
        limit = int(provider.setting("max_segments", MAX_SEGMENTS))
        if size.parts > limit:
            raise BackendError(
                f"{where}: the text takes {size.parts} SMS parts ({size.encoding}, "
                f"{size.units} units), over the channel's limit of {limit} "
                "(settings.max_segments)",
                retryable=False,
            )
        return to
    to = _zalo_user(message.address)
    if to is None:
        raise BackendError(f"{where}: the address is not a Zalo user id", retryable=False)
    limit = int(provider.setting("max_length", MAX_LENGTH))
    if len(message.text) > limit:
        raise BackendError(
            f"{where}: the text has {len(message.text)} characters, over the channel's limit "
            f"of {limit} (settings.max_length)",
            retryable=False,
        )
    return to


def _json_object(reply: Reply) -> dict[str, Any] | None:
    if len(reply.body) > MAX_MESSAGE_BYTES:
        return None
    try:
        answer = json.loads(reply.body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _receipt(reply: Reply, where: str) -> NotificationReceipt:
    """The gateway's answer to a message: its id, or the refusal as a `BackendError`."""
    answer = _json_object(reply)
    if 200 <= reply.status < 300:
        ident = None if answer is None else answer.get("id")
        if isinstance(ident, str | int) and not isinstance(ident, bool) and str(ident):
            return NotificationReceipt(str(ident), "sending")
        # Accepted or not, sending again is safe: the gateway answers the key once.
        raise BackendError(f"{where}: HTTP {reply.status} without a message id")
    code = None if answer is None else answer.get("error")
    if isinstance(code, str) and code in ERROR_CODES:
        retryable, meaning = ERROR_CODES[code]
        raise BackendError(f"{where}: HTTP {reply.status} {code}: {meaning}", retryable=retryable)
    # An unknown code is shown only if it looks like one: a text could quote the address.
    shown = f" {code}" if isinstance(code, str) and _CODE.match(code) else ""
    raise BackendError(
        f"{where}: HTTP {reply.status}{shown}", retryable=retryable_status(reply.status)
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def parse_receipt(body: bytes, headers: Mapping[str, str], *, secret: str) -> MessageReceipt:
    """Authenticate and read a delivery receipt the gateway POSTs back.

    Raises:
        CallbackError: ``"malformed"``, when it is too large or not a receipt.
        SignatureError: when the `SIGNATURE_HEADER` is missing or does not sign the body.
    """
    if len(body) > MAX_MESSAGE_BYTES:
        raise CallbackError("malformed", f"larger than {MAX_MESSAGE_BYTES} bytes")
    signature = _header(headers, SIGNATURE_HEADER)
    if signature is None:
        raise SignatureError(f"sms gateway receipt: no {SIGNATURE_HEADER} header")
    if not verify(body, signature, secret):
        raise SignatureError(f"sms gateway receipt: {SIGNATURE_HEADER} does not sign the body")
    try:
        receipt = json.loads(body)
    except ValueError:
        raise CallbackError("malformed", "not JSON") from None
    if not isinstance(receipt, dict):
        raise CallbackError("malformed", "not a JSON object")
    names = ("event_id", "reference", "id", "status")
    fields = {
        name: value for name in names if isinstance(value := receipt.get(name), str) and value
    }
    missing = [name for name in names if name not in fields]
    if missing:
        raise CallbackError("malformed", f"not a receipt (missing {missing})")
    status = STATUSES.get(fields["status"])
    if status is None:
        raise CallbackError("malformed", f"unknown status (known: {', '.join(STATUSES)})")
    detail = receipt.get("detail")
    return MessageReceipt(
        event_id=fields["event_id"],
        reference=fields["reference"],
        status=status,
        provider_ref=fields["id"],
        # A code such as "not_follower" is kept; a free text could hold personal data.
        detail=detail if isinstance(detail, str) and _CODE.match(detail) else None,
    )


# -- the plugin -----------------------------------------------------------------------------------


class SmsGateway:
    """SMS, or Zalo, messages through a signed JSON gateway; its delivery receipts."""

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The plugin serves type ``sms_gateway``."""
        return [SMS_GATEWAY]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Every problem with the provider's settings and secret, each naming the setting."""
        if provider.type != SMS_GATEWAY:
            return None
        return _problems(provider)

    @hookimpl
    def dvcflow_send_message(
        self, provider: Provider, message: Message
    ) -> NotificationReceipt | None:
        """POST the message to the gateway; its id is the receipt's ``provider_ref``.

        Raises:
            BackendError: not retryable for what the channel refuses (another channel, an
                address that is not a mobile number or a Zalo user, a text over the limit)
                and the gateway's final refusals (`ERROR_CODES`); retryable for a gateway
                that cannot be reached, times out or answers 5xx.
        """
        if provider.type != SMS_GATEWAY:
            return None
        to = _recipient(provider, message)
        secret = provider.secret("secret")
        sender = provider.setting("sender")
        body = json.dumps(
            {
                "channel": message.channel.value,
                "to": to,
                "text": message.text,
                "reference": message.reference,
                "sender": sender,
            },
            ensure_ascii=False,
        ).encode()
        where = _where(provider)
        reply = post(
            str(provider.setting("url")),
            body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
                "Idempotency-Key": message.key,
                SIGNATURE_HEADER: sign(body, secret),
            },
            connect_timeout=float(provider.setting("connect_timeout_s", CONNECT_TIMEOUT_S)),
            read_timeout=float(provider.setting("timeout_s", TIMEOUT_S)),
            max_bytes=MAX_MESSAGE_BYTES,
            where=where,
        )
        receipt = _receipt(reply, where)
        logger.debug("sent %s as %s", message.reference, receipt.provider_ref)
        return receipt

    @hookimpl
    def dvcflow_parse_receipt(
        self, provider: Provider, body: bytes, headers: Mapping[str, str]
    ) -> MessageReceipt | None:
        """A delivery receipt, authenticated (`SIGNATURE_HEADER`), its status mapped."""
        if provider.type != SMS_GATEWAY:
            return None
        return parse_receipt(body, headers, secret=provider.secret("secret"))


# -- settings -------------------------------------------------------------------------------------


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _problems(provider: Provider) -> list[str]:
    problems = [
        f"settings.{name}: unknown setting (known: {', '.join(SETTINGS)})"
        for name in sorted(provider.settings)
        if name not in SETTINGS
    ]
    if not is_http_url(provider.setting("url")):
        problems.append("settings.url: required, an http(s) URL of the gateway's messages")
    if provider.setting("channel", "sms") not in CHANNELS:
        problems.append(f"settings.channel: must be one of {', '.join(CHANNELS)}")
    sender = provider.setting("sender", "x")
    if not isinstance(sender, str) or not sender or not sender.isprintable() or len(sender) > 64:
        problems.append("settings.sender: must be the brand name or account id, on one line")
    if not _whole(provider.setting("max_segments", MAX_SEGMENTS), 1, 20):
        problems.append("settings.max_segments: must be a whole number of SMS parts, 1 to 20")
    if not _whole(provider.setting("max_length", MAX_LENGTH), 1, 100_000):
        problems.append("settings.max_length: must be a whole number of characters, at least 1")
    for name in ("timeout_s", "connect_timeout_s"):
        value = provider.setting(name, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
            problems.append(f"settings.{name}: must be a number of seconds in (0, 300]")
    if not provider.secrets.get("secret"):
        problems.append(
            "secrets.secret: required, the environment variable holding the shared secret"
        )
    return problems
