"""The reference back end for the national payment platform (nền tảng thanh toán quốc gia).

Configure it as a provider of type ``"national_payment"``::

    [providers.paygov]
    type = "national_payment"
    settings = { url = "https://pay.example.gov.vn/api", partner = "G09.20" }
    secrets = { secret = "DVCFLOW_PAYGOV_SECRET" }

Every message is a JSON object with Vietnamese field names, authenticated by ``MaXacThuc``:
the SHA-256 hex digest of its signed fields (in the order of `SIGNED_FIELDS`) joined with
``|``, then ``|`` and the shared secret. INIT starts a payment, QUERY polls it, and the
platform's CONFIRM callback reports it. ``docs/national-payment.md`` describes the scheme as
implemented, and which parts are confirmed and which assumed; each assumption is kept in
one place, most of them in the tables below.
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
from zoneinfo import ZoneInfo

from dvcflow._backends import (
    CallbackReply,
    PaymentLink,
    PaymentOutcome,
    PaymentQuery,
    PaymentReport,
    PaymentRequest,
    Provider,
    RefundRequest,
    RefundResult,
)
from dvcflow._clock import Clock, SystemClock
from dvcflow._values import Money
from dvcflow.errors import BackendError, CallbackError, InvalidValueError, SignatureError
from dvcflow.hookspecs import hookimpl
from dvcflow.plugins._http import is_http_url, post_json

__all__ = [
    "INIT_DEFAULTS",
    "MAX_MESSAGE_BYTES",
    "NATIONAL_PAYMENT",
    "REPLY_CODES",
    "SIGNED_FIELDS",
    "STATUSES",
    "NationalPaymentPlugin",
    "build_init",
    "build_query",
    "parse_confirm",
    "sign",
    "signed_text",
    "verify",
]

logger = logging.getLogger("dvcflow.national_payment")

NATIONAL_PAYMENT = "national_payment"
"""The provider type this plugin serves."""

SUCCESS = "00"
"""``MaLoi`` of a message that succeeded (for CONFIRM: the payment succeeded)."""

SIGNED_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "INIT": (
            "LoaiBanTin",
            "PhienBan",
            "MaDoiTac",
            "MaThamChieu",
            "SoTien",
            "LoaiHinhThanhToan",
            "MaKenhThanhToan",
            "MaThietBi",
            "NgonNgu",
            "MaTienTe",
            "MaNganHang",
            "ThongTinGiaoDich",
            "ThoiGianGD",
            "Ip",
        ),
        "INIT_REPLY": (
            "LoaiBanTin",
            "MaLoi",
            "MaDoiTac",
            "MaThamChieu",
            "MaGiaoDich",
            "SoTien",
            "UrlThanhToan",
        ),
        "QUERY": ("LoaiBanTin", "PhienBan", "MaDoiTac", "MaThamChieu", "MaGiaoDich", "ThoiGianGD"),
        "QUERY_REPLY": (
            "LoaiBanTin",
            "MaLoi",
            "MaDoiTac",
            "MaThamChieu",
            "MaGiaoDich",
            "SoTien",
            "TrangThai",
            "ThongTinBienLai",
            "ThoiGianGD",
        ),
        "CONFIRM": (
            "LoaiBanTin",
            "PhienBan",
            "MaDoiTac",
            "MaThamChieu",
            "MaGiaoDich",
            "SoTien",
            "MaLoi",
            "TrangThai",
            "ThongTinBienLai",
            "ThoiGianGD",
        ),
    }
)
"""The fields ``MaXacThuc`` covers, in order, per message (a reply is ``<TYPE>_REPLY``).

An absent or ``null`` field signs as the empty string; integers sign in decimal. The order is
this library's reading of the platform (see ``docs/national-payment.md``): a portal whose
platform version signs differently changes this table, and nothing else.
"""

INIT_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "LoaiHinhThanhToan": "PAY",
        "MaKenhThanhToan": "1",
        "MaThietBi": "1",
        "NgonNgu": "vi",
        "MaTienTe": "704",
        "MaNganHang": "",
        "Ip": "",
    }
)
"""INIT's constant fields; ``settings.init_fields`` overrides any of them per provider.

``MaTienTe`` 704 is the ISO 4217 number of the đồng; an empty ``MaNganHang`` lets the
applicant choose the bank or wallet at the platform. ``Ip`` is empty because dvcflow never
sees the applicant's address (no personal data crosses the plugin boundary).
"""

STATUSES: Mapping[str, PaymentOutcome] = MappingProxyType(
    {
        "00": PaymentOutcome.SUCCEEDED,
        "01": PaymentOutcome.PENDING,
        "02": PaymentOutcome.FAILED,
        "03": PaymentOutcome.CANCELLED,
        "04": PaymentOutcome.EXPIRED,
    }
)
"""``TrangThai`` (the transaction's status) of a QUERY reply and of a CONFIRM callback."""

REPLY_CODES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "accepted": (SUCCESS, "Thành công"),
        "bad_signature": ("01", "Sai mã xác thực"),
        "malformed": ("02", "Bản tin không hợp lệ"),
        "unknown_reference": ("03", "Không tìm thấy giao dịch"),
        "amount_mismatch": ("04", "Số tiền không khớp"),
        "other": ("99", "Lỗi hệ thống, đề nghị gửi lại"),
    }
)
"""``MaLoi`` and ``MoTaLoi`` of the portal's answer to CONFIRM, by the engine's error kind."""

MAX_MESSAGE_BYTES = 64 * 1024
"""A reply or callback larger than this is not a message of the platform."""

TIMEOUT_S = 15.0
"""Default read timeout of a request to the platform (``settings.timeout_s``)."""
CONNECT_TIMEOUT_S = 5.0
"""Default connect timeout (``settings.connect_timeout_s``)."""
VERSION = "1.0.0"
"""Default ``PhienBan`` (``settings.version``)."""

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
"""``ThoiGianGD`` is local time in Việt Nam, ``yyyyMMddHHmmss``."""
TIME_FORMAT = "%Y%m%d%H%M%S"

SETTINGS = ("connect_timeout_s", "init_fields", "partner", "timeout_s", "url", "version")


# -- the signature (pure) -------------------------------------------------------------------------


def _text(field: str, value: object) -> str:
    """A field's value as it is signed."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = type(value).__name__
        raise InvalidValueError(field, f"must be a string or an integer, not {kind}")
    text = str(value)
    if "|" in text:
        # The join would be ambiguous: a value could be moved into its neighbour.
        raise InvalidValueError(field, "must not contain '|'")
    return text


def signed_text(message_type: str, fields: Mapping[str, object]) -> str:
    """The ``|``-joined values ``MaXacThuc`` covers, without the secret.

    Raises:
        InvalidValueError: the message type is unknown, or a value is neither a string nor an
            integer, or holds a ``|``.
    """
    try:
        names = SIGNED_FIELDS[message_type]
    except KeyError:
        known = ", ".join(SIGNED_FIELDS)
        raise InvalidValueError("message_type", f"unknown {message_type!r} ({known})") from None
    return "|".join(_text(name, fields.get(name)) for name in names)


def sign(message_type: str, fields: Mapping[str, object], secret: str) -> str:
    """The ``MaXacThuc`` of a message: SHA-256 hex of its signed values, ``|``, the secret.

    Args:
        message_type: a key of `SIGNED_FIELDS`, e.g. ``"INIT"`` or ``"CONFIRM"``.
        fields: the message; fields it does not sign are ignored.
        secret: the shared secret.

    Raises:
        InvalidValueError: see `signed_text`.
    """
    joined = f"{signed_text(message_type, fields)}|{secret}"
    return hashlib.sha256(joined.encode()).hexdigest()


def verify(message_type: str, message: Mapping[str, object], secret: str) -> bool:
    """Whether ``message["MaXacThuc"]`` authenticates the message (constant-time).

    A missing digest, or a value that cannot be signed, does not authenticate.
    """
    given = message.get("MaXacThuc")
    if not isinstance(given, str):
        return False
    try:
        expected = sign(message_type, message, secret)
    except InvalidValueError:
        return False
    return hmac.compare_digest(given.lower().encode(), expected.encode())


# -- messages (pure) ------------------------------------------------------------------------------


def _local_time(at: dt.datetime) -> str:
    return at.astimezone(LOCAL).strftime(TIME_FORMAT)


def _instant(text: object) -> dt.datetime | None:
    """A ``ThoiGianGD`` as an aware UTC datetime; ``None`` when absent or not one."""
    if not isinstance(text, str) or len(text) != 14 or not text.isdigit():
        return None
    try:
        local = dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=LOCAL)
    except ValueError:
        return None
    return local.astimezone(dt.UTC)


def build_init(  # noqa: PLR0913 - the message's inputs, all keyword-only
    request: PaymentRequest,
    *,
    partner: str,
    secret: str,
    at: dt.datetime,
    version: str = VERSION,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The signed INIT message for a payment request.

    ``MaThamChieu`` is the request's reference, which is also the idempotency key the platform
    sees: it answers the same reference with the same transaction. ``overrides`` replace
    constant fields of `INIT_DEFAULTS` (``settings.init_fields``).
    """
    message: dict[str, Any] = {
        "LoaiBanTin": "INIT",
        "PhienBan": version,
        "MaDoiTac": partner,
        "MaThamChieu": request.reference,
        "SoTien": request.amount.amount,
        **INIT_DEFAULTS,
        **(overrides or {}),
        "ThongTinGiaoDich": request.description.replace("|", "/"),
        "ThoiGianGD": _local_time(at),
    }
    message["MaXacThuc"] = sign("INIT", message, secret)
    return message


def build_query(
    query: PaymentQuery, *, partner: str, secret: str, at: dt.datetime, version: str = VERSION
) -> dict[str, Any]:
    """The signed QUERY message; the platform finds the payment by ``MaGiaoDich`` if known."""
    message: dict[str, Any] = {
        "LoaiBanTin": "QUERY",
        "PhienBan": version,
        "MaDoiTac": partner,
        "MaThamChieu": query.reference,
        "MaGiaoDich": query.provider_ref or "",
        "ThoiGianGD": _local_time(at),
    }
    message["MaXacThuc"] = sign("QUERY", message, secret)
    return message


def _amount(value: object) -> Money:
    if isinstance(value, str) and value.isdigit():
        return Money(int(value))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Money(value)
    raise InvalidValueError("SoTien", "must be a whole number of đồng")


def _confirm_outcome(code: str, status: object) -> PaymentOutcome:
    """The outcome a CONFIRM reports: paid only when ``MaLoi`` and ``TrangThai`` agree."""
    if status is None:
        return PaymentOutcome.SUCCEEDED if code == SUCCESS else PaymentOutcome.FAILED
    outcome = STATUSES.get(status) if isinstance(status, str) else None
    if outcome is None:
        raise InvalidValueError("TrangThai", f"unknown status {status!r}")
    if code != SUCCESS and outcome is PaymentOutcome.SUCCEEDED:
        return PaymentOutcome.FAILED
    return outcome


def parse_confirm(message: Mapping[str, Any], *, partner: str, secret: str) -> PaymentReport:
    """Authenticate and read the platform's CONFIRM callback.

    Raises:
        CallbackError: ``"malformed"``, when it is not a CONFIRM for this partner.
        SignatureError: when ``MaXacThuc`` does not authenticate it.
    """
    required = ("MaDoiTac", "MaThamChieu", "MaGiaoDich", "SoTien", "MaLoi")
    missing = [name for name in required if message.get(name) in (None, "")]
    if message.get("LoaiBanTin") != "CONFIRM" or missing:
        raise CallbackError("malformed", f"not a CONFIRM message (missing {missing})")
    if not verify("CONFIRM", message, secret):
        raise SignatureError("national payment callback: MaXacThuc does not authenticate it")
    if message["MaDoiTac"] != partner:
        raise CallbackError("malformed", "CONFIRM MaDoiTac: is another partner's")
    try:
        code = _text("MaLoi", message["MaLoi"])
        outcome = _confirm_outcome(code, message.get("TrangThai"))
        amount = _amount(message["SoTien"])
        transaction = _text("MaGiaoDich", message["MaGiaoDich"])
        receipt = _text("ThongTinBienLai", message.get("ThongTinBienLai")) or None
    except InvalidValueError as exc:
        raise CallbackError("malformed", f"CONFIRM {exc}") from None
    return PaymentReport(
        event_id=f"confirm:{transaction}:{outcome.value}",
        reference=_text("MaThamChieu", message["MaThamChieu"]),
        outcome=outcome,
        amount=amount if outcome is PaymentOutcome.SUCCEEDED else None,
        provider_ref=transaction,
        receipt=receipt if outcome is PaymentOutcome.SUCCEEDED else None,
        at=_instant(message.get("ThoiGianGD")),
    )


def _reply_body(error: str | None) -> bytes:
    """The portal's JSON answer to a CONFIRM: ``REPLY_CODES[error kind]``, or accepted."""
    if error is None:
        code, text = REPLY_CODES["accepted"]
    else:
        # The engine may pass a kind (``"malformed"``) or an error text (``"malformed: ..."``).
        kind = error.split(":", 1)[0].strip()
        code, text = REPLY_CODES.get(kind, REPLY_CODES["other"])
    return json.dumps({"MaLoi": code, "MoTaLoi": text}, ensure_ascii=False).encode()


# -- exchanges ------------------------------------------------------------------------------------


def _post(provider: Provider, message_type: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """Send one message to ``settings.url``; the platform's reply (see `post_json`)."""
    return post_json(
        str(provider.setting("url")),
        message,
        connect_timeout=float(provider.setting("connect_timeout_s", CONNECT_TIMEOUT_S)),
        read_timeout=float(provider.setting("timeout_s", TIMEOUT_S)),
        max_bytes=MAX_MESSAGE_BYTES,
        where=f"national payment platform {provider.name!r}: {message_type}",
    )


def _checked(
    provider: Provider, message_type: str, sent: Mapping[str, Any], reply: Mapping[str, Any]
) -> None:
    """Refuse a reply that failed, does not authenticate, or is about another payment.

    An unsigned refusal is believed: it can only stop a payment, never report one paid.

    Raises:
        BackendError: not retryable, with the platform's ``MaLoi`` and ``MoTaLoi``.
        SignatureError: the reply carries a ``MaXacThuc`` that does not authenticate it, or
            succeeds without one.
    """
    where = f"national payment platform {provider.name!r}: {message_type}"
    code = reply.get("MaLoi")
    secret = provider.secret("secret")
    authentic = verify(f"{message_type}_REPLY", reply, secret)
    if code != SUCCESS:
        if "MaXacThuc" in reply and not authentic:
            raise SignatureError(f"{where}: the refusal's MaXacThuc does not authenticate it")
        text = str(reply.get("MoTaLoi", ""))[:200]
        raise BackendError(f"{where} refused: MaLoi {code!r} {text}".rstrip(), retryable=False)
    if not authentic:
        raise SignatureError(f"{where}: the reply's MaXacThuc does not authenticate it")
    for name in ("MaDoiTac", "MaThamChieu"):
        if reply.get(name) != sent[name]:
            raise BackendError(f"{where}: the reply is about another {name}", retryable=False)


# -- the plugin -----------------------------------------------------------------------------------


class NationalPaymentPlugin:
    """Payments through the national payment platform: INIT, QUERY and the CONFIRM callback.

    Args:
        clock: where ``ThoiGianGD`` comes from (the system clock by default).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The plugin serves type ``national_payment``."""
        return [NATIONAL_PAYMENT]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Every problem with the provider's settings and secret, each naming the setting."""
        if provider.type != NATIONAL_PAYMENT:
            return None
        return _problems(provider)

    @hookimpl
    def dvcflow_create_payment(
        self, provider: Provider, request: PaymentRequest
    ) -> PaymentLink | None:
        """INIT: the platform's payment URL and transaction id (``MaGiaoDich``)."""
        if provider.type != NATIONAL_PAYMENT:
            return None
        try:
            message = build_init(
                request,
                partner=str(provider.setting("partner")),
                secret=provider.secret("secret"),
                at=self._clock.now(),
                version=str(provider.setting("version", VERSION)),
                overrides=provider.setting("init_fields"),
            )
        except InvalidValueError as exc:
            raise BackendError(f"national payment INIT: {exc}", retryable=False) from None
        reply = _post(provider, "INIT", message)
        _checked(provider, "INIT", message, reply)
        url, transaction = reply.get("UrlThanhToan"), reply.get("MaGiaoDich")
        if not isinstance(url, str) or not is_http_url(url) or not transaction:
            raise BackendError(
                f"national payment platform {provider.name!r}: INIT succeeded without "
                "UrlThanhToan or MaGiaoDich"
            )
        if str(reply.get("SoTien")) != str(request.amount.amount):
            raise BackendError(
                f"national payment platform {provider.name!r}: INIT answered another SoTien",
                retryable=False,
            )
        logger.debug("INIT %s -> %s", request.reference, transaction)
        return PaymentLink(url, str(transaction), request.expires_at)

    @hookimpl
    def dvcflow_verify_callback(
        self,
        provider: Provider,
        body: bytes,
        headers: Mapping[str, str],  # noqa: ARG002 - the digest is in the body
    ) -> PaymentReport | None:
        """CONFIRM: authenticate ``MaXacThuc`` and read the payment's outcome and e-receipt."""
        if provider.type != NATIONAL_PAYMENT:
            return None
        if len(body) > MAX_MESSAGE_BYTES:
            raise CallbackError("malformed", f"larger than {MAX_MESSAGE_BYTES} bytes")
        try:
            message = json.loads(body)
        except ValueError:
            raise CallbackError("malformed", "not JSON") from None
        if not isinstance(message, dict):
            raise CallbackError("malformed", "not a JSON object")
        return parse_confirm(
            message, partner=str(provider.setting("partner")), secret=provider.secret("secret")
        )

    @hookimpl
    def dvcflow_callback_reply(
        self,
        provider: Provider,
        accepted: bool,  # noqa: FBT001 - hooks are always called with keyword arguments
        error: str | None,
    ) -> CallbackReply | None:
        """HTTP 200 with ``{"MaLoi", "MoTaLoi"}``: ``"00"`` accepted, `REPLY_CODES` otherwise."""
        if provider.type != NATIONAL_PAYMENT:
            return None
        body = _reply_body(None if accepted else (error or "other"))
        return CallbackReply(200, body, {"content-type": "application/json; charset=utf-8"})

    @hookimpl
    def dvcflow_query_payment(
        self, provider: Provider, query: PaymentQuery
    ) -> PaymentReport | None:
        """QUERY: where the transaction stands (`STATUSES`), with its e-receipt once paid."""
        if provider.type != NATIONAL_PAYMENT:
            return None
        try:
            message = build_query(
                query,
                partner=str(provider.setting("partner")),
                secret=provider.secret("secret"),
                at=self._clock.now(),
                version=str(provider.setting("version", VERSION)),
            )
        except InvalidValueError as exc:
            raise BackendError(f"national payment QUERY: {exc}", retryable=False) from None
        reply = _post(provider, "QUERY", message)
        _checked(provider, "QUERY", message, reply)
        where = f"national payment platform {provider.name!r}: QUERY"
        outcome = STATUSES.get(str(reply.get("TrangThai")))
        transaction = reply.get("MaGiaoDich") or query.provider_ref
        if outcome is None or not transaction:
            raise BackendError(f"{where}: unknown TrangThai or no MaGiaoDich", retryable=False)
        if query.provider_ref and transaction != query.provider_ref:
            raise BackendError(f"{where}: the reply is about another MaGiaoDich", retryable=False)
        try:
            amount = _amount(reply.get("SoTien")) if outcome is PaymentOutcome.SUCCEEDED else None
        except InvalidValueError as exc:
            raise BackendError(f"{where}: {exc}", retryable=False) from None
        receipt = reply.get("ThongTinBienLai") if outcome is PaymentOutcome.SUCCEEDED else None
        return PaymentReport(
            event_id=f"query:{transaction}:{outcome.value}",
            reference=query.reference,
            outcome=outcome,
            amount=amount,
            provider_ref=str(transaction),
            receipt=str(receipt) if receipt else None,
            at=_instant(reply.get("ThoiGianGD")),
        )

    @hookimpl
    def dvcflow_cancel_payment(self, provider: Provider, query: PaymentQuery) -> bool | None:
        """The platform has no cancel message: an unpaid link simply expires there.

        Returns ``True`` without a call; a payment made in the meantime still arrives as a
        CONFIRM or a QUERY answer, and is refunded by the agency if it is no longer owed.
        """
        if provider.type != NATIONAL_PAYMENT:
            return None
        logger.debug("cancel %s: no platform message, the link expires", query.reference)
        return True

    @hookimpl
    def dvcflow_refund_payment(
        self, provider: Provider, refund: RefundRequest
    ) -> RefundResult | None:
        """The platform's scheme has no refund message known to us: an operator refunds.

        Raises:
            BackendError: always, not retryable, so the outbox opens an incident.
        """
        if provider.type != NATIONAL_PAYMENT:
            return None
        raise BackendError(
            f"national payment platform {provider.name!r} has no refund message: refund "
            f"{refund.amount} of payment {refund.payment_reference} through the agency's "
            "treasury (Kho bạc) process, then record it",
            retryable=False,
        )


# -- settings -------------------------------------------------------------------------------------


def _signable(value: object) -> bool:
    return isinstance(value, str) and bool(value) and "|" not in value


def _problems(provider: Provider) -> list[str]:
    problems = [
        f"settings.{name}: unknown setting (known: {', '.join(SETTINGS)})"
        for name in sorted(provider.settings)
        if name not in SETTINGS
    ]
    if not is_http_url(provider.setting("url")):
        problems.append("settings.url: required, an http(s) URL of the platform's API")
    if not _signable(provider.setting("partner")):
        problems.append("settings.partner: required, the partner code (MaDoiTac), without '|'")
    if not _signable(provider.setting("version", VERSION)):
        problems.append("settings.version: must be a version string (PhienBan), without '|'")
    for name in ("timeout_s", "connect_timeout_s"):
        value = provider.setting(name, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
            problems.append(f"settings.{name}: must be a number of seconds in (0, 300]")
    problems.extend(_init_field_problems(provider.setting("init_fields", {})))
    if not provider.secrets.get("secret"):
        problems.append(
            "secrets.secret: required, the environment variable holding the shared secret"
        )
    return problems


def _init_field_problems(fields: object) -> list[str]:
    if not isinstance(fields, Mapping):
        return ["settings.init_fields: must be a table of INIT field values"]
    problems = []
    for name, value in fields.items():
        if name not in INIT_DEFAULTS:
            known = ", ".join(INIT_DEFAULTS)
            problems.append(f"settings.init_fields.{name}: not a constant field ({known})")
        elif not isinstance(value, str) or "|" in value:
            problems.append(f"settings.init_fields.{name}: must be a string without '|'")
    return problems
