"""The configuration of back ends: providers, which one serves whom, the worker and payments."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from dvcflow._backends import Family, MessageChannel, Provider, content_key
from dvcflow._reader import Node
from dvcflow._templates import LOCALES, Templates
from dvcflow.errors import ConfigurationError, InvalidValueError, Problem

__all__ = [
    "REFUNDABLE_ENDINGS",
    "DeliverySettings",
    "NotificationSettings",
    "PaymentSettings",
    "ProviderConfig",
    "Routing",
    "WorkerSettings",
    "read_backends",
]

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_NAME = r"[a-z][a-z0-9_\-]*"
REFUNDABLE_ENDINGS = ("refused", "stopped", "withdrawn")
"""The ways a dossier can end unfinished; `PaymentSettings.refund_on` picks those that refund."""


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidValueError(attribute.name, f"must be an integer >= 1, got {value!r}")


@attrs.frozen
class ProviderConfig:
    """A provider as the file declares it; `resolve` reads its secrets from the environment.

    Attributes:
        name: the key of ``[providers.<name>]``.
        type: the plugin type serving it.
        settings: free-form settings the plugin checks (``dvcflow_check_provider``).
        secret_env: secret names mapped to the environment variables holding them.
    """

    name: str
    type: str
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen, eq=content_key)
    secret_env: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen, eq=content_key)

    def resolve(self, environ: Mapping[str, str], source: str) -> tuple[Provider, list[Problem]]:
        """The provider with its secrets, and a problem for each variable that is not set."""
        secrets, problems = {}, []
        for secret, variable in self.secret_env.items():
            value = environ.get(variable, "")
            if not value.strip():
                state = "not set" if variable not in environ else "empty"
                problems.append(
                    Problem(
                        source,
                        f"providers.{self.name}.secrets.{secret}",
                        f"environment variable {variable} is {state}",
                    )
                )
            else:
                secrets[secret] = value.strip()
        return Provider(self.name, self.type, self.settings, secrets), problems


def _family_map(value: Mapping[Family, str]) -> Mapping[Family, str]:
    return MappingProxyType(dict(value))


def _nested(value: Mapping[str, Mapping[Family, str]]) -> Mapping[str, Mapping[Family, str]]:
    return MappingProxyType({key: _family_map(inner) for key, inner in value.items()})


def _families_key(value: Mapping[Family, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((family.value, name) for family, name in value.items()))


def _nested_key(value: Mapping[str, Mapping[Family, str]]) -> tuple[object, ...]:
    return tuple(sorted((key, _families_key(inner)) for key, inner in value.items()))


@attrs.frozen
class Routing:
    """Which provider serves each family: per procedure, else per agency, else the default."""

    default: Mapping[Family, str] = attrs.field(
        factory=dict, converter=_family_map, eq=_families_key
    )
    agencies: Mapping[str, Mapping[Family, str]] = attrs.field(
        factory=dict, converter=_nested, eq=_nested_key
    )
    procedures: Mapping[str, Mapping[Family, str]] = attrs.field(
        factory=dict, converter=_nested, eq=_nested_key
    )

    def provider_name(self, family: Family, *, procedure: str, agency: str) -> str | None:
        """The provider serving ``family`` for a dossier of ``procedure`` at ``agency``."""
        for table in (self.procedures.get(procedure), self.agencies.get(agency), self.default):
            if table is not None and family in table:
                return table[family]
        return None

    def names(self) -> set[str]:
        """Every provider name the routing mentions."""
        tables = [self.default, *self.agencies.values(), *self.procedures.values()]
        return {name for table in tables for name in table.values()}


@attrs.frozen
class WorkerSettings:
    """How the outbox worker claims, retries and gives up.

    Attributes:
        batch: rows claimed per round.
        max_attempts: attempts before an effect becomes an incident.
        backoff_ms: the first retry's delay; each further retry doubles it (with jitter).
        max_backoff_s: the longest delay between two attempts.
        lease_s: how long a claimed row is reserved for its worker; a worker that dies lets
            its rows be claimed again after this.
        poll_ms: how long a worker with nothing to do sleeps.
        reconcile_every_s: how often the worker polls payments that got no callback.
    """

    batch: int = attrs.field(default=50, validator=_positive)
    max_attempts: int = attrs.field(default=8, validator=_positive)
    backoff_ms: int = attrs.field(default=2000, validator=_positive)
    max_backoff_s: int = attrs.field(default=3600, validator=_positive)
    lease_s: int = attrs.field(default=300, validator=_positive)
    poll_ms: int = attrs.field(default=1000, validator=_positive)
    reconcile_every_s: int = attrs.field(default=60, validator=_positive)


@attrs.frozen
class PaymentSettings:
    """Callbacks, reconciliation and refunds.

    Attributes:
        callback_max_bytes: a larger callback body is rejected unread.
        reconcile_after_s: a payment link with no callback for this long is queried.
        refund_on: the endings that refund what was paid (``refused``, ``stopped``,
            ``withdrawn``); all three by default.
    """

    callback_max_bytes: int = attrs.field(default=65536, validator=_positive)
    reconcile_after_s: int = attrs.field(default=600, validator=_positive)
    refund_on: frozenset[str] = attrs.field(
        default=frozenset(REFUNDABLE_ENDINGS), converter=frozenset
    )

    @refund_on.validator
    def _check_refund_on(self, _attribute: attrs.Attribute[Any], value: frozenset[str]) -> None:
        unknown = sorted(value - set(REFUNDABLE_ENDINGS))
        if unknown:
            raise InvalidValueError(
                "refund_on",
                f"unknown ending {unknown[0]!r} (known: {', '.join(REFUNDABLE_ENDINGS)})",
            )


def _channels(value: Mapping[MessageChannel, str]) -> Mapping[MessageChannel, str]:
    return MappingProxyType(dict(value))


def _channels_key(value: Mapping[MessageChannel, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((channel.value, name) for channel, name in value.items()))


def _templates_key(value: Templates) -> tuple[str, ...]:
    return tuple(value.get(event).version for event in value.events())


@attrs.frozen
class NotificationSettings:
    """How notifications are written and which channels carry them.

    Attributes:
        locale: the locale of an applicant who chose none (``vi`` or ``en``).
        chain: the applicant's channels in the order they are tried; a channel the applicant
            did not opt into, has no address for, or whose template variant is missing is
            passed over, and a permanent failure moves on to the next one.
        channels: the provider of each channel; a channel not named here goes to the
            ``[routing] notification`` provider. Officers and other agencies are notified on
            the ``webhook`` channel (the portal's own inbox).
        templates: the templates in force (dvcflow's, replaced event by event by the files
            of ``[notifications] templates``).
    """

    locale: str = attrs.field(default="vi")
    chain: tuple[MessageChannel, ...] = attrs.field(
        default=(MessageChannel.ZALO, MessageChannel.SMS, MessageChannel.EMAIL), converter=tuple
    )
    channels: Mapping[MessageChannel, str] = attrs.field(
        factory=dict, converter=_channels, eq=_channels_key
    )
    templates: Templates = attrs.field(factory=Templates.builtin, eq=_templates_key)

    @locale.validator
    def _check_locale(self, _attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in LOCALES:
            raise InvalidValueError("locale", f"must be one of {', '.join(LOCALES)}")

    @chain.validator
    def _check_chain(
        self, _attribute: attrs.Attribute[Any], value: tuple[MessageChannel, ...]
    ) -> None:
        if MessageChannel.WEBHOOK in value or len(set(value)) != len(value):
            raise InvalidValueError("chain", "lists email, sms and zalo, each at most once")


@attrs.frozen
class DeliverySettings:
    """Results handed over, posted and downloaded.

    Attributes:
        unclaimed_after_days: a result waiting at the counter this many days sends the
            applicant a reminder (``result_unclaimed``).
        link_ttl_hours: how long a download link of an electronic result stays valid.
        download_url: the portal's address that serves download links; the token is appended.
    """

    unclaimed_after_days: int = attrs.field(default=15, validator=_positive)
    link_ttl_hours: int = attrs.field(default=72, validator=_positive)
    download_url: str = "https://dichvucong.example.gov.vn/ket-qua/"


_PROVIDER_KEYS = ("secrets", "settings", "type")
_FAMILIES = tuple(family.value for family in Family)
_WORKER_KEYS = tuple(field.name for field in attrs.fields(WorkerSettings))
_PAYMENT_KEYS = tuple(field.name for field in attrs.fields(PaymentSettings))


def _read_providers(root: Node) -> dict[str, ProviderConfig]:
    table = root.get("providers")
    providers: dict[str, ProviderConfig] = {}
    if table is None or table.as_type(dict) is None:
        return providers
    for name, node in table.items():
        if not re.fullmatch(_NAME, name):
            node.problem("a provider name is lower-case letters, digits, '_' and '-'")
            continue
        if not node.table(required=("type",), optional=_PROVIDER_KEYS):
            continue
        kind = node.string("type", None, pattern=_NAME)
        settings = node.typed("settings", dict, {})
        secrets: dict[str, str] = {}
        secret_table = node.get("secrets")
        if secret_table is not None and secret_table.as_type(dict) is not None:
            for secret, variable in secret_table.items():
                text = variable.as_type(str)
                if text is not None and not _ENV_NAME.fullmatch(text):
                    # Never echo it: a wrong value is likely the secret itself.
                    variable.problem(
                        "must be the name of an environment variable (A-Z, 0-9 and _), "
                        "never the secret itself"
                    )
                elif text is not None:
                    secrets[secret] = text
        if kind is not None and settings is not None:
            providers[name] = ProviderConfig(name, kind, settings, secrets)
    return providers


def _families(node: Node, providers: Mapping[str, ProviderConfig]) -> dict[Family, str]:
    """The provider named for each family in a routing table."""
    found: dict[Family, str] = {}
    for family in Family:
        name = node.string(family.value, None)
        if name is None:
            continue
        if name not in providers:
            known = ", ".join(sorted(providers)) or "none"
            node.problem(f"no provider {name!r} is defined (defined: {known})", family.value)
            continue
        found[family] = name
    return found


def _read_routing(root: Node, providers: Mapping[str, ProviderConfig]) -> Routing:
    node = root.get("routing")
    if node is None or not node.table(optional=(*_FAMILIES, "agencies", "procedures")):
        return Routing()
    scoped: dict[str, dict[str, dict[Family, str]]] = {"agencies": {}, "procedures": {}}
    for key, tables in scoped.items():
        table = node.get(key)
        if table is None or table.as_type(dict) is None:
            continue
        for scope, child in table.items():
            if child.table(optional=_FAMILIES):
                tables[scope] = _families(child, providers)
    return Routing(_families(node, providers), scoped["agencies"], scoped["procedures"])


def _read_settings(root: Node, key: str, factory: type[Any], keys: tuple[str, ...]) -> Any:  # noqa: ANN401
    node = root.get(key)
    if node is None:
        return factory()
    if not node.table(optional=keys):
        return None
    values: dict[str, Any] = {}
    for field in attrs.fields(factory):
        if not node.has(field.name):
            continue
        if field.name == "refund_on":
            items = [item.as_type(str) for item in node.array("refund_on")]
            if None in items:
                return None
            values[field.name] = frozenset(item for item in items if item is not None)
        else:
            value = node.integer(field.name, None, minimum=1)
            if value is None:
                return None
            values[field.name] = value
    return node.build(factory, **values)


def _read_channels(
    table: Node, providers: Mapping[str, ProviderConfig]
) -> dict[MessageChannel, str]:
    channels: dict[MessageChannel, str] = {}
    if not table.table(optional=tuple(c.value for c in MessageChannel)):
        return channels
    for channel in MessageChannel:
        name = table.string(channel.value, None)
        if name is not None and name not in providers:
            known = ", ".join(sorted(providers)) or "none"
            table.problem(f"no provider {name!r} is defined (defined: {known})", channel.value)
        elif name is not None:
            channels[channel] = name
    return channels


def _read_notifications(
    root: Node,
    providers: Mapping[str, ProviderConfig],
    templates: Callable[[Node], Templates | None],
) -> NotificationSettings | None:
    node = root.get("notifications")
    if node is None:
        return NotificationSettings()
    if not node.table(optional=("chain", "channels", "locale", "templates")):
        return None
    values: dict[str, Any] = {}
    complete = True
    locale = node.string("locale", None)
    if locale is not None:
        values["locale"] = locale
    if node.has("chain"):
        chain = [item.as_choice(MessageChannel) for item in node.array("chain")]
        complete = None not in chain
        values["chain"] = tuple(c for c in chain if c is not None)
    table = node.get("channels")
    if table is not None:
        values["channels"] = _read_channels(table, providers)
    paths = node.get("templates")
    if paths is not None:
        loaded = templates(paths)
        complete = complete and loaded is not None
        values["templates"] = loaded
    if not complete:
        return None
    return node.build(NotificationSettings, **values)


def _read_delivery(root: Node) -> DeliverySettings | None:
    node = root.get("delivery")
    if node is None:
        return DeliverySettings()
    if not node.table(optional=("download_url", "link_ttl_hours", "unclaimed_after_days")):
        return None
    values: dict[str, Any] = {}
    for name in ("link_ttl_hours", "unclaimed_after_days"):
        value = node.integer(name, None, minimum=1)
        if value is not None:
            values[name] = value
    url = node.string("download_url", None, pattern=r"https?://\S+")
    if url is not None:
        values["download_url"] = url
    return node.build(DeliverySettings, **values)


def read_backends(root: Node, templates: Callable[[Node], Templates | None]) -> dict[str, Any]:
    """The back-end tables as `Config` fields; ``templates`` loads the template paths given."""
    providers = _read_providers(root)
    return {
        "providers": providers,
        "routing": _read_routing(root, providers),
        "worker": _read_settings(root, "worker", WorkerSettings, _WORKER_KEYS),
        "payments": _read_settings(root, "payments", PaymentSettings, _PAYMENT_KEYS),
        "notifications": _read_notifications(root, providers, templates),
        "delivery": _read_delivery(root),
    }


def resolve_providers(
    providers: Mapping[str, ProviderConfig], source: str, environ: Mapping[str, str] | None = None
) -> dict[str, Provider]:
    """Every provider with its secrets read from the environment.

    Raises:
        ConfigurationError: naming each secret whose variable is not set.
    """
    env = os.environ if environ is None else environ
    resolved, problems = {}, []
    for name, config in providers.items():
        resolved[name], missing = config.resolve(env, source)
        problems.extend(missing)
    if problems:
        raise ConfigurationError(problems)
    return resolved
