"""The HTTP courier plugin, over real HTTP against the simulator in courier_sim.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from courier_sim import CourierSim, hmac_hex
from dvcflow._backend_config import Routing
from dvcflow._backends import (
    CallbackReply,
    DeliveryReport,
    DeliveryRequest,
    DeliveryStatus,
    Provider,
)
from dvcflow._hooks import Backends
from dvcflow._values import DeliveryMethod
from dvcflow.errors import BackendError, CallbackError, ConfigurationError, SignatureError
from dvcflow.plugins.courier import (
    ERROR_CODES,
    MAX_MESSAGE_BYTES,
    PATHS,
    STATUSES,
    HttpCourier,
    build_shipment,
    parse_event,
)
from gateway import Portal, running

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = HttpCourier()
"""The plugin keeps no state: one instance serves every test."""
SECRET = "khoa-buu-chinh-thu-nghiem"  # noqa: S105 - a test secret
ACCOUNT = "G09.20-DVC"
DIGEST = "sha256:" + "ab" * 32
RECIPIENT = {
    "name": "Nguyễn Thị Bích Ngọc",
    "phone": "0912345678",
    "address": "Số 12 ngõ 34 phố Huế, phường Phố Huế, Hà Nội",
}
RECEIVER = {"name": "Trần Văn Bảo", "relation": "chồng"}
PERSONAL = [*RECIPIENT.values(), *RECEIVER.values(), SECRET]
EXPECTED_STATUSES = {
    "created": "registered",
    "pickup_requested": "pickup_requested",
    "picked_up": "picked_up",
    "in_transit": "in_transit",
    "out_for_delivery": "in_transit",
    "delivered": "delivered",
    "delivery_failed": "failed",
    "returning": "failed",
    "returned": "returned_to_sender",
    "cancelled": "cancelled",
}
"""The mapping of docs/delivery.md, written out independently of the plugin."""


def delivery(reference: str = "DLV-0001", **changes: Any) -> DeliveryRequest:
    fields: dict[str, Any] = {
        "key": f"effect-{reference}",
        "dossier_id": "d-1",
        "dossier_code": "G09.20-20260302-0000123",
        "procedure": "1.001193",
        "agency": "G09.20",
        "method": DeliveryMethod.POSTAL,
        "reference": reference,
        "recipient": RECIPIENT,
        "documents": (DIGEST,),
        **changes,
    }
    return DeliveryRequest(**fields)


def assert_clean(text: object) -> None:
    """No personal data and no secret in an error message or log line."""
    for value in PERSONAL:
        assert value not in str(text), value


@pytest.fixture
def sim() -> Iterator[CourierSim]:
    yield from running(CourierSim(account=ACCOUNT, secret=SECRET))


@pytest.fixture
def provider(sim: CourierSim) -> Provider:
    return sim.provider()


def dispatch(provider: Provider, request: DeliveryRequest | None = None):
    receipt = PLUGIN.dvcflow_dispatch_delivery(provider=provider, delivery=request or delivery())
    assert receipt is not None
    return receipt


def track(provider: Provider, reference: str, waybill: str | None = None):
    report = PLUGIN.dvcflow_track_delivery(
        provider=provider, reference=reference, provider_ref=waybill
    )
    assert report is not None
    return report


def cancel(provider: Provider, reference: str, waybill: str | None = None):
    answer = PLUGIN.dvcflow_cancel_delivery(
        provider=provider, reference=reference, provider_ref=waybill
    )
    assert answer is not None
    return answer


def failure(
    call: Any, *args: Any, kind: type[Exception] = BackendError, match: str | None = None
) -> Any:
    """The error ``call(*args)`` raises; checked to hold no personal data or secret."""
    with pytest.raises(kind, match=match) as caught:
        call(*args)
    assert_clean(caught.value)
    return caught.value


class _Portal(Portal):
    reports: list[DeliveryReport]
    errors: list[Exception]


@pytest.fixture
def portal(sim: CourierSim, provider: Provider) -> Iterator[Any]:
    """A portal endpoint doing what the engine's delivery callback does with the plugin."""
    reports: list[DeliveryReport] = []
    errors: list[Exception] = []

    def answer(body: bytes, headers: Any) -> CallbackReply:
        try:
            report = PLUGIN.dvcflow_verify_delivery_callback(
                provider=provider, body=body, headers=headers
            )
        except SignatureError as exc:
            errors.append(exc)
            return CallbackReply(401, b'{"ok": false}')
        except CallbackError as exc:
            errors.append(exc)
            return CallbackReply(400, b'{"ok": false}')
        assert report is not None
        reports.append(report)
        return CallbackReply(200, b'{"ok": true}')

    server = _Portal(answer)
    server.reports = reports
    server.errors = errors
    with server:
        sim.callback_url = f"{server.url}/callbacks/delivery/post"
        yield server


class TestDispatch:
    def test_registers_a_shipment(self, sim, provider):
        """The shipment is created once, signed, keyed, in the documented shape."""
        receipt = dispatch(provider)
        shipment = sim.shipments["DLV-0001"]
        assert receipt.provider_ref == shipment.waybill
        assert receipt.status == "pickup_requested"
        [request] = sim.requests
        assert request.path == "/api/v1/shipments"
        assert request.headers["Idempotency-Key"] == "effect-DLV-0001"
        assert request.headers["X-Courier-Account"] == ACCOUNT
        assert request.headers["X-Courier-Signature"] == hmac_hex(SECRET, request.body)
        assert request.message == {
            "reference": "DLV-0001",
            "direction": "outbound",
            "dossier_code": "G09.20-20260302-0000123",
            "sender": {"agency": "G09.20"},
            "recipient": RECIPIENT,
            "documents": [DIGEST],
            "service": "public_post",
            "request_pickup": True,
        }

    def test_registered_without_pickup(self, sim):
        """With request_pickup off, the courier only registers the parcel."""
        receipt = dispatch(sim.provider(request_pickup=False))
        assert receipt.status == "registered"

    def test_sender_and_service_from_settings(self, sim):
        """settings.sender and settings.service go into the shipment."""
        office = {"name": "Bộ phận Một cửa UBND phường", "address": "1 Lý Thái Tổ, Hà Nội"}
        dispatch(sim.provider(sender=office, service="express"))
        message = sim.requests[0].message
        assert message["sender"] == {"agency": "G09.20", **office}
        assert message["service"] == "express"

    def test_delivered_twice_is_one_shipment(self, sim, provider):
        """The outbox delivering again gets the same waybill; the courier registers once."""
        first, second = dispatch(provider), dispatch(provider)
        assert first == second
        assert len(sim.shipments) == 1
        assert len(sim.requests) == 2

    def test_same_key_other_body_is_refused(self, provider):
        """A key reused for another shipment is the courier's 409, not retryable."""
        dispatch(provider)
        other = delivery(documents=("sha256:" + "cd" * 32,))
        error = failure(dispatch, provider, other, match="HTTP 409 idempotency_conflict")
        assert not error.retryable

    @pytest.mark.parametrize("field", ["name", "phone", "address"])
    @pytest.mark.parametrize("value", [None, "", "   "])
    def test_outbound_recipient_fields_are_required(self, sim, provider, field, value):
        """A missing recipient field is refused before any call, naming it, never the others."""
        recipient = {k: v for k, v in RECIPIENT.items() if k != field}
        if value is not None:
            recipient[field] = value
        error = failure(
            dispatch,
            provider,
            delivery(recipient=recipient),
            match=f"recipient.{field} is required for an outbound parcel",
        )
        assert not error.retryable
        assert sim.requests == []

    def test_inbound_needs_no_address(self, sim, provider):
        """An inbound parcel (a dossier by post) needs the applicant's name and phone only."""
        recipient = {"name": RECIPIENT["name"], "phone": RECIPIENT["phone"]}
        dispatch(provider, delivery(direction="inbound", recipient=recipient))
        assert sim.requests[0].message["direction"] == "inbound"
        assert sim.requests[0].message["recipient"]["address"] == ""
        failure(
            dispatch,
            provider,
            delivery("DLV-2", direction="inbound", recipient={"name": "x"}),
            match="recipient.phone is required for an inbound parcel",
        )

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({"method": DeliveryMethod.ELECTRONIC}, "carries postal deliveries, not electronic"),
            ({"reference": ""}, "a shipment needs the delivery's reference"),
            ({"direction": "sideways"}, "direction must be one of outbound, inbound"),
        ],
    )
    def test_other_refusals(self, sim, provider, changes, expected):
        """Not by post, no reference, an unknown direction: refused, not retryable."""
        error = failure(dispatch, provider, delivery(**changes), match=expected)
        assert not error.retryable
        assert sim.requests == []

    def test_wrong_secret(self, sim):
        """The courier refusing the signature is not retryable and shows no secret."""
        wrong = sim.provider(secret="not-the-secret")  # noqa: S106 - a wrong test secret
        error = failure(dispatch, wrong, match="bad_signature")
        assert not error.retryable
        assert "not-the-secret" not in str(error)

    def test_unknown_account(self, sim):
        """An account the courier does not know is not retryable."""
        error = failure(dispatch, sim.provider(account="X"), match="unknown_account")
        assert not error.retryable

    def test_unserviceable_address_is_not_quoted(self, provider):
        """The courier's error message echoes the address; the plugin names only the code."""
        recipient = {**RECIPIENT, "address": f"{RECIPIENT['address']} unserviceable"}
        error = failure(dispatch, provider, delivery(recipient=recipient), match="unserviceable")
        assert RECIPIENT["address"] in json.dumps(error.reply, ensure_ascii=False)
        assert not error.retryable

    def test_unknown_error_code_keeps_the_status(self, sim, provider):
        """An error code the plugin does not know is reported by HTTP status only."""
        body = json.dumps({"error": {"code": "boom", "message": RECIPIENT["name"]}}).encode()
        sim.fail_next(status=422, body=body)
        error = failure(dispatch, provider)
        assert str(error).endswith("create: HTTP 422")
        assert not error.retryable

    @pytest.mark.parametrize("status", [429, 500, 502, 503])
    def test_courier_trouble_is_retryable(self, sim, provider, status):
        """Throttling and server errors may be retried; the next try registers the parcel."""
        sim.fail_next(status=status, body=b'{"error": {"code": "malformed"}}')
        assert failure(dispatch, provider, match=f"HTTP {status}").retryable
        assert dispatch(provider).provider_ref is not None

    def test_a_hung_courier_times_out(self, sim):
        """No answer within settings.timeout_s is a retryable timeout."""
        sim.hang_next()
        error = failure(dispatch, sim.provider(timeout_s=0.3), match="timed out")
        assert error.retryable

    @pytest.mark.parametrize(
        ("reply", "expected", "retryable"),
        [
            ({"reference": "DLV-9", "waybill": "W", "status": "created"}, "another", False),
            ({"reference": "DLV-0001", "status": "created"}, "without a waybill", True),
            ({"reference": "DLV-0001", "waybill": "W", "status": "lost"}, "unknown status", False),
        ],
    )
    def test_odd_replies(self, sim, provider, reply, expected, retryable):
        """A reply about another parcel, without waybill or with an unknown status is refused."""
        sim.fail_next(status=201, body=json.dumps(reply).encode())
        assert failure(dispatch, provider, match=expected).retryable is retryable

    def test_logs_hold_no_personal_data(self, provider, caplog):
        """Everything the plugin logs, even at debug level, is free of personal data."""
        with caplog.at_level(logging.DEBUG, logger="dvcflow"):
            dispatch(provider)
            track(provider, "DLV-0001")
            cancel(provider, "DLV-0001")
        assert caplog.records
        for record in caplog.records:
            assert_clean(record.getMessage())


class TestTrack:
    def test_by_waybill_and_by_reference(self, sim, provider):
        """The latest event comes back, found either way."""
        waybill = dispatch(provider).provider_ref
        event = sim.event("DLV-0001", "in_transit", detail="Đã đến bưu cục Hà Nội")
        for found in (
            track(provider, "DLV-0001", waybill),
            track(provider, "DLV-0001"),
        ):
            assert found.event_id == event["event_id"]
            assert found.status is DeliveryStatus.IN_TRANSIT
            assert found.provider_ref == waybill
            assert found.detail == "Đã đến bưu cục Hà Nội"
            assert found.at is not None
            assert found.at.utcoffset() is not None
        assert "Idempotency-Key" not in sim.requests[-1].headers

    def test_delivered_with_receiver(self, sim, provider):
        """On delivery the receiver's name and relation come back (personal, not in repr)."""
        dispatch(provider)
        sim.event("DLV-0001", "delivered", receiver=RECEIVER)
        report = track(provider, "DLV-0001")
        assert report.status is DeliveryStatus.DELIVERED
        assert dict(report.receiver) == RECEIVER
        assert_clean(repr(report))

    def test_unknown_shipment(self, provider):
        """A reference the courier does not know is not retryable."""
        error = failure(track, provider, "DLV-404", match="HTTP 404 not_found")
        assert not error.retryable

    @pytest.mark.parametrize(
        ("reply", "expected"),
        [
            ({"reference": "DLV-9", "status": "created"}, "another reference"),
            ({"reference": "DLV-0001", "waybill": "OTHER", "status": "created"}, "another waybill"),
            ({"reference": "DLV-0001", "waybill": "W", "status": "lost"}, "unknown status"),
            ({"reference": "DLV-0001", "status": "created", "at": "2026-03-02"}, "at is not"),
        ],
    )
    def test_odd_replies(self, sim, provider, reply, expected):
        """A reply about another shipment or not an event is refused, not retryable."""
        sim.fail_next(status=200, body=json.dumps(reply).encode())
        error = failure(track, provider, "DLV-0001", "W", match=expected)
        assert not error.retryable

    def test_a_reply_without_event_id(self, sim, provider):
        """Without an event id, one is made of the waybill and the status."""
        reply = {"reference": "DLV-0001", "waybill": "W", "status": "picked_up"}
        sim.fail_next(status=200, body=json.dumps(reply).encode())
        assert track(provider, "DLV-0001", "W").event_id == "track:W:picked_up"


class TestCancel:
    def test_before_pickup(self, sim, provider):
        """Revoked before pickup: True, and again True (the courier replays its answer)."""
        waybill = dispatch(provider).provider_ref
        assert cancel(provider, "DLV-0001", waybill) is True
        assert sim.shipments["DLV-0001"].status == "cancelled"
        assert cancel(provider, "DLV-0001", waybill) is True
        assert sim.requests[-1].headers["Idempotency-Key"] == "cancel:DLV-0001"
        assert track(provider, "DLV-0001").status is DeliveryStatus.CANCELLED

    @pytest.mark.parametrize("status", ["picked_up", "in_transit", "delivered", "returned"])
    def test_after_pickup(self, sim, provider, status):
        """Once picked up the courier refuses with not_cancellable: the answer is False."""
        dispatch(provider)
        sim.event("DLV-0001", status)
        assert cancel(provider, "DLV-0001") is False
        assert sim.shipments["DLV-0001"].status == status

    def test_an_answer_that_is_not_cancelled(self, sim, provider):
        """A 200 answer with another status means it was not cancelled."""
        reply = {"reference": "DLV-0001", "waybill": "W", "status": "picked_up"}
        sim.fail_next(status=200, body=json.dumps(reply).encode())
        assert cancel(provider, "DLV-0001") is False

    def test_unknown_shipment(self, provider):
        """A shipment the courier does not know is not retryable."""
        error = failure(cancel, provider, "DLV-404", match="HTTP 404 not_found")
        assert not error.retryable

    def test_courier_down(self, sim, provider):
        """A server error may be retried."""
        sim.fail_next(status=503)
        assert failure(cancel, provider, "DLV-0001", match="HTTP 503").retryable


class TestCallbacks:
    def test_a_parcel_through_its_statuses(self, sim, provider, portal):
        """Signed callbacks for each move are accepted and mapped, in rank order."""
        waybill = dispatch(provider).provider_ref
        for word in ("picked_up", "in_transit", "out_for_delivery"):
            assert sim.advance("DLV-0001", word)[0] == 200
        assert sim.advance("DLV-0001", "delivered", receiver=RECEIVER)[0] == 200
        statuses = [report.status for report in portal.reports]
        assert statuses == [
            DeliveryStatus.PICKED_UP,
            DeliveryStatus.IN_TRANSIT,
            DeliveryStatus.IN_TRANSIT,
            DeliveryStatus.DELIVERED,
        ]
        assert [s.rank for s in statuses] == sorted(s.rank for s in statuses)
        assert {report.provider_ref for report in portal.reports} == {waybill}
        assert len({report.event_id for report in portal.reports}) == 4
        assert dict(portal.reports[-1].receiver) == RECEIVER
        assert portal.reports[-1].status.terminal

    def test_returned_to_sender(self, sim, provider, portal):
        """A failed delivery goes back: failed, failed, then returned to sender (terminal)."""
        dispatch(provider)
        for word in ("picked_up", "delivery_failed", "returning", "returned"):
            sim.advance("DLV-0001", word, detail="Người nhận vắng nhà")
        assert [report.status.value for report in portal.reports] == [
            "picked_up",
            "failed",
            "failed",
            "returned_to_sender",
        ]
        assert portal.reports[-1].status.terminal

    def test_forged_callbacks(self, sim, provider, portal):
        """Signed with another secret, or altered after signing: refused as signature errors."""
        dispatch(provider)
        body = sim.body(sim.event("DLV-0001", "delivered", receiver=RECEIVER))
        guessed = sim.signed_headers(body, secret="guessed")  # noqa: S106 - a wrong test secret
        assert sim.send(body, guessed)[0] == 401
        altered = body.replace(b"delivered", b"returned!")
        assert sim.send(altered, sim.signed_headers(body))[0] == 401
        assert portal.reports == []
        assert all(isinstance(error, SignatureError) for error in portal.errors)
        for error in portal.errors:
            assert_clean(error)

    def test_an_unsigned_callback_is_not_the_couriers(self, sim, provider, portal):
        """Without the signature header the body is not a courier event: malformed."""
        dispatch(provider)
        body = sim.body(sim.event("DLV-0001", "picked_up"))
        assert sim.send(body, {"Content-Type": "application/json"})[0] == 400
        [error] = portal.errors
        assert isinstance(error, CallbackError)
        assert error.kind == "malformed"

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b"not json", "not JSON"),
            (b"[1, 2]", "not a JSON object"),
            (b'{"event_id": "E1", "status": "delivered"}', "reference is missing"),
            (
                b'{"event_id": "E1", "reference": "R", "waybill": 7, "status": "delivered"}',
                "waybill",
            ),
            (b'{"event_id": "E1", "reference": "R", "status": "lost"}', "unknown status 'lost'"),
            (b'{"event_id": "E1", "reference": "R"}', "unknown status"),
            (b'{"reference": "R", "status": "delivered"}', "event_id is missing"),
            (b'{"event_id": "E1", "reference": "R", "status": "delivered", "at": 5}', "at is not"),
            (
                b'{"event_id": "E1", "reference": "R", "status": "delivered", "at": "2026-03-02"}',
                "at is not",
            ),
        ],
    )
    def test_malformed_callbacks(self, sim, portal, body, expected):
        """Signed but not an event: malformed, naming what is wrong."""
        assert sim.send(body)[0] == 400
        [error] = portal.errors
        assert isinstance(error, CallbackError)
        assert error.kind == "malformed"
        assert expected in str(error)

    def test_oversize(self, provider):
        """A body over the limit is refused unread."""
        body = b" " * (MAX_MESSAGE_BYTES + 1)
        with pytest.raises(CallbackError, match="larger than"):
            PLUGIN.dvcflow_verify_delivery_callback(
                provider=provider,
                body=body,
                headers={"X-Courier-Signature": hmac_hex(SECRET, body)},
            )

    def test_header_names_are_case_insensitive(self, provider):
        """The signature header is found whatever its case."""
        body = json.dumps({"event_id": "E1", "reference": "R", "status": "picked_up"}).encode()
        report = PLUGIN.dvcflow_verify_delivery_callback(
            provider=provider, body=body, headers={"x-courier-signature": hmac_hex(SECRET, body)}
        )
        assert report == DeliveryReport("E1", "R", DeliveryStatus.PICKED_UP)

    @pytest.mark.parametrize(("word", "status"), sorted(EXPECTED_STATUSES.items()))
    def test_status_mapping(self, provider, word, status):
        """Each courier word maps to the documented dvcflow status."""
        body = json.dumps(
            {"event_id": "E", "reference": "R", "status": word, "at": "2026-03-02T10:00:00+07:00"}
        ).encode()
        report = PLUGIN.dvcflow_verify_delivery_callback(
            provider=provider, body=body, headers={"X-Courier-Signature": hmac_hex(SECRET, body)}
        )
        assert report is not None
        assert report.status.value == status
        assert report.at is not None
        assert report.at.isoformat() == "2026-03-02T03:00:00+00:00"

    def test_long_texts_are_cut(self):
        """Detail and receiver fields are cut to 200 characters; other receiver keys dropped."""
        report = parse_event(
            {
                "event_id": "E",
                "reference": "R",
                "status": "delivered",
                "detail": "x" * 500,
                "receiver": {"name": "y" * 500, "id_number": "001099012345"},
            }
        )
        assert report.detail == "x" * 200
        assert dict(report.receiver) == {"name": "y" * 200}


class TestShapes:
    def test_the_table_is_the_documented_one(self):
        """STATUSES says what docs/delivery.md and the simulator say."""
        assert {word: status.value for word, status in STATUSES.items()} == EXPECTED_STATUSES

    def test_docs_list_every_status_code_and_path(self):
        """docs/delivery.md shows each status word, error code and path of the plugin."""
        text = (ROOT / "docs" / "delivery.md").read_text(encoding="utf-8")
        for word, status in STATUSES.items():
            assert f"| `{word}` | `{status.value}` |" in text, word
        for code in ERROR_CODES:
            assert f"| `{code}` |" in text, code
        for path in PATHS.values():
            assert f"`POST <url>{path}`" in text, path

    def test_build_shipment_is_pure(self):
        """The message is built without a provider, documents as a list."""
        message = build_shipment(delivery(documents=()), service="s", request_pickup=False)
        assert message["documents"] == []
        assert message["request_pickup"] is False

    def test_delivery_repr_holds_no_personal_data(self):
        """The request's repr, which may reach a log, does not show the recipient."""
        assert_clean(repr(delivery()))


class TestCheckProvider:
    def problems(self, settings: dict[str, Any], secrets: dict[str, str] | None = None):
        found = HttpCourier().dvcflow_check_provider(
            provider=Provider(
                "post",
                "http_courier",
                settings=settings,
                secrets={"secret": SECRET} if secrets is None else secrets,
            )
        )
        assert found is not None
        return found

    GOOD: dict[str, Any] = {"url": "https://courier.example/api/v1", "account": ACCOUNT}  # noqa: RUF012

    def test_good(self):
        """The required settings, and every optional one, are fine."""
        assert self.problems(self.GOOD) == []
        full = {
            **self.GOOD,
            "service": "express",
            "request_pickup": False,
            "sender": {"name": "UBND", "phone": "02439999999", "address": "1 Lý Thái Tổ"},
            "timeout_s": 20,
            "connect_timeout_s": 2.5,
        }
        assert self.problems(full) == []

    def test_nothing_given(self):
        """Each missing requirement is one problem naming the setting."""
        assert self.problems({}, {}) == [
            "settings.url: required, an http(s) URL of the courier's API",
            "settings.account: required, the agency's customer code at the courier",
            "secrets.secret: required, the environment variable holding the shared secret",
        ]

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            ({"url": "ftp://courier.example"}, "settings.url: required, an http(s) URL"),
            ({"account": " "}, "settings.account: required"),
            ({"account": 7}, "settings.account: required"),
            ({"service": ""}, "settings.service: must be the courier's service code"),
            ({"request_pickup": "yes"}, "settings.request_pickup: must be true or false"),
            ({"sender": "UBND"}, "settings.sender: must be a table"),
            ({"sender": {"fax": "1"}}, "settings.sender.fax: unknown (name, phone, address)"),
            ({"sender": {"name": ""}}, "settings.sender.name: must be a non-empty string"),
            ({"timeout_s": 0}, "settings.timeout_s: must be a number of seconds in (0, 300]"),
            ({"connect_timeout_s": True}, "settings.connect_timeout_s: must be a number"),
            ({"secret": "x"}, "settings.secret: unknown setting (known: account,"),
        ],
    )
    def test_each_problem_names_the_setting(self, change, expected):
        """A bad setting is one problem, naming it."""
        [problem] = self.problems({**self.GOOD, **change})
        assert problem.startswith(expected)

    def test_other_types_are_not_answered(self):
        """Another provider type gets no answer from any hook."""
        other = Provider("x", "fake")
        assert PLUGIN.dvcflow_check_provider(provider=other) is None
        assert PLUGIN.dvcflow_dispatch_delivery(provider=other, delivery=delivery()) is None
        assert (
            PLUGIN.dvcflow_track_delivery(provider=other, reference="R", provider_ref=None) is None
        )
        assert (
            PLUGIN.dvcflow_cancel_delivery(provider=other, reference="R", provider_ref=None) is None
        )
        assert PLUGIN.dvcflow_verify_delivery_callback(provider=other, body=b"", headers={}) is None


class TestFacade:
    def test_through_backends(self, sim, provider):
        """Registered with pluggy, the plugin answers every delivery hook through the façade."""
        backends = Backends(
            providers={"post": provider},
            routing=Routing(),
            plugins=[HttpCourier()],
            entry_points=False,
        )
        receipt = backends.dispatch_delivery(provider, delivery())
        assert receipt.status == "pickup_requested"
        report = backends.track_delivery(provider, "DLV-0001", receipt.provider_ref)
        assert report.status is DeliveryStatus.PICKUP_REQUESTED
        body = sim.body(sim.event("DLV-0001", "picked_up"))
        verified = backends.verify_delivery_callback(provider, body, sim.signed_headers(body))
        assert verified.status is DeliveryStatus.PICKED_UP
        assert backends.cancel_delivery(provider, "DLV-0001", receipt.provider_ref) is False

    def test_problems_stop_the_facade(self, sim):
        """A provider with problems stops the façade at start, naming the settings."""
        broken = attrs.evolve(sim.provider(), settings={"url": sim.url})
        with pytest.raises(ConfigurationError) as caught:
            Backends(
                providers={"post": broken},
                routing=Routing(),
                plugins=[HttpCourier()],
                entry_points=False,
                source="dvcflow.toml",
            )
        assert str(caught.value) == (
            "dvcflow.toml: providers.post: settings.account: required, the agency's customer "
            "code at the courier"
        )
