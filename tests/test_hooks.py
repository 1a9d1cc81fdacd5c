"""The plugin hooks: registration checks, provider checks, entry points, observers."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap
from pathlib import Path

import pytest

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    BackendError,
    Catalog,
    Channel,
    Config,
    ConfigurationError,
    Engine,
    FrozenClock,
    Message,
    MessageChannel,
    PluginError,
    Provider,
    TransitionRecord,
    hookimpl,
)
from dvcflow._backends import Family
from dvcflow._hooks import Backends
from dvcflow.plugins import FakeBackend

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
FAKE_ROUTING = {
    "providers": {"fake": {"type": "fake"}},
    "routing": {"payment": "fake", "notification": "fake", "delivery": "fake"},
}


class Misspelt:
    """A plugin whose hook name has a typo."""

    @hookimpl
    def dvcflow_creat_payment(self, provider: Provider) -> None:
        """Never called: the name matches no specification."""


class WrongArgument:
    """A plugin whose hook takes an argument the specification does not have."""

    @hookimpl
    def dvcflow_send_message(self, provider: Provider, notification: object) -> None:
        """``notification`` is not an argument of dvcflow_send_message."""


class Picky:
    """A plugin serving type ``picky`` that insists on a ``url`` setting."""

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        return ["picky"]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        if provider.type != "picky":
            return None
        return [] if provider.setting("url") else ["settings.url: is required"]


class OtherFake(FakeBackend):
    """A second plugin claiming type ``fake``."""


class Wrong:
    """A plugin that answers with the wrong type."""

    @hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        return ["wrong"]

    @hookimpl
    def dvcflow_check_provider(self, provider: Provider) -> list[str] | None:
        return [] if provider.type == "wrong" else None

    @hookimpl
    def dvcflow_send_message(self, provider: Provider) -> object:
        return "sent" if provider.type == "wrong" else None


def backends(config: Config, plugins: list[object] | None = None) -> Backends:
    return Backends(
        providers=config.resolved_providers({}),
        routing=config.routing,
        plugins=plugins or [],
        entry_points=False,
        source=config.source or "<config>",
    )


class TestRegistration:
    def test_misspelt_hook_fails_at_registration(self):
        """A hook name no specification has is refused when the plugin is registered."""
        with pytest.raises(PluginError, match="dvcflow_creat_payment") as caught:
            backends(Config.default(), [Misspelt()])
        assert "dvcflow_create_payment" in str(caught.value)

    def test_unknown_argument_fails_at_registration(self):
        """A hook asking for an argument the specification lacks is refused."""
        with pytest.raises(PluginError, match="notification"):
            backends(Config.default(), [WrongArgument()])

    def test_two_plugins_for_one_type(self):
        """Two plugins given for one provider type is an error, not a silent choice."""
        with pytest.raises(PluginError, match="'fake' is served by two plugins"):
            backends(Config.default(), [FakeBackend(), OtherFake()])

    def test_given_plugin_replaces_the_builtin(self):
        """A plugin serving a built-in's type takes its place."""
        mine = FakeBackend()
        assert backends(Config.from_data(FAKE_ROUTING), [mine]).plugin(FakeBackend) is mine


class TestProviders:
    def test_type_nobody_serves(self):
        """A provider whose type no plugin serves names the file, the field and the types."""
        config = Config.from_data({"providers": {"pay": {"type": "vnpay"}}}, source="d.toml")
        with pytest.raises(ConfigurationError) as caught:
            backends(config)
        assert str(caught.value.problems[0]) == (
            "d.toml: providers.pay.type: no plugin serves type 'vnpay' "
            "(served: ed25519, fake, filesystem, http_courier, national_payment, "
            "sms_gateway, smtp, webhook)"
        )

    def test_plugin_checks_its_settings(self):
        """The serving plugin's problems with a provider's settings are configuration errors."""
        config = Config.from_data({"providers": {"p": {"type": "picky"}}}, source="d.toml")
        with pytest.raises(ConfigurationError) as caught:
            backends(config, [Picky()])
        assert [str(p) for p in caught.value.problems] == [
            "d.toml: providers.p: settings.url: is required"
        ]
        fixed = Config.from_data(
            {"providers": {"p": {"type": "picky", "settings": {"url": "https://x.vn"}}}}
        )
        assert backends(fixed, [Picky()]).provider("p").setting("url") == "https://x.vn"

    def test_missing_secret_names_the_variable_and_writes_nothing(self, tmp_path: Path):
        """A secret whose variable is unset stops Engine.open before the database is made."""
        config = Config.from_data(
            {"providers": {"f": {"type": "fake", "secrets": {"key": "DVCFLOW_TEST_UNSET"}}}},
            source="d.toml",
        )
        database = tmp_path / "d.db"
        with pytest.raises(ConfigurationError) as caught:
            Engine.open(f"sqlite:///{database}", config=config, environ={})
        assert str(caught.value) == (
            "d.toml: providers.f.secrets.key: environment variable DVCFLOW_TEST_UNSET is not set"
        )
        assert not database.exists()

    def test_secret_is_read_and_never_shown(self):
        """The resolved secret is available to the plugin and absent from the repr."""
        config = Config.from_data(
            {"providers": {"f": {"type": "fake", "secrets": {"key": "DVCFLOW_TEST_KEY"}}}}
        )
        provider = config.resolved_providers({"DVCFLOW_TEST_KEY": "s3cr3t-value"})["f"]
        assert provider.secret("key") == "s3cr3t-value"
        assert "s3cr3t" not in repr(provider)
        with pytest.raises(BackendError, match="no secret 'other'"):
            provider.secret("other")

    def test_routing_procedure_then_agency_then_default(self):
        """The most specific routing entry wins."""
        config = Config.from_data(
            {
                "providers": {"a": {"type": "fake"}, "b": {"type": "fake"}, "c": {"type": "fake"}},
                "routing": {
                    "payment": "a",
                    "agencies": {"STP.01": {"payment": "b"}},
                    "procedures": {"2.000488": {"payment": "c"}},
                },
            }
        )
        routing = config.routing
        assert routing.provider_name(Family.PAYMENT, procedure="2.000488", agency="STP.01") == "c"
        assert routing.provider_name(Family.PAYMENT, procedure="1.0", agency="STP.01") == "b"
        assert routing.provider_name(Family.PAYMENT, procedure="1.0", agency="X") == "a"
        assert routing.provider_name(Family.NOTIFICATION, procedure="1.0", agency="X") is None

    def test_wrong_answer_type_is_a_backend_error(self):
        """A plugin returning something other than the specified type fails loudly."""
        config = Config.from_data({"providers": {"w": {"type": "wrong"}}})
        hooks = backends(config, [Wrong()])
        note = Message("k", "M1", MessageChannel.SMS, "0912345678", "text")
        with pytest.raises(BackendError, match="returned str from send_message"):
            hooks.send_message(hooks.provider("w"), note)


ENTRY_PLUGIN = """
from dvcflow import hookimpl

class Plugin:
    @hookimpl
    def dvcflow_provider_types(self):
        return ["from_entry_point"]

    @hookimpl
    def dvcflow_check_provider(self, provider):
        return [] if provider.type == "from_entry_point" else None

plugin = Plugin()
"""


class TestEntryPoints:
    def test_plugin_found_through_the_entry_point_group(self, tmp_path: Path, monkeypatch):
        """A distribution declaring the ``dvcflow`` entry point is loaded at Engine.open."""
        (tmp_path / "dvcflow_entry_plugin.py").write_text(ENTRY_PLUGIN)
        info = tmp_path / "dvcflow_entry_plugin-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: dvcflow-entry-plugin\nVersion: 0.1\n"
        )
        (info / "entry_points.txt").write_text(
            textwrap.dedent("""
                [dvcflow]
                entry = dvcflow_entry_plugin:plugin
            """)
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        config = Config.from_data({"providers": {"e": {"type": "from_entry_point"}}})
        engine = Engine.open("sqlite://", config=config)
        try:
            assert "from_entry_point" in engine.backends.types
        finally:
            engine.close()
            sys.modules.pop("dvcflow_entry_plugin", None)
        with pytest.raises(ConfigurationError, match="no plugin serves type 'from_entry_point'"):
            Engine.open("sqlite://", config=config, entry_points=False)


class Observer:
    """Keeps the transitions it is told of."""

    def __init__(self) -> None:
        self.seen: list[TransitionRecord] = []

    @hookimpl
    def dvcflow_after_transition(self, transition: TransitionRecord) -> None:
        self.seen.append(transition)


class Broken:
    """An observer that always raises."""

    @hookimpl
    def dvcflow_after_transition(self, transition: TransitionRecord) -> None:
        raise RuntimeError(f"observer bug on {transition.trigger}")


class TestObservers:
    def test_observers_see_committed_transitions_and_survive_a_broken_one(
        self, catalog: Catalog, caplog
    ):
        """Every observer hears of each transition after commit; one raising stops nothing."""
        observer = Observer()
        engine = Engine.open(
            "sqlite://",
            catalog=catalog,
            clock=FrozenClock(NOW),
            plugins=[Broken(), observer],
        )
        officer = Actor.staff("cb-01", roles={"receiving_officer"}, agency="UBND-XA.002")
        applicant = Applicant(ApplicantType.CITIZEN, "001099012345", "Nguyễn Văn An")
        try:
            d = engine.submit(
                "2.000575",
                applicant=applicant,
                actor=officer,
                channel=Channel.IN_PERSON,
                form={"business_name": "An", "capital_vnd": 50_000_000, "business_lines": "x"},
                documents=["application"],
                fees_collected=True,
                command_id="c-1",
            )
            # A repeated command changes nothing and is not a transition.
            engine.submit(
                "2.000575",
                applicant=applicant,
                actor=officer,
                channel=Channel.IN_PERSON,
                form={"business_name": "An", "capital_vnd": 50_000_000, "business_lines": "x"},
                documents=["application"],
                fees_collected=True,
                command_id="c-1",
            )
        finally:
            engine.close()
        assert [(t.trigger, t.source, t.target, t.version) for t in observer.seen] == [
            ("receive", "initial", "received", 1)
        ]
        assert observer.seen[0].dossier_id == d.id
        assert observer.seen[0].national_status.code == 2
        assert "dvcflow observer failed" in caplog.text
