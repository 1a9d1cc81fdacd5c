"""The configuration file: database, calendars, rule packs, codes, history key, back ends."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from dvcflow._backend_config import (
    DeliverySettings,
    NotificationSettings,
    PaymentSettings,
    ProviderConfig,
    Routing,
    WorkerSettings,
    read_backends,
    resolve_providers,
)
from dvcflow._backends import Provider
from dvcflow._calendar import (
    DEFAULT_OFFICE_HOURS,
    CalendarOverride,
    OfficeHours,
    WorkingCalendar,
    load_overrides,
)
from dvcflow._codes import DEFAULT_CODE_FORMAT, CodeFormat, CodePeriod
from dvcflow._reader import Node, Report
from dvcflow._rulepacks import RulePacks, RulePackSpec
from dvcflow._templates import Templates
from dvcflow.errors import (
    CalendarError,
    ConfigurationError,
    InvalidDefinitionError,
    InvalidValueError,
    Problem,
)

# CodeFormat and CodePeriod are re-exported: `Config.codes` holds one.
__all__ = ["DEFAULT_CODE_FORMAT", "MIN_KEY_BYTES", "CodeFormat", "CodePeriod", "Config"]

MIN_KEY_BYTES = 32
"""The shortest history key accepted: 256 bits, as long as the HMAC-SHA256 tags it makes."""

_HEX = re.compile(r"[0-9A-Fa-f]+")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SECTIONS = (
    "calendar",
    "codes",
    "database",
    "delivery",
    "history",
    "notifications",
    "payments",
    "providers",
    "routing",
    "rule_packs",
    "worker",
)
_CALENDAR_KEYS = ("office_hours", "overrides")


def _integer_at_least(low: int, *, optional: bool = False) -> Any:  # noqa: ANN401 - a validator
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidValueError(attribute.name, f"must be an integer, got {value!r}")
        if value < low:
            raise InvalidValueError(attribute.name, f"must be >= {low}, got {value}")

    return check


def _key_env_problem(value: str) -> str | None:
    # Never echo the value: a wrong one is likely the secret itself.
    if not _ENV_NAME.fullmatch(value) or (
        len(value) >= 2 * MIN_KEY_BYTES and _HEX.fullmatch(value)
    ):
        return (
            "must be the name of an environment variable (A-Z, 0-9 and _, not starting with a "
            "digit), never the key itself"
        )
    return None


def _check_key_env(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidValueError(attribute.name, f"must be a string, got {type(value).__name__}")
    problem = _key_env_problem(value)
    if problem is not None:
        raise InvalidValueError(attribute.name, problem)


def _check_calendar(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, WorkingCalendar):
        raise InvalidValueError(attribute.name, f"must be a WorkingCalendar, got {value!r}")


def _freeze_calendars(value: Mapping[str, WorkingCalendar]) -> Mapping[str, WorkingCalendar]:
    calendars = dict(value)
    for agency, calendar in calendars.items():
        if not isinstance(agency, str) or not agency.strip():
            raise InvalidValueError("agency_calendars", f"bad agency code {agency!r}")
        if not isinstance(calendar, WorkingCalendar):
            raise InvalidValueError("agency_calendars", f"{agency}: must be a WorkingCalendar")
    return MappingProxyType(calendars)


def _freeze_providers(value: Mapping[str, ProviderConfig]) -> Mapping[str, ProviderConfig]:
    return MappingProxyType(dict(value))


def _providers_key(value: Mapping[str, ProviderConfig]) -> tuple[tuple[str, ProviderConfig], ...]:
    return tuple(sorted(value.items()))


# WorkingCalendar and RulePacks compare by identity; a configuration compares by content.
def _calendar_key(calendar: WorkingCalendar) -> tuple[object, ...]:
    return (calendar.office_hours, calendar.overrides, calendar.timezone.key)


def _calendars_key(calendars: Mapping[str, WorkingCalendar]) -> tuple[object, ...]:
    return tuple((agency, _calendar_key(calendars[agency])) for agency in sorted(calendars))


def _packs_key(packs: RulePacks) -> tuple[RulePackSpec, ...]:
    return tuple(packs)


@attrs.frozen
class Config:
    """A portal's configuration: one TOML file, separate from the procedure catalogue.

    Build it with `Config.load` (a file), `Config.from_data` (parsed data) or `Config.default`.
    Relative paths in the file are resolved against the file's folder and the files they name
    are loaded at once, so a `Config` holds values, not paths. Secrets are never in the file:
    ``history_key_env`` names the environment variable that holds the history key.

    Two configurations are equal when their settings are, wherever they were read from.

    Attributes:
        source: the file it was read from (or the name given to `from_data`); ``None`` for
            the default.
        busy_timeout_ms: how long SQLite waits for another writer's lock, in milliseconds.
        statement_timeout_ms: PostgreSQL's statement timeout in milliseconds; ``None`` keeps
            the server's.
        pool_size: the database connection pool size; ``None`` keeps SQLAlchemy's default.
        history_key_env: the name of the environment variable holding the history key, or
            ``None`` when none is configured.
        seal_interval_ms: on PostgreSQL, how long a process lets pass after sealing the
            database-wide chain before a command of its own seals again (0: after every
            command).
        calendar: the working calendar of agencies without one of their own.
        agency_calendars: per-agency working calendars, by agency code (read-only).
        rule_packs: the rule packs in force: the built-in ones, replaced or extended by file.
        codes: how dossier codes are written.
        providers: the back ends by name (``[providers.<name>]``), secrets still unread.
        routing: which provider serves payments, deliveries and notifications for whom.
        worker: how the outbox worker claims, retries and gives up.
        payments: callback limits, reconciliation and refunds.
        notifications: locale, channel chain, channel providers and templates.
        delivery: unclaimed-result reminders and download links.
    """

    source: str | None = attrs.field(default=None, eq=False)
    busy_timeout_ms: int = attrs.field(default=5000, validator=_integer_at_least(0))
    statement_timeout_ms: int | None = attrs.field(
        default=None, validator=_integer_at_least(0, optional=True)
    )
    pool_size: int | None = attrs.field(default=None, validator=_integer_at_least(1, optional=True))
    history_key_env: str | None = attrs.field(default=None, validator=_check_key_env)
    seal_interval_ms: int = attrs.field(default=50, validator=_integer_at_least(0))
    calendar: WorkingCalendar = attrs.field(
        factory=WorkingCalendar, validator=_check_calendar, eq=_calendar_key
    )
    agency_calendars: Mapping[str, WorkingCalendar] = attrs.field(
        factory=dict, converter=_freeze_calendars, eq=_calendars_key
    )
    rule_packs: RulePacks = attrs.field(factory=RulePacks.builtin, eq=_packs_key)
    codes: CodeFormat = attrs.field(factory=CodeFormat)
    providers: Mapping[str, ProviderConfig] = attrs.field(
        factory=dict, converter=_freeze_providers, eq=_providers_key
    )
    routing: Routing = attrs.field(factory=Routing)
    worker: WorkerSettings = attrs.field(factory=WorkerSettings)
    payments: PaymentSettings = attrs.field(factory=PaymentSettings)
    notifications: NotificationSettings = attrs.field(factory=NotificationSettings)
    delivery: DeliverySettings = attrs.field(factory=DeliverySettings)

    @routing.validator
    def _check_routing(self, _attribute: attrs.Attribute[Any], value: Routing) -> None:
        missing = sorted(value.names() - set(self.providers))
        if missing:
            raise InvalidValueError("routing", f"no provider {missing[0]!r} is defined")

    @classmethod
    def default(cls) -> Config:
        """The configuration used without a file: built-in calendar, packs and code format."""
        return cls()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Config:
        """Read a TOML configuration file and the override and rule-pack files it names.

        Args:
            path: the file; relative paths inside it are resolved against its folder.

        Raises:
            ConfigurationError: listing every problem at once as ``file: path: message``, e.g.
                ``dvcflow.toml: database.busy_timeout_ms: must be >= 0``; problems inside a
                named override or rule-pack file name that file.
        """
        file = Path(path)
        report = Report(str(file))
        data = _read_toml(file, report)
        report.raise_if_any(ConfigurationError)
        return _read_config(Node(data, "", report), file.parent)

    @classmethod
    def from_data(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "<config>",
        base: str | os.PathLike[str] | None = None,
    ) -> Config:
        """Build a configuration from parsed data (the tables of the TOML file).

        Args:
            data: the configuration's tables, e.g. ``{"database": {"busy_timeout_ms": 1000}}``.
            source: the name problems are reported under.
            base: the folder relative paths are resolved against; the current directory
                by default.

        Raises:
            ConfigurationError: listing every problem at once as ``source: path: message``.
        """
        value = dict(data) if isinstance(data, Mapping) else data
        root = Node(value, "", Report(source))
        return _read_config(root, Path() if base is None else Path(base))

    def resolved_providers(self, environ: Mapping[str, str] | None = None) -> dict[str, Provider]:
        """Every configured provider with its secrets read from the environment.

        Raises:
            ConfigurationError: at ``providers.<name>.secrets.<secret>`` for each environment
                variable that is not set. Values are never shown.
        """
        return resolve_providers(self.providers, self.source or "<config>", environ)

    def calendar_for(self, agency: str) -> WorkingCalendar:
        """The working calendar of ``agency``: its own if configured, else the default one."""
        return self.agency_calendars.get(agency, self.calendar)

    def history_key(self, environ: Mapping[str, str] | None = None) -> bytes | None:
        """The history key from the environment variable named by ``history_key_env``.

        The variable holds at least 32 bytes, written in hex (64 or more hex digits) or in
        base64 (standard or URL-safe alphabet, padding optional). A value made only of hex
        digits is read as hex. Surrounding whitespace is ignored.

        Args:
            environ: where to look; `os.environ` by default.

        Returns:
            The key, or ``None`` when no ``history.key_env`` is configured.

        Raises:
            ConfigurationError: at ``history.key_env`` when the variable is not set, or its
                value is not hex or base64 or is too short. The value is never shown.
        """
        name = self.history_key_env
        if name is None:
            return None
        raw = (os.environ if environ is None else environ).get(name)
        if raw is None or not raw.strip():
            message = f"environment variable {name} is {'not set' if raw is None else 'empty'}"
        else:
            raw = raw.strip()
            key = _decode_key(raw)
            if key is None:
                message = f"environment variable {name} does not hold a key in hex or base64" + (
                    " (odd number of hex digits)" if _HEX.fullmatch(raw) else ""
                )
            elif len(key) < MIN_KEY_BYTES:
                message = (
                    f"environment variable {name} holds a key shorter than {MIN_KEY_BYTES} "
                    f"bytes; give {2 * MIN_KEY_BYTES} hex digits or the base64 of "
                    f"{MIN_KEY_BYTES} random bytes"
                )
            else:
                return key
        raise ConfigurationError([Problem(self.source or "<config>", "history.key_env", message)])


def _decode_key(text: str) -> bytes | None:
    if _HEX.fullmatch(text):
        return bytes.fromhex(text) if len(text) % 2 == 0 else None
    standard = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        return None


def _read_toml(path: Path, report: Report) -> dict[str, Any] | None:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        report.add("", f"cannot read: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        report.add("", "not UTF-8 text")
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        report.add("", f"not valid TOML: {exc}")
        return None


class _Files:
    """The files a configuration names, resolved against its folder and each loaded once."""

    def __init__(self, base: Path, report: Report) -> None:
        self.base = base
        self.report = report
        self.overrides: dict[Path, tuple[CalendarOverride, ...] | None] = {}

    def resolve(self, node: Node) -> Path | None:
        """The existing file named by the string at ``node``."""
        text = node.as_type(str)
        if text is None:
            return None
        if not text.strip():
            node.problem("must not be empty")
            return None
        path = Path(text)
        if not path.is_absolute():
            path = self.base / path
        if not path.exists():
            node.problem(f"file not found: {path}")
            return None
        if not path.is_file():
            node.problem(f"not a file: {path}")
            return None
        return path

    def load_overrides(self, path: Path) -> tuple[CalendarOverride, ...] | None:
        """The overrides of ``path``; its problems (naming it) are reported once."""
        if path not in self.overrides:
            try:
                self.overrides[path] = load_overrides(path)
            except ConfigurationError as exc:
                self.report.problems.extend(exc.problems)
                self.overrides[path] = None
        return self.overrides[path]

    def templates(self, node: Node) -> Templates | None:
        """The built-in templates with those of the files and folders listed at ``node``."""
        items, paths = node.array_items(), []
        for item in items:
            text = item.as_type(str)
            if text is None:
                continue
            path = Path(text) if Path(text).is_absolute() else self.base / text
            if not path.exists():
                item.problem(f"not found: {path}")
                continue
            paths.append(path)
        if not isinstance(node.value, list) or len(paths) != len(items):
            return None
        try:
            return Templates.load(paths)
        except InvalidDefinitionError as exc:
            self.report.problems.extend(exc.problems)
            return None

    def rule_packs(self, node: Node) -> RulePacks | None:
        """The built-in packs with those of the file at ``node`` replacing or joining them."""
        path = self.resolve(node)
        if path is None:
            return None
        try:
            own = RulePacks.from_path(path)
            replaced = {pack.name for pack in own}
            kept = [pack for pack in RulePacks.builtin() if pack.name not in replaced]
            return RulePacks([*kept, *own], source=str(path))
        except InvalidDefinitionError as exc:
            self.report.problems.extend(exc.problems)
            return None


def _section(root: Node, key: str, keys: tuple[str, ...]) -> Node:
    """The table at ``key`` (empty when absent or not a table, the latter reported)."""
    node = root.get(key) or Node({}, root.child_path(key), root.report)
    if not node.table(optional=keys):
        return Node({}, node.path, node.report)
    return node


def _office_hours(node: Node | None, inherited: OfficeHours | None) -> OfficeHours | None:
    if node is None:
        return inherited
    texts = [item.as_type(str) for item in node.array_items()]
    if not isinstance(node.value, list) or None in texts:
        return None
    try:
        return OfficeHours.parse(*(text for text in texts if text is not None))
    except CalendarError as exc:
        index = re.fullmatch(r"periods\[(\d+)\]", exc.field)
        node.problem(exc.message, int(index[1]) if index else None)
        return None


def _overrides(
    node: Node | None, files: _Files, inherited: tuple[CalendarOverride, ...] | None
) -> tuple[CalendarOverride, ...] | None:
    if node is None:
        return inherited
    items = node.array_items()
    if not isinstance(node.value, list):
        return None
    complete = True
    by_date: dict[dt.date, tuple[CalendarOverride, Path]] = {}
    for item in items:
        path = files.resolve(item)
        loaded = None if path is None else files.load_overrides(path)
        if path is None or loaded is None:
            complete = False
            continue
        for override in loaded:
            first, first_path = by_date.setdefault(override.date, (override, path))
            if first.working != override.working:
                closed, worked = (path, first_path) if first.working else (first_path, path)
                item.problem(
                    f"{override.date} is a closure in {closed} and a working day in {worked}"
                )
                complete = False
    if not complete:
        return None
    return tuple(override for override, _path in by_date.values())


def _calendar(
    node: Node,
    files: _Files,
    inherited: tuple[OfficeHours | None, tuple[CalendarOverride, ...] | None],
) -> tuple[WorkingCalendar | None, OfficeHours | None, tuple[CalendarOverride, ...] | None]:
    """A calendar table's calendar, with its office hours and overrides for agencies to inherit."""
    hours = _office_hours(node.get("office_hours"), inherited[0])
    overrides = _overrides(node.get("overrides"), files, inherited[1])
    if hours is None or overrides is None:
        return None, hours, overrides
    return WorkingCalendar(office_hours=hours, overrides=overrides), hours, overrides


def _read_calendars(root: Node, files: _Files) -> tuple[WorkingCalendar | None, dict[str, Any]]:
    node = _section(root, "calendar", ("agencies", *_CALENDAR_KEYS))
    calendar, hours, overrides = _calendar(node, files, (DEFAULT_OFFICE_HOURS, ()))
    agencies: dict[str, Any] = {}
    table = node.get("agencies")
    if table is None or table.as_type(dict) is None:
        return calendar, agencies
    for agency, child in table.items():
        if not agency.strip():
            child.problem("an agency code must not be empty")
        elif child.table(optional=_CALENDAR_KEYS):
            # A key left out is inherited from [calendar]; a key given replaces it.
            agencies[agency] = _calendar(child, files, (hours, overrides))[0]
    return calendar, agencies


def _read_key_env(history: Node) -> str | None:
    node = history.get("key_env")
    name = None if node is None else node.as_type(str)
    if node is None or name is None:
        return None
    problem = _key_env_problem(name)
    if problem is not None:
        node.problem(problem)
    return name


def _read_codes(root: Node) -> CodeFormat | None:
    node = _section(root, "codes", ("format", "period"))
    text = node.string("format", DEFAULT_CODE_FORMAT)
    period = node.choice("period", CodePeriod, CodePeriod.DAY)
    if text is None:
        return None
    # With a bad period (already reported) the format is still checked, against daily codes.
    return node.build(CodeFormat, format=text, period=period or CodePeriod.DAY)


def _read_config(root: Node, base: Path) -> Config:
    report = root.report
    if not root.table(optional=_SECTIONS):
        report.raise_if_any(ConfigurationError)
    files = _Files(base, report)
    # Read in the file's order, so problems are listed in the order a reader meets them.
    database = _section(root, "database", ("busy_timeout_ms", "pool_size", "statement_timeout_ms"))
    values: dict[str, Any] = {
        "busy_timeout_ms": database.integer("busy_timeout_ms", 5000, minimum=0),
        "statement_timeout_ms": database.integer("statement_timeout_ms", None, minimum=0),
        "pool_size": database.integer("pool_size", None, minimum=1),
    }
    history = _section(root, "history", ("key_env", "seal_interval_ms"))
    values["history_key_env"] = _read_key_env(history)
    values["seal_interval_ms"] = history.integer("seal_interval_ms", 50, minimum=0)
    values["calendar"], values["agency_calendars"] = _read_calendars(root, files)
    packs_file = _section(root, "rule_packs", ("file",)).get("file")
    values["rule_packs"] = (
        RulePacks.builtin() if packs_file is None else files.rule_packs(packs_file)
    )
    values["codes"] = _read_codes(root)
    values |= read_backends(root, files.templates)
    report.raise_if_any(ConfigurationError)
    return Config(source=report.source, **values)
