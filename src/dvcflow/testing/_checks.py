"""The built-in invariants, as checks over what the engine stored and what the kernel decided."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from dvcflow._calendar import WorkingCalendar
from dvcflow._dossier import Dossier
from dvcflow._kernel import Decision, EffectKind
from dvcflow._lifecycle import LifecycleSpec
from dvcflow._outbox import OutboxItem
from dvcflow._procedure import ProcedureSpec
from dvcflow._snapshots import HistoryEvent
from dvcflow._values import APPLICANT_ROLES, Channel, DeliveryMethod
from dvcflow._visits import count_visits
from dvcflow.levels import OnlineClass

__all__ = [
    "Step",
    "check_authorized",
    "check_due_dates",
    "check_effects",
    "check_fees_before_return",
    "check_finals",
    "check_history_matches",
    "check_no_presence",
]

_RETURNERS = {
    DeliveryMethod.IN_PERSON: frozenset({"receiving_officer"}),
    DeliveryMethod.POSTAL: frozenset({"postal_worker", "system"}),
    DeliveryMethod.ELECTRONIC: frozenset({"system"}),
}
"""Who returns a result by each method (DOMAIN.md §2's authorization table)."""
_PAYERS = {"online": "system", "counter": "cashier"}
"""Who confirms a payment by each method."""


@attrs.frozen
class Step:
    """One event of a dossier's stored history, with the dossier before and after it."""

    event: HistoryEvent
    before: Dossier | None
    after: Dossier


def _plain(value: Any) -> Any:  # noqa: ANN401 - JSON-ready data
    return json.loads(json.dumps(value, default=str))


def check_history_matches(steps: Sequence[Step], decisions: Sequence[Decision]) -> None:
    """Each stored event is the one the kernel decided, in order, version by version."""
    assert len(steps) == len(decisions), (
        f"{len(steps)} events stored, {len(decisions)} commands accepted"
    )
    for number, (step, decision) in enumerate(zip(steps, decisions, strict=True), start=1):
        event, decided = step.event, decision.event
        assert event.version == number, f"event {number} has version {event.version}"
        stored = (event.trigger, event.source, event.target, event.actor, event.visit)
        made = (decided.trigger, decided.source, decided.target, decided.actor, decided.visit)
        assert stored == made, f"event {number} stored as {stored}, decided as {made}"
        assert event.changes == _plain(decided.changes), f"event {number}'s changes differ"
        assert event.data == _plain(decided.data), f"event {number}'s data differ"
        assert step.after == decision.dossier, f"event {number} replays to another dossier"


def check_finals(steps: Sequence[Step], lifecycle: LifecycleSpec) -> None:
    """No event leaves a final state."""
    finals = {state.name for state in lifecycle.states if state.final}
    for step in steps:
        assert step.event.source not in finals, (
            f"event {step.event.version} ({step.event.trigger}) left the final state "
            f"{step.event.source!r}"
        )


def check_fees_before_return(steps: Sequence[Step]) -> None:
    """A result is returned only with every fee paid."""
    for step in steps:
        if step.event.target == "returned" or step.event.trigger == "return_result":
            owed = [
                f"{fee.kind.value} {fee.outstanding}" for fee in step.after.fees if fee.outstanding
            ]
            assert not owed, (
                f"event {step.event.version}: the result was returned with {', '.join(owed)} unpaid"
            )


def check_due_dates(steps: Sequence[Step], calendar: WorkingCalendar) -> None:
    """Every due date the engine computes falls on a working day of the agency's calendar.

    The due date, each step's deadline and the supplement deadline; a due date an admin set
    by ``correct_due_date`` (with its legal basis) is taken as given.
    """
    for step in steps:
        before = step.before
        for field in ("due_at", "step_due", "supplement_due"):
            value = getattr(step.after, field)
            if value is None or (before is not None and getattr(before, field) == value):
                continue
            if field == "due_at" and step.event.trigger == "correct_due_date":
                continue
            day = calendar.local_date(value, field)
            assert calendar.is_working_day(day), (
                f"event {step.event.version} ({step.event.trigger}) set {field} to "
                f"{value.isoformat()}, on {day:%a %d/%m/%Y}, not a working day"
            )


def check_no_presence(steps: Sequence[Step], procedure: ProcedureSpec) -> None:
    """A `full` (2022) dossier never needs the applicant in person.

    No counter payment and no in-person return; an online dossier makes no visit at all
    (`count_visits` is 0). (A procedure that declares a presence step is never derived
    `full`: the loader sees to that, so there is none to look for here.)
    """
    if procedure.online_class is not OnlineClass.FULL:
        return
    for step in steps:
        event, after = step.event, step.after
        where = f"event {event.version} ({event.trigger}) of a full-process dossier"
        assert after.delivery is not DeliveryMethod.IN_PERSON, f"{where}: in-person return"
        assert not (event.trigger == "confirm_payment" and event.data.get("method") == "counter"), (
            f"{where}: paid at the counter"
        )
        if after.channel is Channel.ONLINE:
            assert not event.visit, f"{where}: the applicant came to the counter"
    if steps and steps[-1].after.channel is Channel.ONLINE:
        visits = count_visits(step.event for step in steps)
        assert visits == 0, f"a full-process online dossier made {visits} visits"


def check_effects(
    dossier_id: str, decisions: Sequence[Decision], queued: Sequence[OutboxItem], timers: int
) -> None:
    """Every effect of every accepted command is queued once: keys unique, counts equal.

    A command's effects have the keys ``<dossier id>:<version>:<n>``; timers are rows of
    their own (one per ``set_timer`` effect). The engine queues a few effects of its own,
    keyed otherwise and not decided by a command, so not compared here: a timer's reminder
    (``timer:<id>``), the refund of a payment for a fee no longer owed
    (``unowed:<reference>``); their keys must be unique too.
    """
    expected: dict[str, tuple[str, Any]] = {}
    set_timers = 0
    for decision in decisions:
        for effect in decision.effects:
            if effect.kind is EffectKind.SET_TIMER:
                set_timers += 1
            elif effect.kind is not EffectKind.CANCEL_TIMERS:
                assert effect.key not in expected, f"effect key {effect.key} decided twice"
                expected[effect.key] = (effect.kind.value, _plain(effect.data))
    every = [item.key for item in queued]
    assert len(every) == len(set(every)), f"an effect is queued twice: {sorted(every)}"
    rows = [item for item in queued if item.key.startswith(f"{dossier_id}:")]
    found = {item.key: (item.kind, _plain(item.data)) for item in rows}
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    assert not missing, f"effects decided but not queued: {missing}"
    assert not extra, f"effects queued that no command decided: {extra}"
    for key, value in expected.items():
        assert found[key] == value, f"effect {key} queued as {found[key]}, decided as {value}"
    assert timers == set_timers, f"{set_timers} timers set, {timers} stored"


def check_authorized(
    steps: Sequence[Step], lifecycle: LifecycleSpec, procedure: ProcedureSpec
) -> None:
    """Every stored event was fired by someone the authorization table allows, in scope.

    The actor held a role of the edge; applicants acted on their own dossier (or for its
    owner); staff on their agency's (an external agency on the leg addressed to it, a postal
    worker on a postal return); payments and returns by the roles their method needs.
    """
    for step in steps:
        event, before = step.event, step.before
        where = (
            f"event {event.version}: {event.trigger} by {event.actor} ({', '.join(event.roles)})"
        )
        edges = [
            edge
            for edge in lifecycle.transitions
            if edge.source == event.source and edge.trigger == event.trigger
        ]
        assert edges, f"{where}: the lifecycle has no such edge from {event.source!r}"
        allowed = frozenset().union(*(edge.roles for edge in edges))
        roles = frozenset(event.roles)
        held = roles & allowed
        assert held, f"{where}: needs one of {sorted(allowed)}"
        _check_scope(where, event, before, held, procedure)
        if event.trigger == "confirm_payment":
            method = event.data.get("method")
            assert _PAYERS.get(str(method)) in roles, f"{where}: a {method} payment"
        if event.trigger == "return_result" and before is not None:
            assert roles & _RETURNERS[before.delivery], f"{where}: a {before.delivery.value} return"


def _check_scope(
    where: str,
    event: HistoryEvent,
    before: Dossier | None,
    held: frozenset[str],
    procedure: ProcedureSpec,
) -> None:
    roles = frozenset(event.roles)
    if roles == {"system"}:
        return
    if roles <= APPLICANT_ROLES:
        if before is None:
            return
        owners = {before.owner, before.filed_by} - {None}
        assert event.actor in owners or (
            event.acting_for is not None and event.acting_for == before.owner
        ), f"{where}: not the owner's dossier (owner {before.owner})"
        return
    agency = procedure.agency if before is None else before.agency
    if "external_agency" in held:
        legs = {(step.name, step.agency) for step in procedure.steps}
        assert (event.source, event.agency) in legs, f"{where}: a leg not addressed to it"
    elif held == {"postal_worker"}:
        assert before is not None, f"{where}: a postal worker creating a dossier"
        assert before.delivery is DeliveryMethod.POSTAL, f"{where}: not a postal return"
    else:
        assert event.agency == agency, f"{where}: staff of {event.agency}, dossier of {agency}"
