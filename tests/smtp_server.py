"""A real SMTP server on loopback (aiosmtpd), in a thread of its own; a context manager.

It keeps every message it accepts, as bytes, with its envelope and whether it came over TLS;
it can refuse recipients with a given answer, offer STARTTLS or speak TLS from the first byte,
and require a login. It listens on 127.0.0.1, on a port the system picks.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Delivered", "SmtpServer"]


@dataclass
class Delivered:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        """The content parsed, with the modern policy (headers decoded)."""
        # As a mailbox stores it: lines end in LF, not in the CRLF of the wire.
        parsed = email.message_from_bytes(
            self.content.replace(b"\r\n", b"\n"), policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        del server, session, rcpt_options
        answer = self.owner.refuse.get(address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        tls = server.transport is not None and (
            server.transport.get_extra_info("ssl_object") is not None
        )
        content = envelope.content
        assert isinstance(content, bytes)
        auth = session.auth_data
        self.owner.delivered.append(
            Delivered(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=content,
                tls=tls,
                login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on 127.0.0.1.

    Args:
        starttls: offer STARTTLS with this server context (and then require it).
        implicit_tls: speak TLS from the first byte with this server context (port 465 style).
        credentials: require a login with this ``(user, password)``.
    """

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._credentials = credentials
        self.refuse: dict[str, str] = {}
        """Answers to RCPT TO by address, e.g. ``"550 5.1.1 <a@b.vn>: no such user"``."""
        self.delivered: list[Delivered] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        del server, session, envelope, mechanism
        ok = (
            self._credentials is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self._credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def _protocol(self) -> SMTP:
        return SMTP(
            _Handler(self),
            hostname="mx.loopback.test",
            tls_context=self._starttls,
            require_starttls=self._starttls is not None,
            authenticator=self._authenticate if self._credentials else None,
            auth_required=self._credentials is not None,
            auth_require_tls=self._implicit_tls is None,
            loop=self._loop,
        )

    async def _start(self) -> int:
        self._server = await self._loop.create_server(
            self._protocol, host="127.0.0.1", port=0, ssl=self._implicit_tls
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def __enter__(self) -> Self:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
