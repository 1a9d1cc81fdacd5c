"""Results on SQLite and PostgreSQL: files and signatures, download links, parcels, collection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    BackendError,
    CallbackError,
    Catalog,
    Config,
    DeliveryMethod,
    DeliveryStatus,
    DossierSnapshot,
    Engine,
    FrozenClock,
    NotFoundError,
    RefusedError,
    SignatureError,
)
from dvcflow.plugins import FakeBackend
from pg import Database
from support import drive

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
HERE = Path(__file__).parent
FAKE = {
    "providers": {"fake": {"type": "fake"}},
    "routing": {
        "payment": "fake",
        "notification": "fake",
        "delivery": "fake",
        "storage": "fake",
        "signing": "fake",
    },
}
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)
ADDRESS = {"address": "Số 1 Tràng Tiền, phường Hoàn Kiếm, Hà Nội"}
PDF = b"%PDF-1.7 giay chung nhan dang ky doanh nghiep"


def staff(role: str, agency: str = "SKHDT.01") -> Actor:
    return Actor.staff(f"{role}-1", roles={role}, agency=agency)


class Site:
    def __init__(self, db: Database, catalog: Catalog, config: dict[str, Any]) -> None:
        self.clock = FrozenClock(NOW)
        options = db.options({"config": Config.from_data(config)})
        self.engine = Engine.open(db.url, catalog=catalog, clock=self.clock, **options)
        self.fake = self.engine.backends.plugin(FakeBackend)
        self.worker = self.engine.outbox.worker(random_unit=lambda: 0.5)

    def resolved(
        self, delivery: DeliveryMethod, *, sign: bool = True, pay: bool = True
    ) -> DossierSnapshot:
        """An enterprise registration resolved with an attached result (signed, paid)."""
        engine = self.engine
        d = engine.submit(
            "2.001610",
            applicant=AN,
            actor=Actor.citizen("citizen-1"),
            documents=["application"],
            delivery=delivery,
            address=ADDRESS if delivery is DeliveryMethod.POSTAL else None,
        )
        d = engine.fire(d.id, "receive", actor=staff("receiving_officer"))
        d = engine.fire(d.id, "start", actor=staff("department_head"), payload={"specialist": "s"})
        result = engine.results.attach(d.id, PDF, media_type="application/pdf", name="gcn.pdf")
        if sign:
            engine.results.sign(d.id, result.digest)
        d = engine.fire(
            d.id,
            "resolve",
            actor=staff("leader"),
            payload={"result": result.digest, "signed": True},
        )
        if pay:
            engine.fire(d.id, "request_payment", actor=staff("specialist"))
            self.worker.drain()
            for payment in engine.payments.of(d.id):
                if payment.state == "awaiting":
                    engine.payments.callback("fake", *self.fake.pay(payment.reference))
        self.worker.drain()
        return engine.get(d.id)


@pytest.fixture(scope="module")
def delivery_catalog(examples_dir: Path) -> Catalog:
    return Catalog.from_path(examples_dir, HERE / "procedures")


@pytest.fixture
def site(db: Database, delivery_catalog: Catalog) -> Iterator[Site]:
    site = Site(db, delivery_catalog, FAKE)
    try:
        yield site
    finally:
        site.engine.close()


class TestFiles:
    def test_attached_result_is_stored_by_content(self, site: Site):
        """Attaching stores the file through the storage provider, named by its SHA-256."""
        d = site.resolved(DeliveryMethod.ELECTRONIC, pay=False)
        (record,) = site.engine.results.files(d.id)
        assert record.digest.startswith("sha256:")
        assert (record.size, record.media_type, record.provider) == (
            len(PDF),
            "application/pdf",
            "fake",
        )
        assert site.engine.results.content(d.id, record.digest) == PDF
        assert record.signature is not None
        assert record.signature.algorithm == "fake-hmac-sha256"

    def test_unsigned_result_is_refused_whatever_the_payload_says(self, site: Site):
        """A signed-result procedure refuses an attached result without a valid signature."""
        with pytest.raises(RefusedError) as caught:
            site.resolved(DeliveryMethod.ELECTRONIC, sign=False)
        assert caught.value.reasons == ("result_unsigned",)

    def test_tampered_store_is_caught(self, site: Site):
        """Content that no longer has its digest is refused on the way out."""
        d = site.resolved(DeliveryMethod.ELECTRONIC, pay=False)
        (record,) = site.engine.results.files(d.id)
        site.fake.files[record.digest] = b"%PDF forged"
        with pytest.raises(SignatureError, match="no longer has that digest"):
            site.engine.results.content(d.id, record.digest)

    def test_bad_attachments(self, site: Site):
        """Empty files and unknown roles are refused; files of unknown dossiers not found."""
        d = site.resolved(DeliveryMethod.ELECTRONIC, pay=False)
        with pytest.raises(ValueError, match="content: is empty"):
            site.engine.results.attach(d.id, b"", media_type="text/plain", name="x")
        with pytest.raises(ValueError, match="role"):
            site.engine.results.attach(d.id, b"x", media_type="text/plain", name="x", role="x")
        with pytest.raises(NotFoundError):
            site.engine.results.attach("nobody", b"x", media_type="text/plain", name="x")


class TestElectronic:
    def test_first_download_returns_the_result(self, site: Site):
        """The link gives the signed file; its first use returns the result, once."""
        d = site.resolved(DeliveryMethod.ELECTRONIC)
        assert d.state == "result_ready"
        (delivery,) = site.engine.deliveries.of(d.id)
        assert (delivery.method, delivery.status) == (
            DeliveryMethod.ELECTRONIC,
            DeliveryStatus.REGISTERED,
        )
        link = site.engine.results.link(d.id)
        assert link.startswith(site.engine.config.delivery.download_url)
        first = site.engine.results.open(link)
        assert (first.content, first.first, first.file.name) == (PDF, True, "gcn.pdf")
        assert site.engine.get(d.id).state == "returned"
        again = site.engine.results.open(link)
        assert (again.content, again.first) == (PDF, False)
        returns = [e for e in site.engine.history(d.id) if e.trigger == "return_result"]
        assert [e.actor for e in returns] == ["system"]

    def test_no_link_while_a_fee_is_unpaid(self, site: Site):
        """Neither a link nor the file before every fee is paid."""
        d = site.resolved(DeliveryMethod.ELECTRONIC, pay=False)
        with pytest.raises(RefusedError) as caught:
            site.engine.results.link(d.id)
        assert caught.value.reasons == ("fees_unpaid",)
        assert site.engine.deliveries.of(d.id) == []

    def test_expired_and_forged_links(self, site: Site):
        """An expired link and an altered one are refused and logged; nothing is returned."""
        d = site.resolved(DeliveryMethod.ELECTRONIC)
        link = site.engine.results.link(d.id)
        token = link.rsplit("/", 1)[-1]
        payload, mac = token.split(".")
        forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
        with pytest.raises(SignatureError):
            site.engine.results.open(forged)
        site.clock.advance(dt.timedelta(hours=73))
        with pytest.raises(CallbackError) as caught:
            site.engine.results.open(link)
        assert caught.value.kind == "expired"
        with pytest.raises(CallbackError):
            site.engine.results.open("not-a-link")
        assert site.engine.get(d.id).state == "result_ready"
        kinds = [r.kind for r in site.engine.payments.security_log()]
        assert kinds == ["malformed", "expired", "bad_signature"]


class TestPost:
    def test_parcel_is_dispatched_after_the_fees_and_returned_on_delivery(self, site: Site):
        """Registered with the courier once paid; its reports move it; delivered returns it."""
        d = site.resolved(DeliveryMethod.POSTAL)
        (delivery,) = site.engine.deliveries.of(d.id)
        assert (delivery.status, delivery.provider) == (DeliveryStatus.REGISTERED, "fake")
        (request,) = site.fake.deliveries
        assert dict(request.recipient) == {
            "name": "Nguyễn Văn An",
            "phone": "0912345678",
            "address": ADDRESS["address"],
        }
        assert request.reference == delivery.reference
        assert request.documents == (site.engine.results.files(d.id)[0].digest,)
        for status in (DeliveryStatus.PICKED_UP, DeliveryStatus.IN_TRANSIT):
            body, headers = site.fake.courier(delivery.reference, status)
            assert site.engine.deliveries.callback("fake", body, headers) == "applied"
        assert site.engine.get(d.id).state == "result_ready"
        body, headers = site.fake.courier(
            delivery.reference,
            DeliveryStatus.DELIVERED,
            receiver={"name": "Nguyễn Thị Cúc", "relation": "representative"},
        )
        assert site.engine.deliveries.callback("fake", body, headers) == "applied"
        returned = site.engine.get(d.id)
        assert returned.state == "returned"
        (event,) = [e for e in site.engine.history(d.id) if e.trigger == "return_result"]
        assert (event.actor, event.data["receiver_relation"]) == ("system", "representative")
        assert site.engine.personal_data(d.id)["receiver"]["name"] == "Nguyễn Thị Cúc"
        assert site.engine.deliveries.callback("fake", body, headers) == "duplicate"
        late = site.fake.courier(delivery.reference, DeliveryStatus.IN_TRANSIT)
        assert site.engine.deliveries.callback("fake", *late) == "stale"
        assert site.engine.deliveries.of(d.id)[0].status is DeliveryStatus.DELIVERED

    def test_no_parcel_before_the_fees_are_paid(self, site: Site):
        """A postal result is not registered while a fee is owed."""
        d = site.resolved(DeliveryMethod.POSTAL, pay=False)
        assert site.engine.deliveries.of(d.id) == []
        assert site.fake.deliveries == []

    def test_revoked_before_pickup_not_after(self, site: Site):
        """A parcel can be revoked until the courier has it."""
        d = site.resolved(DeliveryMethod.POSTAL)
        revoked = site.engine.deliveries.revoke(d.id)
        assert revoked.status is DeliveryStatus.CANCELLED
        with pytest.raises(NotFoundError):
            site.engine.deliveries.revoke(d.id)
        other = site.resolved(DeliveryMethod.POSTAL)
        (delivery,) = site.engine.deliveries.of(other.id)
        site.engine.deliveries.callback(
            "fake", *site.fake.courier(delivery.reference, DeliveryStatus.PICKED_UP)
        )
        with pytest.raises(RefusedError) as caught:
            site.engine.deliveries.revoke(other.id)
        assert caught.value.reasons == ("picked_up",)

    def test_failed_delivery_tells_an_officer(self, site: Site):
        """A parcel that could not be delivered is an officer's notification."""
        d = site.resolved(DeliveryMethod.POSTAL)
        (delivery,) = site.engine.deliveries.of(d.id)
        site.engine.deliveries.callback(
            "fake", *site.fake.courier(delivery.reference, DeliveryStatus.FAILED)
        )
        site.worker.drain()
        (message,) = [m for m in site.fake.messages if m.event == "delivery_failed"]
        assert message.channel.value == "webhook"
        assert site.engine.get(d.id).state == "result_ready"

    def test_forged_and_unknown_reports(self, site: Site):
        """A report that does not authenticate or names no delivery changes nothing."""
        d = site.resolved(DeliveryMethod.POSTAL)
        (delivery,) = site.engine.deliveries.of(d.id)
        body, headers = site.fake.courier(delivery.reference, DeliveryStatus.DELIVERED)
        with pytest.raises(SignatureError):
            site.engine.deliveries.callback("fake", body.replace(b"delivered", b"failed"), headers)
        with pytest.raises(CallbackError) as caught:
            site.engine.deliveries.callback(
                "fake", *site.fake.courier("D" + "0" * 20, DeliveryStatus.DELIVERED)
            )
        assert caught.value.kind == "unknown_reference"
        assert site.engine.get(d.id).state == "result_ready"
        reply = site.engine.deliveries.endpoint("fake")(b"{}", headers)
        assert reply.status == 400

    def test_postal_return_needs_an_address(self, site: Site):
        """Choosing a postal return without an address refuses the intake."""
        with pytest.raises(RefusedError) as caught:
            site.engine.submit(
                "2.001610",
                applicant=AN,
                actor=Actor.citizen("citizen-1"),
                documents=["application"],
                delivery=DeliveryMethod.POSTAL,
            )
        assert caught.value.reasons == ("address_missing",)


class TestInbound:
    def test_the_courier_collects_the_papers_and_an_officer_is_told(self, site: Site):
        """Inbound post: the applicant's papers picked up, delivered to the agency, announced."""
        d = site.engine.submit(
            "2.001610",
            applicant=AN,
            actor=Actor.citizen("citizen-1"),
            documents=["application"],
            delivery=DeliveryMethod.ELECTRONIC,
        )
        collected = site.engine.deliveries.collect(d.id, address=ADDRESS)
        assert (collected.direction, collected.status) == ("inbound", DeliveryStatus.REGISTERED)
        (request,) = site.fake.deliveries
        assert (request.direction, request.documents) == ("inbound", ())
        assert request.recipient["address"] == ADDRESS["address"]
        for status in (DeliveryStatus.PICKED_UP, DeliveryStatus.DELIVERED):
            site.engine.deliveries.callback("fake", *site.fake.courier(collected.reference, status))
        site.worker.drain()
        assert [m.event for m in site.fake.messages if m.channel.value == "webhook"] == [
            "dossier_arrived"
        ]
        assert site.engine.get(d.id).state == "submitted"


class TestCollection:
    def test_unclaimed_result_reminds_the_applicant(self, site: Site, delivery_catalog: Catalog):
        """A result left at the counter 15 days sends the applicant a reminder."""
        d = drive(
            site.engine, site.clock, delivery_catalog.get("2.000575"), stop_after="result_ready"
        )
        site.worker.drain()
        site.clock.advance(dt.timedelta(days=16))
        assert (d.id, "result_unclaimed", "notified") in site.engine.tick()
        site.worker.drain()
        (reminder,) = [m for m in site.fake.messages if m.event == "result_unclaimed"]
        assert reminder.channel.value == "sms"


class TestDefaultStore:
    def test_an_embedded_database_keeps_files_beside_it(
        self, db: Database, delivery_catalog: Catalog
    ):
        """Without a storage provider, SQLite stores files in a folder beside the database."""
        config = {"providers": {"fake": {"type": "fake"}}, "routing": {"notification": "fake"}}
        site = Site(db, delivery_catalog, config)
        try:
            d = site.engine.submit(
                "2.001610",
                applicant=AN,
                actor=Actor.citizen("citizen-1"),
                documents=["application"],
                delivery=DeliveryMethod.ELECTRONIC,
            )
            if db.path is None:
                with pytest.raises(BackendError, match=r"\[routing\] storage"):
                    site.engine.results.attach(d.id, PDF, media_type="application/pdf", name="a")
                return
            record = site.engine.results.attach(d.id, PDF, media_type="application/pdf", name="a")
            folder = db.path.with_name(db.path.name + ".files")
            stored = folder / "sha256" / record.digest[7:9] / record.digest[9:]
            assert stored.read_bytes() == PDF
            assert site.engine.results.content(d.id, record.digest) == PDF
        finally:
            site.engine.close()
