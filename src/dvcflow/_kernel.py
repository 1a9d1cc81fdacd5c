"""The pure decision kernel: a procedure version compiled once, deciding commands without I/O."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from transitions import Event as MachineEvent
from transitions import EventData, Machine, Transition
from transitions.core import Condition

from dvcflow._calendar import WorkingCalendar
from dvcflow._clock import to_utc
from dvcflow._dossier import Dossier, Wait, encode_changes, replace
from dvcflow._frozen import builder
from dvcflow._lifecycle import INITIAL, LifecycleSpec, NationalStatus, TransitionSpec
from dvcflow._procedure import ProcedureSpec
from dvcflow._reasons import REASONS
from dvcflow._rulepacks import RulePacks, RulePackSpec
from dvcflow._values import Actor, ActorKind
from dvcflow.errors import PermissionDeniedError, RefusedError
from dvcflow.levels import lifecycle_for

__all__ = [
    "PAYLOAD_REASONS",
    "WAITING_STATES",
    "Action",
    "Decision",
    "Effect",
    "EffectKind",
    "Event",
    "Kernel",
    "Plan",
]

WAITING_STATES = frozenset({"awaiting_supplement", "awaiting_payment", "withdrawal_requested"})
"""States that interrupt another and return to it."""

PAYLOAD_REASONS = frozenset(
    {
        "address_missing",
        "applicant_missing",
        "amount_mismatch",
        "case_unknown",
        "components_missing",
        "delivery_missing",
        "exemption_unknown",
        "form_invalid",
        "legal_basis_missing",
        "payload_invalid",
        "reason_missing",
        "receiver_missing",
        "result_missing",
        "result_unsigned",
        "specialist_missing",
        "invalid_due_date",
    },
)
"""Reasons that depend on what a command carries; `available` does not report them."""

_AUTHORIZATION = frozenset({"not_owner", "role_missing", "wrong_agency"})
"""Reasons that make a refusal a `PermissionDeniedError`."""

_POSTAL_WORKER = frozenset({"postal_worker"})


class EffectKind(enum.Enum):
    """What a decision asks the outside world to do, after the transaction commits."""

    NOTIFY = "notify"
    REQUEST_PAYMENT = "request_payment"
    CANCEL_PAYMENT = "cancel_payment"
    REFUND = "refund"
    ISSUE_DOCUMENT = "issue_document"
    DELIVER = "deliver"
    SET_TIMER = "set_timer"
    CANCEL_TIMERS = "cancel_timers"


@attrs.frozen
class Effect:
    """A side effect for the outbox, with an idempotency key free of personal data."""

    kind: EffectKind
    data: Mapping[str, Any]
    key: str


@attrs.frozen
class Event:
    """What happened: one per successful command, the unit of a dossier's history.

    ``changes`` holds the dossier fields the command changed, as plain data, so folding the
    events of a dossier reproduces it. ``visit`` marks an event the applicant came to the
    counter for.
    """

    dossier_id: str
    version: int
    trigger: str
    source: str
    target: str
    at: dt.datetime
    actor: str
    roles: tuple[str, ...]
    acting_for: str | None
    agency: str | None
    data: Mapping[str, Any]
    changes: Mapping[str, Any]
    visit: bool = False


@attrs.frozen
class Decision:
    """The outcome of an accepted command: the dossier after it, its event and its effects.

    ``personal`` carries what must stay outside the history chain (applicant, form,
    documents, receiver), for the engine's erasable store.
    """

    dossier: Dossier
    event: Event
    effects: tuple[Effect, ...]
    personal: Mapping[str, Any]
    status: NationalStatus
    """The national status of the dossier after the command."""


_new_wait = builder(Wait)
_new_effect = builder(Effect)
_new_event = builder(Event)
_new_decision = builder(Decision)


@attrs.frozen
class Action:
    """One trigger from the current state: whether the actor may fire it now, and if not why."""

    trigger: str
    allowed: bool
    reasons: tuple[str, ...] = ()


@attrs.define
class Plan:
    """The working notes of one decision, filled in by the trigger's handler."""

    kernel: Kernel
    dossier: Dossier
    actor: Actor
    payload: Mapping[str, Any]
    now: dt.datetime
    pack: RulePackSpec
    trigger: str
    code: str | None = None
    changes: dict[str, Any] = attrs.Factory(dict)
    data: dict[str, Any] = attrs.Factory(dict)
    effects: list[tuple[EffectKind, dict[str, Any]]] = attrs.Factory(list)
    personal: dict[str, Any] = attrs.Factory(dict)
    reasons: list[str] = attrs.Factory(list)
    details: list[str] = attrs.Factory(list)
    select: dict[str, str] = attrs.Factory(dict)
    visit: bool = False

    def refuse(self, reason: str, detail: str = "") -> None:
        """Record a reason the command cannot go ahead (all are reported together)."""
        if reason not in self.reasons:
            self.reasons.append(reason)
        if detail:
            self.details.append(detail)

    def effect(self, kind: EffectKind, /, **data: Any) -> None:  # noqa: ANN401 - plain data
        """Ask for a side effect."""
        self.effects.append((kind, data))

    @property
    def current(self) -> Dossier:
        """The dossier with the changes made so far."""
        return replace(self.dossier, self.changes) if self.changes else self.dossier


Handler = Callable[[Plan], None]


class _Model:
    """The light object transitions moves between states; never registered with the machine."""

    __slots__ = ("edge", "state")

    def __init__(self, state: str) -> None:
        self.state = state
        self.edge: TransitionSpec | None = None


def _conditions(edge: TransitionSpec) -> list[str | Callable[..., bool | None]]:
    """The edge's selection conditions: where a wait returns to, what the handler selected."""
    checks: list[str | Callable[..., bool | None]] = []
    if edge.returns_to is not None:
        wanted = edge.returns_to
        checks.append(lambda ed: ed.kwargs["plan"].dossier.resume_state == wanted)
    if edge.when is not None:
        key, _, value = edge.when.partition(":")
        checks.append(lambda ed: ed.kwargs["plan"].select.get(key) == value)
    return checks


class _Condition(Condition):
    """A condition that is a callable given the event data (``send_event``), called directly.

    `transitions.Condition.check` first resolves a condition named by a string on the model;
    the kernel's are all callables, so there is nothing to resolve.
    """

    def __init__(self, func: object, target: bool = True) -> None:  # noqa: FBT001, FBT002 - transitions' signature
        if not callable(func):
            msg = f"the kernel's conditions are callables, not {func!r}"
            raise TypeError(msg)
        super().__init__(func, target)
        self.predicate = func

    def check(self, event_data: EventData) -> bool:
        return bool(self.predicate(event_data) == self.target)


class _Transition(Transition):
    """An edge that, once its conditions pass, only moves the model and tells it which edge.

    The kernel registers no enter, exit, before or after callbacks (its effects are computed
    by the handlers), so transitions' callback machinery would only run empty lists; skipping
    it halves the cost of a state change.
    """

    condition_cls = _Condition

    def __init__(self, *args: Any, spec: TransitionSpec, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.spec = spec

    def execute(self, event_data: Any) -> bool:  # noqa: ANN401 - its model is our _Model
        for condition in self.conditions:
            if not condition.check(event_data):
                return False
        model: _Model = event_data.model
        if self.dest:
            model.state = self.dest
        model.edge = self.spec
        return True


class _Event(MachineEvent):
    """An event that selects its edge as transitions does, without the machine-wide hooks.

    `transitions.Event.trigger` wraps the selection in the machine's queue and its prepare,
    finalize and exception callbacks; the kernel's machine has none of them (`compile_machine`
    sets none, a test pins it), so this runs the selection itself: the first edge from the
    model's state whose conditions pass, in definition order.
    """

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:  # noqa: ANN401 - untyped
        machine = self.machine
        state = machine.states[model.state]
        edges = self.transitions.get(model.state)
        if edges is None:
            return self._is_valid_source(state)  # raises MachineError, as transitions does
        event_data = EventData(state, self, machine, model, args=args, kwargs=kwargs)
        for transition in edges:
            event_data.transition = transition
            if transition.execute(event_data):
                event_data.result = True
                return True
        return False


class _Machine(Machine):
    """transitions' Machine with `_Transition` edges and `_Event` triggers."""

    transition_cls = _Transition
    event_cls = _Event


def compile_machine(spec: LifecycleSpec) -> Machine:
    """One transitions `Machine` for a lifecycle, shared by every dossier of the version.

    ``auto_transitions`` stays off (it would bypass every guard); dossiers are moved through
    ``machine.events[trigger].trigger(model)`` with an unregistered model.
    """
    machine = _Machine(
        model=None,
        states=[INITIAL, *(state.name for state in spec.states)],
        initial=INITIAL,
        auto_transitions=False,
        send_event=True,
    )
    for edge in spec.transitions:
        machine.add_transition(
            edge.trigger,
            edge.source,
            edge.dest,
            conditions=_conditions(edge),
            spec=edge,
        )
    return machine


def content_hash(procedure: ProcedureSpec) -> str:
    """The SHA-256 of a procedure's canonical JSON form: its version identity."""
    canonical = json.dumps(
        procedure.to_data(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Kernel:
    """A procedure version compiled for deciding commands: pure, cached, thread-safe.

    Args:
        procedure: the procedure version.
        calendar: the agency's working calendar.
        rule_packs: the packs a new dossier is pinned to (the one in force, or the procedure's).
        version: the version's identity; the content hash by default.
        refund_on: the endings (``refused``, ``stopped``, ``withdrawn``) that refund paid
            fees; all of them by default.
        unclaimed_after: how long a result waits at the counter before the applicant is
            reminded to collect it; ``None``: no reminder.
    """

    def __init__(  # noqa: PLR0913 - the version and its settings, keyword-only
        self,
        procedure: ProcedureSpec,
        *,
        calendar: WorkingCalendar | None = None,
        rule_packs: RulePacks | None = None,
        version: str | None = None,
        refund_on: frozenset[str] = frozenset({"refused", "stopped", "withdrawn"}),
        unclaimed_after: dt.timedelta | None = dt.timedelta(days=15),
    ) -> None:
        from dvcflow._handlers import HANDLERS, new_dossier  # noqa: PLC0415 - they import this

        self.procedure = procedure
        self.lifecycle = lifecycle_for(procedure)
        self.machine = compile_machine(self.lifecycle)
        self.calendar = calendar if calendar is not None else WorkingCalendar()
        self.rule_packs = rule_packs if rule_packs is not None else RulePacks.builtin()
        self.version = version if version is not None else content_hash(procedure)
        self.refund_on = refund_on
        self.unclaimed_after = unclaimed_after
        self._handlers: Mapping[str, Handler] = HANDLERS
        self._new_dossier = new_dossier
        self._roles: dict[tuple[str, str], frozenset[str]] = {}
        """Per (state, trigger) with an edge: every role that may fire one of its edges."""
        self._by_state: dict[str, tuple[str, ...]] = {}
        for edge in self.lifecycle.transitions:
            key = (edge.source, edge.trigger)
            self._roles[key] = self._roles.get(key, frozenset()) | edge.roles
            triggers = self._by_state.get(edge.source, ())
            if edge.trigger not in triggers:
                self._by_state[edge.source] = (*triggers, edge.trigger)
        self._statuses = {state.name: state.status for state in self.lifecycle.states}
        self._finals = frozenset(state.name for state in self.lifecycle.states if state.final)
        self._packs = {pack.name: pack for pack in self.rule_packs}
        self._triggers = self.lifecycle.triggers

    def status(self, state: str) -> NationalStatus:
        """The national status of a stored state."""
        return self._statuses[state]

    def pack_for(self, dossier: Dossier | None, now: dt.datetime) -> RulePackSpec:
        """The rule pack a dossier is pinned to, or the one a new dossier gets at ``now``."""
        if dossier is not None and dossier.rule_pack:
            pinned = self._packs.get(dossier.rule_pack)
            return pinned if pinned is not None else self.rule_packs.get(dossier.rule_pack)
        if self.procedure.rule_pack is not None:
            return self.rule_packs.get(self.procedure.rule_pack)
        return self.rule_packs.in_force(now)

    def triggers_from(self, state: str) -> tuple[str, ...]:
        """The triggers with an edge leaving ``state``."""
        return self._by_state.get(state, ())

    def _authorize(self, roles: frozenset[str], dossier: Dossier | None, actor: Actor) -> list[str]:
        """Role and scope reasons against ``actor``, for edges that ``roles`` may fire.

        ``dossier`` is ``None`` for a new one.
        """
        held = actor.roles & roles
        if not held:
            return ["role_missing"]
        if actor.kind is ActorKind.SYSTEM:
            return []
        if actor.kind is ActorKind.APPLICANT:
            if dossier is None or dossier.state == INITIAL:
                return []
            mine = {dossier.owner, dossier.filed_by} - {None}
            ok = actor.id in mine or (
                actor.acting_for is not None and actor.acting_for == dossier.owner
            )
            return [] if ok else ["not_owner"]
        return [] if self._in_scope(dossier, actor, held) else ["wrong_agency"]

    def _in_scope(self, dossier: Dossier | None, actor: Actor, held: frozenset[str]) -> bool:
        if dossier is None:
            # A new dossier belongs to the procedure's agency.
            return actor.agency == self.procedure.agency
        if "external_agency" in held:
            for step in self.procedure.steps:
                if step.name == dossier.state and step.agency == actor.agency:
                    return True
            return False
        if held == _POSTAL_WORKER:
            return dossier.delivery.value == "postal"
        return actor.agency == dossier.agency

    def allowed_now(self, dossier: Dossier | None, actor: Actor) -> tuple[str, ...]:
        """The triggers ``actor`` holds the role and scope for in the dossier's state.

        ``dossier`` is ``None`` before a dossier exists: the triggers that would create one.
        """
        state = INITIAL if dossier is None else dossier.state
        return tuple(
            trigger
            for trigger in self.triggers_from(state)
            if not self._authorize(self._roles[state, trigger], dossier, actor)
        )

    def _start(  # noqa: PLR0913, PLR0917 - the command's parts, as decide() passes them on
        self,
        dossier: Dossier | None,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        now: dt.datetime,
        dossier_id: str | None,
        code: str | None,
    ) -> Plan:
        if type(now) is not dt.datetime or now.tzinfo is not dt.UTC:
            now = to_utc(now, "now")  # already UTC: nothing to convert or check
        # State and authorization come before anything the payload says, so a command that is
        # not possible, or not the actor's, is refused as such whatever it carries.
        state = INITIAL if dossier is None else dossier.state
        roles = self._roles.get((state, trigger))
        if roles is None:
            if trigger not in self._triggers:
                known = ", ".join(sorted(self._triggers))
                message = f"the lifecycle knows {known}"
                raise RefusedError(trigger, ["unknown_trigger"], message=message)
            raise RefusedError(
                trigger,
                ["invalid_in_state"],
                self.allowed_now(dossier, actor),
                f"not possible in state {state!r}",
            )
        denied = self._authorize(roles, dossier, actor)
        if denied:
            raise PermissionDeniedError(
                trigger, denied, self.allowed_now(dossier, actor), _explain(denied)
            )
        pack = self.pack_for(dossier, now)
        if dossier is None:
            dossier = self._new_dossier(
                self,
                trigger,
                actor=actor,
                payload=payload,
                now=now,
                pack=pack,
                dossier_id=dossier_id,
            )
        return Plan(self, dossier, actor, payload, now, pack, trigger, code)

    def decide(  # noqa: PLR0913 - the command's parts, all keyword-only but the first
        self,
        dossier: Dossier | None,
        trigger: str,
        *,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        now: dt.datetime,
        dossier_id: str | None = None,
        code: str | None = None,
    ) -> Decision:
        """Decide ``trigger`` on ``dossier`` (``None`` creates one), or refuse it.

        Returns the dossier after the command, its event and its effects. Pure: nothing is
        read or written outside the arguments.

        Raises:
            PermissionDeniedError: the actor lacks the role or the scope.
            RefusedError: the command is not possible now; ``reasons`` says why and
                ``allowed`` lists the triggers the actor may fire instead.
            CalendarError: ``now`` is naive.
            InvalidValueError: a new dossier without ``dossier_id`` (its effects' idempotency
                keys start with it).
        """
        plan = self._start(dossier, trigger, actor, payload or {}, now, dossier_id, code)
        state = plan.dossier.state
        self._handlers[trigger](plan)
        if plan.reasons:
            # A handler's role or scope check is a permission refusal like the table's.
            error = PermissionDeniedError if _AUTHORIZATION & set(plan.reasons) else RefusedError
            raise error(
                trigger,
                plan.reasons,
                self.allowed_now(plan.dossier, actor),
                _explain(plan.reasons, plan.details),
            )
        model = _Model(state)
        if not self.machine.events[trigger].trigger(model, plan=plan) or model.edge is None:
            raise RefusedError(trigger, ["invalid_in_state"], self.allowed_now(plan.dossier, actor))
        return self._finish(plan, model.edge)

    def _finish(self, plan: Plan, edge: TransitionSpec) -> Decision:
        dossier, source, target = plan.dossier, plan.dossier.state, edge.target
        waits = plan.changes.get("waits", dossier.waits)
        if edge.returns_to is not None and waits:
            waits = waits[:-1]
        elif target in WAITING_STATES and target != source:
            waits = (*waits, _new_wait(target, source, plan.now))
        if target in self._finals:
            waits = ()
        if waits != dossier.waits:
            plan.changes["waits"] = waits
        plan.changes["state"] = target
        plan.changes["version"] = dossier.version + 1
        if source == INITIAL:
            plan.changes = _creation_fields(dossier) | plan.changes
        after = replace(dossier, plan.changes)
        actor = plan.actor
        event = _new_event(
            after.id,
            after.version,
            plan.trigger,
            source,
            target,
            plan.now,
            actor.id,
            tuple(sorted(actor.roles)),
            actor.acting_for,
            actor.agency,
            plan.data,
            encode_changes(plan.changes),
            plan.visit,
        )
        effects = []
        for index, (kind, data) in enumerate(plan.effects):
            effects.append(_new_effect(kind, data, f"{after.id}:{after.version}:{index}"))
        return _new_decision(after, event, tuple(effects), plan.personal, self._statuses[target])

    def available(self, dossier: Dossier, actor: Actor, now: dt.datetime) -> list[Action]:
        """Every trigger leaving the dossier's state, allowed or refused with its reasons.

        Reasons that depend on what a command would carry (a written reason, a result file)
        are left out: an action is allowed when the actor could fire it with the right data.
        No side effects.
        """
        actions = []
        for trigger in self.triggers_from(dossier.state):
            reasons = self._authorize(self._roles[dossier.state, trigger], dossier, actor)
            if not reasons:
                plan = Plan(
                    self,
                    dossier,
                    actor,
                    {},
                    to_utc(now, "now"),
                    self.pack_for(dossier, now),
                    trigger,
                )
                self._handlers[trigger](plan)
                reasons = [reason for reason in plan.reasons if reason not in PAYLOAD_REASONS]
            actions.append(Action(trigger, not reasons, tuple(reasons)))
        return actions


def _creation_fields(dossier: Dossier) -> dict[str, Any]:
    """Every field of a new dossier, so its first event alone rebuilds it."""
    return {field.name: getattr(dossier, field.name) for field in attrs.fields(Dossier)}


def _explain(reasons: Sequence[str], details: Sequence[str] = ()) -> str:
    text = "; ".join(REASONS[reason].en if reason in REASONS else reason for reason in reasons)
    return f"{text} ({'; '.join(details)})" if details else text
