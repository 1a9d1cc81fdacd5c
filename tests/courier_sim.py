"""A simulator of a public-post courier's JSON API on loopback (the shapes of docs/delivery.md).

Like ``gateway.py`` it is written from the documentation, not with the plugin's tables: its own
status words, error codes and signature. It listens on 127.0.0.1, on a port the system picks,
and is started and stopped by the tests (use it as a context manager, or `running`). It checks
every request's account and HMAC signature, applies an ``Idempotency-Key`` once (the same key
and body get the first answer again, another body a 409), can fail or hang the next requests,
moves shipments through their statuses and POSTs signed status callbacks, and refuses to
cancel a shipment once it was picked up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from dvcflow._backends import Provider
from gateway import _Loopback

WORDS = (
    "created",
    "pickup_requested",
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "delivery_failed",
    "returning",
    "returned",
    "cancelled",
)
"""The courier's status words, as documented."""
CANCELLABLE = ("created", "pickup_requested", "cancelled")
"""Before pickup (and again for a shipment already cancelled)."""
REQUIRED = {"outbound": ("name", "phone", "address"), "inbound": ("name", "phone")}


def hmac_hex(secret: str, body: bytes) -> str:
    """The courier's signature of a body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def now_local() -> str:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).isoformat(timespec="seconds")


@dataclass
class Shipment:
    """A parcel the courier registered, and its events (latest last)."""

    reference: str
    waybill: str
    message: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.events[-1]["status"])


@dataclass
class Request:
    """One request the simulator received."""

    path: str
    headers: dict[str, str]
    body: bytes
    message: Any = None


@dataclass
class _Plan:
    status: int | None = None
    body: bytes = b""
    hang: bool = False


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message}}


class CourierSim(_Loopback):
    """The simulated courier API: create, track and cancel shipments; signed callbacks.

    Args:
        account: the customer code it knows.
        secret: the secret it shares with that customer.
        callback_url: where `advance` POSTs status callbacks (settable later).
    """

    def __init__(self, *, account: str, secret: str, callback_url: str | None = None) -> None:
        super().__init__()
        self.account = account
        self.secret = secret
        self.callback_url = callback_url
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._plans: list[_Plan] = []
        self._keys: dict[str, tuple[bytes, int, dict[str, Any]]] = {}
        self.shipments: dict[str, Shipment] = {}
        """By reference."""
        self._requests: list[Request] = []
        self.callbacks: list[tuple[int, bytes]] = []
        """What the portal answered to each callback: status and body."""

    # -- steering -------------------------------------------------------------------------------

    def settings(self, **changes: Any) -> dict[str, Any]:
        """Provider settings pointing at this simulator."""
        return {"url": f"{self.url}/api/v1", "account": self.account, "timeout_s": 5, **changes}

    def provider(self, *, secret: str | None = None, **changes: Any) -> Provider:
        """An ``http_courier`` provider for this simulator."""
        return Provider(
            "post",
            "http_courier",
            settings=self.settings(**changes),
            secrets={"secret": self.secret if secret is None else secret},
        )

    def fail_next(self, times: int = 1, *, status: int = 503, body: bytes = b"") -> None:
        """Answer the next ``times`` requests with ``status`` and ``body`` instead."""
        with self._lock:
            self._plans.extend(_Plan(status=status, body=body) for _ in range(times))

    def hang_next(self, times: int = 1) -> None:
        """Leave the next ``times`` requests unanswered until the simulator stops."""
        with self._lock:
            self._plans.extend(_Plan(hang=True) for _ in range(times))

    @property
    def requests(self) -> list[Request]:
        """Every request received, in order."""
        with self._lock:
            return list(self._requests)

    def event(  # noqa: PLR0913 - an event's fields
        self,
        reference: str,
        status: str,
        *,
        receiver: dict[str, str] | None = None,
        detail: str | None = None,
        event_id: str | None = None,
        at: str | None = None,
    ) -> dict[str, Any]:
        """Move a shipment to ``status`` (any word, even an unknown one) and return the event."""
        with self._lock:
            shipment = self.shipments[reference]
            event = {
                "event_id": event_id or f"EV{next(self._numbers):08d}",
                "reference": reference,
                "waybill": shipment.waybill,
                "status": status,
                "at": at or now_local(),
                "receiver": receiver or {},
                "detail": detail,
            }
            shipment.events.append(event)
        return event

    def advance(self, reference: str, status: str, **options: Any) -> tuple[int, bytes]:
        """Move a shipment to ``status`` and POST the signed callback to ``callback_url``."""
        return self.send(self.body(self.event(reference, status, **options)))

    @staticmethod
    def body(event: dict[str, Any]) -> bytes:
        return json.dumps(event, ensure_ascii=False).encode()

    def signed_headers(self, body: bytes, *, secret: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Courier-Signature": hmac_hex(self.secret if secret is None else secret, body),
        }

    def send(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """POST a callback body to ``callback_url`` (signed, unless ``headers`` are given)."""
        assert self.callback_url is not None, "no callback_url"
        request = urllib.request.Request(  # noqa: S310 - loopback test URL
            self.callback_url,
            data=body,
            method="POST",
            headers=self.signed_headers(body) if headers is None else headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                answer = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                answer = exc.code, exc.read()
        with self._lock:
            self.callbacks.append(answer)
        return answer

    # -- the courier ----------------------------------------------------------------------------

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, dict[str, str], bytes]:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        with self._lock:
            self._requests.append(Request(path, headers, body, message))
            plan = self._plans.pop(0) if self._plans else None
        if plan is not None and plan.hang:
            self.release.wait(timeout=30)
            return None, {}, b""
        if plan is not None:
            assert plan.status is not None
            return plan.status, {}, plan.body
        status, answer = self._answer(path, headers, body, message)
        return status, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _answer(  # noqa: PLR0911 - one answer per check, in the order a courier makes them
        self, path: str, headers: dict[str, str], body: bytes, message: Any
    ) -> tuple[int, dict[str, Any]]:
        lowered = {name.lower(): value for name, value in headers.items()}
        if lowered.get("x-courier-account") != self.account:
            return _error(401, "unknown_account", "Không tìm thấy khách hàng")
        signature = lowered.get("x-courier-signature", "")
        if not hmac.compare_digest(signature, hmac_hex(self.secret, body)):
            return _error(401, "bad_signature", "Sai chữ ký")
        if not isinstance(message, dict) or not isinstance(message.get("reference"), str):
            return _error(400, "malformed", "Yêu cầu không hợp lệ")
        actions = {
            "/api/v1/shipments": self._create,
            "/api/v1/shipments/track": self._track,
            "/api/v1/shipments/cancel": self._cancel,
        }
        action = actions.get(path)
        if action is None:
            return _error(404, "not_found", "Không có đường dẫn này")
        key = lowered.get("idempotency-key")
        if key is None:
            return action(message)
        with self._lock:
            seen = self._keys.get(key)
        if seen is not None:
            if seen[0] != body:
                return _error(409, "idempotency_conflict", "Khóa đã dùng cho yêu cầu khác")
            return seen[1], seen[2]
        status, answer = action(message)
        if status < 500:
            with self._lock:
                self._keys.setdefault(key, (body, status, answer))
        return status, answer

    def _create(self, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        direction = message.get("direction")
        recipient = message.get("recipient")
        if direction not in REQUIRED or not isinstance(recipient, dict):
            return _error(400, "malformed", "Thiếu hướng hoặc người nhận")
        for name in REQUIRED[direction]:
            if not recipient.get(name):
                # Like many APIs, it echoes the offending record: the plugin must not quote it.
                return _error(422, "invalid_recipient", f"Người nhận không hợp lệ: {recipient}")
        if "unserviceable" in str(recipient.get("address")):
            return _error(422, "unserviceable", f"Không phục vụ địa chỉ {recipient['address']}")
        reference = message["reference"]
        with self._lock:
            shipment = self.shipments.get(reference)
            if shipment is None:
                waybill = f"EB{next(self._numbers):09d}VN"
                shipment = Shipment(reference, waybill, message)
                self.shipments[reference] = shipment
                first = "pickup_requested" if message.get("request_pickup") else "created"
                shipment.events.append(
                    {
                        "event_id": f"EV{next(self._numbers):08d}",
                        "reference": reference,
                        "waybill": waybill,
                        "status": first,
                        "at": now_local(),
                        "receiver": {},
                        "detail": None,
                    }
                )
        return 201, {"reference": reference, "waybill": shipment.waybill, "status": shipment.status}

    def _find(self, message: dict[str, Any]) -> Shipment | None:
        with self._lock:
            waybill = message.get("waybill")
            if waybill:
                return next((s for s in self.shipments.values() if s.waybill == waybill), None)
            return self.shipments.get(message["reference"])

    def _track(self, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        shipment = self._find(message)
        if shipment is None:
            return _error(404, "not_found", "Không tìm thấy bưu gửi")
        with self._lock:
            return 200, dict(shipment.events[-1])

    def _cancel(self, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        shipment = self._find(message)
        if shipment is None:
            return _error(404, "not_found", "Không tìm thấy bưu gửi")
        if shipment.status not in CANCELLABLE:
            return _error(409, "not_cancellable", "Bưu gửi đã được nhận, không thể hủy")
        if shipment.status != "cancelled":
            self.event(shipment.reference, "cancelled")
        return 200, {
            "reference": shipment.reference,
            "waybill": shipment.waybill,
            "status": "cancelled",
        }
