"""The webhook plugin, over HTTP to a receiver on loopback that checks `verify_signature`."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dvcflow import FrozenClock
from dvcflow._backend_config import Routing
from dvcflow._backends import Message, MessageChannel, Provider
from dvcflow._hooks import Backends
from dvcflow.errors import BackendError, ConfigurationError
from dvcflow.plugins.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Webhook,
    build_body,
    signature,
    verify_signature,
)
from gateway import running
from webhook_receiver import Receiver

SECRET = "khoa-bi-mat-webhook"  # noqa: S105 - a test secret
OLD_SECRET = "khoa-cu"  # noqa: S105 - a test secret
AT = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.UTC)
STAMP = int(AT.timestamp())


def message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "key": "effect-9:webhook",
        "reference": "msg-9",
        "channel": MessageChannel.WEBHOOK,
        "address": "officer-inbox",
        "text": "Hồ sơ G09.20-260301-0001 cần bổ sung giấy tờ.",
        "subject": "Yêu cầu bổ sung hồ sơ",
        "locale": "vi",
        "event": "supplement_requested",
        "dossier_code": "G09.20-260301-0001",
        "data": {"due": "2026-03-05", "documents": ["giay-chung-sinh"]},
    }
    return Message(**{**fields, **changes})


def provider(url: str | None = None, *, secret: str = SECRET, **settings: Any) -> Provider:
    base: dict[str, Any] = {"timeout_s": 5} if url is None else {"url": url, "timeout_s": 5}
    return Provider("inbox", "webhook", {**base, **settings}, {"secret": secret})


def send(target: Provider, sent: Message | None = None, *, clock: Any = None) -> Any:
    return Webhook(clock=clock).dvcflow_send_message(provider=target, message=sent or message())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running(Receiver(SECRET))


def signed_headers(body: bytes, *, secret: str = SECRET, stamp: int = STAMP) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: signature(body, secret, stamp)}


class TestVerifySignature:
    body = b'{"event": "received"}'

    def test_vector(self):
        """The signature is sha256= and the hex HMAC-SHA256 of "<timestamp>.<body>"."""
        expected = hmac.new(
            SECRET.encode(), f"{STAMP}.".encode() + self.body, hashlib.sha256
        ).hexdigest()
        assert signature(self.body, SECRET, STAMP) == f"sha256={expected}"
        assert signature(self.body, SECRET.encode(), STAMP) == f"sha256={expected}"

    def test_valid(self):
        """A fresh, unaltered request verifies, header names in any case."""
        headers = {k.lower(): v for k, v in signed_headers(self.body).items()}
        assert verify_signature(self.body, headers, SECRET, now=STAMP + 10)

    @pytest.mark.parametrize(
        ("offset", "valid"), [(-301, False), (-300, True), (0, True), (300, True), (301, False)]
    )
    def test_tolerance(self, offset, valid):
        """A timestamp more than tolerance_s away either way is refused (replays, bad clocks)."""
        headers = signed_headers(self.body)
        assert verify_signature(self.body, headers, SECRET, now=STAMP + offset) is valid

    def test_custom_tolerance(self):
        """tolerance_s narrows or widens the window."""
        headers = signed_headers(self.body)
        assert not verify_signature(self.body, headers, SECRET, now=STAMP + 61, tolerance_s=60)
        assert verify_signature(self.body, headers, SECRET, now=STAMP + 3600, tolerance_s=3600)

    def test_default_now_is_the_clock(self):
        """Without now, the receiver's clock is used."""
        stamp = int(time.time())
        headers = signed_headers(self.body, stamp=stamp)
        assert verify_signature(self.body, headers, SECRET)
        assert not verify_signature(self.body, signed_headers(self.body), SECRET)

    @pytest.mark.parametrize(
        "forge",
        [
            "altered body",
            "other secret",
            "moved timestamp",
            "no signature",
            "no timestamp",
            "timestamp not a number",
            "bare hex",
            "empty",
        ],
    )
    def test_forged(self, forge):
        """Anything altered, missing or malformed does not verify, and never raises."""
        body, headers = self.body, signed_headers(self.body)
        if forge == "altered body":
            body = body.replace(b"received", b"refused!")
        elif forge == "other secret":
            headers = signed_headers(body, secret=OLD_SECRET)
        elif forge == "moved timestamp":
            headers[TIMESTAMP_HEADER] = str(STAMP + 1)
        elif forge == "no signature":
            del headers[SIGNATURE_HEADER]
        elif forge == "no timestamp":
            del headers[TIMESTAMP_HEADER]
        elif forge == "timestamp not a number":
            headers[TIMESTAMP_HEADER] = "1e9"
        elif forge == "bare hex":
            headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER].removeprefix("sha256=")
        else:
            headers[SIGNATURE_HEADER] = ""
        assert not verify_signature(body, headers, SECRET, now=STAMP)

    def test_rotation(self):
        """A receiver rotating secrets accepts the old and the new one meanwhile."""
        old = signed_headers(self.body, secret=OLD_SECRET)
        new = signed_headers(self.body)
        for headers in (old, new):
            assert verify_signature(self.body, headers, [SECRET, OLD_SECRET], now=STAMP)
        assert not verify_signature(self.body, old, [SECRET], now=STAMP)

    def test_several_signatures(self):
        """A header may carry several comma-separated signatures; one match suffices."""
        headers = signed_headers(self.body)
        other = signature(self.body, OLD_SECRET, STAMP)
        headers[SIGNATURE_HEADER] = f"{other}, {headers[SIGNATURE_HEADER]}"
        assert verify_signature(self.body, headers, SECRET, now=STAMP)


class TestSend:
    def test_event_as_received(self):
        """The receiver gets the event's JSON, signed, with its key; 200 is delivered."""
        with Receiver(SECRET, now=lambda: float(STAMP)) as receiver:
            receipt = send(provider(receiver.endpoint), clock=FrozenClock(AT))
            [received] = receiver.received
        assert receipt.status == "delivered"
        assert receipt.provider_ref == "rx-1"
        assert received.path == "/hooks/dvcflow"
        assert json.loads(received.body) == {
            "event": "supplement_requested",
            "reference": "msg-9",
            "dossier_code": "G09.20-260301-0001",
            "locale": "vi",
            "subject": "Yêu cầu bổ sung hồ sơ",
            "text": "Hồ sơ G09.20-260301-0001 cần bổ sung giấy tờ.",
            "data": {"due": "2026-03-05", "documents": ["giay-chung-sinh"]},
            "sent_at": "2026-03-01T02:30:00Z",
        }
        assert "Hồ sơ".encode() in received.body
        lower = {name.lower(): value for name, value in received.headers.items()}
        assert lower["idempotency-key"] == "effect-9:webhook"
        assert lower["x-dvcflow-timestamp"] == str(STAMP)
        assert lower["content-type"] == "application/json; charset=utf-8"

    def test_the_address_url_wins(self, receiver):
        """A message whose address is an http(s) URL goes there, not to settings.url."""
        with Receiver(SECRET) as other:
            send(provider(receiver.endpoint), message(address=other.endpoint))
            assert len(other.applied) == 1
        assert receiver.received == []

    def test_without_settings_url(self, receiver):
        """Without settings.url, each message must carry its URL."""
        assert send(provider(), message(address=receiver.endpoint)).status == "delivered"
        with pytest.raises(BackendError, match=r"settings\.url is not set") as caught:
            send(provider())
        assert caught.value.retryable is False

    def test_allowed_hosts(self, receiver):
        """With settings.allowed_hosts, an address URL elsewhere is refused for good."""
        allowed = provider(allowed_hosts=["127.0.0.1"])
        assert send(allowed, message(address=receiver.endpoint)).status == "delivered"
        limited = provider(allowed_hosts=["inbox.example.gov.vn"])
        with pytest.raises(BackendError, match=r"not in settings\.allowed_hosts") as caught:
            send(limited, message(address=receiver.endpoint))
        assert caught.value.retryable is False
        assert len(receiver.received) == 1

    def test_sent_again_applied_once(self, receiver):
        """Delivered twice (at least once), the receiver applies the key once."""
        send(provider(receiver.endpoint))
        send(provider(receiver.endpoint))
        assert len(receiver.received) == 2
        assert list(receiver.applied) == ["effect-9:webhook"]

    def test_empty_answer(self, receiver):
        """A 2xx without a JSON id is delivered all the same."""
        receiver.statuses.append(204)
        receipt = send(provider(receiver.endpoint))
        assert receipt.status == "delivered"
        assert receipt.provider_ref is None

    @pytest.mark.parametrize(
        ("status", "retryable"),
        [
            (500, True),
            (502, True),
            (503, True),
            (408, True),
            (429, True),
            (400, False),
            (404, False),
            (410, False),
            (302, False),
        ],
    )
    def test_failures(self, receiver, status, retryable):
        """5xx (and 408, 429) are retried; other 4xx and redirects are final."""
        receiver.statuses.append(status)
        with pytest.raises(BackendError) as caught:
            send(provider(receiver.endpoint))
        assert str(caught.value) == f"webhook 'inbox': HTTP {status}"
        assert caught.value.retryable is retryable

    def test_wrong_secret(self, receiver):
        """A receiver that cannot verify answers 401: final."""
        with pytest.raises(BackendError, match="HTTP 401") as caught:
            send(provider(receiver.endpoint, secret="khoa-khac"))  # noqa: S106 - a test secret
        assert caught.value.retryable is False
        assert receiver.applied == {}

    def test_timeout(self, receiver):
        """A receiver that does not answer within timeout_s is retried."""
        receiver.hang = 1
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out") as caught:
            send(provider(receiver.endpoint, timeout_s=0.3))
        assert caught.value.retryable is True
        assert time.monotonic() - started < 3

    @pytest.mark.parametrize("channel", [MessageChannel.EMAIL, MessageChannel.SMS])
    def test_other_channels(self, receiver, channel):
        """A message of another channel is refused for good."""
        with pytest.raises(BackendError, match=f"not {channel.value}") as caught:
            send(provider(receiver.endpoint), message(channel=channel))
        assert caught.value.retryable is False

    def test_errors_and_logs_hold_no_address_or_text(self, receiver, caplog):
        """A failure at the message's own URL names neither it nor its host; nor do logs."""
        caplog.set_level(logging.DEBUG)
        receiver.hang = 1
        errors = []
        for target, sent in [
            (provider(timeout_s=0.3), message(address=receiver.endpoint)),
            (provider(allowed_hosts=["x.vn"]), message(address=receiver.endpoint)),
        ]:
            with pytest.raises(BackendError) as caught:
                send(target, sent)
            errors.append(str(caught.value))
        assert errors[0] == "webhook 'inbox': TimeoutError"
        send(provider(), message(address=receiver.endpoint))
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("dvcflow")]
        assert ours
        for text in [*errors, *ours]:
            assert receiver.endpoint not in text
            assert "127.0.0.1" not in text
            assert "Hồ sơ" not in text

    def test_body_data_is_plain_json(self):
        """Values JSON cannot hold are sent as their text (a date, for one)."""
        body = build_body(message(data={"due": dt.date(2026, 3, 5)}), AT)
        assert json.loads(body)["data"] == {"due": "2026-03-05"}


class TestCheckProvider:
    def problems(self, settings: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
        target = Provider(
            "inbox", "webhook", settings, {"secret": "s"} if secrets is None else secrets
        )
        return Webhook().dvcflow_check_provider(provider=target)

    @pytest.mark.parametrize(
        "settings", [{}, {"url": "https://inbox.example.gov.vn/h", "allowed_hosts": ["a.vn"]}]
    )
    def test_good_providers(self, settings):
        """The secret is all it needs; a URL and allowed hosts are optional."""
        assert self.problems(settings) == []

    @pytest.mark.parametrize(
        ("settings", "secrets", "problem"),
        [
            ({"url": "inbox"}, None, "settings.url: must be an http(s) URL"),
            ({"allowed_hosts": "a.vn"}, None, "settings.allowed_hosts"),
            ({"allowed_hosts": [""]}, None, "settings.allowed_hosts"),
            ({"timeout_s": -1}, None, "settings.timeout_s"),
            ({"connect_timeout_s": 301}, None, "settings.connect_timeout_s"),
            ({"secret": "x"}, None, "settings.secret: unknown"),
            ({}, {}, "secrets.secret: required"),
        ],
    )
    def test_problems(self, settings, secrets, problem):
        """Each problem names its setting."""
        [found] = self.problems(settings, secrets)
        assert found.startswith(problem)

    def test_other_types_are_not_answered(self):
        """Another plugin's provider gets no answer."""
        other = Provider("sms", "sms_gateway", {})
        assert Webhook().dvcflow_check_provider(provider=other) is None
        assert Webhook().dvcflow_send_message(provider=other, message=message()) is None


class TestFacade:
    def test_through_backends(self, receiver):
        """Registered with pluggy, the plugin sends through the typed façade; no receipts."""
        target = provider(receiver.endpoint)
        backends = Backends(
            providers={"inbox": target}, routing=Routing(), plugins=[Webhook()], entry_points=False
        )
        assert backends.send_message(target, message()).status == "delivered"
        with pytest.raises(BackendError, match="no plugin answered parse_receipt"):
            backends.parse_receipt(target, b"{}", {})

    def test_bad_settings_stop_the_engine_opening(self):
        """A provider with problems is a configuration error at start-up."""
        broken = Provider("inbox", "webhook", {"url": "inbox"}, {})
        with pytest.raises(ConfigurationError) as caught:
            Backends(
                providers={"inbox": broken},
                routing=Routing(),
                plugins=[Webhook()],
                entry_points=False,
                source="dvcflow.toml",
            )
        assert "dvcflow.toml: providers.inbox: settings.url" in str(caught.value)
        assert "dvcflow.toml: providers.inbox: secrets.secret" in str(caught.value)
