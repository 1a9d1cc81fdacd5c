"""The plugins' transport: one JSON POST on the standard library, with connect and read timeouts."""

from __future__ import annotations

import functools
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from dvcflow.errors import BackendError

__all__ = ["HTTPStatusError", "encode_json", "is_http_url", "post_json"]


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

    Proxies come from the environment (``https_proxy``, ``no_proxy``); redirects are refused.

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
    if not is_http_url(url):
        raise BackendError(f"{where}: not an http(s) URL", retryable=False)
    opener = urllib.request.build_opener(
        _HTTPHandler(read_timeout), _HTTPSHandler(read_timeout), _NoRedirect()
    )
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url,
        data=message if isinstance(message, bytes) else encode_json(message),
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": "dvcflow",
            **(headers or {}),
        },
        method="POST",
    )
    try:
        with opener.open(request, timeout=connect_timeout) as response:
            raw: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            error_body: bytes = exc.read(max_bytes + 1)
        except (OSError, ValueError, http.client.HTTPException):
            error_body = b""  # the status alone still says what happened
        finally:
            exc.close()
        reply = _json_object(error_body) if len(error_body) <= max_bytes else None
        retryable = status >= 500 or status in (408, 429)
        raise HTTPStatusError(
            f"{where}: HTTP {status}", status=status, reply=reply, retryable=retryable
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        # URLError (refused, DNS, TLS) and TimeoutError are OSErrors.
        reason = getattr(exc, "reason", exc)
        raise BackendError(f"{where}: {type(reason).__name__}: {reason}") from None
    if len(raw) > max_bytes:
        raise BackendError(f"{where}: the reply exceeds {max_bytes} bytes")
    answer = _json_object(raw)
    if answer is None:
        raise BackendError(f"{where}: the reply is not a JSON object")
    return answer
