"""The national payment platform plugin, over real HTTP against the simulator in gateway.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from dvcflow import FeeKind, FrozenClock, Money
from dvcflow._backend_config import Routing
from dvcflow._backends import (
    CallbackReply,
    PaymentOutcome,
    PaymentQuery,
    PaymentReport,
    PaymentRequest,
    Provider,
    RefundRequest,
)
from dvcflow._hooks import Backends
from dvcflow.errors import (
    BackendError,
    CallbackError,
    ConfigurationError,
    InvalidValueError,
    SignatureError,
)
from dvcflow.plugins.national_payment import (
    MAX_MESSAGE_BYTES,
    SIGNED_FIELDS,
    NationalPaymentPlugin,
    build_init,
    build_query,
    parse_confirm,
    sign,
    signed_text,
    verify,
)
from gateway import Gateway, Portal, digest, running

ROOT = Path(__file__).resolve().parents[1]
SECRET = "khoa-bi-mat-thu-nghiem"  # noqa: S105 - a test secret
PARTNER = "G09.20"
REFERENCE = "HS-2026-000123-LP"
AT = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.UTC)
"""09:30 in Hà Nội."""

INIT_VECTOR: dict[str, Any] = {
    "LoaiBanTin": "INIT",
    "PhienBan": "1.0.0",
    "MaDoiTac": "G09.20",
    "MaThamChieu": "HS-2026-000123-LP",
    "SoTien": 50000,
    "LoaiHinhThanhToan": "PAY",
    "MaKenhThanhToan": "1",
    "MaThietBi": "1",
    "NgonNgu": "vi",
    "MaTienTe": "704",
    "MaNganHang": "",
    "ThongTinGiaoDich": "Lệ phí cấp bản sao trích lục khai sinh",
    "ThoiGianGD": "20260301093000",
    "Ip": "",
}
INIT_JOINED = (
    "INIT|1.0.0|G09.20|HS-2026-000123-LP|50000|PAY|1|1|vi|704||"
    "Lệ phí cấp bản sao trích lục khai sinh|20260301093000|"
)
INIT_DIGEST = "710b96acbfcc5e6adf2b0e254538c2ff432c0903aaf96c1ed30658db490da580"

QUERY_VECTOR: dict[str, Any] = {
    "LoaiBanTin": "QUERY",
    "PhienBan": "1.0.0",
    "MaDoiTac": "G09.20",
    "MaThamChieu": "HS-2026-000123-LP",
    "MaGiaoDich": "GD0000000042",
    "ThoiGianGD": "20260301100000",
}
QUERY_JOINED = "QUERY|1.0.0|G09.20|HS-2026-000123-LP|GD0000000042|20260301100000"
QUERY_DIGEST = "6598c4b1da3adf0b338a21772f438acd82439eaef517f9efc006b237d82de3e8"

CONFIRM_VECTOR: dict[str, Any] = {
    "LoaiBanTin": "CONFIRM",
    "PhienBan": "1.0.0",
    "MaDoiTac": "G09.20",
    "MaThamChieu": "HS-2026-000123-LP",
    "MaGiaoDich": "GD0000000042",
    "SoTien": 50000,
    "MaLoi": "00",
    "MoTaLoi": "Giao dịch thành công",
    "TrangThai": "00",
    "ThongTinBienLai": "BL-0000007",
    "ThoiGianGD": "20260301094512",
}
CONFIRM_JOINED = (
    "CONFIRM|1.0.0|G09.20|HS-2026-000123-LP|GD0000000042|50000|00|00|BL-0000007|20260301094512"
)
CONFIRM_DIGEST = "d1d7a3578364257565cd77a624c0406f57fa5a417a750b21140c5fe22c86415a"

VECTORS = [
    ("INIT", INIT_VECTOR, INIT_JOINED, INIT_DIGEST),
    ("QUERY", QUERY_VECTOR, QUERY_JOINED, QUERY_DIGEST),
    ("CONFIRM", CONFIRM_VECTOR, CONFIRM_JOINED, CONFIRM_DIGEST),
]


def payment(reference: str = REFERENCE, amount: int = 50_000) -> PaymentRequest:
    return PaymentRequest(
        reference=reference,
        idempotency_key=f"effect-{reference}",
        dossier_id="d-1",
        dossier_code="G09.20-20260301-0000123",
        procedure="1.001193",
        agency="G09.20",
        fee_kind=FeeKind.CHARGE,
        amount=Money(amount),
        description="Lệ phí cấp bản sao trích lục khai sinh",
    )


def query(provider_ref: str | None, reference: str = REFERENCE) -> PaymentQuery:
    return PaymentQuery(reference, provider_ref, Money(50_000), f"query-{reference}")


def signed(message: dict[str, Any], kind: str = "CONFIRM") -> dict[str, Any]:
    return {**message, "MaXacThuc": sign(kind, message, SECRET)}


def init_reply(**changes: Any) -> bytes:
    """A signed INIT success reply, with ``changes`` made before signing."""
    reply = {
        "LoaiBanTin": "INIT",
        "MaLoi": "00",
        "MaDoiTac": PARTNER,
        "MaThamChieu": REFERENCE,
        "MaGiaoDich": "GD1",
        "SoTien": 50_000,
        "UrlThanhToan": "https://pay.example/GD1",
        **changes,
    }
    return json.dumps(signed(reply, "INIT_REPLY")).encode()


def query_reply(**changes: Any) -> bytes:
    """A signed QUERY success reply, with ``changes`` made before signing."""
    reply = {
        "LoaiBanTin": "QUERY",
        "MaLoi": "00",
        "MaDoiTac": PARTNER,
        "MaThamChieu": REFERENCE,
        "MaGiaoDich": "GD1",
        "SoTien": 50_000,
        "TrangThai": "00",
        "ThongTinBienLai": "BL-1",
        "ThoiGianGD": "20260301100000",
        **changes,
    }
    return json.dumps(signed(reply, "QUERY_REPLY")).encode()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    yield from running(Gateway(partner=PARTNER, secret=SECRET))


@pytest.fixture
def plugin() -> NationalPaymentPlugin:
    return NationalPaymentPlugin(clock=FrozenClock(AT))


@pytest.fixture
def provider(gateway: Gateway) -> Provider:
    return gateway.provider()


class _Portal(Portal):
    reports: list[PaymentReport]


@pytest.fixture
def portal(gateway: Gateway, plugin: NationalPaymentPlugin, provider: Provider) -> Iterator[Any]:
    """A portal endpoint that does what ``engine.payments.callback`` does with the plugin."""
    reports: list[PaymentReport] = []

    def reply(error: str | None) -> CallbackReply:
        answer = plugin.dvcflow_callback_reply(
            provider=provider, accepted=error is None, error=error
        )
        assert answer is not None
        return answer

    def answer(body: bytes, headers: Any) -> CallbackReply:
        try:
            report = plugin.dvcflow_verify_callback(provider=provider, body=body, headers=headers)
        except SignatureError:
            return reply("bad_signature")
        except CallbackError as exc:
            return reply(exc.kind)
        assert report is not None
        reports.append(report)
        return reply(None)

    server = _Portal(answer)
    server.reports = reports
    with server:
        gateway.callback_url = f"{server.url}/callbacks/paygov"
        yield server


def create(plugin: NationalPaymentPlugin, provider: Provider, request: PaymentRequest) -> Any:
    return plugin.dvcflow_create_payment(provider=provider, request=request)


class TestSignature:
    @pytest.mark.parametrize(("kind", "fields", "joined", "expected"), VECTORS)
    def test_fixed_vectors(self, kind, fields, joined, expected):
        """Literal messages give the literal joined text and SHA-256 hex digest."""
        assert signed_text(kind, fields) == joined
        assert sign(kind, fields, SECRET) == expected
        independent = hashlib.sha256(f"{joined}|{SECRET}".encode()).hexdigest()
        assert independent == expected

    def test_field_orders_are_pinned(self):
        """The signed orders are the documented ones; changing one is a platform version."""
        assert {kind: "|".join(names) for kind, names in SIGNED_FIELDS.items()} == {
            "INIT": "LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|SoTien|LoaiHinhThanhToan|"
            "MaKenhThanhToan|MaThietBi|NgonNgu|MaTienTe|MaNganHang|ThongTinGiaoDich|"
            "ThoiGianGD|Ip",
            "INIT_REPLY": "LoaiBanTin|MaLoi|MaDoiTac|MaThamChieu|MaGiaoDich|SoTien|UrlThanhToan",
            "QUERY": "LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|MaGiaoDich|ThoiGianGD",
            "QUERY_REPLY": "LoaiBanTin|MaLoi|MaDoiTac|MaThamChieu|MaGiaoDich|SoTien|TrangThai|"
            "ThongTinBienLai|ThoiGianGD",
            "CONFIRM": "LoaiBanTin|PhienBan|MaDoiTac|MaThamChieu|MaGiaoDich|SoTien|MaLoi|"
            "TrangThai|ThongTinBienLai|ThoiGianGD",
        }

    @pytest.mark.parametrize(("kind", "fields", "joined", "expected"), VECTORS)
    def test_simulator_signs_alike(self, kind, fields, joined, expected):
        """The simulator's independent orders give the same digests."""
        del joined
        assert digest(kind, fields, SECRET) == expected

    @pytest.mark.parametrize(("kind", "fields", "joined", "expected"), VECTORS)
    def test_verify_accepts_the_digest_in_either_case(self, kind, fields, joined, expected):
        """The right digest verifies, in lower or upper case hex."""
        del joined
        assert verify(kind, {**fields, "MaXacThuc": expected}, SECRET)
        assert verify(kind, {**fields, "MaXacThuc": expected.upper()}, SECRET)

    @pytest.mark.parametrize(
        "change",
        [
            {"SoTien": 5000},
            {"SoTien": "50001"},
            {"MaThamChieu": "HS-2026-000124-LP"},
            {"TrangThai": "02"},
            {"MaLoi": "10"},
            {"ThongTinBienLai": ""},
            {"MaGiaoDich": None},
            {"MaThamChieu": "HS-2026-000123-LP|GD0000000042", "MaGiaoDich": ""},
        ],
    )
    def test_verify_rejects_altered_fields(self, change):
        """Any change to a signed field, even a boundary shifted across '|', fails."""
        message = {**CONFIRM_VECTOR, "MaXacThuc": CONFIRM_DIGEST, **change}
        assert not verify("CONFIRM", message, SECRET)

    def test_unsigned_fields_may_change(self):
        """MoTaLoi is free text outside the digest."""
        message = {**CONFIRM_VECTOR, "MaXacThuc": CONFIRM_DIGEST, "MoTaLoi": "khác"}
        assert verify("CONFIRM", message, SECRET)

    @pytest.mark.parametrize("digest_value", [None, "", 42, "zz", CONFIRM_DIGEST[:-1], "đ" * 64])
    def test_verify_rejects_missing_or_foreign_digests(self, digest_value):
        """No digest, a short one or a non-hex one does not authenticate."""
        assert not verify("CONFIRM", {**CONFIRM_VECTOR, "MaXacThuc": digest_value}, SECRET)

    def test_verify_rejects_the_wrong_secret(self):
        """A digest made with another secret fails."""
        message = {**CONFIRM_VECTOR, "MaXacThuc": CONFIRM_DIGEST}
        assert not verify("CONFIRM", message, SECRET + "x")

    def test_absent_and_null_fields_sign_as_empty(self):
        """A missing field and a null one sign like the empty string."""
        fields = {**QUERY_VECTOR, "MaGiaoDich": ""}
        expected = sign("QUERY", fields, SECRET)
        assert sign("QUERY", {**fields, "MaGiaoDich": None}, SECRET) == expected
        del fields["MaGiaoDich"]
        assert sign("QUERY", fields, SECRET) == expected

    @pytest.mark.parametrize("value", ["a|b", 1.5, True, ["x"], {"a": 1}])
    def test_unsignable_values_are_refused(self, value):
        """A value holding '|' or not a string or an integer cannot be signed."""
        with pytest.raises(InvalidValueError, match="MaGiaoDich"):
            sign("QUERY", {**QUERY_VECTOR, "MaGiaoDich": value}, SECRET)
        assert not verify("QUERY", {**QUERY_VECTOR, "MaGiaoDich": value, "MaXacThuc": "0"}, SECRET)

    def test_unknown_message_type(self):
        """GET_BILL and other types have no signed order here."""
        with pytest.raises(InvalidValueError, match="GET_BILL"):
            sign("GET_BILL", {}, SECRET)


class TestMessages:
    def test_init_message(self):
        """INIT carries the request in local time and verifies; '|' in text is replaced."""
        request = payment()
        message = build_init(request, partner=PARTNER, secret=SECRET, at=AT)
        assert message == {**INIT_VECTOR, "MaXacThuc": INIT_DIGEST}
        odd = attrs.evolve(request, description="Phí | lệ phí")
        assert build_init(odd, partner=PARTNER, secret=SECRET, at=AT)["ThongTinGiaoDich"] == (
            "Phí / lệ phí"
        )

    def test_init_overrides(self):
        """settings.init_fields replace constant fields, inside the digest."""
        message = build_init(
            payment(), partner=PARTNER, secret=SECRET, at=AT, overrides={"MaKenhThanhToan": "2"}
        )
        assert message["MaKenhThanhToan"] == "2"
        assert verify("INIT", message, SECRET)
        assert message["MaXacThuc"] != INIT_DIGEST

    def test_query_message(self):
        """QUERY names the transaction, or only the reference when INIT's answer was lost."""
        at = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
        message = build_query(query("GD0000000042"), partner=PARTNER, secret=SECRET, at=at)
        assert message == {**QUERY_VECTOR, "MaXacThuc": QUERY_DIGEST}
        assert build_query(query(None), partner=PARTNER, secret=SECRET, at=at)["MaGiaoDich"] == ""


class TestCreatePayment:
    def test_init_over_http(self, gateway, plugin, provider):
        """INIT gives the platform's URL and MaGiaoDich; the platform verified the digest."""
        link = create(plugin, provider, payment())
        tx = gateway.transactions[REFERENCE]
        assert link.url == tx.url
        assert link.provider_ref == tx.transaction_id
        [sent] = gateway.messages("INIT")
        assert sent["ThoiGianGD"] == "20260301093000"
        assert sent["MaXacThuc"] == digest("INIT", sent, SECRET)
        [received] = gateway.received
        assert received.path == "/api"
        assert received.headers["Content-Type"] == "application/json; charset=utf-8"

    def test_same_reference_same_transaction(self, gateway, plugin, provider):
        """A retried INIT (same MaThamChieu) gets the same transaction, not a second one."""
        first = create(plugin, provider, payment())
        again = create(plugin, provider, payment())
        assert again == first
        assert len(gateway.transactions) == 1
        assert len(gateway.messages("INIT")) == 2

    def test_refusal_is_not_retryable(self, plugin, provider):
        """A MaLoi other than 00 is a definitive refusal, with the code and text."""
        create(plugin, provider, payment())
        with pytest.raises(BackendError, match="'05' Mã tham chiếu") as caught:
            create(plugin, provider, payment(amount=60_000))
        assert caught.value.retryable is False

    def test_wrong_secret(self, gateway, plugin):
        """The platform refuses a bad digest; the secret is in no message."""
        wrong = gateway.provider(secret="not-the-secret")  # noqa: S106
        with pytest.raises(BackendError, match="'01'") as caught:
            create(plugin, wrong, payment())
        assert caught.value.retryable is False
        assert "not-the-secret" not in str(caught.value)
        assert SECRET not in str(caught.value)

    def test_unknown_partner(self, gateway, plugin):
        """The platform refuses a partner code it does not know."""
        with pytest.raises(BackendError, match="'03'") as caught:
            create(plugin, gateway.provider(partner="G09.99"), payment())
        assert caught.value.retryable is False

    @pytest.mark.parametrize(
        "tamper",
        [
            {"UrlThanhToan": "https://evil.example/pay"},
            {"MaGiaoDich": "GD0000000666"},
            {"MaXacThuc": "0" * 64},
        ],
    )
    def test_altered_reply(self, gateway, plugin, provider, tamper):
        """A reply whose MaXacThuc does not verify raises SignatureError."""
        gateway.tamper_next(**tamper)
        with pytest.raises(SignatureError):
            create(plugin, provider, payment())

    def test_signed_refusal_that_does_not_verify(self, gateway, plugin, provider):
        """A refusal carrying a wrong digest is a SignatureError too."""
        body = json.dumps({"LoaiBanTin": "INIT", "MaLoi": "99", "MaXacThuc": "0" * 64})
        gateway.fail_next(status=200, body=body.encode())
        with pytest.raises(SignatureError):
            create(plugin, provider, payment())

    def test_unsigned_success(self, gateway, plugin, provider):
        """A success without MaXacThuc is not believed."""
        body = {"LoaiBanTin": "INIT", "MaLoi": "00", "MaDoiTac": PARTNER, "MaThamChieu": REFERENCE}
        gateway.fail_next(status=200, body=json.dumps(body).encode())
        with pytest.raises(SignatureError):
            create(plugin, provider, payment())

    @pytest.mark.parametrize(
        ("changes", "match"),
        [({"MaThamChieu": "HS-OTHER"}, "another MaThamChieu"), ({"SoTien": 5}, "another SoTien")],
    )
    def test_reply_about_another_payment(self, gateway, plugin, provider, changes, match):
        """A signed success for another MaThamChieu or amount is refused for good."""
        gateway.fail_next(status=200, body=init_reply(**changes))
        with pytest.raises(BackendError, match=match) as caught:
            create(plugin, provider, payment())
        assert caught.value.retryable is False

    @pytest.mark.parametrize(
        "changes", [{"UrlThanhToan": None}, {"UrlThanhToan": "javascript:x"}, {"MaGiaoDich": ""}]
    )
    def test_success_without_link(self, gateway, plugin, provider, changes):
        """A signed success without a usable URL or transaction id is not a link."""
        gateway.fail_next(status=200, body=init_reply(**changes))
        with pytest.raises(BackendError, match="without UrlThanhToan"):
            create(plugin, provider, payment())

    def test_unsignable_reference(self, plugin, provider, gateway):
        """A reference holding '|' is refused before any call, for good."""
        with pytest.raises(BackendError, match="MaThamChieu") as caught:
            create(plugin, provider, payment(reference="HS|1"))
        assert caught.value.retryable is False
        assert gateway.received == []


class TestTransport:
    @pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
    def test_server_errors_are_retryable(self, gateway, plugin, provider, status):
        """5xx, 408 and 429 may pass: retryable."""
        gateway.fail_next(status=status)
        with pytest.raises(BackendError, match=f"HTTP {status}") as caught:
            create(plugin, provider, payment())
        assert caught.value.retryable is True

    def test_retry_after_503_succeeds(self, gateway, plugin, provider):
        """After two 503s the third INIT gets the link; one transaction only."""
        gateway.fail_next(2, status=503)
        for _ in range(2):
            with pytest.raises(BackendError):
                create(plugin, provider, payment())
        assert create(plugin, provider, payment()).provider_ref is not None
        assert len(gateway.messages("INIT")) == 3
        assert len(gateway.transactions) == 1

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 302])
    def test_client_errors_and_redirects_are_not_retryable(self, gateway, plugin, provider, status):
        """4xx and a redirect will not change by trying again."""
        gateway.fail_next(status=status)
        with pytest.raises(BackendError, match=f"HTTP {status}") as caught:
            create(plugin, provider, payment())
        assert caught.value.retryable is False
        assert len(gateway.received) == 1

    def test_timeout_is_retryable(self, gateway, plugin):
        """A platform that does not answer within timeout_s gives a retryable error."""
        gateway.hang_next()
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out") as caught:
            create(plugin, gateway.provider(timeout_s=0.3), payment())
        assert caught.value.retryable is True
        assert time.monotonic() - started < 3

    def test_connection_refused_is_retryable(self, plugin):
        """Nobody listening: retryable."""
        with Gateway(partner=PARTNER, secret=SECRET) as stopping:
            stopped = stopping.provider()
        with pytest.raises(BackendError) as caught:
            create(plugin, stopped, payment())
        assert caught.value.retryable is True

    @pytest.mark.parametrize(
        "body", [b"<html>proxy error</html>", b"[1, 2]", b"", b"{" + b" " * MAX_MESSAGE_BYTES]
    )
    def test_garbage_reply_is_retryable(self, gateway, plugin, provider, body):
        """A 200 that is not a JSON object (or is too long) is not a platform answer."""
        gateway.fail_next(status=200, body=body)
        with pytest.raises(BackendError) as caught:
            create(plugin, provider, payment())
        assert caught.value.retryable is True


class TestQueryPayment:
    def test_pending_then_paid(self, gateway, plugin, provider, portal):
        """QUERY reports pending, then succeeded with the amount and the e-receipt."""
        link = create(plugin, provider, payment())
        pending = plugin.dvcflow_query_payment(provider=provider, query=query(link.provider_ref))
        assert pending == PaymentReport(
            event_id=f"query:{link.provider_ref}:pending",
            reference=REFERENCE,
            outcome=PaymentOutcome.PENDING,
            provider_ref=link.provider_ref,
            at=pending.at,
        )
        gateway.pay(REFERENCE)
        paid = plugin.dvcflow_query_payment(provider=provider, query=query(link.provider_ref))
        assert paid.event_id == f"query:{link.provider_ref}:succeeded"
        assert paid.outcome is PaymentOutcome.SUCCEEDED
        assert paid.amount == Money(50_000)
        assert paid.receipt == gateway.transactions[REFERENCE].receipt
        assert paid.at is not None
        assert paid.at.tzinfo is dt.UTC
        assert portal.reports[0].receipt == paid.receipt

    def test_by_reference_only(self, gateway, plugin, provider):
        """Without MaGiaoDich the platform finds the payment by MaThamChieu."""
        link = create(plugin, provider, payment())
        report = plugin.dvcflow_query_payment(provider=provider, query=query(None))
        assert report.provider_ref == link.provider_ref
        assert gateway.messages("QUERY")[0]["MaGiaoDich"] == ""

    def test_unknown_transaction(self, plugin, provider):
        """A payment the platform does not know is a definitive answer."""
        with pytest.raises(BackendError, match="'04'") as caught:
            plugin.dvcflow_query_payment(provider=provider, query=query("GD404"))
        assert caught.value.retryable is False

    def test_altered_reply(self, gateway, plugin, provider):
        """A QUERY reply changed after signing raises SignatureError."""
        link = create(plugin, provider, payment())
        gateway.tamper_next(TrangThai="00")
        with pytest.raises(SignatureError):
            plugin.dvcflow_query_payment(provider=provider, query=query(link.provider_ref))

    def test_reply_read_as_given(self, gateway, plugin, provider):
        """A signed reply's fields become the report; a string SoTien is whole đồng too."""
        gateway.fail_next(status=200, body=query_reply(SoTien="50000"))
        report = plugin.dvcflow_query_payment(provider=provider, query=query("GD1"))
        assert report == PaymentReport(
            event_id="query:GD1:succeeded",
            reference=REFERENCE,
            outcome=PaymentOutcome.SUCCEEDED,
            amount=Money(50_000),
            provider_ref="GD1",
            receipt="BL-1",
            at=dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC),
        )

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"TrangThai": "77"}, "unknown TrangThai"),
            ({"MaGiaoDich": "GD2"}, "another MaGiaoDich"),
            ({"SoTien": "năm mươi"}, "SoTien"),
        ],
    )
    def test_unusable_reply(self, gateway, plugin, provider, changes, match):
        """A signed reply with an unknown status, transaction or amount is refused for good."""
        gateway.fail_next(status=200, body=query_reply(**changes))
        with pytest.raises(BackendError, match=match) as caught:
            plugin.dvcflow_query_payment(provider=provider, query=query("GD1"))
        assert caught.value.retryable is False

    def test_unsignable_reference(self, gateway, plugin, provider):
        """A reference holding '|' is refused before any call, for good."""
        with pytest.raises(BackendError, match="MaThamChieu") as caught:
            plugin.dvcflow_query_payment(provider=provider, query=query(None, "HS|1"))
        assert caught.value.retryable is False
        assert gateway.received == []

    def test_query_timeout(self, gateway, plugin):
        """A hung QUERY is retryable, like INIT."""
        gateway.hang_next()
        with pytest.raises(BackendError) as caught:
            plugin.dvcflow_query_payment(
                provider=gateway.provider(timeout_s=0.3), query=query("GD1")
            )
        assert caught.value.retryable is True


class TestConfirmCallback:
    def test_confirm_over_http(self, gateway, plugin, provider, portal):
        """The platform's CONFIRM verifies and reads; the portal answers MaLoi 00."""
        link = create(plugin, provider, payment())
        status, body = gateway.pay(REFERENCE)
        assert status == 200
        assert json.loads(body) == {"MaLoi": "00", "MoTaLoi": "Thành công"}
        [report] = portal.reports
        assert report.event_id == f"confirm:{link.provider_ref}:succeeded"
        assert report.reference == REFERENCE
        assert report.outcome is PaymentOutcome.SUCCEEDED
        assert report.amount == Money(50_000)
        assert report.provider_ref == link.provider_ref
        assert report.receipt == gateway.transactions[REFERENCE].receipt
        assert report.at is not None

    def test_replay_has_the_same_event_id(self, gateway, plugin, provider, portal):
        """A CONFIRM sent twice reports the same event id, so the engine dedupes it."""
        create(plugin, provider, payment())
        body = gateway.confirm_body(REFERENCE)
        gateway.send(body)
        gateway.send(body)
        first, second = portal.reports
        assert first == second

    @pytest.mark.parametrize(
        "outcome", [PaymentOutcome.FAILED, PaymentOutcome.CANCELLED, PaymentOutcome.EXPIRED]
    )
    def test_unpaid_outcomes(self, gateway, plugin, provider, portal, outcome):
        """A CONFIRM that did not pay carries no amount and no receipt."""
        create(plugin, provider, payment())
        gateway.pay(REFERENCE, outcome=outcome)
        [report] = portal.reports
        assert report.outcome is outcome
        assert report.amount is None
        assert report.receipt is None
        assert report.event_id.endswith(f":{outcome.value}")

    def test_forged_signature(self, gateway, plugin, provider, portal):
        """A CONFIRM signed with another secret is a SignatureError; the portal says 01."""
        create(plugin, provider, payment())
        body = gateway.confirm_body(REFERENCE, secret="doan-mo")  # noqa: S106
        with pytest.raises(SignatureError):
            plugin.dvcflow_verify_callback(provider=provider, body=body, headers={})
        status, answer = gateway.send(body)
        assert (status, json.loads(answer)["MaLoi"]) == (200, "01")
        assert portal.reports == []

    @pytest.mark.parametrize(
        "altered",
        [
            {"SoTien": 1},
            {"MaThamChieu": "HS-2026-999999-LP"},
            {"TrangThai": "00", "MaLoi": "00"},
            {"MaXacThuc": None},
        ],
    )
    def test_altered_body(self, gateway, plugin, provider, altered):
        """A CONFIRM changed after signing (or unsigned) does not authenticate."""
        create(plugin, provider, payment())
        body = gateway.confirm_body(REFERENCE, outcome=PaymentOutcome.FAILED, altered=altered)
        with pytest.raises(SignatureError):
            plugin.dvcflow_verify_callback(provider=provider, body=body, headers={})

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"not json",
            b"\xff\xfe",
            b"[]",
            b'"CONFIRM"',
            b'{"LoaiBanTin": "INIT"}',
            json.dumps({**CONFIRM_VECTOR, "MaGiaoDich": ""}).encode(),
            json.dumps({k: v for k, v in CONFIRM_VECTOR.items() if k != "SoTien"}).encode(),
            b'{"a": "' + b"x" * MAX_MESSAGE_BYTES + b'"}',
        ],
    )
    def test_garbage_is_malformed(self, plugin, provider, body):
        """Anything that is not a CONFIRM message is CallbackError('malformed')."""
        with pytest.raises(CallbackError) as caught:
            plugin.dvcflow_verify_callback(provider=provider, body=body, headers={})
        assert caught.value.kind == "malformed"

    @pytest.mark.parametrize(
        "change",
        [{"MaDoiTac": "G09.99"}, {"TrangThai": "77"}, {"SoTien": "-5"}, {"SoTien": "5e4"}],
    )
    def test_signed_but_not_ours_is_malformed(self, plugin, provider, change):
        """A properly signed CONFIRM for another partner or with unknown values is malformed."""
        body = json.dumps(signed({**CONFIRM_VECTOR, **change})).encode()
        with pytest.raises(CallbackError) as caught:
            plugin.dvcflow_verify_callback(provider=provider, body=body, headers={})
        assert caught.value.kind == "malformed"

    @pytest.mark.parametrize(
        ("code", "status", "outcome"),
        [
            ("00", "00", PaymentOutcome.SUCCEEDED),
            ("00", None, PaymentOutcome.SUCCEEDED),
            ("10", None, PaymentOutcome.FAILED),
            ("10", "00", PaymentOutcome.FAILED),
            ("00", "02", PaymentOutcome.FAILED),
            ("00", "01", PaymentOutcome.PENDING),
            ("24", "03", PaymentOutcome.CANCELLED),
        ],
    )
    def test_paid_only_when_code_and_status_agree(self, code, status, outcome):
        """MaLoi 00 is success; TrangThai refines it, and both must agree to count as paid."""
        message = {**CONFIRM_VECTOR, "MaLoi": code, "TrangThai": status}
        report = parse_confirm(signed(message), partner=PARTNER, secret=SECRET)
        assert report.outcome is outcome
        assert (report.amount is not None) is (outcome is PaymentOutcome.SUCCEEDED)

    @pytest.mark.parametrize("when", [None, "", "2026030109451", "20261301094512", "x" * 14])
    def test_time_is_optional(self, when):
        """A missing or unreadable ThoiGianGD leaves the report's time unknown."""
        message = signed({**CONFIRM_VECTOR, "ThoiGianGD": when, "SoTien": "50000"})
        report = parse_confirm(message, partner=PARTNER, secret=SECRET)
        assert report.at is None
        assert report.amount == Money(50_000)

    def test_fixed_vector_parses(self):
        """The literal CONFIRM vector reads as this exact report."""
        message = {**CONFIRM_VECTOR, "MaXacThuc": CONFIRM_DIGEST}
        assert parse_confirm(message, partner=PARTNER, secret=SECRET) == PaymentReport(
            event_id="confirm:GD0000000042:succeeded",
            reference=REFERENCE,
            outcome=PaymentOutcome.SUCCEEDED,
            amount=Money(50_000),
            provider_ref="GD0000000042",
            receipt="BL-0000007",
            at=dt.datetime(2026, 3, 1, 2, 45, 12, tzinfo=dt.UTC),
        )


class TestCallbackReply:
    @pytest.mark.parametrize(
        ("accepted", "error", "code"),
        [
            (True, None, "00"),
            (False, "bad_signature", "01"),
            (False, "malformed", "02"),
            (False, "malformed: not JSON", "02"),
            (False, "unknown_reference", "03"),
            (False, "amount_mismatch", "04"),
            (False, "store unavailable", "99"),
            (False, None, "99"),
        ],
    )
    def test_codes(self, plugin, provider, accepted, error, code):
        """HTTP 200 and a JSON MaLoi per documented error kind; 99 for anything else."""
        reply = plugin.dvcflow_callback_reply(provider=provider, accepted=accepted, error=error)
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("application/json")
        answer = json.loads(reply.body)
        assert answer["MaLoi"] == code
        assert set(answer) == {"MaLoi", "MoTaLoi"}
        assert "not JSON" not in answer["MoTaLoi"]


class TestCancelAndRefund:
    def test_cancel_makes_no_call(self, gateway, plugin, provider):
        """The platform has no cancel message: True, and nothing is sent."""
        assert plugin.dvcflow_cancel_payment(provider=provider, query=query("GD1")) is True
        assert gateway.received == []

    def test_refund_is_an_operator_task(self, gateway, plugin, provider):
        """A refund raises a non-retryable error naming the treasury process."""
        refund = RefundRequest(
            reference="RF-1",
            payment_reference=REFERENCE,
            provider_ref="GD1",
            fee_kind=FeeKind.CHARGE,
            amount=Money(50_000),
            idempotency_key="refund-1",
            reason="refused",
        )
        with pytest.raises(BackendError, match="treasury") as caught:
            plugin.dvcflow_refund_payment(provider=provider, refund=refund)
        assert caught.value.retryable is False
        assert REFERENCE in str(caught.value)
        assert gateway.received == []


class TestOtherProviders:
    def test_answers_only_its_own_type(self, plugin):
        """For a provider of another type every hook returns None."""
        other = Provider("fake", "fake")
        assert plugin.dvcflow_check_provider(provider=other) is None
        assert plugin.dvcflow_create_payment(provider=other, request=payment()) is None
        assert plugin.dvcflow_verify_callback(provider=other, body=b"{}", headers={}) is None
        assert plugin.dvcflow_callback_reply(provider=other, accepted=True, error=None) is None
        assert plugin.dvcflow_query_payment(provider=other, query=query(None)) is None
        assert plugin.dvcflow_cancel_payment(provider=other, query=query(None)) is None
        refund = RefundRequest("RF-1", REFERENCE, None, FeeKind.FEE, Money(1), "k", "withdrawn")
        assert plugin.dvcflow_refund_payment(provider=other, refund=refund) is None
        assert plugin.dvcflow_provider_types() == ["national_payment"]


GOOD = {"url": "https://pay.example.gov.vn/api", "partner": PARTNER}


def problems(settings: dict[str, Any], secrets: dict[str, str] | None = None) -> list[str]:
    provider = Provider(
        "paygov", "national_payment", settings, {"secret": SECRET} if secrets is None else secrets
    )
    found = NationalPaymentPlugin().dvcflow_check_provider(provider=provider)
    assert found is not None
    return found


class TestCheckProvider:
    def test_good_settings(self):
        """Required settings and the secret are enough; every optional one may be given."""
        assert problems(GOOD) == []
        full = {
            **GOOD,
            "version": "1.0.1",
            "timeout_s": 20,
            "connect_timeout_s": 2.5,
            "init_fields": {"MaKenhThanhToan": "2", "Ip": "203.0.113.7"},
        }
        assert problems(full) == []

    def test_nothing_given(self):
        """Each missing requirement is one problem naming the setting."""
        assert problems({}, {}) == [
            "settings.url: required, an http(s) URL of the platform's API",
            "settings.partner: required, the partner code (MaDoiTac), without '|'",
            "secrets.secret: required, the environment variable holding the shared secret",
        ]

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"url": "ftp://pay.example"}, "settings.url: required, an http(s) URL"),
            ({"url": "https://"}, "settings.url: required, an http(s) URL"),
            ({"partner": "G09|20"}, "settings.partner: required, the partner code"),
            ({"partner": 920}, "settings.partner: required, the partner code"),
            ({"version": ""}, "settings.version: must be a version string"),
            ({"timeout_s": 0}, "settings.timeout_s: must be a number of seconds in (0, 300]"),
            ({"timeout_s": "5"}, "settings.timeout_s: must be a number of seconds"),
            ({"connect_timeout_s": True}, "settings.connect_timeout_s: must be a number"),
            ({"connect_timeout_s": 301}, "settings.connect_timeout_s: must be a number"),
            ({"init_fields": "2"}, "settings.init_fields: must be a table"),
            ({"init_fields": {"SoTien": "1"}}, "settings.init_fields.SoTien: not a constant"),
            ({"init_fields": {"Ip": 1}}, "settings.init_fields.Ip: must be a string"),
            ({"init_fields": {"Ip": "a|b"}}, "settings.init_fields.Ip: must be a string"),
            ({"secret": "x"}, "settings.secret: unknown setting (known: connect_timeout_s,"),
        ],
    )
    def test_each_problem_names_the_setting(self, change, expected):
        """A bad setting is one problem, naming it."""
        [problem] = problems({**GOOD, **change})
        assert problem.startswith(expected)

    def test_through_the_engine_facade(self, gateway, plugin):
        """Registered with pluggy, the plugin answers through the typed façade and its checks."""
        provider = gateway.provider()
        backends = Backends(
            providers={"paygov": provider}, routing=Routing(), plugins=[plugin], entry_points=False
        )
        assert backends.create_payment(provider, payment()).provider_ref is not None
        broken = Provider("paygov", "national_payment", {"partner": PARTNER}, {"secret": "s"})
        with pytest.raises(ConfigurationError) as caught:
            Backends(
                providers={"paygov": broken},
                routing=Routing(),
                plugins=[NationalPaymentPlugin()],
                entry_points=False,
                source="dvcflow.toml",
            )
        assert str(caught.value) == (
            "dvcflow.toml: providers.paygov: settings.url: required, an http(s) URL of the "
            "platform's API"
        )


class TestDocs:
    def test_signed_orders_are_documented(self):
        """docs/national-payment.md shows every signed order exactly as the code signs it."""
        text = (ROOT / "docs" / "national-payment.md").read_text(encoding="utf-8")
        for kind, names in SIGNED_FIELDS.items():
            assert f"- `{kind}`: `{'|'.join(names)}|<secret>`" in text, kind
