"""Email through an SMTP relay: the agency's mail server or a transactional email service.

Configure it as a provider of type ``"smtp"``::

    [providers.mail]
    type = "smtp"
    settings = { host = "smtp.example.gov.vn", sender = "noreply@example.gov.vn" }
    secrets = { username = "DVCFLOW_SMTP_USER", password = "DVCFLOW_SMTP_PASSWORD" }

It sends one message per call with the standard library (`smtplib`): plain text, plus an HTML
alternative when the message has one, in UTF-8. SMTP has no idempotency key: the message's
``Message-ID`` is built from dvcflow's reference, so a copy sent again after a lost answer
carries the same id (mail readers show one), and ``X-Dvcflow-Key`` carries the key. Email has
no delivery receipts: a send ends at ``"sending"``; bounces reach the sender's mailbox.
``docs/channels.md`` lists the settings and how each SMTP answer is treated.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import re
import smtplib
import ssl
import string
from email.headerregistry import Address
from email.message import EmailMessage

from dvcflow._backends import Message, MessageChannel, NotificationReceipt, Provider
from dvcflow._clock import Clock, SystemClock
from dvcflow.errors import BackendError
from dvcflow.hookspecs import hookimpl

__all__ = [
    "DEFAULT_PORTS",
    "KEY_HEADER",
    "SECURITY",
    "SMTP",
    "SmtpEmail",
    "build_email",
    "is_email_address",
    "is_loopback",
    "message_id",
]

logger = logging.getLogger("dvcflow.smtp")

SMTP = "smtp"
"""The provider type this plugin serves."""

KEY_HEADER = "X-Dvcflow-Key"
"""The header carrying the message's idempotency key."""

SECURITY = ("starttls", "tls", "none")
"""``settings.security``: STARTTLS on a submission port, implicit TLS, or none (loopback only)."""
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
"""``settings.port`` when it is not given, by ``settings.security``."""
TIMEOUT_S = 30.0
"""Default ``settings.timeout_s``: for connecting and for each answer of the server."""

SETTINGS = (
    "host",
    "local_hostname",
    "message_id_domain",
    "port",
    "security",
    "sender",
    "sender_name",
    "timeout_s",
)

_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~.")
"""``atext`` of RFC 5322 and dots: a dot-atom local part, never quoted."""
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_ID_CHARS = frozenset(string.ascii_letters + string.digits + "-_+")
_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\Z")
_LOCALE = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*\Z")


# -- addresses and the message (pure) -------------------------------------------------------------


def _domain(text: str) -> str | None:
    """``text`` as an ASCII domain of two labels or more (an IDN as its A-labels), or ``None``."""
    try:
        ascii_domain = text.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or labels[-1].isdigit():
        return None
    return ascii_domain if all(_LABEL.match(label) for label in labels) else None


def _address(text: str) -> str | None:
    """``text`` as one plain address ``local@domain``, normalised, or ``None``.

    Only what a mail system takes without SMTPUTF8 or quoting: a dot-atom local part of
    ASCII, a domain (an internationalised one is sent as its A-labels). Anything that could
    add a header or a recipient (a line break, a comma, angle brackets, a space) is refused.
    """
    if len(text) > 254 or text.count("@") != 1:
        return None
    local, _, domain = text.partition("@")
    if not local or len(local) > 64 or not set(local) <= _LOCAL_CHARS:
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    ascii_domain = _domain(domain)
    if ascii_domain is None:
        return None
    return f"{local}@{ascii_domain}"


def is_email_address(text: str) -> bool:
    """Whether ``text`` is a plausible single email address this plugin can send to."""
    return _address(text) is not None


def message_id(reference: str, domain: str) -> str:
    """The ``Message-ID`` of the message with dvcflow ``reference``: ``<reference@domain>``.

    Characters a message id cannot hold are written ``=XX`` (their UTF-8 bytes in hex), so
    every reference gives one id and two references never give the same one.
    """
    left = "".join(
        char if char in _ID_CHARS else "".join(f"={byte:02X}" for byte in char.encode())
        for char in reference
    )
    return f"<{left}@{domain}>"


def _one_line(text: str) -> str:
    """A header value on one line: line breaks become spaces."""
    return " ".join(text.splitlines()).strip()


def build_email(
    message: Message,
    *,
    sender: str,
    sender_name: str | None = None,
    domain: str | None = None,
    date: str | None = None,
) -> EmailMessage:
    """The email for ``message``: UTF-8 text, plus an HTML alternative when it has one.

    Args:
        message: an email message; its address must be a plain address (`is_email_address`).
        sender: the ``From`` address.
        sender_name: the ``From`` display name (Vietnamese is fine).
        domain: the ``Message-ID`` domain; the sender's by default.
        date: the ``Date`` header (RFC 5322), now by default.

    Raises:
        ValueError: the recipient or the sender is not a plain address (the message says
            which, not what it is).
    """
    to = _address(message.address)
    if to is None:
        msg = "the recipient is not a plain email address"
        raise ValueError(msg)
    from_address = _address(sender)
    if from_address is None:
        msg = "the sender is not a plain email address"
        raise ValueError(msg)
    mail = EmailMessage()
    mail["From"] = Address(display_name=_one_line(sender_name or ""), addr_spec=from_address)
    mail["To"] = Address(addr_spec=to)
    if message.subject:
        mail["Subject"] = _one_line(message.subject)
    mail["Date"] = date or email.utils.formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.reference, domain or from_address.split("@")[1])
    mail[KEY_HEADER] = message.key
    # RFC 3834: an automatic message; well-behaved autoresponders do not answer it.
    mail["Auto-Submitted"] = "auto-generated"
    # Declared quoted-printable, not sent as 8bit: the server may not offer 8BITMIME.
    cte = None if message.text.isascii() else "quoted-printable"
    mail.set_content(message.text, subtype="plain", charset="utf-8", cte=cte)
    if message.html is not None:
        html_cte = None if message.html.isascii() else "quoted-printable"
        mail.add_alternative(message.html, subtype="html", charset="utf-8", cte=html_cte)
    if _LOCALE.match(message.locale):
        # After the content: setting it clears the Content-* headers, or moves them to a part.
        mail["Content-Language"] = message.locale
    return mail


# -- answers of the server ------------------------------------------------------------------------


def _reply_code(code: int, reply: bytes | str) -> str:
    """An SMTP answer as its codes only (``550 5.1.1``): its text may quote the address."""
    text = reply.decode("ascii", "replace") if isinstance(reply, bytes) else reply
    first = text.split(maxsplit=1)[0] if text.split() else ""
    return f"{code} {first}" if _ENHANCED.match(first) else str(code)


def _failure(exc: Exception, where: str) -> BackendError:
    """The `BackendError` for an SMTP failure: 5xx answers are final, the rest retryable."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        return BackendError(
            f"{where}: the server refused the recipient ({_reply_code(code, reply)})",
            retryable=not 500 <= code < 600,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        what = {
            smtplib.SMTPSenderRefused: "refused the sender (settings.sender)",
            smtplib.SMTPDataError: "refused the message",
            smtplib.SMTPAuthenticationError: "refused the login (secrets.username, .password)",
            smtplib.SMTPConnectError: "refused the connection",
            smtplib.SMTPHeloError: "refused the greeting (settings.local_hostname)",
        }.get(type(exc), "answered")
        code = exc.smtp_code
        return BackendError(
            f"{where}: the server {what} ({_reply_code(code, exc.smtp_error)})",
            retryable=not 500 <= code < 600,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # "STARTTLS extension not supported by server." and the like: the setting is wrong,
        # or someone strips STARTTLS on the way; trying again will not help either.
        return BackendError(f"{where}: {exc}", retryable=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # "Connection unexpectedly closed: timed out" and the like: no address in them.
        return BackendError(f"{where}: {exc}")
    if isinstance(exc, smtplib.SMTPException):
        return BackendError(f"{where}: {type(exc).__name__}")
    # Refused, unreachable, timed out, a certificate that does not verify.
    return BackendError(f"{where}: {type(exc).__name__}: {exc}")


def _close(connection: smtplib.SMTP) -> None:
    """QUIT politely; the message is sent already, so no answer to QUIT can undo it."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


# -- the plugin -----------------------------------------------------------------------------------


class SmtpEmail:
    """Email messages through an SMTP server (``channel = email``).

    Args:
        clock: where the ``Date`` header comes from (the system clock by default).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The plugin serves type ``smtp``."""
        return [SMTP]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        """Every problem with the provider's settings and secrets, each naming the setting."""
        if provider.type != SMTP:
            return None
        return _problems(provider)

    @hookimpl
    def dvcflow_send_message(
        self, provider: Provider, message: Message
    ) -> NotificationReceipt | None:
        """Send one email; its ``Message-ID`` is the receipt's ``provider_ref``.

        Raises:
            BackendError: not retryable for a message of another channel, an address that is
                not a plain email address, or a 5xx answer (no such mailbox, refused); retryable
                for a server that cannot be reached, a timeout or a 4xx answer.
        """
        if provider.type != SMTP:
            return None
        where = f"smtp provider {provider.name!r}"
        if message.channel is not MessageChannel.EMAIL:
            raise BackendError(
                f"{where}: sends email only, not {message.channel.value}", retryable=False
            )
        to = _address(message.address)
        if to is None:
            raise BackendError(
                f"{where}: the address is not a plain email address", retryable=False
            )
        sender = str(provider.setting("sender"))
        try:
            mail = build_email(
                message,
                sender=sender,
                sender_name=provider.setting("sender_name"),
                domain=provider.setting("message_id_domain"),
                date=email.utils.format_datetime(self._clock.now()),
            )
        except ValueError as exc:
            # A sender the check lets through cannot fail here; a key with a line break can.
            raise BackendError(f"{where}: {exc}", retryable=False) from None
        self._send(provider, mail, to, where)
        logger.debug("sent %s as %s", message.reference, mail["Message-ID"])
        return NotificationReceipt(str(mail["Message-ID"]), "sending")

    def _send(self, provider: Provider, mail: EmailMessage, to: str, where: str) -> None:
        security = str(provider.setting("security", "starttls"))
        host = str(provider.setting("host"))
        port = int(provider.setting("port", DEFAULT_PORTS.get(security, 587)))
        timeout = float(provider.setting("timeout_s", TIMEOUT_S))
        local_hostname = provider.setting("local_hostname")
        context = ssl.create_default_context()
        username = provider.secrets.get("username")
        try:
            if security == "tls":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, local_hostname, timeout=timeout, context=context
                )
            else:
                connection = smtplib.SMTP(host, port, local_hostname, timeout=timeout)
            try:
                if security == "starttls":
                    connection.starttls(context=context)
                if username:
                    connection.login(username, provider.secret("password"))
                connection.send_message(mail, to_addrs=[to])
            finally:
                _close(connection)
        except (smtplib.SMTPException, OSError) as exc:
            raise _failure(exc, where) from None


# -- settings -------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _printable_word(text: str) -> bool:
    """Whether ``text`` is printable ASCII without spaces (a host name, an EHLO name)."""
    return bool(text) and text.isascii() and text.isprintable() and " " not in text


def _problems(provider: Provider) -> list[str]:  # noqa: C901 - one check per setting, flat
    problems = [
        f"settings.{name}: unknown setting (known: {', '.join(SETTINGS)})"
        for name in sorted(provider.settings)
        if name not in SETTINGS
    ]
    host = provider.setting("host")
    if not isinstance(host, str) or not _printable_word(host):
        problems.append("settings.host: required, the SMTP server's host name or address")
    security = provider.setting("security", "starttls")
    if security not in SECURITY:
        problems.append(f"settings.security: must be one of {', '.join(SECURITY)}")
    elif security == "none" and isinstance(host, str) and not is_loopback(host):
        problems.append(
            'settings.security: "none" is allowed only for a loopback host (localhost, '
            '127.0.0.1, ::1), where nothing crosses the network; use "starttls" or "tls"'
        )
    port = provider.setting("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        problems.append("settings.port: must be a TCP port number (1 to 65535)")
    timeout = provider.setting("timeout_s", TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
        problems.append("settings.timeout_s: must be a number of seconds in (0, 300]")
    sender = provider.setting("sender")
    if not isinstance(sender, str) or not is_email_address(sender):
        problems.append("settings.sender: required, a plain email address (the From address)")
    name = provider.setting("sender_name", "")
    if not isinstance(name, str) or len(name.splitlines()) > 1:
        problems.append("settings.sender_name: must be a text on one line")
    domain = provider.setting("message_id_domain")
    if domain is not None and (not isinstance(domain, str) or _domain(domain) is None):
        problems.append("settings.message_id_domain: must be a domain name, e.g. example.gov.vn")
    local = provider.setting("local_hostname")
    if local is not None and (not isinstance(local, str) or not _printable_word(local)):
        problems.append("settings.local_hostname: must be this machine's name, sent in EHLO")
    username, password = provider.secrets.get("username"), provider.secrets.get("password")
    if username and not password:
        problems.append("secrets.password: required with secrets.username")
    if password and not username:
        problems.append("secrets.username: required with secrets.password")
    return problems
