"""Drawing commands: the trigger (guided towards deep states), the actor pool, the payloads."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import attrs
from hypothesis import strategies as st

from dvcflow._dossier import Dossier
from dvcflow._forms import check_form
from dvcflow._kernel import Kernel
from dvcflow._lifecycle import INITIAL, TRIGGERS, LifecycleSpec
from dvcflow._procedure import DocumentKind, FieldType, FormFieldSpec, ProcedureSpec
from dvcflow._values import STAFF_ROLES, Actor, Applicant

__all__ = [
    "GARBAGE",
    "KEYS",
    "ONWARD",
    "OWNER",
    "Command",
    "Draw",
    "command_payload",
    "draw_trigger",
    "form_values",
    "guides",
    "intake_values",
    "pool",
]

T = TypeVar("T")


class Draw(Protocol):
    """Something that draws a value from a strategy: a composite's ``draw``, ``data.draw``."""

    def __call__(self, strategy: st.SearchStrategy[T], label: Any = None) -> T:  # noqa: ANN401
        """Draw one value."""
        ...


OWNER = "acc-1"
"""The account that files (or, at the counter, owns) the dossier a machine drives."""


@attrs.frozen
class Command:
    """A command for a dossier: the trigger, who fires it and what it carries."""

    trigger: str
    actor: Actor
    payload: Mapping[str, Any]


_INTAKE = ("applicant", "documents", "form", "delivery", "case", "address", "notify", "exemption")
KEYS: Mapping[str, tuple[str, ...]] = {
    "submit": _INTAKE,
    "receive": (*_INTAKE, "channel", "fees_collected", "owner"),
    "confirm_payment": ("kind", "amount", "method", "reference"),
    "start": ("specialist",),
    "assign": ("specialist",),
    "reassign": ("specialist", "reason"),
    "hand_over": ("to",),
    "answer_consultation": ("answer",),
    "request_supplement": ("reason",),
    "supplement": ("documents",),
    "refuse": ("reason",),
    "stop": ("reason",),
    "request_withdrawal": ("reason",),
    "reject_withdrawal": ("reason",),
    "reschedule": ("reason", "new_due"),
    "correct_due_date": ("reason", "legal_basis", "due_at"),
    "approve_document": ("document",),
    "resolve": ("result", "signed"),
    "issue_result": ("number",),
    "return_result": ("receiver",),
}
"""The payload keys each trigger reads."""
_ALL_KEYS = sorted({key for keys in KEYS.values() for key in keys} | {"exemption", "x"})

ONWARD = frozenset(
    {
        "accept_supplement",
        "answer_consultation",
        "confirm_payment",
        "consult",
        "hand_over",
        "issue_result",
        "receive",
        "request_payment",
        "request_supplement",
        "resolve",
        "return_result",
        "start",
        "submit",
        "supplement",
    }
)
"""Triggers that move a dossier towards its result, drawn more often to reach deep states."""

GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:00:00+00:00",
            "2025-03-04",
            "not a date",
            "   ",
            "online",
            "counter",
            "fee",
            "charge",
        ]
    ),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
)
"""Implausible payload values: wrong types, out-of-range instants, naive datetimes."""

_LEFT_OUT = object()
_STAFF = ("receiving_officer", "specialist", "department_head", "leader", "clerk", "cashier")


def pool(procedure: ProcedureSpec) -> tuple[Actor, ...]:
    """The actors a machine draws from: every role, in and out of the procedure's scope."""
    agency = procedure.agency
    roles = (*_STAFF, "admin")
    actors = [Actor.staff(f"{role}-1", roles={role}, agency=agency) for role in roles]
    actors += [Actor.staff(f"{role}-9", roles={role}, agency="ELSEWHERE.9") for role in roles]
    consulted = sorted({step.agency for step in procedure.steps if step.agency})
    actors += [Actor.staff(f"ext-{a}", roles={"external_agency"}, agency=a) for a in consulted]
    actors += [
        Actor.staff("ext-9", roles={"external_agency"}, agency="ELSEWHERE.9"),
        Actor.staff("post-1", roles={"postal_worker"}, agency="VNPOST"),
        Actor.staff("multi-1", roles={"specialist", "leader", "cashier"}, agency=agency),
        Actor.system(),
        Actor.citizen(OWNER),
        Actor.citizen("acc-2"),
        Actor.representative("rep-1", acting_for=OWNER),
        Actor.representative("rep-2", acting_for="acc-2"),
        Actor.business("biz-1"),
        Actor.business("biz-1", acting_for=OWNER),
    ]
    return tuple(actors)


def guides(procedure: ProcedureSpec) -> tuple[Actor, ...]:
    """Actors to ask ``available()`` with: a clerk of every role, the owner, the system."""
    everyone = Actor.staff(
        "guide", roles=STAFF_ROLES - {"external_agency"}, agency=procedure.agency
    )
    return (everyone, Actor.citizen(OWNER), Actor.system())


@functools.cache
def distances(lifecycle: LifecycleSpec) -> Mapping[str, int]:
    """How many edges each state is from a returned result (absent: it cannot get there)."""
    back: dict[str, set[str]] = {}
    for edge in lifecycle.transitions:
        back.setdefault(edge.target, set()).add(edge.source)
    far = {"returned": 0}
    frontier = ["returned"]
    while frontier:
        state = frontier.pop(0)
        for source in back.get(state, ()):
            if source not in far:
                far[source] = far[state] + 1
                frontier.append(source)
    return far


_STEP_MOVES = frozenset({"hand_over", "consult", "answer_consultation"})


def _closer(kernel: Kernel, dossier: Dossier, triggers: set[str]) -> set[str]:
    """The triggers with an edge to a state nearer a returned result.

    The agency's steps count as nearer until they are done.
    """
    far = distances(kernel.lifecycle)
    here = far.get(dossier.state, 10**6)
    pending = bool(kernel.procedure.steps) and not dossier.steps_done
    return {
        edge.trigger
        for edge in kernel.lifecycle.outgoing(dossier.state)
        if edge.trigger in triggers
        and (far.get(edge.target, 10**6) < here or (pending and edge.trigger in _STEP_MOVES))
    }


def draw_trigger(draw: Draw, kernel: Kernel, dossier: Dossier | None, now: dt.datetime) -> str:
    """A trigger for the dossier, often one someone may fire now, to reach deep states.

    Four in ten are guided: a trigger someone may fire now that moves the dossier nearer a
    returned result (or, if none does, any trigger someone may fire now); three are onward
    triggers from the state, two any trigger from it, one any trigger at all.
    """
    state = INITIAL if dossier is None else dossier.state
    here = kernel.triggers_from(state)
    onward = [trigger for trigger in here if trigger in ONWARD]
    pick = draw(st.integers(0, 9))
    if pick < 4 and dossier is not None:
        actions = [
            action
            for actor in guides(kernel.procedure)
            for action in kernel.available(dossier, actor, now)
        ]
        open_now = {a.trigger for a in actions if a.allowed and a.trigger in ONWARD}
        open_now |= {"answer_consultation"} & set(here)
        unsigned = kernel.procedure.sign_off - dossier.approvals
        if unsigned and any(a.reasons == ("document_not_approved",) for a in actions):
            open_now.add("approve_document")
        if state not in {"submitted", "awaiting_payment", "result_ready"}:
            # Paying early would hide the paths on which a fee is still owed at the end.
            open_now -= {"request_payment", "confirm_payment"}
        open_now.discard("request_supplement")
        nearer = _closer(kernel, dossier, open_now)
        if nearer or open_now:
            return draw(st.sampled_from(sorted(nearer or open_now)))
    if onward and pick < 7:
        return draw(st.sampled_from(onward))
    if here and pick < 9:
        return draw(st.sampled_from(here))
    return draw(st.sampled_from([*sorted(TRIGGERS), "fly"]))


def _sample(field: FormFieldSpec) -> st.SearchStrategy[Any]:
    """Values ``field`` accepts."""
    if field.type is FieldType.CHOICE:
        return st.sampled_from(field.choices)
    if field.type is FieldType.BOOLEAN:
        return st.booleans()
    if field.type is FieldType.DATE:
        return st.dates(dt.date(1930, 1, 1), dt.date(2030, 12, 31)).map(dt.date.isoformat)
    if field.type is FieldType.INTEGER:
        return st.integers(field.minimum, field.maximum)
    if field.pattern is not None:
        text = st.from_regex(field.pattern, fullmatch=True)
    else:
        low = field.min_length or 0
        high = field.max_length if field.max_length is not None else max(low, 40)
        text = st.text(
            st.sampled_from("abcdeghiklmnopqrstuvxyđăâêôơưáàảãạ ABCDĐ0123456789"),
            min_size=low,
            max_size=high,
        )

    def accepted(value: str) -> bool:
        return not check_form([field], {field.name: value})

    return text.filter(accepted)


@functools.cache
def form_values(procedure: ProcedureSpec) -> st.SearchStrategy[dict[str, Any]]:
    """Submission forms ``procedure`` accepts: every required field, some optional ones."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        form = {}
        for field in procedure.form_fields:
            if field.required or draw(st.booleans()):
                form[field.name] = draw(_sample(field))
        return form

    return build()


def _bad_form(draw: Draw, procedure: ProcedureSpec) -> dict[str, Any]:
    form = draw(form_values(procedure))
    spoil = draw(st.sampled_from(["unknown", "drop", "wrong"]))
    required = [field.name for field in procedure.form_fields if field.required]
    if spoil == "drop" and required:
        form.pop(draw(st.sampled_from(required)), None)
    elif spoil == "wrong" and procedure.form_fields:
        field = draw(st.sampled_from(procedure.form_fields))
        form[field.name] = draw(GARBAGE)
    else:
        form["unexpected_field"] = "x"
    return form


def _applicant(draw: Draw, procedure: ProcedureSpec, *, spoilt: bool) -> Applicant | dict[str, Any]:
    from dvcflow.testing.strategies import applicants  # noqa: PLC0415 - it imports this module

    if not spoilt:
        return draw(applicants(procedure.applicant_types, contacts=True, vneid=True))
    how = draw(st.sampled_from(["type", "contacts", "vneid", "json"]))
    if how == "type":
        return draw(applicants(contacts=True, vneid=True))
    if how in {"contacts", "vneid"}:
        kinds = procedure.applicant_types
        return draw(applicants(kinds, contacts=how != "contacts", vneid=how != "vneid"))
    # As a JSON body gives it, with an identifier no applicant has.
    applicant = draw(applicants(procedure.applicant_types))
    return {
        "kind": applicant.kind.value,
        "identifier": draw(st.sampled_from(["123", "000000000000", "0101-23"])),
        "name": applicant.name,
    }


INTAKE_PARTS = (
    "applicant",
    "case",
    "documents",
    "form",
    "delivery",
    "address",
    "notify",
    "exemption",
    "fees_collected",
)
"""The parts of an intake that `intake_values` may spoil."""


def intake_values(draw: Draw, procedure: ProcedureSpec, *, online: bool) -> dict[str, Any]:
    """The parts of an intake, as `Engine.submit` takes them: mostly acceptable.

    Three intakes in ten have one or two parts spoilt (an applicant of a type not accepted
    or without the contacts the rule pack needs, an unknown case, a missing component, a
    bad form, a return method not offered, no postal address, ...).
    """
    spoilt: set[str] = set()
    if draw(st.integers(0, 9)) >= 7:
        spoilt = draw(st.sets(st.sampled_from(INTAKE_PARTS), min_size=1, max_size=2))
    cases = [c.key for c in procedure.cases]
    case = "no_such_case" if "case" in spoilt else draw(st.sampled_from([None, *cases]))
    known = procedure.case(None if case == "no_such_case" else case)
    mandatory = [c.key for c in known.components if c.mandatory]
    optional = [c.key for c in known.components if not c.mandatory]
    if "documents" in spoilt:
        documents = draw(st.sampled_from([mandatory[:-1], [*mandatory, "fake_doc"]]))
    else:
        documents = mandatory + draw(st.sampled_from([[], optional]))
    form = _bad_form(draw, procedure) if "form" in spoilt else draw(form_values(procedure))
    offered = sorted(m.value for m in procedure.capabilities.return_methods)
    others = sorted({"in_person", "postal", "electronic"} - set(offered))
    if "delivery" in spoilt and others:
        delivery = draw(st.sampled_from(others))
    else:
        delivery = draw(st.sampled_from(offered))
    values: dict[str, Any] = {
        "applicant": _applicant(draw, procedure, spoilt="applicant" in spoilt),
        "case": case,
        "form": form,
        "documents": documents,
        "delivery": delivery,
    }
    if delivery == "postal" and "address" not in spoilt:
        values["address"] = {"address": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"}
    if "notify" in spoilt:
        values["notify"] = {"channels": ["fax"]}
    elif draw(st.integers(0, 4)) == 4:
        channels = draw(st.sampled_from([["sms"], ["email"], ["zalo", "sms"]]))
        values["notify"] = {"channels": channels, "locale": draw(st.sampled_from(["vi", "en"]))}
    codes = sorted({e.code for fee in known.fees for e in fee.exemptions})
    if "exemption" in spoilt:
        values["exemption"] = "not_exempt"
    elif codes and draw(st.integers(0, 3)) == 3:
        values["exemption"] = draw(st.sampled_from(codes))
    if not online:
        values["fees_collected"] = "fees_collected" not in spoilt
        values["owner"] = OWNER
    return values


def _choices(
    draw: Draw,
    procedure: ProcedureSpec,
    dossier: Dossier | None,
    actor: Actor,
    now: dt.datetime,
) -> dict[str, list[Any]]:
    case = procedure.case(dossier.case if dossier else None)
    keys = [c.key for c in case.components]
    owed = [f for f in dossier.fees if f.outstanding] if dossier else []
    fee = draw(st.sampled_from(owed)) if owed else None
    local = now.astimezone(dt.timezone(dt.timedelta(hours=7)))
    signed = procedure.sign_off
    return {
        "documents": [keys or ["application"], keys[:1] or ["application"], ["fake_doc"]],
        "kind": [fee.kind.value if fee else "fee", "fee", "charge"],
        "amount": [fee.outstanding.amount if fee else 0, 1, 200_000],
        "method": ["online" if "system" in actor.roles else "counter", "online", "counter"],
        "reference": ["TX-1"],
        "specialist": ["specialist-1"],
        "reason": ["lý do"],
        "answer": ["đủ điều kiện"],
        "to": ["leader-1"],
        "document": [k.value for k in sorted(DocumentKind, key=lambda k: k not in signed)],
        "result": ["kq-1"],
        "signed": [True, True, False],
        "number": ["123/QĐ"],
        "legal_basis": ["Quyết định 1/2025"],
        "receiver": [{"name": "Người nhận"}, {"name": "Người nhận", "relation": "spouse"}],
        "new_due": [local + dt.timedelta(days=d) for d in (1, 7, 20, 45)],
        "due_at": [local + dt.timedelta(days=d) for d in (1, 10)],
    }


def command_payload(  # noqa: PLR0913 - what a payload depends on
    draw: Draw,
    procedure: ProcedureSpec,
    *,
    dossier: Dossier | None,
    trigger: str,
    actor: Actor,
    now: dt.datetime,
) -> dict[str, Any]:
    """The payload of ``trigger``: plausible (keys left out now and then), spoilt, or garbage."""
    mode = draw(st.sampled_from(["plausible"] * 6 + ["mixed"] * 3 + ["garbage"]))
    if mode == "garbage":
        return draw(st.dictionaries(st.sampled_from(_ALL_KEYS), GARBAGE))
    if trigger in {"submit", "receive"} and (dossier is None or dossier.state == INITIAL):
        payload = intake_values(draw, procedure, online=trigger == "submit")
        payload = {key: value for key, value in payload.items() if value is not None}
        if trigger == "receive":
            payload["channel"] = draw(st.sampled_from(["in_person", "postal", "online"]))
    else:
        choices = _choices(draw, procedure, dossier, actor, now)
        payload = {}
        for key in KEYS.get(trigger, ()):
            if key not in choices:
                continue
            # Each key is left out now and then, to reach the "missing" refusals.
            value = draw(st.sampled_from([*choices[key] * 4, _LEFT_OUT]))
            if value is not _LEFT_OUT:
                payload[key] = value
    if mode == "mixed":
        key = draw(st.sampled_from(_ALL_KEYS))
        payload[key] = draw(GARBAGE)
    return payload
