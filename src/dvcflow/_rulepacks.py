"""Rule packs: the legal regime in force at an instant (levels, contact rule, clock policies)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs

from dvcflow._loading import read_duration
from dvcflow._policies import ClockPolicy, PaymentWaitPolicy, SupplementExpiry, SupplementPolicy
from dvcflow._reader import Node, Report, read_document
from dvcflow.errors import CalendarError, InvalidDefinitionError, NotFoundError, Problem

__all__ = ["ContactRule", "RulePackSpec", "RulePacks", "ServiceModel"]

_LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


class ServiceModel(enum.Enum):
    """How a rule pack classifies online services."""

    LEVELS = "levels"
    """Levels 1-4 (Circular 26/2009)."""
    CLASSES = "classes"
    """Full-process and partial online (Decree 42/2022)."""


class ContactRule(enum.Enum):
    """What an applicant must have registered to submit online."""

    PHONE_AND_EMAIL = "phone_and_email"
    """A registered mobile number and email address."""
    VNEID = "vneid"
    """Citizens: a verified VNeID account; businesses keep the phone-and-email rule."""


@attrs.frozen
class RulePackSpec:
    """A legal regime as data, in force over an inclusive range of local dates."""

    name: str
    title: str
    legal_basis: tuple[str, ...] = attrs.field(converter=tuple)
    effective_from: dt.date
    effective_until: dt.date | None
    model: ServiceModel
    contact: ContactRule
    clock: ClockPolicy = ClockPolicy()

    def covers(self, day: dt.date) -> bool:
        """Whether the pack is in force on the local date ``day``."""
        return self.effective_from <= day and (
            self.effective_until is None or day <= self.effective_until
        )


class RulePacks:
    """A set of rule packs whose effective ranges do not overlap.

    >>> packs = RulePacks.builtin()
    >>> packs.in_force(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)).name
    'vneid-2024'
    """

    def __init__(self, packs: Iterable[RulePackSpec], *, source: str = "<rule packs>") -> None:
        self._packs = tuple(sorted(packs, key=lambda pack: pack.effective_from))
        problems = []
        names: set[str] = set()
        for index, pack in enumerate(self._packs):
            if pack.name in names:
                problems.append(
                    Problem(source, f"packs[{index}].name", f"duplicate rule pack {pack.name!r}")
                )
            names.add(pack.name)
            if pack.effective_until is not None and pack.effective_until < pack.effective_from:
                problems.append(
                    Problem(source, f"{pack.name}.effective_until", "is before effective_from")
                )
        for earlier, later in zip(self._packs, self._packs[1:], strict=False):
            if earlier.effective_until is None or earlier.effective_until >= later.effective_from:
                problems.append(
                    Problem(
                        source,
                        f"{later.name}.effective_from",
                        f"overlaps rule pack {earlier.name!r}",
                    ),
                )
        if problems:
            raise InvalidDefinitionError(problems)

    @classmethod
    def builtin(cls) -> RulePacks:
        """The packs dvcflow ships: ``levels-2009``, ``online-2022`` and ``vneid-2024``."""
        return _builtin()

    @classmethod
    def from_path(cls, path: str | Path) -> RulePacks:
        """Load packs from a TOML or JSON file with a ``[[packs]]`` array.

        Raises:
            InvalidDefinitionError: naming the file and the field of every problem.
        """
        path = Path(path)
        report = Report(str(path))
        data = read_document(path, report)
        packs = [] if data is None else _read_packs(Node(data, "", report))
        report.raise_if_any()
        return cls(packs, source=str(path))

    def __iter__(self) -> Iterator[RulePackSpec]:
        return iter(self._packs)

    def __len__(self) -> int:
        return len(self._packs)

    def __contains__(self, name: object) -> bool:
        return any(pack.name == name for pack in self._packs)

    def get(self, name: str) -> RulePackSpec:
        """The pack called ``name``.

        Raises:
            NotFoundError: when there is none.
        """
        for pack in self._packs:
            if pack.name == name:
                return pack
        known = ", ".join(pack.name for pack in self._packs)
        raise NotFoundError(f"no rule pack {name!r} (known: {known})")

    def in_force(self, at: dt.datetime) -> RulePackSpec:
        """The pack in force at the instant ``at`` (judged on the local date in Vietnam).

        Raises:
            CalendarError: for a naive datetime.
            NotFoundError: when no pack covers that date.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise CalendarError("at", "a naive datetime is ambiguous; give a timezone-aware one")
        day = at.astimezone(_LOCAL).date()
        for pack in self._packs:
            if pack.covers(day):
                return pack
        raise NotFoundError(f"no rule pack is in force on {day.isoformat()}")


def _read_clock(node: Node | None) -> ClockPolicy | None:
    if node is None:
        return ClockPolicy()
    keys = tuple(field.name for field in attrs.fields(ClockPolicy))
    if not node.table(optional=keys):
        return None
    default = ClockPolicy()
    values: dict[str, object] = {
        "supplement": node.choice("supplement", SupplementPolicy, default.supplement),
        "payment_wait": node.choice("payment_wait", PaymentWaitPolicy, default.payment_wait),
        "supplement_expiry": node.choice(
            "supplement_expiry", SupplementExpiry, default.supplement_expiry
        ),
        "reschedule_limit": node.integer("reschedule_limit", default.reschedule_limit, minimum=0),
    }
    for key in ("supplement_deadline", "reschedule_lead_time", "reminder_before_due"):
        child = node.get(key)
        values[key] = getattr(default, key) if child is None else read_duration(child)
    if None in values.values():
        return None
    return node.build(ClockPolicy, **values)


def _read_packs(root: Node) -> list[RulePackSpec]:
    if not root.table(required=("packs",)):
        return []
    packs = []
    for node in root.array("packs", required=True):
        if not node.table(
            required=("contact", "effective_from", "model", "name", "title"),
            optional=("clock", "effective_until", "legal_basis"),
        ):
            continue
        values = {
            "name": node.string("name", pattern=r"[a-z0-9][a-z0-9\-]*"),
            "title": node.string("title"),
            "legal_basis": tuple(
                b for item in node.array("legal_basis") if (b := item.as_type(str))
            ),
            "effective_from": node.date("effective_from"),
            "effective_until": node.date("effective_until", None),
            "model": node.choice("model", ServiceModel),
            "contact": node.choice("contact", ContactRule),
            "clock": _read_clock(node.get("clock")),
        }
        if any(value is None for key, value in values.items() if key != "effective_until"):
            continue
        pack = node.build(RulePackSpec, **values)
        if pack is not None:
            packs.append(pack)
    return packs


_BUILTIN: list[RulePacks] = []


def _builtin() -> RulePacks:
    if not _BUILTIN:
        with resources.as_file(resources.files("dvcflow") / "_data" / "rulepacks.toml") as path:
            _BUILTIN.append(RulePacks.from_path(path))
    return _BUILTIN[0]
