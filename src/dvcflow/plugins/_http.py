"""The plugins' transport: one HTTP POST on the standard library, with connect and read timeouts."""

from __future__ import annotations

import functools
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import attrs

from dvcflow.errors import BackendError

__all__ = [
    "HTTPStatusError",
    "Reply",
    "encode_json",
    "is_http_url",
    "post",
    "post_json",
    "retryable_status",
]


class _Connection(http.client.HTTPConnection):
    """Connects within the connect timeout, then waits for each read at most ``read_timeout``."""

    def __init__(self, host: str, *, read_timeout: float, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(host, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _TLSConnection(http.client.HTTPSConnection):
    """`_Connection` over TLS (the handshake counts as connecting)."""

    def __init__(self, host: str, *, read_timeout: float, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(host, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self._read_timeout = read_timeout

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_Connection, read_timeout=self._read_timeout), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self._read_timeout = read_timeout

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_TLSConnection, read_timeout=self._read_timeout), req)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """An API endpoint that redirects is misconfigured: a redirected POST loses its body."""

    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


class HTTPStatusError(BackendError):
    """The peer answered an HTTP error status; ``reply`` is its body when a JSON object.

    The message names the status only: an error body may echo what was sent (personal data),
    so a plugin reads the codes it knows from ``reply`` rather than quoting it.
    """

    def __init__(
        self, message: str, *, status: int, reply: dict[str, Any] | None, retryable: bool
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status
        self.reply = reply


def is_http_url(value: object) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host."""
    if not isinstance(value, str):
        return False
    parts = urllib.parse.urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def encode_json(message: Mapping[str, Any]) -> bytes:
    """The bytes `post_json` sends for ``message``: UTF-8 JSON, non-ASCII unescaped."""
    return json.dumps(message, ensure_ascii=False).encode()


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@attrs.frozen
class Reply:
    """An HTTP answer as received: its status and (the start of) its body."""

    status: int
    body: bytes
    """At most ``max_bytes + 1`` bytes: longer means the peer sent more than allowed."""


def _header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be sent as is (non-ASCII or a line break would split it)."""
    if not value.isascii() or any(ord(char) < 32 or ord(char) == 127 for char in value):
        return f"header {name}: must be printable ASCII"
    return None


def post(  # noqa: PLR0913 - every argument is a separate, required knob
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    connect_timeout: float,
    read_timeout: float,
    max_bytes: int,
    where: str,
    private_url: bool = False,
) -> Reply:
    """POST ``body`` to ``url`` as it is (signed bytes stay the bytes sent); the reply.

    Every HTTP status is returned, not raised: the caller knows which answers its peer
    documents. Proxies come from the environment (``https_proxy``, ``no_proxy``); redirects are
    refused (returned as the 3xx status).

    Args:
        url: an http(s) URL.
        body: the request body.
        headers: sent besides ``User-Agent``; ``Content-Type`` among them.
        connect_timeout: seconds to connect (TCP and TLS).
        read_timeout: seconds to wait for each read of the reply.
        max_bytes: at most this many bytes of the reply are kept (plus one, to tell).
        where: what is being done, for error messages (no secrets, no personal data).
        private_url: the URL is personal data (a recipient's own endpoint): errors name the
            kind of failure only, as the error's text may name the host.

    Raises:
        BackendError: retryable for a network error or a timeout; not retryable for a URL
            that is not http(s) or a header that cannot be sent.
    """
    if not is_http_url(url):
        raise BackendError(f"{where}: not an http(s) URL", retryable=False)
    for name, value in headers.items():
        problem = _header_problem(name, value)
        if problem is not None:
            raise BackendError(f"{where}: {problem}", retryable=False)
    opener = urllib.request.build_opener(
        _HTTPHandler(read_timeout), _HTTPSHandler(read_timeout), _NoRedirect()
    )
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url, data=body, headers={"User-Agent": "dvcflow", **headers}, method="POST"
    )
    try:
        with opener.open(request, timeout=connect_timeout) as response:
            return Reply(response.status, response.read(max_bytes + 1))
    except urllib.error.HTTPError as exc:
        with exc:
            try:
                raw = exc.read(max_bytes + 1)
            except (OSError, http.client.HTTPException):
                raw = b""
            return Reply(exc.code, raw)
    except (OSError, http.client.HTTPException) as exc:
        # URLError (refused, DNS, TLS) and TimeoutError are OSErrors.
        reason = getattr(exc, "reason", exc)
        text = "" if private_url else f": {reason}"
        raise BackendError(f"{where}: {type(reason).__name__}{text}") from None


def retryable_status(status: int) -> bool:
    """Whether an HTTP error status may go away on a later try (408, 429, 5xx)."""
    return status >= 500 or status in (408, 429)


def post_json(  # noqa: PLR0913 - every argument is a separate knob
    url: str,
    message: Mapping[str, Any] | bytes,
    *,
    connect_timeout: float,
    read_timeout: float,
    max_bytes: int,
    where: str,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST ``message`` as JSON to ``url``; the reply, which must be a JSON object.

    Args:
        url: an http(s) URL (checked by the caller's settings check).
        message: the JSON object to send, or its encoded bytes (`encode_json`) when a header
            signs them.
        connect_timeout: seconds to connect (TCP and TLS).
        read_timeout: seconds to wait for each read of the reply.
        max_bytes: a longer reply is refused unparsed.
        where: what is being done, for error messages (no secrets).
        headers: more request headers (an idempotency key, a signature).

    Raises:
        HTTPStatusError: a `BackendError` for an error status: retryable for HTTP 408, 429 or
            5xx, not retryable for any other.
        BackendError: retryable for a network error, a timeout, and a reply that is too long
            or not a JSON object.
    """
    reply = post(
        url,
        message if isinstance(message, bytes) else encode_json(message),
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            **(headers or {}),
        },
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_bytes=max_bytes,
        where=where,
    )
    if not 200 <= reply.status < 300:
        error = _json_object(reply.body) if len(reply.body) <= max_bytes else None
        raise HTTPStatusError(
            f"{where}: HTTP {reply.status}",
            status=reply.status,
            reply=error,
            retryable=retryable_status(reply.status),
        )
    if len(reply.body) > max_bytes:
        raise BackendError(f"{where}: the reply exceeds {max_bytes} bytes")
    answer = _json_object(reply.body)
    if answer is None:
        raise BackendError(f"{where}: the reply is not a JSON object")
    return answer
