"""Notification templates: one per event and locale, versioned, checked when they are loaded.

A template file is TOML; each top-level table is an event::

    [received]
    version = "2026.1"

    [received.vi]
    subject = "Hồ sơ {code} đã được tiếp nhận"
    text = "Hồ sơ {code} ({procedure}) đã được tiếp nhận; hẹn trả kết quả {due_date}."
    short = "DVC: Ho so {code} da tiep nhan, hen tra ket qua {due_date}."

    [received.en]
    subject = "Dossier {code} received"
    text = "..."

``vi`` is required for every event, ``en`` optional (a message for an English-speaking
applicant falls back to ``vi`` where an event has no ``en``). ``subject`` and ``text`` serve
email and webhooks, the optional ``html`` email, ``short`` SMS and Zalo: a channel whose
variant a template lacks is skipped. Placeholders are plain names from `FIELDS`; anything
else (an unknown name, ``{code.upper}``, ``{x[0]}``, a format spec) is an error at load.
dvcflow ships a template for every event it sends; a portal's files replace them event by
event (``[notifications] templates``).
"""

from __future__ import annotations

import hashlib
import json
import string
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from dvcflow._reader import Node, Report
from dvcflow.errors import InvalidDefinitionError, NotFoundError, Problem

__all__ = ["FIELDS", "LOCALES", "VARIANTS", "Rendered", "Template", "Templates"]

LOCALES = ("vi", "en")
"""The locales templates may have; ``vi`` is required."""
VARIANTS = ("subject", "text", "html", "short")
FIELDS = frozenset(
    {
        "account",
        "agency",
        "amount",
        "code",
        "due_date",
        "event",
        "fee",
        "link",
        "procedure",
    }
)
"""The placeholders a template may use."""
_FORMATTER = string.Formatter()


@attrs.frozen
class Rendered:
    """A template filled in for one dossier and locale."""

    subject: str | None
    text: str
    html: str | None
    short: str | None
    locale: str
    version: str


@attrs.frozen
class Template:
    """One event's texts by locale, with the version recorded on every message."""

    event: str
    version: str
    """``<event>@<declared version>:<6 hex of the content>``."""
    texts: Mapping[str, Mapping[str, str]]
    source: str

    def has(self, variant: str) -> bool:
        """Whether the ``vi`` texts (always present) include ``variant``."""
        return variant in self.texts["vi"]

    def render(self, locale: str, values: Mapping[str, str]) -> Rendered:
        """The texts in ``locale`` (``vi`` if the template has none in it), filled in.

        Raises:
            NotFoundError: ``locale`` is not one of `LOCALES`.
        """
        if locale not in LOCALES:
            raise NotFoundError(f"no locale {locale!r} (known: {', '.join(LOCALES)})")
        chosen = locale if locale in self.texts else "vi"
        texts = self.texts[chosen]
        # Every placeholder was checked at load to be one of FIELDS; a value not given is "".
        filled = {name: value.format_map(_Blank(values)) for name, value in texts.items()}
        return Rendered(
            subject=filled.get("subject"),
            text=filled["text"],
            html=filled.get("html"),
            short=filled.get("short"),
            locale=chosen,
            version=self.version,
        )


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


class Templates:
    """The templates in force: dvcflow's built-in ones, replaced by a portal's event by event.

    Raises:
        InvalidDefinitionError: every problem of every file, as ``file: path: message``.
    """

    def __init__(self, templates: Mapping[str, Template]) -> None:
        self._templates = dict(templates)

    @classmethod
    def builtin(cls) -> Templates:
        """The templates shipped with dvcflow (Vietnamese and English)."""
        return cls(_builtin())

    @classmethod
    def load(cls, paths: Iterable[Path]) -> Templates:
        """The built-in templates with those of ``paths`` (files, or folders of ``*.toml``)."""
        templates = _builtin()
        problems: list[Problem] = []
        for path in paths:
            files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
            for file in files:
                try:
                    templates |= _read(file.read_bytes(), str(file))
                except InvalidDefinitionError as exc:
                    problems.extend(exc.problems)
                except OSError as exc:
                    report = Report(str(file))
                    report.add("", f"cannot read: {exc.strerror or exc}")
                    problems.extend(report.problems)
        if problems:
            raise InvalidDefinitionError(problems)
        return cls(templates)

    def get(self, event: str) -> Template:
        """The template of ``event``.

        Raises:
            NotFoundError: no template for the event.
        """
        try:
            return self._templates[event]
        except KeyError:
            raise NotFoundError(f"no notification template for event {event!r}") from None

    def __contains__(self, event: object) -> bool:
        return event in self._templates

    def events(self) -> list[str]:
        """The events with a template."""
        return sorted(self._templates)


def _builtin() -> dict[str, Template]:
    source = resources.files("dvcflow") / "_templates" / "builtin.toml"
    return _read(source.read_bytes(), "dvcflow:builtin.toml")


def _read(raw: bytes, source: str) -> dict[str, Template]:
    report = Report(source)
    try:
        data: Any = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        report.add("", f"not a TOML template file: {exc}")
        report.raise_if_any()
    root = Node(data, "", report)
    found: dict[str, Template] = {}
    for event, node in root.items():
        if not node.table(required=("version", "vi"), optional=LOCALES):
            continue
        version = node.string("version", None)
        texts: dict[str, dict[str, str]] = {}
        for locale in LOCALES:
            table = node.get(locale)
            if table is None or not table.table(required=("text",), optional=VARIANTS):
                continue
            texts[locale] = {}
            for variant, child in table.items():
                text = child.as_type(str)
                if text is not None and _placeholders_ok(child, text):
                    texts[locale][variant] = text
        if version is not None and "vi" in texts:
            # The version names the event's own texts: editing one event changes only its own.
            canonical = json.dumps(node.value, sort_keys=True, ensure_ascii=False)
            digest = hashlib.sha256(canonical.encode()).hexdigest()[:6]
            found[event] = Template(event, f"{event}@{version}:{digest}", texts, source)
    report.raise_if_any()
    return found


def _placeholders_ok(node: Node, text: str) -> bool:
    try:
        parts = list(_FORMATTER.parse(text))
    except ValueError as exc:
        node.problem(f"not a template: {exc}")
        return False
    ok = True
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FIELDS or spec or conversion:
            known = ", ".join(sorted(FIELDS))
            node.problem(f"placeholder {{{name}}} is not one of {known} (no formats)")
            ok = False
    return ok
