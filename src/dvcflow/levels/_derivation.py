"""Deriving a procedure's service level (1-4) and 2022 class from its capabilities."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from dvcflow._values import Channel, DeliveryMethod, FeeTiming

if TYPE_CHECKING:
    from dvcflow._procedure import ProcedureSpec

__all__ = ["PRESENCE_TRIGGERS", "Derivation", "Level", "OnlineClass", "derive"]


class Level(enum.IntEnum):
    """The service levels of Circular 26/2009/TT-BTTTT and Decree 43/2011/NĐ-CP."""

    INFORMATION = 1
    """Level 1: the procedure's information is published."""
    FORMS = 2
    """Level 2: forms are downloadable; dossiers come in person or by post."""
    ONLINE_SUBMISSION = 3
    """Level 3: dossiers are submitted and handled online; fees and result at the counter."""
    ONLINE_PAYMENT = 4
    """Level 4: fees are paid online; the result comes back online, by post or in person."""


class OnlineClass(enum.Enum):
    """The two classes of online public service of Decree 42/2022/NĐ-CP."""

    FULL = "full"
    """Toàn trình: every step online, payment included; no step requires presence."""
    PARTIAL = "partial"
    """Một phần: online submission, with presence or counter steps where law requires them."""


PRESENCE_TRIGGERS = frozenset({"receive", "supplement", "confirm_payment", "return_result"})
"""Built-in triggers a procedure may declare as requiring the applicant in person."""

_ELECTRONIC_OR_POSTAL = frozenset({DeliveryMethod.ELECTRONIC, DeliveryMethod.POSTAL})


@attrs.frozen
class Derivation:
    """The level and class derived from a procedure, and what contradicts the level rules.

    ``problems`` holds ``(field path, message)`` pairs; the loader reports them with the file.
    """

    level: Level
    online_class: OnlineClass | None
    problems: tuple[tuple[str, str], ...] = ()


def _level4_gaps(procedure: ProcedureSpec) -> list[tuple[str, str]]:
    caps = procedure.capabilities
    gaps = []
    if Channel.ONLINE not in caps.channels:
        gaps.append(("capabilities.channels", "level 4 needs online submission ('online')"))
    if procedure.charges_fees and not caps.online_payment:
        gaps.append(
            (
                "capabilities.online_payment",
                "level 4 needs online payment, as the procedure charges fees",
            )
        )
    if not caps.return_methods & _ELECTRONIC_OR_POSTAL:
        gaps.append(("capabilities.return_methods", "level 4 needs an electronic or postal return"))
    return gaps


def _requires_presence(procedure: ProcedureSpec) -> bool:
    return bool(procedure.capabilities.presence_steps) or any(
        step.requires_presence for step in procedure.steps
    )


def derive(procedure: ProcedureSpec) -> Derivation:
    """Derive the level and 2022 class exactly as DOMAIN.md §1 states, and check the level rules.

    Level 3 is online submission; level 4 adds online payment where there is any fee (vacuous
    without fees) and an electronic or postal return. ``full`` is level 4 returning only
    electronically or by post with no step requiring presence; ``partial`` is any other
    procedure with online submission.
    """
    caps = procedure.capabilities
    problems: list[tuple[str, str]] = []
    if not caps.information_published:
        problems.append(
            (
                "capabilities.information_published",
                "every level publishes the procedure's information",
            )
        )

    online = Channel.ONLINE in caps.channels
    level4_gaps = _level4_gaps(procedure)
    if online and not level4_gaps:
        level = Level.ONLINE_PAYMENT
    elif online:
        level = Level.ONLINE_SUBMISSION
    elif caps.forms:
        level = Level.FORMS
    else:
        level = Level.INFORMATION

    if Channel.POSTAL in caps.channels and not caps.forms:
        problems.append(
            ("capabilities.forms", "postal intake (level 2 and up) needs downloadable forms")
        )
    if caps.online_payment and not online:
        problems.append(
            (
                "capabilities.online_payment",
                "online payment needs online submission ('online' channel)",
            )
        )
    if level < Level.ONLINE_PAYMENT and caps.return_methods & _ELECTRONIC_OR_POSTAL:
        why = (
            "; ".join(message for _, message in level4_gaps)
            if online
            else "level 4 needs online submission"
        )
        problems.append(
            (
                "capabilities.return_methods",
                f"a result goes out by post or electronically only at level 4 ({why})",
            )
        )

    declared = procedure.declared_level
    if declared is not None and declared != level:
        problems.append(("level", _contradiction(procedure, declared, level, level4_gaps)))

    problems.extend(_fee_timing_problems(procedure, level))
    problems.extend(_presence_problems(procedure))

    online_class = None
    if online:
        full = level is Level.ONLINE_PAYMENT and caps.return_methods <= _ELECTRONIC_OR_POSTAL
        online_class = (
            OnlineClass.FULL if full and not _requires_presence(procedure) else OnlineClass.PARTIAL
        )
    return Derivation(level, online_class, tuple(problems))


def _contradiction(
    procedure: ProcedureSpec,
    declared: int,
    derived: Level,
    level4_gaps: list[tuple[str, str]],
) -> str:
    caps = procedure.capabilities
    if declared not in {1, 2, 3, 4}:
        return f"must be 1, 2, 3 or 4, got {declared}"
    head = f"declared level {declared} but the capabilities give level {derived.value}"
    if declared > derived:
        missing = {
            2: "capabilities.forms: no downloadable forms",
            3: "capabilities.channels: no online submission",
            4: "; ".join(f"{path}: {message}" for path, message in level4_gaps),
        }
        needed = [missing[n] for n in range(derived.value + 1, declared + 1) if missing.get(n)]
        return f"{head}; missing {needed[0]}"
    extra = {
        1: "capabilities.forms offers downloadable forms" if caps.forms else "",
        2: "capabilities.channels offers online submission",
        3: "online payment and an electronic or postal return make it level 4",
    }
    return f"{head}; {extra[declared] or 'remove capabilities above the declared level'}"


def _fee_timing_problems(procedure: ProcedureSpec, level: Level) -> list[tuple[str, str]]:
    problems = []
    for case in procedure.cases:
        for index, fee in enumerate(case.fees):
            if not fee.charges:
                continue
            path = f"cases.{case.key}.fees[{index}].timing"
            if level <= Level.FORMS and fee.timing is FeeTiming.AT_SUPPLEMENT:
                problems.append(
                    (path, "at levels 1-2 a counter fee is collected at reception or at return")
                )
            if level is Level.ONLINE_SUBMISSION and fee.timing is not FeeTiming.BEFORE_RETURN:
                problems.append(
                    (
                        path,
                        (
                            "at level 3 counter fees are collected with the result"
                            " ('before_return'); collecting earlier adds a visit"
                        ),
                    ),
                )
    return problems


def _presence_problems(procedure: ProcedureSpec) -> list[tuple[str, str]]:
    known = PRESENCE_TRIGGERS | {step.name for step in procedure.steps}
    return [
        (
            "capabilities.presence_steps",
            f"{name!r} is neither a presence trigger nor a step of this procedure",
        )
        for name in sorted(procedure.capabilities.presence_steps - known)
    ]
