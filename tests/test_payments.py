"""Payments on SQLite and PostgreSQL: links through the outbox, callbacks applied once, refunds."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    CallbackError,
    Catalog,
    Config,
    DeliveryMethod,
    DossierSnapshot,
    Engine,
    FrozenClock,
    PaymentOutcome,
    RefusedError,
    SignatureError,
)
from dvcflow.plugins import FakeBackend
from pg import Database
from support import drive

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
"""Monday 2 March 2026, 09:00 in Hanoi."""
HERE = Path(__file__).parent
ENTERPRISE = "2.001610"
"""Level 4, full-process: a charge (lệ phí) and a fee (phí) before the result is returned."""
RECORD = "2.000488"
"""Judicial record certificate: level 4, a fee paid online before reception."""
FAKE = {
    "providers": {"fake": {"type": "fake"}},
    "routing": {"payment": "fake", "notification": "fake", "delivery": "fake"},
}
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)
CITIZEN = Actor.citizen("citizen-1")


def staff(role: str, agency: str) -> Actor:
    return Actor.staff(f"{role}-1", roles={role}, agency=agency)


@pytest.fixture(scope="module")
def payment_catalog(examples_dir: Path) -> Catalog:
    """The examples plus the test procedure owing both fee kinds."""
    return Catalog.from_path(examples_dir, HERE / "procedures")


class Portal:
    """An engine with the fake back ends, a steerable clock and the walk of a dossier."""

    def __init__(self, db: Database, catalog: Catalog, config: dict[str, Any]) -> None:
        self.db = db
        self.clock = FrozenClock(NOW)
        options = db.options({"config": Config.from_data(config)})
        self.engine = Engine.open(db.url, catalog=catalog, clock=self.clock, **options)
        self.fake = self.engine.backends.plugin(FakeBackend)
        self.worker = self.engine.outbox.worker(random_unit=lambda: 0.5)

    def deliver(self) -> None:
        """Run the outbox worker until nothing is due."""
        self.worker.drain()

    def enterprise(self) -> DossierSnapshot:
        """An enterprise registration resolved and waiting for both fees online."""
        agency = "SKHDT.01"
        d = self.engine.submit(
            ENTERPRISE,
            applicant=AN,
            actor=CITIZEN,
            documents=["application"],
            delivery=DeliveryMethod.ELECTRONIC,
        )
        d = self.engine.fire(d.id, "receive", actor=staff("receiving_officer", agency))
        d = self.engine.fire(
            d.id, "start", actor=staff("department_head", agency), payload={"specialist": "s-1"}
        )
        d = self.engine.fire(
            d.id,
            "resolve",
            actor=staff("leader", agency),
            payload={"result": "sha256:gcn", "signed": True},
        )
        d = self.engine.fire(d.id, "request_payment", actor=staff("specialist", agency))
        self.deliver()
        return d

    def record(self) -> DossierSnapshot:
        """A judicial record request submitted online, its fee link issued."""
        d = self.engine.submit(
            RECORD,
            applicant=AN,
            actor=CITIZEN,
            form={"purpose": "xin việc", "copies": 1},
            documents=["request_form", "identity_document"],
            delivery=DeliveryMethod.ELECTRONIC,
        )
        self.deliver()
        return d

    def reference(self, dossier: str, kind: str) -> str:
        """The open payment link's reference for one fee kind."""
        (found,) = [
            p.reference
            for p in self.engine.payments.of(dossier)
            if p.fee_kind.value == kind and p.state == "awaiting"
        ]
        return found

    def pay(self, reference: str, **options: Any) -> bytes:
        """The provider settles a payment and calls back; the reply's body."""
        body, headers = self.fake.pay(reference, **options)
        return self.engine.payments.callback("fake", body, headers).body

    def history(self, dossier: str) -> list[tuple[str, int]]:
        return [(e.trigger, e.version) for e in self.engine.history(dossier)]


@pytest.fixture
def portal(db: Database, payment_catalog: Catalog) -> Iterator[Portal]:
    portal = Portal(db, payment_catalog, FAKE)
    try:
        yield portal
    finally:
        portal.engine.close()


class TestOnlinePayment:
    def test_both_fee_kinds_before_the_result_goes_out(self, portal: Portal):
        """Each fee kind gets its own link; the result is refused until both are paid."""
        d = portal.enterprise()
        payments = portal.engine.payments.of(d.id)
        assert sorted((p.fee_kind.value, p.amount.amount, p.state) for p in payments) == [
            ("charge", 50_000, "awaiting"),
            ("fee", 100_000, "awaiting"),
        ]
        assert all(p.url and p.url.endswith(p.reference) for p in payments)
        requests = [call for hook, call in portal.fake.calls if hook == "create_payment"]
        assert {r.reference for r in requests} == {p.reference for p in payments}
        assert all(r.dossier_code == d.code and d.code in r.description for r in requests)

        portal.pay(portal.reference(d.id, "charge"))
        partly = portal.engine.get(d.id)
        assert partly.state == "awaiting_payment"
        with pytest.raises(RefusedError) as caught:
            portal.engine.fire(d.id, "return_result", actor=Actor.system())
        assert caught.value.reasons == ("invalid_in_state",)

        portal.pay(portal.reference(d.id, "fee"))
        paid = portal.engine.get(d.id)
        assert paid.state == "result_ready"
        assert paid.dossier.fees_settled
        returned = portal.engine.fire(d.id, "return_result", actor=Actor.system())
        assert returned.state == "returned"
        receipts = {p.fee_kind.value: p.receipt for p in portal.engine.payments.of(d.id)}
        assert all(receipt and receipt.startswith("FAKE-BL-") for receipt in receipts.values())
        confirms = [e for e in portal.engine.history(d.id) if e.trigger == "confirm_payment"]
        assert [e.data["method"] for e in confirms] == ["online", "online"]
        assert {e.data["receipt"] for e in confirms} == set(receipts.values())
        assert portal.engine.verify_history(d.id) == returned.version

    def test_return_refused_while_one_fee_is_unpaid(self, portal: Portal):
        """With one fee kind paid, the kernel still refuses the return: fees_unpaid."""
        d = portal.enterprise()
        portal.pay(portal.reference(d.id, "fee"))
        kernel = portal.engine.kernel(portal.engine.get(d.id).dossier.procedure_version)
        dossier = portal.engine.get(d.id).dossier
        ready = attrs.evolve(dossier, state="result_ready", waits=())
        with pytest.raises(RefusedError) as caught:
            kernel.decide(ready, "return_result", actor=Actor.system(), now=NOW)
        assert caught.value.reasons == ("fees_unpaid",)

    def test_prepaid_fee_before_reception(self, portal: Portal):
        """A fee due before reception is paid through its link; then the dossier is received."""
        d = portal.record()
        officer = staff("receiving_officer", "STP.01")
        with pytest.raises(RefusedError) as caught:
            portal.engine.fire(d.id, "receive", actor=officer)
        assert caught.value.reasons == ("fees_unpaid",)
        portal.pay(portal.reference(d.id, "fee"))
        assert portal.engine.fire(d.id, "receive", actor=officer).state == "received"

    def test_attempts_are_recorded(self, portal: Portal):
        """Each call to the provider about a payment is a payment attempt with its outcome."""
        portal.fake.fail_next("create_payment")
        d = portal.record()
        portal.clock.advance(dt.timedelta(minutes=5))
        portal.deliver()
        (payment,) = portal.engine.payments.of(d.id)
        assert payment.state == "awaiting"
        rows = portal.db.rows(
            "SELECT a.call, a.state, a.finished FROM payment_attempts a "
            "JOIN payments p ON p.id = a.payment_id WHERE p.reference = ? ORDER BY a.id",
            payment.reference,
        )
        assert [(call, state, bool(done)) for call, state, done in rows] == [
            ("create", "error", True),
            ("create", "succeeded", True),
        ]


class TestCallbacks:
    def test_replay_is_a_no_op(self, portal: Portal):
        """The same callback twice pays once: same history, same outcome."""
        d = portal.record()
        reference = portal.reference(d.id, "fee")
        body, headers = portal.fake.pay(reference)
        portal.engine.payments.callback("fake", body, headers)
        before = portal.history(d.id)
        reply = portal.engine.payments.callback("fake", body, headers)
        assert json.loads(reply.body) == {"ok": True, "error": None}
        assert portal.history(d.id) == before
        assert portal.db.rows("SELECT result FROM callbacks ORDER BY id") == [("applied",)]

    def test_success_reported_twice_under_different_ids(self, portal: Portal):
        """A second success report (new id) records the callback and changes nothing."""
        d = portal.record()
        reference = portal.reference(d.id, "fee")
        portal.pay(reference)
        before = portal.history(d.id)
        portal.pay(reference)
        assert portal.history(d.id) == before
        assert portal.db.rows("SELECT result FROM callbacks ORDER BY id") == [
            ("applied",),
            ("duplicate",),
        ]

    def test_failure_after_success_is_stale(self, portal: Portal):
        """Monotonic: a late 'failed' after 'succeeded' never un-pays a fee."""
        d = portal.record()
        reference = portal.reference(d.id, "fee")
        portal.pay(reference)
        before = portal.history(d.id)
        portal.pay(reference, outcome=PaymentOutcome.FAILED)
        assert portal.history(d.id) == before
        assert portal.engine.payments.of(d.id)[0].state == "paid"
        assert portal.db.rows("SELECT result FROM callbacks ORDER BY id")[-1] == ("stale",)

    def test_failed_attempt_closes_the_link(self, portal: Portal):
        """A failed payment cancels the link; the dossier keeps owing the fee."""
        d = portal.record()
        portal.pay(portal.reference(d.id, "fee"), outcome=PaymentOutcome.FAILED)
        (payment,) = portal.engine.payments.of(d.id)
        assert (payment.state, payment.cancel_reason) == ("cancelled", "failed")
        assert not portal.engine.get(d.id).dossier.fees_settled

    @pytest.mark.parametrize(
        ("tamper", "error", "kind"),
        [
            ("signature", SignatureError, "bad_signature"),
            ("amount", CallbackError, "amount_mismatch"),
            ("reference", CallbackError, "unknown_reference"),
            ("oversize", CallbackError, "oversize"),
            ("malformed", CallbackError, "malformed"),
            ("provider", CallbackError, "unknown_provider"),
        ],
    )
    def test_bad_callbacks_change_nothing_and_are_logged(
        self, portal: Portal, tamper: str, error: type[Exception], kind: str
    ):
        """Every rejected callback raises a typed error, is in the security log, changes nothing."""
        d = portal.record()
        reference = portal.reference(d.id, "fee")
        provider = "fake"
        if tamper == "amount":
            body, headers = portal.fake.pay(reference, amount=1)
        elif tamper == "reference":
            body, headers = portal.fake.pay("P" + "0" * 20)
        else:
            body, headers = portal.fake.pay(reference)
        if tamper == "signature":
            body = body.replace(b"succeeded", b"SUCCEEDED")
        elif tamper == "oversize":
            body = body + b" " * 70_000
            headers = {"x-fake-signature": portal.fake.sign(body)}
        elif tamper == "malformed":
            body = b"\x00not json"
            headers = {"x-fake-signature": portal.fake.sign(body)}
        elif tamper == "provider":
            provider = "paygovv"
        snapshot = portal.engine.get(d.id)
        payments = portal.engine.payments.of(d.id)
        history = portal.history(d.id)
        with pytest.raises(error) as caught:
            portal.engine.payments.callback(provider, body, headers)
        if isinstance(caught.value, CallbackError):
            assert caught.value.kind == kind
        assert portal.engine.get(d.id) == snapshot
        assert portal.engine.payments.of(d.id) == payments
        assert portal.history(d.id) == history
        (logged,) = portal.engine.payments.security_log()
        assert (logged.kind, logged.size) == (kind, len(body))
        assert logged.source == f"callback:{provider}"
        if tamper == "malformed":
            assert logged.excerpt == "\\x00not json"  # control bytes escaped, never stored raw
        assert portal.db.rows("SELECT COUNT(*) FROM callbacks") == [(0,)]

    def test_endpoint_answers_rejections_in_the_providers_terms(self, portal: Portal):
        """The framework-neutral endpoint answers a forged callback with the provider's error."""
        d = portal.record()
        body, headers = portal.fake.pay(portal.reference(d.id, "fee"))
        handle = portal.engine.payments.endpoint("fake")
        forged = handle(body.replace(b"2000", b"1000"), headers)
        assert (forged.status, json.loads(forged.body)) == (
            400,
            {"ok": False, "error": "bad_signature"},
        )
        accepted = handle(body, headers)
        assert accepted.status == 200
        assert portal.engine.get(d.id).dossier.fees_settled


class TestReconcilingAndExpiry:
    def test_reconciler_finds_a_payment_without_callback(self, portal: Portal):
        """A link paid at the provider but never called back is found by the reconciler."""
        d = portal.record()
        reference = portal.reference(d.id, "fee")
        portal.fake.pay(reference)  # the callback is lost on the way
        assert portal.engine.payments.reconcile() == []  # too early to ask
        portal.clock.advance(dt.timedelta(minutes=11))
        assert portal.engine.payments.reconcile() == [(reference, "applied")]
        assert portal.engine.get(d.id).dossier.fees_settled
        assert portal.engine.payments.reconcile() == []

    def test_pending_payment_is_asked_again_later(self, portal: Portal):
        """A payment the provider still calls pending is left and asked again next time."""
        d = portal.record()
        reference = portal.reference(d.id, "fee")
        portal.clock.advance(dt.timedelta(minutes=11))
        assert portal.engine.payments.reconcile() == [(reference, "pending")]
        assert portal.engine.payments.reconcile() == []
        portal.clock.advance(dt.timedelta(minutes=11))
        assert portal.engine.payments.reconcile() == [(reference, "pending")]

    def test_expired_link_is_cancelled_and_a_late_payment_still_counts(self, portal: Portal):
        """The expiry timer cancels the link at the provider; money arriving later is taken."""
        d = portal.enterprise()
        portal.clock.advance(dt.timedelta(minutes=91))
        fired = portal.engine.tick()
        assert (d.id, "payment_expiry", "fired") in fired
        portal.deliver()
        payments = portal.engine.payments.of(d.id)
        assert {(p.state, p.cancel_reason) for p in payments} == {("cancelled", "expired")}
        assert sorted(portal.fake.cancelled) == sorted(p.reference for p in payments)
        late = next(p for p in payments if p.fee_kind.value == "charge")
        portal.pay(late.reference)
        dossier = portal.engine.get(d.id).dossier
        assert dossier.fee(late.fee_kind).paid == late.amount


class TestRefunds:
    def test_refused_dossier_gets_its_prepaid_fee_back(self, portal: Portal):
        """Refusal refunds an online payment through the provider that took it."""
        d = portal.record()
        portal.pay(portal.reference(d.id, "fee"))
        portal.engine.fire(
            d.id,
            "refuse",
            actor=staff("receiving_officer", "STP.01"),
            payload={"reason": "hồ sơ không hợp lệ"},
        )
        portal.deliver()
        (refund,) = portal.engine.payments.refunds(d.id)
        assert (refund.state, refund.amount.amount, refund.reason) == (
            "succeeded",
            200_000,
            "refuse",
        )
        assert [r.reference for r in portal.fake.refunds] == [refund.reference]
        (payment,) = portal.engine.payments.of(d.id)
        assert (payment.state, payment.refunded.amount) == ("refunded", 200_000)

    def test_payment_for_a_stopped_dossier_is_given_back(self, portal: Portal):
        """Money arriving after the dossier ended is recorded, not applied, and refunded."""
        d = portal.enterprise()
        portal.engine.fire(
            d.id,
            "stop",
            actor=staff("leader", "SKHDT.01"),
            payload={"reason": "không đủ điều kiện"},
        )
        portal.deliver()
        late = next(p for p in portal.engine.payments.of(d.id) if p.fee_kind.value == "fee")
        history = portal.history(d.id)
        portal.pay(late.reference)
        assert portal.history(d.id) == history
        portal.deliver()
        refunds = portal.engine.payments.refunds(d.id)
        assert [(r.reason, r.state, r.amount.amount) for r in refunds] == [
            ("unowed", "succeeded", 100_000)
        ]
        assert portal.db.rows("SELECT result FROM callbacks") == [("unowed",)]


class TestRefundPolicy:
    def test_no_refund_when_the_policy_says_so(self, db: Database, payment_catalog: Catalog):
        """``payments.refund_on`` without ``refused`` keeps a refused dossier's fee."""
        config = {**FAKE, "payments": {"refund_on": ["stopped", "withdrawn"]}}
        portal = Portal(db, payment_catalog, config)
        try:
            d = portal.record()
            portal.pay(portal.reference(d.id, "fee"))
            refused = portal.engine.fire(
                d.id,
                "refuse",
                actor=staff("receiving_officer", "STP.01"),
                payload={"reason": "hồ sơ không hợp lệ"},
            )
            portal.deliver()
            assert portal.engine.payments.refunds(d.id) == []
            assert refused.dossier.fees[0].refunded.amount == 0
        finally:
            portal.engine.close()


class TestCounter:
    @pytest.mark.parametrize(
        ("code", "kind", "trigger"),
        [
            ("2.000815", "fee", "receive"),  # level 1: collected at reception
            ("1.009994", "charge", "confirm_payment"),  # level 3: with the result, by a cashier
        ],
    )
    def test_counter_payments_are_in_the_ledger(
        self, portal: Portal, payment_catalog: Catalog, code: str, kind: str, trigger: str
    ):
        """A fee taken at the counter is a paid counter payment, with no provider and no link."""
        final = drive(portal.engine, portal.clock, payment_catalog.get(code))
        assert final.state == "returned"
        (payment,) = portal.engine.payments.of(final.id)
        assert (payment.fee_kind.value, payment.method, payment.state) == (kind, "counter", "paid")
        assert (payment.provider, payment.url) == (None, None)
        assert payment.paid_amount == payment.amount
        paid_by = [e.trigger for e in portal.engine.history(final.id) if e.trigger == trigger]
        assert paid_by
        assert [hook for hook, _ in portal.fake.calls if "payment" in hook] == []

    def test_counter_refund_is_given_at_the_counter(self, portal: Portal, payment_catalog: Catalog):
        """A dossier stopped after paying at the counter owes a counter refund, not a provider's."""
        procedure = payment_catalog.get("2.000575")
        received = drive(portal.engine, portal.clock, procedure, stop_after="processing")
        portal.engine.fire(
            received.id,
            "stop",
            actor=staff("leader", procedure.agency),
            payload={"reason": "không đủ điều kiện"},
        )
        portal.deliver()
        (refund,) = portal.engine.payments.refunds(received.id)
        assert (refund.state, refund.reason) == ("counter", "stop")
        assert portal.fake.refunds == []
