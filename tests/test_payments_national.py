"""End to end over HTTP: a level-4 dossier pays both fee kinds through the platform simulator.

The engine's outbox worker sends INIT to the simulated national payment platform; the platform
POSTs its signed CONFIRM to the portal's callback endpoint (``engine.payments.endpoint``, mounted
on a loopback HTTP server); the reconciler's QUERY finds a payment whose callback was lost.
Every peer is a real HTTP server on 127.0.0.1, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Config,
    DeliveryMethod,
    DossierSnapshot,
    Engine,
    FeeKind,
    FrozenClock,
    RefusedError,
)
from gateway import Gateway, Portal
from pg import ENVIRON, Database

HERE = Path(__file__).parent
NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
SECRET_ENV = "DVCFLOW_TEST_PAYGOV_SECRET"  # noqa: S105 - a variable name
SECRET = "bí-mật-chung-của-cổng"  # noqa: S105 - a test secret
PARTNER = "SKHDT01"
AGENCY = "SKHDT.01"
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)


def staff(role: str) -> Actor:
    return Actor.staff(f"{role}-1", roles={role}, agency=AGENCY)


class Site:
    """The portal: an engine paying through the simulator, its callback endpoint on loopback."""

    def __init__(self, db: Database, catalog: Catalog, gateway: Gateway) -> None:
        self.gateway = gateway
        self.clock = FrozenClock(NOW)
        config = Config.from_data(
            {
                "providers": {
                    "paygov": {
                        "type": "national_payment",
                        "settings": gateway.settings(),
                        "secrets": {"secret": SECRET_ENV},
                    },
                    "fake": {"type": "fake"},
                },
                "routing": {"payment": "paygov", "notification": "fake"},
            }
        )
        options = db.options({"config": config, "environ": ENVIRON | {SECRET_ENV: SECRET}})
        self.engine = Engine.open(db.url, catalog=catalog, clock=self.clock, **options)
        self.portal = Portal(self.engine.payments.endpoint("paygov"))
        self.worker = self.engine.outbox.worker(random_unit=lambda: 0.5)

    def close(self) -> None:
        self.portal.stop()
        self.engine.close()

    def resolved(self) -> DossierSnapshot:
        """An enterprise registration with its result ready and both fees requested online."""
        d = self.engine.submit(
            "2.001610",
            applicant=AN,
            actor=Actor.citizen("citizen-1"),
            documents=["application"],
            delivery=DeliveryMethod.ELECTRONIC,
        )
        d = self.engine.fire(d.id, "receive", actor=staff("receiving_officer"))
        d = self.engine.fire(
            d.id, "start", actor=staff("department_head"), payload={"specialist": "s-1"}
        )
        d = self.engine.fire(
            d.id, "resolve", actor=staff("leader"), payload={"result": "sha256:gcn", "signed": True}
        )
        d = self.engine.fire(d.id, "request_payment", actor=staff("specialist"))
        assert self.worker.drain().incidents == 0
        return d

    def reference(self, dossier: str, kind: str) -> str:
        (found,) = [
            p.reference
            for p in self.engine.payments.of(dossier)
            if p.fee_kind.value == kind and p.state == "awaiting"
        ]
        return found


@pytest.fixture
def site(db: Database, tmp_path: Path, examples_dir: Path) -> Iterator[Site]:
    del tmp_path
    catalog = Catalog.from_path(examples_dir, HERE / "procedures")
    with Gateway(partner=PARTNER, secret=SECRET) as gateway:
        site = Site(db, catalog, gateway)
        site.portal.start()
        gateway.callback_url = site.portal.url
        try:
            yield site
        finally:
            site.close()


class TestThroughThePlatform:
    def test_both_fee_kinds_paid_before_the_result_is_returned(self, site: Site):
        """INIT per fee kind over HTTP; each CONFIRM pays one; the return waits for both."""
        d = site.resolved()
        inits = site.gateway.messages("INIT")
        assert sorted(m["SoTien"] for m in inits) == [50_000, 100_000]
        payments = {p.fee_kind.value: p for p in site.engine.payments.of(d.id)}
        assert {p.provider for p in payments.values()} == {"paygov"}
        assert all(p.url and p.provider_ref for p in payments.values())
        assert {m["MaThamChieu"] for m in inits} == {p.reference for p in payments.values()}

        status, body = site.gateway.pay(site.reference(d.id, "charge"))
        assert (status, json.loads(body)["MaLoi"]) == (200, "00")
        with pytest.raises(RefusedError):
            site.engine.fire(d.id, "return_result", actor=Actor.system())
        assert not site.engine.get(d.id).dossier.fees_settled

        site.gateway.pay(site.reference(d.id, "fee"))
        ready = site.engine.get(d.id)
        assert (ready.state, ready.dossier.fees_settled) == ("result_ready", True)
        returned = site.engine.fire(d.id, "return_result", actor=Actor.system())
        assert returned.state == "returned"
        paid = site.engine.payments.of(d.id)
        assert all(p.state == "paid" and p.receipt and p.receipt.startswith("BL-") for p in paid)
        assert site.engine.verify_history(d.id) == returned.version

    def test_replayed_confirm_changes_nothing(self, site: Site):
        """The platform repeating a CONFIRM is answered 00 and pays nothing twice."""
        d = site.resolved()
        reference = site.reference(d.id, "fee")
        site.gateway.pay(reference)
        history = site.engine.history(d.id)
        status, body = site.gateway.send(site.portal.bodies[-1])
        assert (status, json.loads(body)["MaLoi"]) == (200, "00")
        assert site.engine.history(d.id) == history

    def test_forged_confirm_is_refused_and_logged(self, site: Site):
        """A CONFIRM signed with another secret: MaLoi 01, a security record, nothing paid."""
        d = site.resolved()
        reference = site.reference(d.id, "fee")
        forged = site.gateway.confirm_body(reference, secret="đoán-mò")  # noqa: S106
        before = site.engine.get(d.id)
        status, body = site.gateway.send(forged)
        assert (status, json.loads(body)["MaLoi"]) == (200, "01")
        assert site.engine.get(d.id) == before
        (logged,) = site.engine.payments.security_log()
        assert (logged.source, logged.kind, logged.size) == (
            "callback:paygov",
            "bad_signature",
            len(forged),
        )

    def test_wrong_amount_is_refused(self, site: Site):
        """A signed CONFIRM for another amount than requested: MaLoi 04, nothing paid."""
        d = site.resolved()
        reference = site.reference(d.id, "fee")
        status, body = site.gateway.pay(reference, amount=1_000)
        assert (status, json.loads(body)["MaLoi"]) == (200, "04")
        assert site.engine.get(d.id).dossier.fee(FeeKind.FEE).paid.amount == 0
        assert [r.kind for r in site.engine.payments.security_log()] == ["amount_mismatch"]

    def test_reconciler_queries_a_payment_whose_callback_was_lost(self, site: Site):
        """Paid at the platform, the CONFIRM lost: the reconciler's QUERY settles the fee."""
        d = site.resolved()
        reference = site.reference(d.id, "charge")
        transaction = site.gateway.transactions[reference]
        transaction.status, transaction.receipt = "00", "BL-7654321"
        site.clock.advance(dt.timedelta(minutes=11))
        outcomes = dict(site.engine.payments.reconcile())
        assert outcomes[reference] == "applied"
        assert [m["MaThamChieu"] for m in site.gateway.messages("QUERY")].count(reference) == 1
        (charge,) = [p for p in site.engine.payments.of(d.id) if p.reference == reference]
        assert (charge.state, charge.receipt) == ("paid", "BL-7654321")

    def test_platform_down_is_retried_then_linked(self, site: Site):
        """INIT answered 503 twice is retried with backoff; the third attempt gets the link."""
        site.gateway.fail_next(2)
        d = site.engine.submit(
            "2.000488",
            applicant=AN,
            actor=Actor.citizen("citizen-1"),
            form={"purpose": "xin việc", "copies": 1},
            documents=["request_form", "identity_document"],
            delivery=DeliveryMethod.ELECTRONIC,
        )
        for _ in range(3):
            site.worker.drain()
            site.clock.advance(dt.timedelta(seconds=10))
        (payment,) = site.engine.payments.of(d.id)
        assert payment.state == "awaiting"
        assert len(site.gateway.messages("INIT")) == 3
