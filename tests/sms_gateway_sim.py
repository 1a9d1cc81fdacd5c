"""A simulator of an SMS and Zalo gateway on loopback, as ``docs/channels.md`` describes it.

It checks what it receives on its own (the HMAC of the body, the Idempotency-Key, the number
format, who follows the Zalo account), written out independently of the plugin: a change to
the plugin that a gateway would not accept fails the tests. It can fail or hang the next
requests, refuse given recipients with the documented codes, and POST signed delivery
receipts to a callback URL. It listens on 127.0.0.1, on a port the system picks (use it as a
context manager).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from dvcflow._backends import Provider
from gateway import Received, _Loopback, _Plan

__all__ = ["Sent", "SmsGatewaySim"]

PATH = "/v1/messages"
MOBILE = re.compile(r"84[35789][0-9]{8}\Z")
"""What the gateway takes as a Vietnamese mobile number (84 and 9 digits)."""


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Sent:
    """A message the gateway accepted (once per Idempotency-Key)."""

    id: str
    key: str
    channel: str
    to: str
    text: str
    reference: str
    sender: str | None


class SmsGatewaySim(_Loopback):
    """The simulated gateway: ``POST /v1/messages`` and receipts sent by `deliver`.

    Args:
        secret: the secret it shares with dvcflow.
        callback_url: where `deliver` POSTs receipts (settable later).
    """

    def __init__(self, *, secret: str, callback_url: str | None = None) -> None:
        super().__init__()
        self.secret = secret
        self.callback_url = callback_url
        self.followers: set[str] = set()
        """Zalo user ids following the agency's Official Account."""
        self.refused: dict[str, str] = {}
        """Error codes the gateway answers for a recipient (``"blocked"``, ...)."""
        self.sent: dict[str, Sent] = {}
        """By gateway id."""
        self._keys: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._plans: list[_Plan] = []
        self._received: list[Received] = []

    # -- steering ---------------------------------------------------------------------------------

    @property
    def api(self) -> str:
        return f"{self.url}{PATH}"

    def provider(
        self, channel: str = "sms", *, secret: str | None = None, **settings: Any
    ) -> Provider:
        """A ``sms_gateway`` provider for this simulator."""
        return Provider(
            channel,
            "sms_gateway",
            {"url": self.api, "channel": channel, "timeout_s": 5, **settings},
            {"secret": self.secret if secret is None else secret},
        )

    def fail_next(
        self, times: int = 1, *, status: int = 503, body: bytes = b'{"error": "unavailable"}'
    ) -> None:
        """Answer the next ``times`` requests with ``status`` and ``body`` instead."""
        with self._lock:
            self._plans.extend(_Plan(status=status, body=body) for _ in range(times))

    def hang_next(self, times: int = 1) -> None:
        """Leave the next ``times`` requests unanswered until the simulator stops."""
        with self._lock:
            self._plans.extend(_Plan(hang=True) for _ in range(times))

    @property
    def received(self) -> list[Received]:
        """Every request received, in order, repeats included."""
        with self._lock:
            return list(self._received)

    # -- receipts ---------------------------------------------------------------------------------

    def receipt_body(
        self, ident: str, status: str = "delivered", *, detail: str | None = None, **extra: Any
    ) -> bytes:
        """The receipt the gateway sends for message ``ident``, unsigned."""
        with self._lock:
            sent = self.sent.get(ident)
            number = next(self._numbers)
        receipt = {
            "event_id": f"EV-{number:06d}",
            "reference": sent.reference if sent else "unknown",
            "id": ident,
            "status": status,
            "detail": detail,
            **extra,
        }
        return json.dumps(receipt, ensure_ascii=False).encode()

    def sign(self, body: bytes, secret: str | None = None) -> dict[str, str]:
        """The headers of a receipt signed with the shared (or another) secret."""
        return {"X-Signature": "sha256=" + hex_hmac(secret or self.secret, body)}

    def deliver(
        self, ident: str, status: str = "delivered", *, detail: str | None = None
    ) -> tuple[int, bytes]:
        """POST a signed receipt for ``ident`` to ``callback_url``; dvcflow's status and body."""
        body = self.receipt_body(ident, status, detail=detail)
        return self.post(body, self.sign(body))

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST a receipt body with these headers to ``callback_url``."""
        assert self.callback_url is not None, "no callback_url"
        request = urllib.request.Request(  # noqa: S310 - loopback test URL
            self.callback_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    # -- the gateway ------------------------------------------------------------------------------

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, dict[str, str], bytes]:
        lower = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            self._received.append(Received(path, headers, body))
            plan = self._plans.pop(0) if self._plans else None
        if plan is not None and plan.hang:
            self.release.wait(timeout=30)
            return None, {}, b""
        if plan is not None:
            assert plan.status is not None
            return plan.status, {"Content-Type": "application/json"}, plan.body
        if path != PATH:
            return 404, {}, b""
        status, answer = self._answer(lower, body)
        return status, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        given = headers.get("x-signature", "")
        if not hmac.compare_digest(given, "sha256=" + hex_hmac(self.secret, body)):
            return 401, {"error": "bad_signature", "message": "Chữ ký không hợp lệ"}
        key = headers.get("idempotency-key")
        if not key:
            return 400, {"error": "invalid_request", "message": "Thiếu Idempotency-Key"}
        return self._accept(key, body)

    def _accept(self, key: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            seen = self._keys.get(key)
        if seen is not None:
            if seen[0] != body:
                return 409, {"error": "idempotency_conflict"}
            return 200, {"id": seen[1], "status": "accepted", "replayed": True}
        try:
            message = json.loads(body)
        except ValueError:
            return 400, {"error": "invalid_request"}
        refusal = self._refusal(message)
        if refusal is not None:
            # Gateways quote the recipient in their texts: the plugin must not repeat them.
            return 422, {"error": refusal, "message": f"Không gửi được tới {message.get('to')}"}
        with self._lock:
            ident = f"GW-{next(self._numbers):06d}"
            self._keys[key] = (body, ident)
            self.sent[ident] = Sent(
                ident,
                key,
                message["channel"],
                message["to"],
                message["text"],
                message["reference"],
                message.get("sender"),
            )
        return 202, {"id": ident, "status": "accepted"}

    def _refusal(self, message: Any) -> str | None:
        if not isinstance(message, dict) or not all(
            isinstance(message.get(name), str) for name in ("channel", "to", "text", "reference")
        ):
            return "invalid_request"
        to = message["to"]
        if to in self.refused:
            return self.refused[to]
        if message["channel"] == "sms":
            return None if MOBILE.match(to) else "invalid_number"
        if message["channel"] == "zalo":
            return None if to in self.followers else "not_follower"
        return "invalid_request"
