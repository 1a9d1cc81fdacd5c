"""Callbacks from back ends: the checks each passes before it is applied, and the security log.

Payment callbacks, courier reports and message receipts all arrive the same way: bytes and
headers posted by a provider. Each is refused unread when it is too large, then authenticated
and parsed by the provider's plugin. A rejection of any kind is appended to the security log
(never to a dossier's history) and raised as a typed error; nothing else is written.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import attrs

from dvcflow._backends import CallbackReply, Provider
from dvcflow._snapshots import aware
from dvcflow.errors import BackendError, CallbackError, NotFoundError, SignatureError

if TYPE_CHECKING:
    from dvcflow._engine import Engine

__all__ = ["Intake", "SecurityRecord"]

logger = logging.getLogger("dvcflow")

T = TypeVar("T")


@attrs.frozen
class SecurityRecord:
    """A rejected request in the security log: what, when, from where, and a trace of it."""

    at: dt.datetime
    source: str
    kind: str
    detail: str
    size: int
    digest: str
    excerpt: str


class Intake:
    """The checks every back-end callback passes, and the log of those that fail them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def verified(  # noqa: PLR0913 - the callback and how to read it
        self,
        what: str,
        provider: str,
        *,
        body: bytes,
        headers: Mapping[str, str],
        parse: Callable[[Provider, bytes, Mapping[str, str]], T],
        at: dt.datetime,
    ) -> tuple[Provider, T]:
        """The provider and its parsed, authenticated callback.

        ``what`` names the kind of callback in the log (``callback``, ``report``,
        ``receipt``); ``parse`` is the façade call that verifies it.

        Raises:
            SignatureError: the callback does not authenticate.
            CallbackError: ``unknown_provider``, ``oversize`` or ``malformed``.
        """
        source = f"{what}:{provider}"
        try:
            backend = self._engine.backends.provider(provider)
        except NotFoundError as exc:
            raise self.reject(source, "unknown_provider", str(exc), body, at) from None
        limit = self._engine.config.payments.callback_max_bytes
        if len(body) > limit:
            detail = f"{len(body)} bytes, more than {limit}"
            raise self.reject(source, "oversize", detail, body, at) from None
        try:
            return backend, parse(backend, body, dict(headers))
        except SignatureError as exc:
            self.log(source, "bad_signature", str(exc), body, at)
            raise
        except CallbackError as exc:
            self.log(source, exc.kind, str(exc), body, at)
            raise
        except BackendError as exc:
            raise self.reject(source, "malformed", str(exc), body, at) from None

    @staticmethod
    def endpoint(
        apply: Callable[[bytes, Mapping[str, str]], object],
    ) -> Callable[[bytes, Mapping[str, str]], CallbackReply]:
        """An endpoint for a portal's web framework: 204 when applied, 400 with the kind not."""

        def handle(body: bytes, headers: Mapping[str, str]) -> CallbackReply:
            try:
                apply(body, headers)
            except (SignatureError, CallbackError) as exc:
                kind = exc.kind if isinstance(exc, CallbackError) else "bad_signature"
                return CallbackReply(400, kind.encode(), {"content-type": "text/plain"})
            return CallbackReply(204)

        return handle

    def log(self, source: str, kind: str, detail: str, raw: bytes, at: dt.datetime) -> None:
        """Append a rejected request to the security log, in a transaction of its own."""
        logger.warning("dvcflow rejected a callback", extra={"source": source, "kind": kind})
        store = self._engine.store
        with store.transaction() as connection:
            store.ledger.log_security(
                connection, source=source, kind=kind, detail=detail, raw=raw, now=at
            )

    def reject(
        self, source: str, kind: str, detail: str, raw: bytes, at: dt.datetime
    ) -> CallbackError:
        """Log a rejection; the error to raise."""
        self.log(source, kind, detail, raw, at)
        return CallbackError(kind, detail)

    def records(self, *, limit: int = 100) -> list[SecurityRecord]:
        """The security log, newest first."""
        store = self._engine.store
        with store.connect() as connection:
            rows = store.ledger.security_log(connection, limit=limit)
        return [
            SecurityRecord(aware(r.at), r.source, r.kind, r.detail, r.size, r.digest, r.excerpt)
            for r in rows
        ]
