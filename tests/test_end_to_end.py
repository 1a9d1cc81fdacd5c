"""A level-4 dossier end to end, every peer a real server on loopback, on SQLite and PostgreSQL.

Online submission; reception; processing; a result file stored on disk and signed with Ed25519;
both fee kinds paid online through the national payment platform simulator (INIT over HTTP,
signed CONFIRM callbacks to the portal's endpoint); the result returned electronically (the
first download) for one dossier and by public post (the courier simulator's signed status
callbacks) for another; every notification on its channel: SMS through the gateway simulator
with its delivery receipts, email through a real SMTP server, officers through signed
webhooks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from courier_sim import CourierSim
from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Config,
    DeliveryMethod,
    DeliveryStatus,
    DossierSnapshot,
    Engine,
    FrozenClock,
    MessageChannel,
    MessageStatus,
)
from dvcflow.plugins.ed25519 import generate_key
from gateway import Gateway, Portal
from pg import ENVIRON, Database
from sms_gateway_sim import SmsGatewaySim
from smtp_server import SmtpServer
from webhook_receiver import Receiver

HERE = Path(__file__).parent
NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
AGENCY = "SKHDT.01"
SECRETS = {
    "E2E_PAYGOV": "bi-mat-cong-thanh-toan",
    "E2E_SMS": "bi-mat-sms",
    "E2E_INBOX": "bi-mat-hop-thu",
    "E2E_POST": "bi-mat-buu-chinh",
}
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)
PDF = b"%PDF-1.7 Giay chung nhan dang ky doanh nghiep so 0109999999"


def staff(role: str) -> Actor:
    return Actor.staff(f"{role}-1", roles={role}, agency=AGENCY)


@attrs.define
class Peers:
    gateway: Gateway
    smtp: SmtpServer
    sms: SmsGatewaySim
    inbox: Receiver
    courier: CourierSim
    endpoints: list[Portal] = attrs.Factory(list)


class Site:
    """The portal: the engine, its endpoints mounted on loopback, a worker."""

    def __init__(self, db: Database, catalog: Catalog, peers: Peers, files: Path) -> None:
        seed, _public = generate_key()
        environ = ENVIRON | SECRETS | {"E2E_SIGNER": seed}
        config = Config.from_data(
            {
                "providers": {
                    "paygov": {
                        "type": "national_payment",
                        "settings": peers.gateway.settings(),
                        "secrets": {"secret": "E2E_PAYGOV"},
                    },
                    "mail": {
                        "type": "smtp",
                        "settings": {
                            "host": "127.0.0.1",
                            "port": peers.smtp.port,
                            "security": "none",
                            "sender": "motcua@skhdt.example.vn",
                        },
                    },
                    "sms": {
                        "type": "sms_gateway",
                        "settings": {"url": peers.sms.api, "channel": "sms"},
                        "secrets": {"secret": "E2E_SMS"},
                    },
                    "inbox": {
                        "type": "webhook",
                        "settings": {"url": peers.inbox.endpoint},
                        "secrets": {"secret": "E2E_INBOX"},
                    },
                    "post": {
                        "type": "http_courier",
                        "settings": peers.courier.settings(),
                        "secrets": {"secret": "E2E_POST"},
                    },
                    "files": {"type": "filesystem", "settings": {"root": str(files)}},
                    "signer": {"type": "ed25519", "secrets": {"private_key": "E2E_SIGNER"}},
                },
                "routing": {
                    "payment": "paygov",
                    "notification": "sms",
                    "delivery": "post",
                    "storage": "files",
                    "signing": "signer",
                },
                "notifications": {
                    "channels": {"email": "mail", "sms": "sms", "webhook": "inbox"},
                },
            }
        )
        self.clock = FrozenClock(NOW)
        options = db.options({"config": config, "environ": environ})
        self.engine = Engine.open(db.url, catalog=catalog, clock=self.clock, **options)
        self.worker = self.engine.outbox.worker(random_unit=lambda: 0.5)
        self.peers = peers
        endpoints = {
            "payments": self.engine.payments.endpoint("paygov"),
            "receipts": self.engine.notifications.endpoint("sms"),
            "courier": self.engine.deliveries.endpoint("post"),
        }
        self.urls = {}
        for name, handle in endpoints.items():
            portal = Portal(handle)
            portal.start()
            peers.endpoints.append(portal)
            self.urls[name] = portal.url
        peers.gateway.callback_url = self.urls["payments"]
        peers.sms.callback_url = self.urls["receipts"]
        peers.courier.callback_url = self.urls["courier"]

    def close(self) -> None:
        for portal in self.peers.endpoints:
            portal.stop()
        self.engine.close()

    def step(self) -> None:
        """Half an hour later, the outbox delivered."""
        self.clock.advance(dt.timedelta(minutes=30))
        report = self.worker.drain()
        assert report.incidents == 0, self.engine.outbox.incidents()

    def through_processing(self, delivery: DeliveryMethod) -> DossierSnapshot:
        engine = self.engine
        d = engine.submit(
            "2.001610",
            applicant=AN,
            actor=Actor.citizen("citizen-1"),
            documents=["application"],
            delivery=delivery,
            address={"address": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"}
            if delivery is DeliveryMethod.POSTAL
            else None,
            notify={"channels": ["sms", "email"]},
        )
        self.step()
        engine.fire(d.id, "receive", actor=staff("receiving_officer"))
        self.step()
        engine.fire(d.id, "start", actor=staff("department_head"), payload={"specialist": "cv-7"})
        self.step()
        result = engine.results.attach(d.id, PDF, media_type="application/pdf", name="gcn.pdf")
        engine.results.sign(d.id, result.digest)
        engine.fire(d.id, "resolve", actor=staff("leader"), payload={"result": result.digest})
        self.step()
        engine.fire(d.id, "request_payment", actor=staff("specialist"))
        self.step()
        return engine.get(d.id)

    def pay_everything(self, dossier: str) -> None:
        for payment in self.engine.payments.of(dossier):
            if payment.state == "awaiting":
                status, body = self.peers.gateway.pay(payment.reference)
                assert (status, json.loads(body)["MaLoi"]) == (200, "00")
        self.step()

    def events_by_channel(self, dossier: str) -> dict[str, set[MessageChannel]]:
        found: dict[str, set[MessageChannel]] = {}
        for message in self.engine.notifications.of(dossier):
            found.setdefault(message.event, set()).add(message.channel)
        return found


@pytest.fixture
def site(db: Database, examples_dir: Path, tmp_path: Path) -> Iterator[Site]:
    catalog = Catalog.from_path(examples_dir, HERE / "procedures")
    with (
        Gateway(partner="SKHDT01", secret=SECRETS["E2E_PAYGOV"]) as gateway,
        SmtpServer() as smtp,
        SmsGatewaySim(secret=SECRETS["E2E_SMS"]) as sms,
        Receiver(SECRETS["E2E_INBOX"]) as inbox,
        CourierSim(account="SKHDT01", secret=SECRETS["E2E_POST"]) as courier,
    ):
        site = Site(db, catalog, Peers(gateway, smtp, sms, inbox, courier), tmp_path / "files")
        try:
            yield site
        finally:
            site.close()


APPLICANT_EVENTS: dict[str, set[MessageChannel]] = {
    "submitted": {MessageChannel.EMAIL},
    "received": {MessageChannel.SMS},
    "form_01": {MessageChannel.EMAIL},
    "result_ready": {MessageChannel.SMS},
    "payment_due": {MessageChannel.SMS},
    "payment_received": {MessageChannel.SMS},
    "result_returned": {MessageChannel.SMS},
}


class TestEndToEnd:
    def test_electronic_result_after_online_payment(self, site: Site):
        """Submitted online, paid online, downloaded: returned, and everyone was told."""
        d = site.through_processing(DeliveryMethod.ELECTRONIC)
        assert d.state == "awaiting_payment"
        assert sorted(m["SoTien"] for m in site.peers.gateway.messages("INIT")) == [50_000, 100_000]
        site.pay_everything(d.id)
        ready = site.engine.get(d.id)
        assert (ready.state, ready.dossier.fees_settled) == ("result_ready", True)

        link = site.engine.results.link(d.id)
        download = site.engine.results.open(link)
        assert (download.content, download.first) == (PDF, True)
        assert download.file.signature is not None
        assert download.file.signature.algorithm == "ed25519"
        site.step()
        returned = site.engine.get(d.id)
        assert returned.state == "returned"
        assert site.engine.verify_history(d.id) == returned.version

        channels = site.events_by_channel(d.id)
        assert {event: channels[event] for event in APPLICANT_EVENTS} == APPLICANT_EVENTS
        assert channels["assigned"] == {MessageChannel.WEBHOOK}
        self._check_peers(site, d)

    def test_postal_result_after_online_payment(self, site: Site):
        """Paid online, then posted: the courier's delivered report returns the result."""
        d = site.through_processing(DeliveryMethod.POSTAL)
        assert site.peers.courier.shipments == {}  # nothing posted while fees are owed
        site.pay_everything(d.id)
        (delivery,) = site.engine.deliveries.of(d.id)
        assert (delivery.method, delivery.provider) == (DeliveryMethod.POSTAL, "post")
        shipment = site.peers.courier.shipments[delivery.reference]
        assert delivery.provider_ref == shipment.waybill
        for status in ("pickup_requested", "picked_up", "in_transit"):
            assert site.peers.courier.advance(delivery.reference, status)[0] == 204
        assert site.engine.get(d.id).state == "result_ready"
        receiver = {"name": "Nguyễn Văn An", "relation": "holder"}
        assert (
            site.peers.courier.advance(delivery.reference, "delivered", receiver=receiver)[0] == 204
        )
        site.step()
        returned = site.engine.get(d.id)
        assert returned.state == "returned"
        assert site.engine.deliveries.of(d.id)[0].status is DeliveryStatus.DELIVERED
        assert site.engine.verify_history(d.id) == returned.version
        channels = site.events_by_channel(d.id)
        assert {event: channels[event] for event in APPLICANT_EVENTS} == APPLICANT_EVENTS
        self._check_peers(site, d)

    @staticmethod
    def _check_peers(site: Site, d: DossierSnapshot) -> None:
        """What each real peer received, and the SMS receipts coming back."""
        code = site.engine.get(d.id).code
        assert code is not None
        subjects = [m.message["Subject"] for m in site.peers.smtp.delivered]
        assert any(code in subject for subject in subjects)
        assert all(m.rcpt_tos == ["an@example.vn"] for m in site.peers.smtp.delivered)
        texts = [sent.text for sent in site.peers.sms.sent.values()]
        assert any(code in text for text in texts)
        assert {sent.to for sent in site.peers.sms.sent.values()} == {"84912345678"}
        assert site.peers.inbox.applied  # the officers' webhooks, signature checked
        for ident in list(site.peers.sms.sent):
            assert site.peers.sms.deliver(ident)[0] == 204
        delivered = {
            m.status for m in site.engine.notifications.of(d.id) if m.channel is MessageChannel.SMS
        }
        assert delivered == {MessageStatus.DELIVERED}
