"""The SMTP email plugin, against a real SMTP server on loopback (tests/smtp_server.py)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from certificates import self_signed
from dvcflow import FrozenClock
from dvcflow._backend_config import Routing
from dvcflow._backends import Message, MessageChannel, Provider
from dvcflow._hooks import Backends
from dvcflow.errors import BackendError, ConfigurationError
from dvcflow.plugins.smtp import (
    KEY_HEADER,
    SmtpEmail,
    build_email,
    is_email_address,
    is_loopback,
    message_id,
)
from smtp_server import SmtpServer

SENDER = "noreply@sotuphap.hanoi.gov.vn"
ADDRESS = "nguyen.van.an@example.vn"
SUBJECT = "Hồ sơ G09.20-260301-0001 đã được tiếp nhận"
TEXT = "Kính gửi ông/bà,\nHồ sơ đăng ký khai sinh của ông/bà đã được tiếp nhận lúc 09:30."
HTML = "<p>Kính gửi ông/bà,</p><p>Hồ sơ <b>đăng ký khai sinh</b> đã được tiếp nhận.</p>"
AT = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.UTC)
USER, PASSWORD = "dvcflow", "mat-khau-thu-nghiem"


def message(**changes: Any) -> Message:
    fields: dict[str, Any] = {
        "key": "effect-42:email",
        "reference": "msg-42",
        "channel": MessageChannel.EMAIL,
        "address": ADDRESS,
        "text": TEXT,
        "subject": SUBJECT,
        "html": HTML,
        "event": "received",
        "dossier_code": "G09.20-260301-0001",
    }
    return Message(**{**fields, **changes})


def provider(port: int, *, secrets: dict[str, str] | None = None, **settings: Any) -> Provider:
    base = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": SENDER,
        "sender_name": "Sở Tư pháp Hà Nội",
        "timeout_s": 5,
        "local_hostname": "dvcflow.loopback.test",
    }
    merged = {name: value for name, value in {**base, **settings}.items() if value is not None}
    return Provider("mail", "smtp", merged, secrets or {})


def send(target: Provider, sent: Message | None = None) -> Any:
    return SmtpEmail(clock=FrozenClock(AT)).dvcflow_send_message(
        provider=target, message=sent or message()
    )


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("smtp-tls"))


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trusted(certificate, monkeypatch) -> None:
    """The client trusts the test certificate (as it would trust a real relay's CA)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestSend:
    def test_message_as_received(self, server):
        """The server gets the From, To, UTF-8 subject and body, HTML part, ids and key."""
        receipt = send(provider(server.port))
        [delivered] = server.delivered
        assert delivered.mail_from == SENDER
        assert delivered.rcpt_tos == [ADDRESS]
        mail = delivered.message
        assert mail["From"] == f"Sở Tư pháp Hà Nội <{SENDER}>"
        assert mail["To"] == ADDRESS
        assert mail["Subject"] == SUBJECT
        assert mail["Message-ID"] == "<msg-42@sotuphap.hanoi.gov.vn>"
        assert mail[KEY_HEADER] == "effect-42:email"
        assert mail["Date"] == "Sun, 01 Mar 2026 02:30:00 +0000"
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail["Content-Language"] == "vi"
        assert mail.get_content_type() == "multipart/alternative"
        plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
        assert plain is not None
        assert html is not None
        assert plain.get_content().rstrip("\n") == TEXT
        assert html.get_content().rstrip("\n") == HTML
        assert plain.get_content_charset() == "utf-8"
        assert receipt.provider_ref == "<msg-42@sotuphap.hanoi.gov.vn>"
        assert receipt.status == "sending"

    def test_headers_are_7bit_on_the_wire(self, server):
        """Non-ASCII headers travel RFC 2047-encoded and bodies quoted-printable: no 8BITMIME."""
        send(provider(server.port))
        [delivered] = server.delivered
        assert delivered.content.isascii()
        assert b"Content-Transfer-Encoding: quoted-printable" in delivered.content

    def test_text_only(self, server):
        """Without HTML the email is a single text/plain part; without subject, no Subject."""
        send(
            provider(server.port, local_hostname=None),
            message(html=None, subject=None, text="Plain ASCII text."),
        )
        mail = server.delivered[0].message
        assert mail.get_content_type() == "text/plain"
        assert mail.get_content().rstrip("\n") == "Plain ASCII text."
        assert mail["Subject"] is None

    def test_message_id_domain_setting(self, server):
        """settings.message_id_domain names the Message-ID's domain instead of the sender's."""
        receipt = send(provider(server.port, message_id_domain="dvc.hanoi.gov.vn"))
        assert receipt.provider_ref == "<msg-42@dvc.hanoi.gov.vn>"
        assert server.delivered[0].message["Message-ID"] == receipt.provider_ref

    def test_subject_line_breaks_cannot_add_headers(self, server):
        """A line break in the subject becomes a space: no header is injected."""
        send(provider(server.port), message(subject="Thông báo\r\nBcc: victim@example.vn"))
        [delivered] = server.delivered
        assert delivered.rcpt_tos == [ADDRESS]
        assert delivered.message["Bcc"] is None
        assert delivered.message["Subject"] == "Thông báo Bcc: victim@example.vn"

    def test_international_domain(self, server):
        """An internationalised domain is sent as its A-labels."""
        send(provider(server.port), message(address="an@bưuđiện.vn"))
        expected = "an@" + "bưuđiện.vn".encode("idna").decode()
        assert server.delivered[0].rcpt_tos == [expected]
        assert server.delivered[0].message["To"] == expected

    def test_the_same_message_twice_has_one_message_id(self, server):
        """A message sent again (at least once) carries the same Message-ID and key."""
        first, second = send(provider(server.port)), send(provider(server.port))
        assert first == second
        ids = {d.message["Message-ID"] for d in server.delivered}
        assert ids == {first.provider_ref}


class TestTLS:
    @pytest.mark.usefixtures("trusted")
    def test_starttls_and_login(self, certificate):
        """STARTTLS with a trusted certificate, then AUTH, then the message, encrypted."""
        with SmtpServer(
            starttls=server_context(certificate), credentials=(USER, PASSWORD)
        ) as server:
            target = provider(
                server.port,
                security="starttls",
                secrets={"username": USER, "password": PASSWORD},
            )
            assert send(target).status == "sending"
            [delivered] = server.delivered
            assert delivered.tls is True
            assert delivered.login == USER
            assert delivered.message["Subject"] == SUBJECT

    @pytest.mark.usefixtures("trusted")
    def test_implicit_tls(self, certificate):
        """security = "tls" speaks TLS from the first byte (port 465 style)."""
        with SmtpServer(implicit_tls=server_context(certificate)) as server:
            send(provider(server.port, security="tls"))
            assert server.delivered[0].tls is True

    def test_untrusted_certificate(self, certificate, monkeypatch):
        """A certificate that does not verify is a retryable failure; nothing is sent."""
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with SmtpServer(starttls=server_context(certificate)) as server:
            with pytest.raises(BackendError, match="SSLCertVerificationError") as caught:
                send(provider(server.port, security="starttls"))
            assert caught.value.retryable is True
            assert server.delivered == []

    def test_server_without_starttls(self, server):
        """A server that does not offer STARTTLS gets nothing in clear, for good."""
        with pytest.raises(BackendError, match="STARTTLS extension not supported") as caught:
            send(provider(server.port, security="starttls"))
        assert caught.value.retryable is False
        assert server.delivered == []

    @pytest.mark.usefixtures("trusted")
    def test_wrong_password(self, certificate):
        """A refused login (535) is final and names the secrets to check, not their values."""
        with SmtpServer(
            starttls=server_context(certificate), credentials=(USER, PASSWORD)
        ) as server:
            target = provider(
                server.port, security="starttls", secrets={"username": USER, "password": "sai"}
            )
            with pytest.raises(BackendError, match="refused the login") as caught:
                send(target)
            assert caught.value.retryable is False
            assert "535" in str(caught.value)
            assert "sai" not in str(caught.value)
            assert server.delivered == []


class TestFailures:
    def test_no_such_mailbox(self, server):
        """A 550 to RCPT TO is final (the next channel takes over), with codes, no address."""
        server.refuse[ADDRESS] = f"550 5.1.1 <{ADDRESS}>: Recipient address rejected"
        with pytest.raises(BackendError) as caught:
            send(provider(server.port))
        assert caught.value.retryable is False
        assert (
            str(caught.value)
            == "smtp provider 'mail': the server refused the recipient (550 5.1.1)"
        )

    def test_mailbox_busy(self, server):
        """A 4xx to RCPT TO (greylisting, a full mailbox) is retried."""
        server.refuse[ADDRESS] = "450 4.2.1 Mailbox temporarily unavailable"
        with pytest.raises(BackendError, match=r"\(450 4\.2\.1\)") as caught:
            send(provider(server.port))
        assert caught.value.retryable is True

    def test_connection_refused(self, free_port):
        """Nothing listening is retried."""
        with pytest.raises(BackendError, match="ConnectionRefusedError") as caught:
            send(provider(free_port))
        assert caught.value.retryable is True

    def test_silent_server_times_out(self):
        """A server that never greets fails after timeout_s, retryable."""
        with socket.create_server(("127.0.0.1", 0)) as silent:
            port = silent.getsockname()[1]
            started = time.monotonic()
            with pytest.raises(BackendError, match="timed out") as caught:
                send(provider(port, timeout_s=0.3))
            assert caught.value.retryable is True
            assert time.monotonic() - started < 3

    @pytest.mark.parametrize(
        "address",
        [
            "",
            "no-at-sign",
            "two@at@example.vn",
            "an@localhost",
            "an@example.vn\r\nBcc: victim@example.vn",
            "an@example.vn, victim@example.vn",
            "Nguyễn Văn An <an@example.vn>",
            "an b@example.vn",
            "ngọc@example.vn",
            ".an@example.vn",
            "an..b@example.vn",
            "an@-example.vn",
            "an@example.123",
            "a" * 65 + "@example.vn",
        ],
    )
    def test_addresses_refused(self, server, address):
        """Anything but one plain address is refused for good before connecting."""
        with pytest.raises(BackendError, match="not a plain email address") as caught:
            send(provider(server.port), message(address=address))
        assert caught.value.retryable is False
        assert server.delivered == []

    @pytest.mark.parametrize("channel", [MessageChannel.SMS, MessageChannel.WEBHOOK])
    def test_other_channels_refused(self, server, channel):
        """A message of another channel is not email: refused for good."""
        with pytest.raises(BackendError, match=f"not {channel.value}") as caught:
            send(provider(server.port), message(channel=channel))
        assert caught.value.retryable is False

    def test_errors_and_logs_hold_no_address_or_text(self, server, free_port, caplog):
        """No failure or log line carries the address, the subject or the text."""
        caplog.set_level(logging.DEBUG)
        server.refuse[ADDRESS] = f"550 5.1.1 <{ADDRESS}>: unknown"
        errors = []
        for target, sent in [
            (provider(server.port), message()),
            (provider(free_port), message()),
            (provider(server.port), message(address=f"{ADDRESS}\nBcc: x@y.vn")),
            (provider(server.port), message(channel=MessageChannel.SMS)),
        ]:
            with pytest.raises(BackendError) as caught:
                send(target, sent)
            errors.append(str(caught.value))
        send(provider(server.port), message(address="other@example.vn"))
        ours = [r.getMessage() for r in caplog.records if r.name.startswith("dvcflow")]
        assert ours  # the send that worked was logged
        for text in [*errors, *ours]:
            assert ADDRESS not in text
            assert "other@example.vn" not in text
            assert "Hồ sơ" not in text


class TestPure:
    @pytest.mark.parametrize(
        ("reference", "expected"),
        [
            ("msg-42", "<msg-42@d.vn>"),
            ("effect:7/email", "<effect=3A7=2Femail@d.vn>"),
            ("a=3A", "<a=3D3A@d.vn>"),
            ("hồ sơ", "<h=E1=BB=93=20s=C6=A1@d.vn>"),
        ],
    )
    def test_message_id(self, reference, expected):
        """References map one to one onto message ids (``=XX`` for what an id cannot hold)."""
        assert message_id(reference, "d.vn") == expected

    def test_address_check(self):
        """Plain addresses pass, including subaddresses and IDN domains."""
        assert is_email_address("an+hoso@example.gov.vn")
        assert is_email_address("an@bưuđiện.vn")
        assert not is_email_address("an@example")

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("localhost", True),
            ("127.0.0.1", True),
            ("127.1.2.3", True),
            ("::1", True),
            ("[::1]", True),
            ("10.0.0.1", False),
            ("smtp.example.vn", False),
        ],
    )
    def test_loopback(self, host, loopback):
        """Only this machine's names and addresses count as loopback."""
        assert is_loopback(host) is loopback

    def test_build_email_refuses_a_bad_sender(self):
        """The builder refuses a sender that is not a plain address, without echoing it."""
        with pytest.raises(ValueError, match="the sender is not a plain email address"):
            build_email(message(), sender="Sở <x@y.vn>")

    def test_key_with_a_line_break(self, server):
        """An idempotency key that would break the header is refused for good."""
        with pytest.raises(BackendError) as caught:
            send(provider(server.port), message(key="k\r\nBcc: x@y.vn"))
        assert caught.value.retryable is False
        assert server.delivered == []


class TestCheckProvider:
    def problems(self, settings: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
        return SmtpEmail().dvcflow_check_provider(
            provider=Provider("mail", "smtp", settings, secrets or {})
        )

    def test_a_good_provider(self):
        """Host and sender are all it needs (STARTTLS on 587 by default)."""
        assert self.problems({"host": "smtp.example.vn", "sender": SENDER}) == []

    @pytest.mark.parametrize(
        ("settings", "secrets", "problem"),
        [
            ({"sender": SENDER}, {}, "settings.host: required"),
            ({"host": "smtp.example.vn"}, {}, "settings.sender: required"),
            ({"host": "h.vn", "sender": "Tên <a@b.vn>"}, {}, "settings.sender: required"),
            ({"host": "h.vn", "sender": SENDER, "security": "ssl"}, {}, "settings.security"),
            (
                {"host": "smtp.example.vn", "sender": SENDER, "security": "none"},
                {},
                'settings.security: "none" is allowed only for a loopback host',
            ),
            ({"host": "h.vn", "sender": SENDER, "port": 0}, {}, "settings.port"),
            ({"host": "h.vn", "sender": SENDER, "port": "25"}, {}, "settings.port"),
            ({"host": "h.vn", "sender": SENDER, "timeout_s": 0}, {}, "settings.timeout_s"),
            ({"host": "h.vn", "sender": SENDER, "sender_name": "a\nb"}, {}, "sender_name"),
            ({"host": "h.vn", "sender": SENDER, "message_id_domain": "x"}, {}, "message_id"),
            ({"host": "h.vn", "sender": SENDER, "local_hostname": "a b"}, {}, "local_hostname"),
            ({"host": "h.vn", "sender": SENDER, "user": "x"}, {}, "settings.user: unknown"),
            ({"host": "h.vn", "sender": SENDER}, {"username": "u"}, "secrets.password: required"),
            ({"host": "h.vn", "sender": SENDER}, {"password": "p"}, "secrets.username: required"),
        ],
    )
    def test_problems(self, settings, secrets, problem):
        """Each problem names its setting."""
        [found] = self.problems(settings, secrets)
        assert found.startswith(
            problem if problem.startswith(("settings.", "secrets.")) else f"settings.{problem}"
        )

    def test_none_on_loopback(self):
        """security = "none" is fine on this machine (a local relay)."""
        assert self.problems({"host": "localhost", "sender": SENDER, "security": "none"}) == []

    def test_other_types_are_not_answered(self):
        """Another plugin's provider gets no answer."""
        other = Provider("x", "sms_gateway", {})
        assert SmtpEmail().dvcflow_check_provider(provider=other) is None
        assert SmtpEmail().dvcflow_send_message(provider=other, message=message()) is None


class TestFacade:
    def test_through_backends(self, server):
        """Registered with pluggy, the plugin sends through the typed façade; no receipts."""
        target = provider(server.port)
        backends = Backends(
            providers={"mail": target},
            routing=Routing(),
            plugins=[SmtpEmail()],
            entry_points=False,
        )
        receipt = backends.send_message(target, message())
        assert receipt.provider_ref == server.delivered[0].message["Message-ID"]
        with pytest.raises(BackendError, match="no plugin answered parse_receipt"):
            backends.parse_receipt(target, b"{}", {})

    def test_bad_settings_stop_the_engine_opening(self):
        """A provider with problems is a configuration error at start-up."""
        broken = Provider("mail", "smtp", {"host": "smtp.example.vn", "security": "none"})
        with pytest.raises(ConfigurationError) as caught:
            Backends(
                providers={"mail": broken},
                routing=Routing(),
                plugins=[SmtpEmail()],
                entry_points=False,
                source="dvcflow.toml",
            )
        assert "dvcflow.toml: providers.mail: settings.security" in str(caught.value)
        assert "dvcflow.toml: providers.mail: settings.sender" in str(caught.value)
