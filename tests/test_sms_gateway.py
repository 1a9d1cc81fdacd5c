"""The SMS and Zalo gateway plugin, over HTTP against the simulator in sms_gateway_sim.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from dvcflow._backend_config import Routing
from dvcflow._backends import (
    CallbackReply,
    Message,
    MessageChannel,
    MessageReceipt,
    MessageStatus,
    Provider,
)
from dvcflow._hooks import Backends
from dvcflow.errors import BackendError, CallbackError, ConfigurationError, SignatureError
from dvcflow.plugins.sms_gateway import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_MESSAGE_BYTES,
    STATUSES,
    SmsGateway,
    SmsSegments,
    normalise_mobile,
    sign,
    sms_segments,
    verify,
)
from gateway import Portal, running
from sms_gateway_sim import SmsGatewaySim

SECRET = "khoa-bi-mat-cong-sms"  # noqa: S105 - a test secret
WRONG_SECRET = "khoa-sai"  # noqa: S105 - a test secret
NUMBER = "0912345678"
NORMALISED = "84912345678"
FOLLOWER = "4372819046125537891"
TEXT = "UBND phường Bến Nghé: hồ sơ G09.20-260301-0001 đã được tiếp nhận."
LONG_TEXT = (
    "Kính gửi ông/bà, hồ sơ đăng ký khai sinh số G09.20-260301-0001 đã được tiếp nhận lúc "
    "09:30 ngày 01/03/2026 tại bộ phận một cửa UBND phường Bến Nghé. Ông/bà vui lòng bổ sung "
    "bản sao giấy chứng sinh và giấy tờ tùy thân của người đi đăng ký trước ngày 05/03/2026; "
    "quá hạn, hồ sơ sẽ bị trả lại."
)
"""A Vietnamese text of five UCS-2 parts (290 units): over the default limit of three."""


def message(channel: MessageChannel = MessageChannel.SMS, **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "key": f"effect-7:{channel.value}",
        "reference": "msg-7",
        "channel": channel,
        "address": FOLLOWER if channel is MessageChannel.ZALO else NUMBER,
        "text": TEXT,
        "event": "received",
    }
    return Message(**{**fields, **changes})


def send(provider: Provider, sent: Message | None = None) -> Any:
    return SmsGateway().dvcflow_send_message(provider=provider, message=sent or message())


@pytest.fixture
def sim() -> Iterator[SmsGatewaySim]:
    simulator = SmsGatewaySim(secret=SECRET)
    simulator.followers.add(FOLLOWER)
    yield from running(simulator)


class Receiver:
    """dvcflow's receipt endpoint: parses with the plugin, answers 200, 401 or 400."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.receipts: list[MessageReceipt] = []
        self.errors: list[Exception] = []

    def __call__(self, body: bytes, headers: Mapping[str, str]) -> CallbackReply:
        try:
            receipt = SmsGateway().dvcflow_parse_receipt(
                provider=self.provider, body=body, headers=headers
            )
        except SignatureError as exc:
            self.errors.append(exc)
            return CallbackReply(401)
        except CallbackError as exc:
            self.errors.append(exc)
            return CallbackReply(400)
        assert receipt is not None
        self.receipts.append(receipt)
        return CallbackReply(200, b"{}")


@pytest.fixture
def receiver(sim) -> Iterator[Receiver]:
    answer = Receiver(sim.provider())
    with Portal(answer) as portal:
        sim.callback_url = portal.url
        yield answer


class TestSegments:
    def test_alphabets(self):
        """The GSM 03.38 default alphabet has 128 codes; the extension table 10 characters."""
        assert len(GSM7_BASIC) == 128
        assert len(set(GSM7_BASIC)) == 128
        assert len(GSM7_EXTENSION) == 10

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", SmsSegments("gsm7", 0, 1)),
            ("a" * 160, SmsSegments("gsm7", 160, 1)),
            ("a" * 161, SmsSegments("gsm7", 161, 2)),
            ("a" * 306, SmsSegments("gsm7", 306, 2)),
            ("a" * 307, SmsSegments("gsm7", 307, 3)),
            ("€" * 80, SmsSegments("gsm7", 160, 1)),
            ("{" * 81, SmsSegments("gsm7", 162, 2)),
            # 306 septets, but the escape of € is not split from its code: three parts.
            ("a" * 152 + "€" + "a" * 152, SmsSegments("gsm7", 306, 3)),
            ("Ho so cua ong/ba da duoc tiep nhan @ 09:30.", SmsSegments("gsm7", 43, 1)),
            ("é à è ù ì ò Ä Ñ ß Δ", SmsSegments("gsm7", 19, 1)),
            ("ệ" * 70, SmsSegments("ucs2", 70, 1)),
            ("ệ" * 71, SmsSegments("ucs2", 71, 2)),
            ("đ" * 134, SmsSegments("ucs2", 134, 2)),
            ("đ" * 135, SmsSegments("ucs2", 135, 3)),
            ("a`", SmsSegments("ucs2", 2, 1)),
            ("😀" * 35, SmsSegments("ucs2", 70, 1)),
            # An emoji's two UTF-16 units stay in one part.
            ("ệ" * 66 + "😀" + "ệ" * 66, SmsSegments("ucs2", 134, 3)),
        ],
    )
    def test_segments(self, text, expected):
        """Single parts hold 160 septets or 70 units; parts of a long text 153 or 67."""
        assert sms_segments(text) == expected

    def test_vietnamese_text(self):
        """A Vietnamese sentence with tone marks is UCS-2; the long one takes five parts."""
        assert sms_segments(TEXT) == SmsSegments("ucs2", len(TEXT), 1)
        assert sms_segments(LONG_TEXT) == SmsSegments("ucs2", 290, 5)


class TestNumbers:
    @pytest.mark.parametrize(
        "text",
        [
            "0912345678",
            "+84912345678",
            "84912345678",
            "0912 345 678",
            "091.234.5678",
            "+84 91-234-5678",
            " 0912345678 ",
        ],
    )
    def test_mobile_forms(self, text):
        """The national and international forms normalise to 84 and nine digits."""
        assert normalise_mobile(text) == NORMALISED

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("0321234567", "84321234567"),
            ("0561234567", "84561234567"),
            ("0771234567", "84771234567"),
        ],
    )
    def test_prefixes(self, text, expected):
        """Viettel 03x, Vietnamobile 056 and Mobifone 077 are mobile numbers."""
        assert normalise_mobile(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "abc",
            "02438123456",
            "0612345678",
            "091234567",
            "09123456789",
            "+12025550100",
            "840912345678",
            "٠٩١٢٣٤٥٦٧٨",
            "0912-345-67a",
            "(091) 2345678",
        ],
    )
    def test_not_mobile(self, text):
        """Landlines, wrong lengths, other countries and non-ASCII digits are refused."""
        assert normalise_mobile(text) is None


class TestSignature:
    def test_sign_and_verify(self):
        """The header is sha256= and the hex HMAC of the body; verification is exact."""
        body = b'{"id": "GW-1"}'
        assert sign(body, "k") == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
        assert verify(body, sign(body, "k"), "k")
        assert verify(body, sign(body, "k").removeprefix("sha256="), "k")
        assert verify(body, sign(body, "k").upper().replace("SHA256=", "sha256="), "k")
        assert not verify(body + b" ", sign(body, "k"), "k")
        assert not verify(body, sign(body, "other"), "k")
        assert not verify(body, "sha256=không", "k")


class TestSend:
    def test_sms(self, sim):
        """The gateway gets the normalised number, the text, the reference and the sender."""
        receipt = send(sim.provider(sender="UBND-BENNGHE"))
        [sent] = sim.sent.values()
        assert receipt.provider_ref == sent.id
        assert receipt.status == "sending"
        assert (sent.channel, sent.to, sent.text, sent.reference, sent.sender) == (
            "sms",
            NORMALISED,
            TEXT,
            "msg-7",
            "UBND-BENNGHE",
        )
        [received] = sim.received
        lower = {name.lower(): value for name, value in received.headers.items()}
        assert lower["idempotency-key"] == "effect-7:sms"
        assert lower["content-type"] == "application/json; charset=utf-8"
        assert TEXT.encode() in received.body  # UTF-8, not \\u escapes

    def test_zalo(self, sim):
        """A Zalo provider sends to a follower's user id."""
        receipt = send(sim.provider("zalo"), message(MessageChannel.ZALO))
        assert sim.sent[receipt.provider_ref].to == FOLLOWER
        assert sim.sent[receipt.provider_ref].channel == "zalo"

    def test_sent_again_applied_once(self, sim):
        """A repeat of the key gets the same id; the gateway sends the message once."""
        first, second = send(sim.provider()), send(sim.provider())
        assert first == second
        assert len(sim.received) == 2
        assert len(sim.sent) == 1

    def test_retry_after_a_failure(self, sim):
        """A 503 is retryable; the next try goes through."""
        sim.fail_next()
        with pytest.raises(BackendError, match="HTTP 503 unavailable") as caught:
            send(sim.provider())
        assert caught.value.retryable is True
        assert send(sim.provider()).provider_ref in sim.sent

    def test_key_reused_with_another_body(self, sim):
        """The same key with another text is a conflict (a bug): not retried."""
        send(sim.provider())
        with pytest.raises(BackendError, match="409 idempotency_conflict") as caught:
            send(sim.provider(), message(text="Một nội dung khác"))
        assert caught.value.retryable is False

    def test_wrong_secret(self, sim):
        """A signature the gateway does not accept is final and points at secrets.secret."""
        with pytest.raises(BackendError, match=r"401 bad_signature.*secrets\.secret") as caught:
            send(sim.provider(secret=WRONG_SECRET))
        assert caught.value.retryable is False
        assert sim.sent == {}

    @pytest.mark.parametrize(
        ("code", "channel"),
        [
            ("invalid_number", MessageChannel.SMS),
            ("blocked", MessageChannel.SMS),
            ("not_follower", MessageChannel.ZALO),
            ("blocked", MessageChannel.ZALO),
        ],
    )
    def test_gateway_refuses_the_recipient(self, sim, code, channel):
        """The documented refusals of a recipient are final: the next channel takes over."""
        sent = message(channel)
        if code == "not_follower":
            sim.followers.clear()
        else:
            to = NORMALISED if channel is MessageChannel.SMS else FOLLOWER
            sim.refused[to] = code
        with pytest.raises(BackendError, match=f"HTTP 422 {code}") as caught:
            send(sim.provider(channel.value), sent)
        assert caught.value.retryable is False
        assert sim.sent == {}

    @pytest.mark.parametrize(
        ("status", "body", "retryable", "shown"),
        [
            (500, b"", True, "HTTP 500"),
            (502, b"<html>Bad gateway</html>", True, "HTTP 502"),
            (
                429,
                b'{"error": "rate_limited"}',
                True,
                "HTTP 429 rate_limited: too many requests, try later",
            ),
            (400, b'{"error": "weird_code"}', False, "HTTP 400 weird_code"),
            (400, b'{"error": "S\xe1\xbb\x91 0912345678 sai"}', False, "HTTP 400"),
            (302, b"", False, "HTTP 302"),
            (200, b'{"status": "accepted"}', True, "HTTP 200 without a message id"),
            (202, b"not json", True, "HTTP 202 without a message id"),
        ],
    )
    def test_answers(self, sim, status, body, retryable, shown):
        """Statuses and codes decide retrying; an unknown free text is not repeated."""
        sim.fail_next(status=status, body=body)
        with pytest.raises(BackendError) as caught:
            send(sim.provider())
        assert caught.value.retryable is retryable
        assert str(caught.value) == f"sms gateway 'sms': {shown}"

    def test_timeout(self, sim):
        """A gateway that does not answer within timeout_s is retried."""
        sim.hang_next()
        started = time.monotonic()
        with pytest.raises(BackendError, match="timed out") as caught:
            send(sim.provider(timeout_s=0.3))
        assert caught.value.retryable is True
        assert time.monotonic() - started < 3

    def test_unreachable(self):
        """Nothing listening is retried."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        provider = Provider(
            "sms", "sms_gateway", {"url": f"http://127.0.0.1:{port}/v1"}, {"secret": "s"}
        )
        with pytest.raises(BackendError, match="ConnectionRefusedError") as caught:
            send(provider)
        assert caught.value.retryable is True


class TestRefusals:
    @pytest.mark.parametrize("address", ["02438123456", "0612345678", "", "+12025550100"])
    def test_not_a_mobile_number(self, sim, address):
        """An address that is not a Vietnamese mobile number never reaches the gateway."""
        with pytest.raises(BackendError, match="not a Vietnamese mobile number") as caught:
            send(sim.provider(), message(address=address))
        assert caught.value.retryable is False
        assert sim.received == []

    @pytest.mark.parametrize("address", ["", "   ", "user id", "id\n2"])
    def test_not_a_zalo_user(self, sim, address):
        """An empty or broken Zalo user id never reaches the gateway."""
        with pytest.raises(BackendError, match="not a Zalo user id") as caught:
            send(sim.provider("zalo"), message(MessageChannel.ZALO, address=address))
        assert caught.value.retryable is False
        assert sim.received == []

    def test_over_the_sms_limit(self, sim):
        """A five-part Vietnamese text is refused by a three-part channel, saying the limit."""
        with pytest.raises(BackendError) as caught:
            send(sim.provider(), message(text=LONG_TEXT))
        assert caught.value.retryable is False
        assert str(caught.value) == (
            "sms gateway 'sms': the text takes 5 SMS parts (ucs2, 290 units), "
            "over the channel's limit of 3 (settings.max_segments)"
        )
        assert sim.received == []
        assert send(sim.provider(max_segments=5), message(text=LONG_TEXT)).status == "sending"

    def test_over_the_zalo_limit(self, sim):
        """A Zalo text longer than settings.max_length is refused, saying the limit."""
        zalo = message(MessageChannel.ZALO, text=LONG_TEXT)
        with pytest.raises(BackendError, match="over the channel's limit of 100") as caught:
            send(sim.provider("zalo", max_length=100), zalo)
        assert caught.value.retryable is False
        assert send(sim.provider("zalo"), zalo).status == "sending"

    @pytest.mark.parametrize(
        ("provider_channel", "channel"),
        [
            ("sms", MessageChannel.EMAIL),
            ("sms", MessageChannel.ZALO),
            ("zalo", MessageChannel.SMS),
            ("zalo", MessageChannel.WEBHOOK),
        ],
    )
    def test_another_channel(self, sim, provider_channel, channel):
        """A provider serves its one channel: another channel's message is refused."""
        with pytest.raises(BackendError, match=f"serves {provider_channel} only") as caught:
            send(sim.provider(provider_channel), message(channel))
        assert caught.value.retryable is False

    def test_no_text(self, sim):
        """An empty message is not sent."""
        with pytest.raises(BackendError, match="no text") as caught:
            send(sim.provider(), message(text=""))
        assert caught.value.retryable is False

    def test_errors_and_logs_hold_no_address_or_text(self, sim, caplog):
        """No failure or log line repeats the number, the user id or the text."""
        caplog.set_level(logging.DEBUG)
        sim.refused[NORMALISED] = "blocked"
        errors = []
        for provider, sent, steer in [
            (sim.provider(), message(), None),
            (sim.provider(), message(text=LONG_TEXT), None),
            (sim.provider(), message(address="02438123456"), None),
            (sim.provider("zalo"), message(MessageChannel.ZALO, address="chua-theo-doi"), None),
            (sim.provider(), message(), (400, b'{"error": "so 0912345678 sai"}')),
            (sim.provider(), message(), (503, b"0912345678")),
        ]:
            if steer is not None:
                sim.fail_next(status=steer[0], body=steer[1])
            with pytest.raises(BackendError) as caught:
                send(provider, sent)
            errors.append(str(caught.value))
        send(sim.provider(), message(address="0987654321"))
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("dvcflow")]
        assert ours
        for text in [*errors, *ours]:
            for secret in (NUMBER, NORMALISED, "912345678", "chua-theo-doi", "0987654321"):
                assert secret not in text
            assert "hồ sơ" not in text
            assert "Kính gửi" not in text


class TestReceipts:
    @pytest.mark.parametrize(("status", "expected"), sorted(STATUSES.items()))
    def test_statuses(self, sim, receiver, status, expected):
        """Each gateway status maps onto a MessageStatus; the receipt names the message."""
        receipt = send(sim.provider())
        answer = sim.deliver(receipt.provider_ref, status, detail="not_follower")
        assert answer[0] == 200
        [parsed] = receiver.receipts
        assert parsed.status is expected
        assert parsed.reference == "msg-7"
        assert parsed.provider_ref == receipt.provider_ref
        assert parsed.event_id.startswith("EV-")
        assert parsed.detail == "not_follower"

    def test_mapping(self):
        """The table covers the four outcomes dvcflow tells apart, and ``sent``."""
        assert dict(STATUSES) == {
            "sent": MessageStatus.SENDING,
            "delivered": MessageStatus.DELIVERED,
            "expired": MessageStatus.TEMPORARY_FAILURE,
            "undeliverable": MessageStatus.PERMANENT_FAILURE,
            "failed": MessageStatus.TECHNICAL_FAILURE,
        }

    def test_free_text_detail_is_dropped(self, sim, receiver):
        """A detail that is not a code (it could quote the number) is not kept."""
        sim.deliver("GW-9", "undeliverable", detail="Số 0912345678 không tồn tại")
        [parsed] = receiver.receipts
        assert parsed.detail is None

    @pytest.mark.parametrize(
        "forge",
        ["other secret", "no header", "altered body", "empty signature"],
    )
    def test_forged(self, sim, receiver, forge):
        """A receipt that does not authenticate is refused with SignatureError."""
        body = sim.receipt_body("GW-1")
        headers = sim.sign(body, "khoa-gia" if forge == "other secret" else None)
        if forge == "no header":
            headers = {}
        elif forge == "altered body":
            body = body.replace(b"delivered", b"expired!!")
        elif forge == "empty signature":
            headers = {"X-Signature": ""}
        assert sim.post(body, headers)[0] == 401
        [error] = receiver.errors
        assert isinstance(error, SignatureError)
        assert receiver.receipts == []

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[1, 2]",
            b'{"event_id": "EV-1", "reference": "msg-7", "id": "GW-1"}',
            b'{"event_id": "EV-1", "reference": "", "id": "GW-1", "status": "delivered"}',
            b'{"event_id": 1, "reference": "msg-7", "id": "GW-1", "status": "delivered"}',
            b'{"event_id": "EV-1", "reference": "msg-7", "id": "GW-1", "status": "read"}',
        ],
    )
    def test_malformed(self, sim, receiver, body):
        """A signed body that is not a receipt is refused as malformed."""
        assert sim.post(body, sim.sign(body))[0] == 400
        [error] = receiver.errors
        assert isinstance(error, CallbackError)
        assert error.kind == "malformed"

    def test_oversize(self):
        """A body over the limit is refused unread."""
        body = b" " * (MAX_MESSAGE_BYTES + 1)
        provider = Provider("sms", "sms_gateway", {}, {"secret": SECRET})
        with pytest.raises(CallbackError, match="malformed: larger than"):
            SmsGateway().dvcflow_parse_receipt(provider=provider, body=body, headers={})

    def test_header_name_in_any_case(self, sim):
        """Header names are matched in any case."""
        body = sim.receipt_body("GW-1")
        headers = {"x-signature": sim.sign(body)["X-Signature"]}
        receipt = SmsGateway().dvcflow_parse_receipt(
            provider=sim.provider(), body=body, headers=headers
        )
        assert receipt is not None
        assert receipt.status is MessageStatus.DELIVERED


class TestCheckProvider:
    def problems(self, settings: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
        provider = Provider(
            "sms", "sms_gateway", settings, {"secret": "s"} if secrets is None else secrets
        )
        return SmsGateway().dvcflow_check_provider(provider=provider)

    def test_a_good_provider(self):
        """A URL and the secret are all it needs."""
        assert self.problems({"url": "https://sms.example.vn/v1/messages"}) == []

    @pytest.mark.parametrize(
        ("settings", "secrets", "problem"),
        [
            ({}, None, "settings.url: required"),
            ({"url": "ftp://x.vn"}, None, "settings.url: required"),
            ({"url": "https://x.vn", "channel": "email"}, None, "settings.channel"),
            ({"url": "https://x.vn", "max_segments": 0}, None, "settings.max_segments"),
            ({"url": "https://x.vn", "max_segments": 2.5}, None, "settings.max_segments"),
            ({"url": "https://x.vn", "max_length": True}, None, "settings.max_length"),
            ({"url": "https://x.vn", "sender": ""}, None, "settings.sender"),
            ({"url": "https://x.vn", "sender": "A\nB"}, None, "settings.sender"),
            ({"url": "https://x.vn", "timeout_s": 0}, None, "settings.timeout_s"),
            ({"url": "https://x.vn", "connect_timeout_s": "5"}, None, "settings.connect"),
            ({"url": "https://x.vn", "brandname": "X"}, None, "settings.brandname: unknown"),
            ({"url": "https://x.vn"}, {}, "secrets.secret: required"),
        ],
    )
    def test_problems(self, settings, secrets, problem):
        """Each problem names its setting."""
        [found] = self.problems(settings, secrets)
        assert found.startswith(problem)

    def test_other_types_are_not_answered(self):
        """Another plugin's provider gets no answer from any hook."""
        other = Provider("mail", "smtp", {})
        plugin = SmsGateway()
        assert plugin.dvcflow_check_provider(provider=other) is None
        assert plugin.dvcflow_send_message(provider=other, message=message()) is None
        assert plugin.dvcflow_parse_receipt(provider=other, body=b"", headers={}) is None


class TestFacade:
    def test_through_backends(self, sim):
        """Registered with pluggy, sends and receipts go through the typed façade."""
        sms, zalo = sim.provider("sms"), sim.provider("zalo")
        backends = Backends(
            providers={"sms": sms, "zalo": zalo},
            routing=Routing(),
            plugins=[SmsGateway()],
            entry_points=False,
        )
        receipt = backends.send_message(zalo, message(MessageChannel.ZALO))
        body = sim.receipt_body(str(receipt.provider_ref), "undeliverable", detail="blocked")
        parsed = backends.parse_receipt(zalo, body, sim.sign(body))
        assert parsed.status is MessageStatus.PERMANENT_FAILURE
        assert parsed.detail == "blocked"
        assert json.loads(body)["reference"] == parsed.reference
        with pytest.raises(BackendError, match="serves zalo only"):
            backends.send_message(zalo, message())

    def test_bad_settings_stop_the_engine_opening(self):
        """A provider with problems is a configuration error at start-up."""
        broken = Provider("zalo", "sms_gateway", {"channel": "viber"}, {})
        with pytest.raises(ConfigurationError) as caught:
            Backends(
                providers={"zalo": broken},
                routing=Routing(),
                plugins=[SmsGateway()],
                entry_points=False,
                source="dvcflow.toml",
            )
        text = str(caught.value)
        assert "dvcflow.toml: providers.zalo: settings.url: required" in text
        assert "dvcflow.toml: providers.zalo: settings.channel" in text
        assert "dvcflow.toml: providers.zalo: secrets.secret: required" in text
