"""A system that takes dvcflow's webhooks, on loopback: it checks them with `verify_signature`.

It applies each ``Idempotency-Key`` once, can answer the next requests with a given status or
not at all, and listens on 127.0.0.1, on a port the system picks (a context manager).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from dvcflow.plugins.webhook import verify_signature
from gateway import Received, _Loopback

__all__ = ["Receiver"]


class Receiver(_Loopback):
    """A system that takes dvcflow's webhooks: checks the signature, applies each key once.

    Args:
        secret: what it verifies with (one secret or several).
        now: its clock, in Unix seconds.
    """

    def __init__(self, secret: str | list[str], now: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.secret = secret
        self.now = now
        self.statuses: list[int] = []
        """Answer the next requests with these statuses instead."""
        self.hang = 0
        self.received: list[Received] = []
        self.applied: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"{self.url}/hooks/dvcflow"

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, dict[str, str], bytes]:
        with self._lock:
            self.received.append(Received(path, headers, body))
            status = self.statuses.pop(0) if self.statuses else None
            hang, self.hang = self.hang > 0, max(self.hang - 1, 0)
        if hang:
            self.release.wait(timeout=30)
            return None, {}, b""
        if status is not None:
            return status, {}, b""
        if not verify_signature(body, headers, self.secret, now=self.now()):
            return 401, {}, b""
        key = {k.lower(): v for k, v in headers.items()}["idempotency-key"]
        with self._lock:
            self.applied.setdefault(key, json.loads(body))
            number = len(self.applied)
        answer = json.dumps({"id": f"rx-{number}"}).encode()
        return 200, {"Content-Type": "application/json"}, answer
