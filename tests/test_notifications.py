"""Notifications on SQLite and PostgreSQL: templates, the channel chain, opt-in, receipts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    CallbackError,
    Catalog,
    Channel,
    Config,
    ConfigurationError,
    DeliveryMethod,
    DossierSnapshot,
    Engine,
    FrozenClock,
    InvalidDefinitionError,
    MessageChannel,
    MessageStatus,
    NotFoundError,
    RefusedError,
    SignatureError,
)
from dvcflow._templates import Templates
from dvcflow.plugins import FakeBackend
from pg import Database

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
FAKE = {
    "providers": {"fake": {"type": "fake"}},
    "routing": {"payment": "fake", "notification": "fake", "delivery": "fake"},
}
AGENCY = "UBND-XA.002"
OFFICER = Actor.staff("officer-1", roles={"receiving_officer"}, agency=AGENCY)
HEAD = Actor.staff("head-1", roles={"department_head"}, agency=AGENCY)
AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)
NO_EMAIL = Applicant(ApplicantType.CITIZEN, "079188004321", "Trần Thị Bình", phone="0987654321")
FORM = {"business_name": "Tạp hóa An", "capital_vnd": 50_000_000, "business_lines": "bán lẻ"}


class Site:
    def __init__(self, db: Database, catalog: Catalog, config: dict[str, Any]) -> None:
        self.clock = FrozenClock(NOW)
        options = db.options({"config": Config.from_data(config)})
        self.engine = Engine.open(db.url, catalog=catalog, clock=self.clock, **options)
        self.fake = self.engine.backends.plugin(FakeBackend)
        self.worker = self.engine.outbox.worker(random_unit=lambda: 0.5)

    def receive(self, applicant: Applicant = AN, **options: Any) -> DossierSnapshot:
        d = self.engine.submit(
            "2.000575",
            applicant=applicant,
            actor=OFFICER,
            channel=Channel.IN_PERSON,
            form=FORM,
            documents=["application"],
            fees_collected=True,
            **options,
        )
        self.worker.drain()
        return d

    def sent(self, event: str) -> list[tuple[MessageChannel, str]]:
        return [(m.channel, m.address) for m in self.fake.messages if m.event == event]


@pytest.fixture
def site(db: Database, catalog: Catalog) -> Iterator[Site]:
    site = Site(db, catalog, FAKE)
    try:
        yield site
    finally:
        site.engine.close()


class TestTemplates:
    def test_every_event_the_kernel_sends_has_a_template(self):
        """The built-in templates cover every notification and form, in Vietnamese."""
        templates = Templates.builtin()
        kernel_events = {
            "submitted", "received", "refused", "supplement_received", "supplement_expired",
            "assigned", "consultation", "rescheduled", "stopped", "payment_due",
            "payment_received", "payment_expired", "withdrawal_requested", "withdrawn",
            "withdrawal_rejected", "result_ready", "result_returned", "due_reminder",
            "due_escalation", "form_01", "form_02", "form_03", "form_04",
        }  # fmt: skip
        assert kernel_events <= set(templates.events())
        for event in templates.events():
            assert templates.get(event).version.startswith(f"{event}@")

    def test_rendering_and_the_locale_fallback(self):
        """A template renders in its locale, or in Vietnamese where it has none."""
        template = Templates.builtin().get("received")
        values = {"code": "X-1", "procedure": "Hộ kinh doanh", "agency": "UBND", "due_date": "d"}
        vi = template.render("vi", values)
        assert vi.subject == "Hồ sơ X-1 đã được tiếp nhận"
        assert vi.short is not None
        assert vi.short.isascii()
        assert template.render("en", values).subject == "Dossier X-1 received"
        with pytest.raises(NotFoundError, match="no locale 'fr'"):
            template.render("fr", values)

    def test_a_portal_file_replaces_one_event(self, tmp_path: Path):
        """Templates from a folder replace the built-in ones event by event, with a version."""
        (tmp_path / "received.toml").write_text(
            '[received]\nversion = "7"\n[received.vi]\nsubject = "Đã nhận {code}"\n'
            'text = "Đã nhận hồ sơ {code}."\n',
            encoding="utf-8",
        )
        templates = Templates.load([tmp_path])
        assert templates.get("received").version.startswith("received@7:")
        assert templates.get("refused").version == Templates.builtin().get("refused").version

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ('[x]\nversion = "1"\n[x.vi]\ntext = "{name}"\n', "x.vi.text: placeholder {name}"),
            ('[x]\nversion = "1"\n[x.vi]\ntext = "{code.upper}"\n', "x.vi.text: placeholder"),
            ('[x]\nversion = "1"\n[x.vi]\ntext = "{code:>9}"\n', "no formats"),
            ('[x]\nversion = "1"\n[x.en]\ntext = "a"\n', "x.vi: is required"),
            ('[x]\n[x.vi]\ntext = "a"\n', "x.version: is required"),
            ('[x]\nversion = "1"\n[x.vi]\nsubjet = "a"\ntext = "b"\n', "did you mean 'subject'"),
        ],
    )
    def test_bad_templates_name_file_and_field(self, tmp_path: Path, text: str, problem: str):
        """Each problem of a template file is reported with its file and path."""
        path = tmp_path / "bad.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InvalidDefinitionError) as caught:
            Templates.load([path])
        assert any(problem in str(p) for p in caught.value.problems), caught.value.problems
        assert all(str(p).startswith(str(path)) for p in caught.value.problems)

    def test_configuration_loads_template_folders(self, tmp_path: Path):
        """``[notifications] templates`` resolves against the file's folder; errors name it."""
        (tmp_path / "tpl").mkdir()
        (tmp_path / "tpl" / "stopped.toml").write_text(
            '[stopped]\nversion = "9"\n[stopped.vi]\ntext = "Dừng {code}"\n', encoding="utf-8"
        )
        config = tmp_path / "dvcflow.toml"
        config.write_text('[notifications]\ntemplates = ["tpl"]\nlocale = "en"\n')
        loaded = Config.load(config)
        assert loaded.notifications.templates.get("stopped").version.startswith("stopped@9:")
        assert loaded.notifications.locale == "en"
        config.write_text('[notifications]\ntemplates = ["nowhere"]\nchain = ["fax"]\n')
        with pytest.raises(ConfigurationError) as caught:
            Config.load(config)
        lines = [str(p) for p in caught.value.problems]
        assert any("notifications.chain[0]: must be one of" in line for line in lines)
        assert any("notifications.templates[0]: not found" in line for line in lines)


class TestChannels:
    def test_default_is_sms_then_email_one_message_per_notification(self, site: Site):
        """Without a choice, SMS carries what has a short text, email the rest (forms)."""
        d = site.receive()
        assert site.sent("received") == [(MessageChannel.SMS, "0912345678")]
        assert site.sent("form_01") == [(MessageChannel.EMAIL, "an@example.vn")]
        (received,) = [m for m in site.fake.messages if m.event == "received"]
        assert received.dossier_code == d.code
        assert d.code in received.text
        records = site.engine.notifications.of(d.id)
        assert {(r.event, r.channel, r.status) for r in records} == {
            ("received", MessageChannel.SMS, MessageStatus.SENDING),
            ("form_01", MessageChannel.EMAIL, MessageStatus.SENDING),
        }
        assert all(r.template_version.startswith(f"{r.event}@") for r in records)

    def test_opt_in_and_locale(self, site: Site):
        """The applicant's channels and locale, chosen at intake, are used."""
        site.receive(notify={"channels": ["email"], "locale": "en"})
        (message,) = [m for m in site.fake.messages if m.event == "received"]
        assert (message.channel, message.locale) == (MessageChannel.EMAIL, "en")
        assert message.subject is not None
        assert message.subject.startswith("Dossier ")

    def test_zalo_refused_falls_back_to_sms(self, site: Site):
        """A Zalo address refused for good moves the message on to SMS, at once."""
        site.fake.refuse_channel(MessageChannel.ZALO)
        d = site.receive(notify={"channels": ["zalo", "sms", "email"]})
        assert site.sent("received") == [(MessageChannel.SMS, "0912345678")]
        received = [r for r in site.engine.notifications.of(d.id) if r.event == "received"]
        assert {r.channel: r.status for r in received} == {
            MessageChannel.ZALO: MessageStatus.PERMANENT_FAILURE,
            MessageChannel.SMS: MessageStatus.SENDING,
        }
        (zalo,) = [r for r in received if r.channel is MessageChannel.ZALO]
        assert zalo.detail == "fake: the zalo channel refuses this address"

    def test_no_channel_left_is_an_incident(self, site: Site):
        """When every channel refuses, the operator is told."""
        site.fake.refuse_channel(MessageChannel.SMS)
        site.receive(applicant=NO_EMAIL)
        errors = [i.error for i in site.engine.outbox.incidents()]
        assert "no channel took the received message: sms: fake: the sms channel refuses" in (
            " ".join(errors)
        )

    def test_no_address_no_message(self, site: Site):
        """A form (email only) for an applicant without email sends nothing, and is done."""
        d = site.receive(applicant=NO_EMAIL)
        assert site.sent("form_01") == []
        assert [r.event for r in site.engine.notifications.of(d.id)] == ["received"]
        assert site.engine.outbox.incidents() == []

    def test_officers_get_their_assignments(self, site: Site):
        """An assignment goes to the officer on the webhook channel, with their account."""
        d = site.receive()
        site.engine.fire(d.id, "start", actor=HEAD, payload={"specialist": "cv-07"})
        site.worker.drain()
        (assigned,) = [m for m in site.fake.messages if m.event == "assigned"]
        assert (assigned.channel, assigned.address) == (MessageChannel.WEBHOOK, "cv-07")
        assert "cv-07" in assigned.text

    def test_bad_preferences_are_refused(self, site: Site):
        """Preferences naming an unknown channel or locale refuse the intake; nothing written."""
        with pytest.raises(RefusedError) as caught:
            site.receive(notify={"channels": ["fax"]})
        assert caught.value.reasons == ("payload_invalid",)
        assert "notify.channels" in str(caught.value)
        with pytest.raises(RefusedError, match=r"notify\.locale"):
            site.receive(notify={"locale": "fr"})

    def test_keys_and_references_carry_no_personal_data(self, site: Site):
        """Message keys and references name dossiers and effects, never the applicant."""
        d = site.receive()
        stored = site.engine.notifications.of(d.id)
        text = repr([(m.key, m.reference) for m in site.fake.messages]) + repr(stored)
        for personal in ("0912345678", "an@example.vn", "Nguyễn", "001099012345"):
            assert personal not in text


class TestReceipts:
    def test_delivered_then_stale(self, site: Site):
        """A delivered receipt is applied; a late 'sending' after it changes nothing."""
        d = site.receive()
        (message,) = [m for m in site.fake.messages if m.event == "received"]
        body, headers = site.fake.receipt(message, MessageStatus.DELIVERED)
        assert site.engine.notifications.receipt("fake", body, headers) == "applied"
        assert site.engine.notifications.receipt("fake", body, headers) == "duplicate"
        late = site.fake.receipt(message, MessageStatus.SENDING)
        assert site.engine.notifications.receipt("fake", *late) == "stale"
        (record,) = [r for r in site.engine.notifications.of(d.id) if r.event == "received"]
        assert record.status is MessageStatus.DELIVERED

    def test_permanent_failure_receipt_sends_on_the_next_channel(self, site: Site):
        """SMS bounced (permanent failure receipt): the worker sends the message by email."""
        d = site.receive()
        (message,) = [m for m in site.fake.messages if m.event == "received"]
        body, headers = site.fake.receipt(message, MessageStatus.PERMANENT_FAILURE)
        assert site.engine.notifications.receipt("fake", body, headers) == "applied"
        site.worker.drain()
        assert site.sent("received") == [
            (MessageChannel.SMS, "0912345678"),
            (MessageChannel.EMAIL, "an@example.vn"),
        ]
        records = [r for r in site.engine.notifications.of(d.id) if r.event == "received"]
        assert {r.channel: r.status for r in records} == {
            MessageChannel.SMS: MessageStatus.PERMANENT_FAILURE,
            MessageChannel.EMAIL: MessageStatus.SENDING,
        }

    def test_forged_and_unknown_receipts_are_logged(self, site: Site):
        """A receipt with a bad signature or for no message is refused and logged."""
        d = site.receive()
        (message,) = [m for m in site.fake.messages if m.event == "received"]
        body, headers = site.fake.receipt(message, MessageStatus.DELIVERED)
        with pytest.raises(SignatureError):
            site.engine.notifications.receipt(
                "fake", body.replace(b"delivered", b"sending"), headers
            )
        unknown = site.fake.receipt(
            attrs_evolve(message, reference="M" + "0" * 20), MessageStatus.DELIVERED
        )
        with pytest.raises(CallbackError) as caught:
            site.engine.notifications.receipt("fake", *unknown)
        assert caught.value.kind == "unknown_reference"
        kinds = [(r.source, r.kind) for r in site.engine.payments.security_log()]
        assert kinds == [("receipt:fake", "unknown_reference"), ("receipt:fake", "bad_signature")]
        (record,) = [r for r in site.engine.notifications.of(d.id) if r.event == "received"]
        assert record.status is MessageStatus.SENDING
        reply = site.engine.notifications.endpoint("fake")(body, headers)
        assert reply.status == 204


def attrs_evolve(value: Any, **changes: Any) -> Any:
    import attrs  # noqa: PLC0415

    return attrs.evolve(value, **changes)


class TestMissingTemplate:
    def test_an_event_without_template_is_an_incident(self, db: Database, catalog: Catalog):
        """A notification whose event has no template never goes out silently."""
        site = Site(db, catalog, FAKE)
        try:
            d = site.engine.submit(
                "1.001193",
                applicant=AN,
                actor=Actor.citizen("c-1"),
                form={
                    "child_full_name": "Nguyễn Văn Bé",
                    "child_birth_date": "2026-02-20",
                    "child_sex": "nam",
                    "relationship": "cha",
                },
                documents=["declaration", "birth_notice"],
                delivery=DeliveryMethod.ELECTRONIC,
            )
            with site.engine.store.transaction() as connection:
                site.engine.store.add_outbox(
                    connection,
                    [
                        {
                            "key": f"{d.id}:x",
                            "dossier_id": d.id,
                            "kind": "notify",
                            "data": {"event": "no_such_event", "to": "applicant"},
                            "created_at": NOW,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": NOW,
                        }
                    ],
                )
            site.worker.drain()
            (incident,) = site.engine.outbox.incidents()
            assert incident.error == "no notification template for event 'no_such_event'"
        finally:
            site.engine.close()


class TestEveryEventHasATemplate:
    def test_every_event_the_code_notifies_has_a_template(self):
        """Each event name the handlers and services notify has a built-in template."""
        import ast  # noqa: PLC0415

        source = Path(__file__).resolve().parents[1] / "src" / "dvcflow"
        events: set[str] = set()
        for module in ("_handlers.py", "_deliveries.py"):
            tree = ast.parse((source / module).read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "_notify"
                    and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                ):
                    events.add(node.args[1].value)
                if (
                    isinstance(node, ast.keyword)
                    and node.arg == "event"
                    and isinstance(node.value, ast.Constant)
                ):
                    events.add(node.value.value)
        assert len(events) > 15
        missing = sorted(events - set(Templates.builtin().events()))
        assert missing == []
