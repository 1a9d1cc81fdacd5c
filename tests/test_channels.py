"""The three channel plugins together behind one `Backends` façade, each with its real peer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dvcflow._backend_config import Routing
from dvcflow._backends import Message, MessageChannel, MessageStatus, Provider
from dvcflow._hooks import Backends
from dvcflow.errors import BackendError
from dvcflow.plugins.sms_gateway import SmsGateway
from dvcflow.plugins.smtp import SmtpEmail
from dvcflow.plugins.webhook import Webhook
from sms_gateway_sim import SmsGatewaySim
from smtp_server import SmtpServer
from webhook_receiver import Receiver

SECRET = "khoa-bi-mat-kenh"  # noqa: S105 - a test secret
TEXT = "Hồ sơ G09.20-260301-0001 đã có kết quả."


def message(channel: MessageChannel, address: str) -> Message:
    return Message(
        key=f"effect-1:{channel.value}",
        reference=f"msg-1-{channel.value}",
        channel=channel,
        address=address,
        text=TEXT,
        subject="Kết quả hồ sơ",
        event="result_ready",
    )


@pytest.fixture
def peers() -> Iterator[dict[str, Any]]:
    with (
        SmtpServer() as smtp,
        SmsGatewaySim(secret=SECRET) as sim,
        Receiver(secret=SECRET) as receiver,
    ):
        yield {"smtp": smtp, "sim": sim, "receiver": receiver}


@pytest.fixture
def backends(peers) -> Backends:
    providers = {
        "mail": Provider(
            "mail",
            "smtp",
            {
                "host": "127.0.0.1",
                "port": peers["smtp"].port,
                "security": "none",
                "sender": "noreply@dvc.example.gov.vn",
                "local_hostname": "dvcflow.test",
            },
        ),
        "sms": peers["sim"].provider("sms"),
        "zalo": peers["sim"].provider("zalo"),
        "inbox": Provider(
            "inbox", "webhook", {"url": peers["receiver"].endpoint}, {"secret": SECRET}
        ),
    }
    return Backends(
        providers=providers,
        routing=Routing(),
        plugins=[SmtpEmail(), SmsGateway(), Webhook()],
        entry_points=False,
    )


class TestChannels:
    def test_each_channel_reaches_its_peer(self, backends, peers):
        """One façade, four providers: each message reaches its own peer, once."""
        sent = {
            "mail": message(MessageChannel.EMAIL, "an@example.vn"),
            "sms": message(MessageChannel.SMS, "0912345678"),
            "inbox": message(MessageChannel.WEBHOOK, "officer-inbox"),
        }
        receipts = {
            name: backends.send_message(backends.provider(name), msg) for name, msg in sent.items()
        }
        assert {name: r.status for name, r in receipts.items()} == {
            "mail": "sending",
            "sms": "sending",
            "inbox": "delivered",
        }
        assert len(peers["smtp"].delivered) == 1
        assert len(peers["sim"].sent) == 1
        assert len(peers["receiver"].applied) == 1
        assert set(backends.types) >= {"smtp", "sms_gateway", "webhook"}

    def test_fallback_from_zalo_to_sms(self, backends, peers):
        """Not a follower: a final refusal on Zalo, then SMS carries the message."""
        with pytest.raises(BackendError, match="not_follower") as caught:
            backends.send_message(
                backends.provider("zalo"), message(MessageChannel.ZALO, "4372819046125537891")
            )
        assert caught.value.retryable is False
        sms = backends.provider("sms")
        receipt = backends.send_message(sms, message(MessageChannel.SMS, "+84 912 345 678"))
        body = peers["sim"].receipt_body(str(receipt.provider_ref), "delivered")
        parsed = backends.parse_receipt(sms, body, peers["sim"].sign(body))
        assert parsed.status is MessageStatus.DELIVERED
        assert parsed.reference == "msg-1-sms"
