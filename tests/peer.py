"""A back end's peer on loopback: an HTTP server that counts what it receives, by idempotency key.

It applies each key once (a second delivery of a key is acknowledged and ignored), the way a
well-behaved provider treats an ``Idempotency-Key``, and keeps every delivery in order so a
test can tell "at least once" (received) from "once" (applied). Nothing here depends on pytest.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["Peer"]


class Peer:
    """An HTTP peer on 127.0.0.1, started and stopped by its user (a context manager).

    Args:
        delay_s: how long each request takes to answer (to catch a worker mid-dispatch).
    """

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.received: list[str] = []
        self.applied: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                if peer.delay_s:
                    time.sleep(peer.delay_s)
                with peer._lock:
                    peer.received.append(key)
                    peer.applied.setdefault(key, body)
                    number = len(peer.received)
                answer = json.dumps({"id": f"peer-{number}"}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    # The caller died waiting (a killed worker): applied all the same.
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the tests read the counters, not a log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to POST."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/notify"

    def counts(self) -> Counter[str]:
        """How many times each key was received."""
        with self._lock:
            return Counter(self.received)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
