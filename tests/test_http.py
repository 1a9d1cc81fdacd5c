"""The plugins' transport: POST of bytes and JSON, timeouts, TLS, against loopback servers."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certificates import self_signed
from dvcflow import FeeKind, Money
from dvcflow._backends import PaymentRequest
from dvcflow.errors import BackendError
from dvcflow.plugins._http import (
    HTTPStatusError,
    Reply,
    encode_json,
    is_http_url,
    post_json,
    retryable_status,
)
from dvcflow.plugins._http import post as post_bytes
from dvcflow.plugins.national_payment import NationalPaymentPlugin
from gateway import Gateway, running

PARTNER = "G09.20"
SECRET = "khoa-bi-mat-thu-nghiem"  # noqa: S105 - a test secret


def post(url: str, *, read_timeout: float = 5, connect_timeout: float = 5) -> dict[str, object]:
    return post_json(
        url,
        {"LoaiBanTin": "QUERY", "ThongTinGiaoDich": "Lệ phí đăng ký"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_bytes=1024,
        where="test QUERY",
    )


def request() -> PaymentRequest:
    return PaymentRequest(
        reference="HS-1",
        idempotency_key="effect-1",
        dossier_id="d-1",
        dossier_code=None,
        procedure="1.001193",
        agency="G09.20",
        fee_kind=FeeKind.FEE,
        amount=Money(8_000),
        description="Phí",
    )


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    yield from running(Gateway(partner=PARTNER, secret=SECRET))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and its key."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_gateway(certificate: tuple[Path, Path]) -> Iterator[Gateway]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from running(Gateway(partner=PARTNER, secret=SECRET, tls=context))


class TestPostJson:
    def test_sends_utf8_json(self, gateway):
        """The body is UTF-8 JSON, Vietnamese unescaped; the reply is the parsed object."""
        reply = post(gateway.api)
        assert reply["MaLoi"] == "03"  # no MaDoiTac: the simulator knows no such partner
        [received] = gateway.received
        assert "Lệ phí đăng ký".encode() in received.body
        assert json.loads(received.body)["LoaiBanTin"] == "QUERY"
        assert received.headers["Accept"] == "application/json"

    def test_read_timeout_is_not_the_connect_timeout(self, gateway):
        """A silent server fails after the read timeout, however long the connect timeout."""
        gateway.hang_next()
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out") as caught:
            post(gateway.api, read_timeout=0.2, connect_timeout=30)
        assert caught.value.retryable is True
        assert time.monotonic() - started < 2

    @pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/", "https://", ""])
    def test_only_http_urls(self, url):
        """Anything but an http(s) URL with a host is refused before any I/O, for good."""
        assert not is_http_url(url)
        with pytest.raises(BackendError, match="not an http") as caught:
            post(url)
        assert caught.value.retryable is False

    def test_signed_bytes_and_extra_headers(self, gateway):
        """Bytes are sent as given (what a header signed) with the extra headers."""
        body = encode_json({"LoaiBanTin": "QUERY", "ThongTinGiaoDich": "Lệ phí"})
        post_json(
            gateway.api,
            body,
            connect_timeout=5,
            read_timeout=5,
            max_bytes=1024,
            where="test",
            headers={"Idempotency-Key": "effect-1", "X-Signature": "abc"},
        )
        [received] = gateway.received
        assert received.body == body
        assert "Lệ phí".encode() in body
        assert received.headers["Idempotency-Key"] == "effect-1"
        assert received.headers["X-Signature"] == "abc"

    @pytest.mark.parametrize(
        ("status", "body", "reply", "retryable"),
        [
            (409, b'{"error": {"code": "conflict"}}', {"error": {"code": "conflict"}}, False),
            (503, b'{"error": {"code": "busy"}}', {"error": {"code": "busy"}}, True),
            (422, b"not json", None, False),
            (400, b"[1]", None, False),
            (400, b'{"x": "' + b"y" * 2000 + b'"}', None, False),
        ],
    )
    def test_error_status_carries_its_json_reply(self, gateway, status, body, reply, retryable):
        """An error status keeps its JSON object body for the plugin, never in the message."""
        gateway.fail_next(status=status, body=body)
        with pytest.raises(HTTPStatusError) as caught:
            post(gateway.api)
        assert str(caught.value) == f"test QUERY: HTTP {status}"
        assert caught.value.status == status
        assert caught.value.reply == reply
        assert caught.value.retryable is retryable


def raw_post(url: str, headers: dict[str, str]) -> Reply:
    return post_bytes(
        url,
        "Chào".encode(),
        headers=headers,
        connect_timeout=5,
        read_timeout=5,
        max_bytes=16,
        where="test POST",
    )


class TestPost:
    def test_sends_the_bytes_and_headers(self, gateway):
        """The body goes as given, with the caller's headers besides the User-Agent."""
        reply = raw_post(gateway.api, {"Idempotency-Key": "k-1", "X-Signature": "sha256=ab"})
        assert reply.status == 404  # not JSON: the simulator answers nothing else
        [received] = gateway.received
        assert received.body == "Chào".encode()
        assert received.headers["Idempotency-Key"] == "k-1"
        assert received.headers["X-Signature"] == "sha256=ab"
        assert received.headers["User-Agent"] == "dvcflow"

    def test_error_statuses_are_returned_with_their_body(self, gateway):
        """A 4xx or 5xx is an answer for the caller to read, cut after max_bytes + 1."""
        gateway.fail_next(status=422, body=b'{"error": "invalid_number", "padding": "xx"}')
        reply = raw_post(gateway.api, {})
        assert reply.status == 422
        assert reply.body == b'{"error": "invali'

    @pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "khóa"])
    def test_headers_that_cannot_be_sent(self, gateway, value):
        """A header with a line break or non-ASCII is refused for good, before any I/O."""
        with pytest.raises(BackendError, match="must be printable ASCII") as caught:
            raw_post(gateway.api, {"Idempotency-Key": value})
        assert caught.value.retryable is False
        assert gateway.received == []

    def test_private_url_errors_name_the_failure_only(self, gateway):
        """For a recipient's own URL, a failure says what failed, not the error's text."""
        gateway.hang_next()
        with pytest.raises(BackendError) as caught:
            post_bytes(
                gateway.api,
                b"{}",
                headers={},
                connect_timeout=5,
                read_timeout=0.2,
                max_bytes=16,
                where="test POST",
                private_url=True,
            )
        assert str(caught.value) == "test POST: TimeoutError"
        assert caught.value.retryable is True

    @pytest.mark.parametrize(
        ("status", "retryable"),
        [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False)],
    )
    def test_retryable_status(self, status, retryable):
        """5xx, 408 and 429 may pass later; other error statuses will not."""
        assert retryable_status(status) is retryable


class TestTLS:
    def test_trusted_certificate(self, tls_gateway, certificate, monkeypatch):
        """INIT goes over https when the platform's certificate is trusted."""
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        provider = tls_gateway.provider()
        assert provider.settings["url"].startswith("https://127.0.0.1:")
        link = NationalPaymentPlugin().dvcflow_create_payment(provider=provider, request=request())
        assert link is not None
        assert link.provider_ref == tls_gateway.transactions["HS-1"].transaction_id

    def test_untrusted_certificate(self, tls_gateway, monkeypatch):
        """A certificate that does not verify is a retryable failure, nothing is sent."""
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(BackendError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            post(tls_gateway.api)
        assert caught.value.retryable is True
        assert tls_gateway.received == []

    def test_read_timeout_over_tls(self, tls_gateway, certificate, monkeypatch):
        """The read timeout holds after the TLS handshake too."""
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        tls_gateway.hang_next()
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out"):
            post(tls_gateway.api, read_timeout=0.2, connect_timeout=30)
        assert time.monotonic() - started < 2
