"""A simulator of the national payment platform on loopback, and a portal callback endpoint.

The simulator implements the scheme of ``docs/national-payment.md`` on its own (its own field
orders, status and error codes), not with the plugin's tables: a change to the plugin that the
platform would not accept fails the tests. Both servers listen on 127.0.0.1, on a port the
system picks, and are started and stopped by the tests (use them as context managers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from dvcflow._backends import CallbackReply, PaymentOutcome, Provider

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")

ORDERS = {
    "INIT": "LoaiBanTin PhienBan MaDoiTac MaThamChieu SoTien LoaiHinhThanhToan MaKenhThanhToan "
    "MaThietBi NgonNgu MaTienTe MaNganHang ThongTinGiaoDich ThoiGianGD Ip",
    "INIT_REPLY": "LoaiBanTin MaLoi MaDoiTac MaThamChieu MaGiaoDich SoTien UrlThanhToan",
    "QUERY": "LoaiBanTin PhienBan MaDoiTac MaThamChieu MaGiaoDich ThoiGianGD",
    "QUERY_REPLY": "LoaiBanTin MaLoi MaDoiTac MaThamChieu MaGiaoDich SoTien TrangThai "
    "ThongTinBienLai ThoiGianGD",
    "CONFIRM": "LoaiBanTin PhienBan MaDoiTac MaThamChieu MaGiaoDich SoTien MaLoi TrangThai "
    "ThongTinBienLai ThoiGianGD",
}
"""What the simulated platform signs, written out independently of the plugin."""

STATUS = {
    PaymentOutcome.SUCCEEDED: "00",
    PaymentOutcome.PENDING: "01",
    PaymentOutcome.FAILED: "02",
    PaymentOutcome.CANCELLED: "03",
    PaymentOutcome.EXPIRED: "04",
}
DECLINED = "10"
"""The CONFIRM ``MaLoi`` of a payment that did not succeed."""
ERRORS = {
    "01": "Sai mã xác thực",
    "02": "Bản tin không hợp lệ",
    "03": "Đối tác không tồn tại",
    "04": "Không tìm thấy giao dịch",
    "05": "Mã tham chiếu đã dùng với số tiền khác",
}


def digest(kind: str, message: Mapping[str, Any], secret: str) -> str:
    """The platform's MaXacThuc of a message of ``kind`` (a key of `ORDERS`)."""
    values = [
        "" if message.get(name) is None else str(message[name]) for name in ORDERS[kind].split()
    ]
    return hashlib.sha256("|".join([*values, secret]).encode()).hexdigest()


def local_now() -> str:
    return dt.datetime.now(LOCAL).strftime("%Y%m%d%H%M%S")


@dataclass
class Transaction:
    """A payment the platform was asked for."""

    reference: str
    transaction_id: str
    amount: int
    url: str
    status: str = STATUS[PaymentOutcome.PENDING]
    receipt: str | None = None


@dataclass
class _Plan:
    """What the next requests get instead of an answer."""

    status: int | None = None
    body: bytes = b""
    hang: bool = False


@dataclass
class Received:
    """One request the simulator received."""

    path: str
    headers: dict[str, str]
    body: bytes
    message: Any = field(default=None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the owner records what it receives."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20))
        status, headers, answer = self.server.owner.handle(self.path, dict(self.headers), body)
        if status is None:
            return  # hung: close without an answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class _Loopback:
    """A ThreadingHTTPServer on 127.0.0.1, port 0, in a thread; a context manager.

    Args:
        tls: serve https with this server context (certificate loaded) instead of http.
    """

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.release = threading.Event()
        """Set at stop: lets hung requests end."""

    def start(self) -> None:
        self.release.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # joins the request threads
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        scheme = "http" if self._tls is None else "https"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, dict[str, str], bytes]:
        raise NotImplementedError


class Gateway(_Loopback):
    """The simulated platform: INIT, QUERY, and CONFIRM callbacks sent by `pay`.

    Args:
        partner: the partner code (MaDoiTac) it knows.
        secret: the secret it shares with that partner.
        callback_url: where `pay` sends CONFIRM (settable later).
        tls: serve https (see `_Loopback`).
    """

    def __init__(
        self,
        *,
        partner: str,
        secret: str,
        callback_url: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.partner = partner
        self.secret = secret
        self.callback_url = callback_url
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._plans: list[_Plan] = []
        self._tamper: dict[str, Any] = {}
        self.transactions: dict[str, Transaction] = {}
        """By MaThamChieu."""
        self._received: list[Received] = []

    # -- steering ---------------------------------------------------------------------------------

    @property
    def api(self) -> str:
        """The API endpoint every message is posted to."""
        return f"{self.url}/api"

    def settings(self, **changes: Any) -> dict[str, Any]:
        """Provider settings pointing at this simulator."""
        return {"url": self.api, "partner": self.partner, "timeout_s": 5, **changes}

    def provider(self, *, secret: str | None = None, **changes: Any) -> Provider:
        """A ``national_payment`` provider for this simulator."""
        return Provider(
            "paygov",
            "national_payment",
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

    def tamper_next(self, **fields: Any) -> None:
        """Change these fields of the next signed answer after signing it."""
        with self._lock:
            self._tamper.update(fields)

    @property
    def received(self) -> list[Received]:
        """Every request received, in order."""
        with self._lock:
            return list(self._received)

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The JSON messages received, of ``kind`` (LoaiBanTin) if given."""
        return [
            r.message
            for r in self.received
            if isinstance(r.message, dict) and kind in (None, r.message.get("LoaiBanTin"))
        ]

    # -- callbacks -------------------------------------------------------------------------------

    def confirm_message(
        self,
        reference: str,
        *,
        outcome: PaymentOutcome = PaymentOutcome.SUCCEEDED,
        amount: int | None = None,
        secret: str | None = None,
        altered: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The CONFIRM the platform sends for ``reference``, signed, then ``altered``."""
        with self._lock:
            tx = self.transactions.get(reference)
        paid = outcome is PaymentOutcome.SUCCEEDED
        message: dict[str, Any] = {
            "LoaiBanTin": "CONFIRM",
            "PhienBan": "1.0.0",
            "MaDoiTac": self.partner,
            "MaThamChieu": reference,
            "MaGiaoDich": tx.transaction_id if tx else "GD9999999999",
            "SoTien": amount if amount is not None else (tx.amount if tx else 0),
            "MaLoi": "00" if paid else DECLINED,
            "MoTaLoi": "Giao dịch thành công" if paid else "Giao dịch không thành công",
            "TrangThai": STATUS[outcome],
            "ThongTinBienLai": (tx.receipt if tx and tx.receipt else "BL-0000000") if paid else "",
            "ThoiGianGD": local_now(),
        }
        message["MaXacThuc"] = digest("CONFIRM", message, self.secret if secret is None else secret)
        message.update(altered or {})
        return message

    def confirm_body(self, reference: str, **options: Any) -> bytes:
        """`confirm_message` as the bytes of the HTTP body, without sending it."""
        return json.dumps(self.confirm_message(reference, **options), ensure_ascii=False).encode()

    def pay(
        self,
        reference: str,
        *,
        outcome: PaymentOutcome = PaymentOutcome.SUCCEEDED,
        amount: int | None = None,
    ) -> tuple[int, bytes]:
        """Settle ``reference`` at the platform and POST the CONFIRM to ``callback_url``.

        Returns:
            The portal's HTTP status and body.
        """
        with self._lock:
            tx = self.transactions[reference]
            tx.status = STATUS[outcome]
            if outcome is PaymentOutcome.SUCCEEDED:
                tx.receipt = f"BL-{next(self._numbers):07d}"
        return self.send(self.confirm_body(reference, outcome=outcome, amount=amount))

    def send(self, body: bytes) -> tuple[int, bytes]:
        """POST a callback body to ``callback_url``; the portal's status and body."""
        assert self.callback_url is not None, "no callback_url"
        request = urllib.request.Request(  # noqa: S310 - loopback test URL
            self.callback_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    # -- the platform ----------------------------------------------------------------------------

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, dict[str, str], bytes]:
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        with self._lock:
            self._received.append(Received(path, headers, body, message))
            plan = self._plans.pop(0) if self._plans else None
        if plan is not None and plan.hang:
            self.release.wait(timeout=30)
            return None, {}, b""
        if plan is not None:
            assert plan.status is not None
            extra = {"Location": f"{self.url}/elsewhere"} if 300 <= plan.status < 400 else {}
            return plan.status, extra, plan.body
        if path != "/api" or not isinstance(message, dict):
            return 404, {}, b""
        answer = self._answer(message)
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        kind = message.get("LoaiBanTin")
        if kind not in ("INIT", "QUERY"):
            return self._error(kind, "02")
        if message.get("MaDoiTac") != self.partner:
            return self._error(kind, "03")
        if message.get("MaXacThuc") != digest(kind, message, self.secret):
            return self._error(kind, "01")
        return self._init(message) if kind == "INIT" else self._query(message)

    def _error(self, kind: object, code: str) -> dict[str, Any]:
        """Refusals are not signed: the partner may not even share our secret."""
        return {"LoaiBanTin": kind, "MaLoi": code, "MoTaLoi": ERRORS[code]}

    def _signed(self, kind: str, answer: dict[str, Any]) -> dict[str, Any]:
        answer["MaXacThuc"] = digest(kind, answer, self.secret)
        with self._lock:
            answer.update(self._tamper)
            self._tamper.clear()
        return answer

    def _init(self, message: dict[str, Any]) -> dict[str, Any]:
        reference, amount = message.get("MaThamChieu"), message.get("SoTien")
        if (
            not reference
            or not isinstance(amount, int)
            or amount <= 0
            or message.get("MaTienTe") != "704"
        ):
            return self._error("INIT", "02")
        with self._lock:
            tx = self.transactions.get(reference)
            if tx is None:
                number = f"GD{next(self._numbers):010d}"
                tx = Transaction(reference, number, amount, f"{self.url}/pay/{number}")
                self.transactions[reference] = tx
        if tx.amount != amount:
            return self._error("INIT", "05")
        return self._signed(
            "INIT_REPLY",
            {
                "LoaiBanTin": "INIT",
                "MaLoi": "00",
                "MoTaLoi": "Thành công",
                "MaDoiTac": self.partner,
                "MaThamChieu": reference,
                "MaGiaoDich": tx.transaction_id,
                "SoTien": tx.amount,
                "UrlThanhToan": tx.url,
            },
        )

    def _query(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            found = [
                tx
                for tx in self.transactions.values()
                if tx.transaction_id == message.get("MaGiaoDich")
                or (not message.get("MaGiaoDich") and tx.reference == message.get("MaThamChieu"))
            ]
        if not found:
            return self._error("QUERY", "04")
        tx = found[0]
        return self._signed(
            "QUERY_REPLY",
            {
                "LoaiBanTin": "QUERY",
                "MaLoi": "00",
                "MoTaLoi": "Thành công",
                "MaDoiTac": self.partner,
                "MaThamChieu": tx.reference,
                "MaGiaoDich": tx.transaction_id,
                "SoTien": tx.amount,
                "TrangThai": tx.status,
                "ThongTinBienLai": tx.receipt or "",
                "ThoiGianGD": local_now(),
            },
        )


class Portal(_Loopback):
    """A portal's callback endpoint: hands each POST to ``answer`` and sends its reply.

    It stands for ``engine.payments.callback(provider_name, body, headers)``.
    """

    def __init__(self, answer: Callable[[bytes, Mapping[str, str]], CallbackReply]) -> None:
        super().__init__()
        self._answer = answer
        self._lock = threading.Lock()
        self.bodies: list[bytes] = []

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, dict[str, str], bytes]:
        del path
        with self._lock:
            self.bodies.append(body)
        reply = self._answer(body, headers)
        return reply.status, dict(reply.headers), reply.body


def running(server: _Loopback) -> Iterator[Any]:
    """A fixture body: start ``server``, yield it, stop it."""
    with server:
        yield server
