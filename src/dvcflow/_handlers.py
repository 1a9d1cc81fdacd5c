"""What each trigger checks and changes: the guards, due dates, fees, timers and notifications."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from dvcflow._clock import to_utc
from dvcflow._deadlines import (
    DeadlineRules,
    DueDateChange,
    apply_payment_wait,
    apply_supplement,
    classify_handover,
    due_at,
    reminder_times,
    reschedule,
    supplement_deadline,
)
from dvcflow._dossier import Dossier, FeeObligation
from dvcflow._forms import check_form
from dvcflow._kernel import EffectKind, Handler, Kernel, Plan
from dvcflow._policies import SupplementExpiry
from dvcflow._preferences import check_preferences
from dvcflow._procedure import DocumentKind, ProcedureSpec, StepKind
from dvcflow._rulepacks import ContactRule, RulePackSpec
from dvcflow._values import (
    Actor,
    Applicant,
    ApplicantType,
    Channel,
    DeliveryMethod,
    FeeKind,
    FeeTiming,
    Money,
)
from dvcflow.errors import InvalidValueError, RefusedError
from dvcflow.levels import Level, OnlineClass

if TYPE_CHECKING:
    from dvcflow._procedure import CaseSpec

__all__ = ["HANDLERS", "PAYMENT_EXPIRY", "new_dossier"]

PAYMENT_EXPIRY = dt.timedelta(minutes=90)
"""How long an online payment link stays valid (GOV.UK Pay's reference design)."""

_DUE_TIMERS = ("due_reminder", "due_escalation")


# -- creating a dossier -----------------------------------------------------------------------


_MEMBERS: Mapping[type[enum.Enum], Mapping[object, enum.Enum]] = {
    kind: {member.value: member for member in kind}
    for kind in (Channel, DeliveryMethod, DocumentKind, FeeKind)
}
"""The members of the enums a payload names, by value: ``kind(value)`` without its call."""


def _choice(value: object, kind: type[Any], field: str) -> Any:  # noqa: ANN401 - an enum member
    if isinstance(value, kind):
        return value
    try:
        return _MEMBERS[kind][value]
    except (KeyError, TypeError):  # TypeError: an unhashable value, a list from JSON
        raise InvalidValueError(field, f"unknown value {value!r}") from None


def _fees(case: CaseSpec, channel: Channel, exemption: str | None) -> tuple[FeeObligation, ...]:
    owed: dict[FeeKind, tuple[FeeTiming, int]] = {}
    for fee, money in case.fees_for(channel):
        if exemption is not None and exemption in {e.code for e in fee.exemptions}:
            continue
        timing, amount = owed.get(fee.kind, (fee.timing, 0))
        earlier = min(timing, fee.timing, key=lambda t: t.national_code)
        owed[fee.kind] = (earlier, amount + money.amount)
    return tuple(
        FeeObligation(kind, timing, Money(amount))
        for kind, (timing, amount) in sorted(owed.items(), key=_kind_order)
    )


def _kind_order(item: tuple[FeeKind, Any]) -> str:
    return item[0].value


def new_dossier(  # noqa: PLR0913 - the parts of a first command
    kernel: Kernel,
    trigger: str,
    *,
    actor: Actor,
    payload: Mapping[str, Any],
    now: dt.datetime,
    pack: RulePackSpec,
    dossier_id: str | None,
) -> Dossier:
    """The dossier a first command (``submit`` or ``receive``) would create.

    Raises:
        RefusedError: when the case, channel, delivery method or exemption is not offered.
        InvalidValueError: when ``dossier_id`` is missing or blank.
    """
    if not isinstance(dossier_id, str) or not dossier_id.strip():
        # Effects' idempotency keys start with the id; without one they would collide.
        raise InvalidValueError("dossier_id", "a new dossier needs its id")
    procedure = kernel.procedure
    problems: list[str] = []
    details: list[str] = []
    try:
        case = procedure.case(payload.get("case"))
    except InvalidValueError as exc:
        problems.append("case_unknown")
        details.append(exc.message)
        case = procedure.case()
    channel = Channel.ONLINE if trigger == "submit" else _channel(payload, problems, details)
    if channel not in procedure.capabilities.channels:
        problems.append("channel_not_offered")
        details.append(f"the procedure does not take {channel.value} dossiers")
    delivery = _delivery(procedure, payload, problems, details)
    exemption = payload.get("exemption")
    codes = {e.code for fee in case.fees for e in fee.exemptions}
    if exemption is not None and (not isinstance(exemption, str) or exemption not in codes):
        problems.append("exemption_unknown")
    owner: str | None = payload.get("owner")
    if owner is not None and (not isinstance(owner, str) or not owner.strip()):
        # The owner's account id is stored on the dossier and in its history.
        problems.append("payload_invalid")
        details.append("owner must be an account id")
    if problems:
        reasons = list(dict.fromkeys(problems))
        raise RefusedError(trigger, reasons, message="; ".join(details) or ", ".join(reasons))
    filed_by: str | None = None
    if trigger == "submit":
        owner, filed_by = actor.acting_for or actor.id, actor.id
    return Dossier(
        id=dossier_id,
        procedure=procedure.code,
        procedure_version=kernel.version,
        rule_pack=pack.name,
        case=case.key,
        channel=channel,
        delivery=delivery,
        agency=procedure.agency,
        owner=owner,
        filed_by=filed_by,
        created_at=now,
        fees=_fees(case, channel, exemption),
    )


def _channel(payload: Mapping[str, Any], problems: list[str], details: list[str]) -> Channel:
    try:
        channel: Channel = _choice(payload.get("channel", Channel.IN_PERSON), Channel, "channel")
    except InvalidValueError as exc:
        problems.append("payload_invalid")
        details.append(str(exc))
        return Channel.IN_PERSON
    if channel is Channel.ONLINE:
        problems.append("channel_not_offered")
        details.append("online dossiers arrive by `submit`")
    return channel


def _delivery(
    procedure: ProcedureSpec,
    payload: Mapping[str, Any],
    problems: list[str],
    details: list[str],
) -> DeliveryMethod:
    offered = procedure.capabilities.return_methods
    if "delivery" not in payload:
        if len(offered) == 1:
            return next(iter(offered))
        problems.append("delivery_missing")
        details.append("choose one of " + ", ".join(sorted(m.value for m in offered)))
        return min(offered, key=lambda m: m.value)
    try:
        delivery: DeliveryMethod = _choice(payload["delivery"], DeliveryMethod, "delivery")
    except InvalidValueError as exc:
        problems.append("payload_invalid")
        details.append(str(exc))
        return min(offered, key=lambda m: m.value)
    if delivery not in offered:
        problems.append("delivery_not_offered")
    return delivery


# -- shared guards and effects ----------------------------------------------------------------


def _text(plan: Plan, key: str, reason: str = "reason_missing") -> str | None:
    value = plan.payload.get(key)
    if not isinstance(value, str) or not value.strip():
        plan.refuse(reason, f"{key} is required")
        return None
    return value


def _plain_text(value: object) -> str | None:
    """An optional free-text value for an event's data (which stays plain JSON), or None."""
    return value if isinstance(value, str) else None


def _instant(plan: Plan, key: str) -> dt.datetime | None:
    value = plan.payload.get(key)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            plan.refuse("payload_invalid", f"{key}: {exc}")
            return None
    if not isinstance(value, dt.datetime):
        plan.refuse("payload_invalid", f"{key}: must be a timezone-aware datetime")
        return None
    try:
        instant = to_utc(value, key)
        # Inside the calendar's years: due dates and reminders are counted on it.
        plan.kernel.calendar.is_working_day(plan.kernel.calendar.local_date(instant, key))
    except InvalidValueError as exc:
        plan.refuse("payload_invalid", str(exc))
        return None
    except OverflowError:
        plan.refuse("payload_invalid", f"{key}: out of range")
        return None
    return instant


def _case(plan: Plan) -> CaseSpec:
    return plan.kernel.procedure.case(plan.dossier.case)


def _rules(plan: Plan) -> DeadlineRules:
    return DeadlineRules(cutoff=plan.kernel.procedure.intake_cutoff)


def _approved(plan: Plan, document: DocumentKind) -> None:
    """Require (and consume) a leader's sign-off when the procedure asks for one."""
    if document not in plan.kernel.procedure.sign_off:
        return
    if document not in plan.dossier.approvals:
        plan.refuse("document_not_approved", f"the {document.value} needs approve_document first")
        return
    plan.changes["approvals"] = plan.dossier.approvals - {document}


def _set_due(plan: Plan, change: DueDateChange) -> None:
    """Record a due-date recomputation and move the reminder timers with it."""
    plan.data["due_change"] = change.to_data()
    if not change.changed:
        return
    plan.changes["due_at"] = change.new
    plan.effect(EffectKind.CANCEL_TIMERS, names=list(_DUE_TIMERS))
    _due_timers(plan, change.new)


def _due_timers(plan: Plan, due: dt.datetime | None) -> None:
    for reminder in reminder_times(plan.kernel.calendar, due, plan.pack.clock):
        name = f"due_{reminder.kind.value}"
        # A reminder already past (a same-day dossier, one working day's notice) is due now:
        # the next tick sends it, and its timer is not dated before the dossier existed.
        at = max(reminder.at, plan.now)
        plan.effect(EffectKind.SET_TIMER, name=name, at=at.isoformat(), trigger=None)


def _notify(plan: Plan, event: str, to: str = "applicant", **data: Any) -> None:  # noqa: ANN401
    plan.effects.append((EffectKind.NOTIFY, {"event": event, "to": to, **data}))


def _paid(fee: FeeObligation) -> FeeObligation:
    """The obligation with its whole amount paid."""
    return FeeObligation(fee.kind, fee.timing, fee.due, fee.due, fee.refunded)


def _close(plan: Plan, ending: str) -> None:
    """A dossier ending unfinished: refund what was paid (per policy), cancel the rest, no timers.

    ``ending`` is ``refused``, ``stopped`` or ``withdrawn``; the kernel's ``refund_on`` says
    which of them give paid fees back.
    """
    refund = ending in plan.kernel.refund_on
    fees = []
    for fee in plan.current.fees:
        if refund and fee.paid.amount > fee.refunded.amount:
            plan.effect(
                EffectKind.REFUND, kind=fee.kind.value, amount=fee.paid.amount - fee.refunded.amount
            )
            fee = attrs.evolve(fee, refunded=fee.paid)  # noqa: PLW2901 - the updated obligation
        if fee.outstanding:
            plan.effect(EffectKind.CANCEL_PAYMENT, kind=fee.kind.value)
        fees.append(fee)
    if tuple(fees) != plan.dossier.fees:
        plan.changes["fees"] = tuple(fees)
    plan.effect(EffectKind.CANCEL_TIMERS, names=["*"])


def _applicant(plan: Plan) -> Applicant | None:
    value = plan.payload.get("applicant")
    if value is None:
        plan.refuse("applicant_missing")
        return None
    try:
        applicant = value if isinstance(value, Applicant) else Applicant.from_data(dict(value))
    except (InvalidValueError, TypeError, ValueError) as exc:
        plan.refuse("payload_invalid", f"applicant: {exc}")
        return None
    if applicant.kind not in plan.kernel.procedure.applicant_types:
        plan.refuse("applicant_type_not_accepted", applicant.kind.value)
    plan.personal["applicant"] = applicant
    plan.data["applicant_type"] = applicant.kind.national_code
    return applicant


def _documents(plan: Plan, *, required: bool) -> None:
    value = plan.payload.get("documents", [])
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        plan.refuse("payload_invalid", "documents must be a list of component keys")
        return
    components = {c.key: c for c in _case(plan).components}
    unknown = sorted(set(value) - set(components))
    if unknown:
        plan.refuse("payload_invalid", f"unknown component {unknown[0]!r}")
    missing = [key for key, c in components.items() if c.mandatory and key not in value]
    if required and missing:
        plan.refuse("components_missing", ", ".join(missing))
    plan.data["documents"] = sorted(value)
    plan.personal["documents"] = list(value)


def _form(plan: Plan) -> None:
    form = plan.payload.get("form", {})
    if not isinstance(form, Mapping):
        plan.refuse("form_invalid", "the form must be a mapping of field names to values")
        return
    for field, problem in check_form(plan.kernel.procedure.form_fields, form):
        plan.refuse("form_invalid", f"{field}: {problem}")
    plan.personal["form"] = dict(form)


def _contact(plan: Plan, applicant: Applicant) -> None:
    if plan.pack.contact is ContactRule.VNEID and applicant.kind is ApplicantType.CITIZEN:
        if not applicant.vneid_verified:
            plan.refuse("vneid_required")
    elif not applicant.has_contact:
        plan.refuse("contact_missing")


def _intake(plan: Plan) -> None:
    plan.data |= {
        "channel": plan.dossier.channel.value,
        "case": plan.dossier.case,
        "delivery": plan.dossier.delivery.value,
    }
    if plan.dossier.delivery is DeliveryMethod.POSTAL:
        address = plan.payload.get("address")
        if not isinstance(address, Mapping) or not _plain_text(address.get("address")):
            plan.refuse("address_missing", "give address = {address, name?, phone?}")
        else:
            plan.personal["delivery_address"] = {
                key: str(address[key]) for key in ("address", "name", "phone") if address.get(key)
            }
    notify = plan.payload.get("notify")
    if notify is not None:
        try:
            # Kept with the personal data: a channel choice is about the applicant's contacts.
            plan.personal["preferences"] = check_preferences(notify)
        except InvalidValueError as exc:
            plan.refuse("payload_invalid", str(exc))


# -- intake -----------------------------------------------------------------------------------


def _submit(plan: Plan) -> None:
    applicant = _applicant(plan)
    if applicant is not None:
        _contact(plan, applicant)
    _documents(plan, required=True)
    _form(plan)
    _intake(plan)
    for fee in plan.dossier.fees:
        if fee.timing is FeeTiming.BEFORE_RECEPTION and fee.outstanding:
            plan.effect(
                EffectKind.REQUEST_PAYMENT,
                kind=fee.kind.value,
                amount=fee.outstanding.amount,
                method="online",
            )
    _notify(plan, "submitted")


def _receive(plan: Plan) -> None:
    dossier = plan.dossier
    if dossier.state == "initial":
        _applicant(plan)
        _documents(plan, required=True)
        _form(plan)
        _intake(plan)
    prepaid = [f for f in dossier.fees if f.timing is FeeTiming.BEFORE_RECEPTION and f.outstanding]
    if prepaid and dossier.channel is Channel.ONLINE:
        plan.refuse("fees_unpaid", "fees due before reception are not paid online yet")
    elif prepaid and plan.payload.get("fees_collected") is not True:
        plan.refuse("fees_unpaid", "collect the fees due before reception (fees_collected)")
    elif prepaid:
        plan.changes["fees"] = tuple(_paid(f) if f in prepaid else f for f in dossier.fees)
        plan.data["payments"] = [
            {"kind": f.kind.value, "amount": f.outstanding.amount, "method": "counter"}
            for f in prepaid
        ]
    if plan.reasons:
        return
    kernel = plan.kernel
    duration = _case(plan).duration_for(dossier.channel)
    due = due_at(kernel.calendar, plan.now, duration, _rules(plan))
    plan.changes |= {"received_at": plan.now, "code": plan.code or dossier.code}
    _set_due(plan, DueDateChange(None, due, "reception", f"{duration} from reception"))
    plan.visit = dossier.channel is Channel.IN_PERSON
    plan.effect(
        EffectKind.ISSUE_DOCUMENT, form="01", due_at=None if due is None else due.isoformat()
    )
    _notify(plan, "received", due_at=None if due is None else due.isoformat())


def _refuse(plan: Plan) -> None:
    plan.data["reason"] = _text(plan, "reason")
    _close(plan, "refused")
    plan.effect(EffectKind.ISSUE_DOCUMENT, form="03")
    _notify(plan, "refused")


# -- supplements ------------------------------------------------------------------------------


def _request_supplement(plan: Plan) -> None:
    plan.data["reason"] = _text(plan, "reason")
    at_reception = plan.dossier.state == "submitted"
    if at_reception and plan.dossier.guidance_given:
        plan.refuse("guidance_already_given")
    if not at_reception:
        _approved(plan, DocumentKind.SUPPLEMENT_REQUEST)
    deadline = supplement_deadline(plan.kernel.calendar, plan.now, plan.pack.clock)
    plan.changes |= {"supplement_received": False, "supplement_due": deadline.at}
    if at_reception:
        plan.changes["guidance_given"] = True
    plan.data["stage"] = "reception" if at_reception else "processing"
    plan.effect(EffectKind.ISSUE_DOCUMENT, form="02")
    if deadline.at is not None:
        plan.effect(
            EffectKind.SET_TIMER,
            name="supplement_expiry",
            at=deadline.at.isoformat(),
            trigger="expire_supplement",
        )
    _notify(
        plan,
        "supplement_requested",
        due_at=None if deadline.at is None else deadline.at.isoformat(),
    )


def _supplement(plan: Plan) -> None:
    _documents(plan, required=False)
    if not plan.payload.get("documents"):
        plan.refuse("payload_invalid", "list the documents supplemented")
    plan.changes["supplement_received"] = True
    plan.visit = "receiving_officer" in plan.actor.roles
    if (
        plan.visit
        and plan.kernel.procedure.online_class is OnlineClass.FULL
        and plan.dossier.channel is Channel.ONLINE
    ):
        plan.refuse("presence_not_allowed", "a full-process dossier is supplemented online")
    _notify(plan, "supplement_received", to="officer")


def _accept_supplement(plan: Plan) -> None:
    dossier = plan.dossier
    if not dossier.supplement_received:
        plan.refuse("supplement_missing")
        return
    plan.changes |= {"supplement_received": False, "supplement_due": None}
    plan.effect(EffectKind.CANCEL_TIMERS, names=["supplement_expiry"])
    if dossier.resume_state != "submitted" and dossier.waits:
        change = apply_supplement(
            plan.kernel.calendar,
            dossier.due_at,
            policy=plan.pack.clock.supplement,
            duration=_case(plan).duration_for(dossier.channel),
            requested_at=dossier.waits[-1].since,
            completed_at=plan.now,
            rules=_rules(plan),
        )
        _set_due(plan, change)


def _expire_supplement(plan: Plan) -> None:
    due = plan.dossier.supplement_due
    if due is None:
        plan.refuse("not_yet_due", "the supplement request set no deadline")
    elif plan.now < due:
        plan.refuse("not_yet_due", f"the applicant has until {due.isoformat()}")
    if plan.dossier.supplement_received:
        # The applicant answered in time; only the officer's acceptance is pending.
        plan.refuse("invalid_in_state", "the applicant has supplemented; accept_supplement")
    plan.select["expiry"] = plan.pack.clock.supplement_expiry.value
    expiry = plan.pack.clock.supplement_expiry
    _close(plan, "stopped" if expiry is SupplementExpiry.STOP else "withdrawn")
    _notify(plan, "supplement_expired")


# -- processing -------------------------------------------------------------------------------


def _assignment(plan: Plan) -> None:
    specialist = _text(plan, "specialist", "specialist_missing")
    if (
        plan.trigger == "reassign"
        and "admin" in plan.actor.roles
        and "department_head" not in plan.actor.roles
    ):
        plan.data["reason"] = _text(plan, "reason")
    plan.changes["assignee"] = specialist
    plan.data["specialist"] = specialist
    _notify(plan, "assigned", to="officer", account=specialist)


def _step_move(plan: Plan) -> None:
    """A hand-over between steps (phiếu kiểm soát quá trình): who, when, and how timely."""
    kernel, dossier = plan.kernel, plan.dossier
    steps = {step.name: step for step in kernel.procedure.steps}
    if dossier.state in steps and dossier.step_due is not None:
        plan.data["timeliness"] = classify_handover(
            kernel.calendar, dossier.step_due, plan.now
        ).value
    plan.data |= {
        "giver": plan.actor.id,
        "receiver": _plain_text(plan.payload.get("to")),
        "from_step": dossier.state,
    }
    edges = [
        edge for edge in kernel.lifecycle.outgoing(dossier.state) if edge.trigger == plan.trigger
    ]
    target = edges[0].target if edges else dossier.state
    if target in steps:
        plan.changes["step_due"] = due_at(kernel.calendar, plan.now, steps[target].duration)
    else:
        plan.changes |= {"step_due": None, "steps_done": True}
    plan.data["to_step"] = target
    # A leg is opened by `consult`, or by the answer of a leg just before it.
    if target in steps and steps[target].kind is StepKind.CONSULTATION:
        _notify(plan, "consultation", to="external_agency", agency=steps[target].agency)


def _answer(plan: Plan) -> None:
    plan.data["answer"] = _text(plan, "answer", "payload_invalid")
    _step_move(plan)


def _reschedule(plan: Plan) -> None:
    reason = _text(plan, "reason")
    new_due = _instant(plan, "new_due")
    _approved(plan, DocumentKind.APOLOGY)
    if reason is None or new_due is None:
        new_due = plan.now if new_due is None else new_due
        reason = reason or "-"
    try:
        change = reschedule(
            plan.kernel.calendar,
            plan.dossier.due_at,
            new_due,
            now=plan.now,
            policy=plan.pack.clock,
            times_rescheduled=plan.dossier.reschedules,
            reason=reason,
        )
    except RefusedError as exc:
        for code in exc.reasons:
            plan.refuse(code)
        return
    plan.changes["reschedules"] = plan.dossier.reschedules + 1
    _set_due(plan, change)
    plan.effect(EffectKind.ISSUE_DOCUMENT, form="04")
    _notify(plan, "rescheduled", due_at=new_due.isoformat())


def _correct_due_date(plan: Plan) -> None:
    reason = _text(plan, "reason")
    basis = _text(plan, "legal_basis", "legal_basis_missing")
    new_due = _instant(plan, "due_at")
    if reason is None or basis is None or new_due is None:
        return
    plan.data["legal_basis"] = basis
    _set_due(plan, DueDateChange(plan.dossier.due_at, new_due, "correction", reason))


def _approve_document(plan: Plan) -> None:
    value = plan.payload.get("document")
    try:
        document: DocumentKind = _choice(value, DocumentKind, "document")
    except InvalidValueError as exc:
        plan.refuse("payload_invalid", str(exc))
        return
    plan.changes["approvals"] = plan.dossier.approvals | {document}
    plan.data["document"] = document.value


def _stop(plan: Plan) -> None:
    plan.data["reason"] = _text(plan, "reason")
    _close(plan, "stopped")
    _notify(plan, "stopped")


# -- payments ---------------------------------------------------------------------------------


def _request_payment(plan: Plan) -> None:
    due = [(fee, fee.outstanding.amount) for fee in plan.dossier.fees]
    due = [(fee, amount) for fee, amount in due if amount]
    if not due:
        plan.refuse("no_fee_due")
        return
    online = plan.kernel.procedure.capabilities.online_payment
    for fee, amount in due:
        method = "online" if online else "counter"
        plan.effect(EffectKind.REQUEST_PAYMENT, kind=fee.kind.value, amount=amount, method=method)
    if online:
        at = plan.now + PAYMENT_EXPIRY
        plan.effect(
            EffectKind.SET_TIMER, name="payment_expiry", at=at.isoformat(), trigger="expire_payment"
        )
    _notify(plan, "payment_due", amount=sum(amount for _, amount in due))


def _payment_method(plan: Plan, method: object) -> None:
    """Online payments come from the gateway; counter payments from a cashier, never at `full`."""
    procedure = plan.kernel.procedure
    if method == "online":
        if not procedure.capabilities.online_payment:
            plan.refuse("online_payment_not_offered")
        if "system" not in plan.actor.roles:
            plan.refuse("role_missing", "online payments are confirmed by the gateway (system)")
    elif method == "counter":
        if "cashier" not in plan.actor.roles:
            plan.refuse("role_missing", "counter payments are recorded by a cashier")
        if procedure.online_class is OnlineClass.FULL:
            plan.refuse("presence_not_allowed", "a full-process service takes payment online")
    else:
        plan.refuse("payload_invalid", "method must be 'online' or 'counter'")


def _counter_fee_due(plan: Plan, timing: FeeTiming) -> bool:
    """Whether a counter fee may be taken now: one collected with the result waits for it.

    At levels 1-3 the applicant pays at the counter; taking a before-return fee earlier than
    the result is ready would add a visit (DOMAIN.md §1).
    """
    if timing is not FeeTiming.BEFORE_RETURN or plan.kernel.procedure.level >= Level.ONLINE_PAYMENT:
        return True
    dossier = plan.dossier
    waiting_on_result = (
        dossier.state == "awaiting_payment" and dossier.resume_state == "result_ready"
    )
    return dossier.state == "result_ready" or waiting_on_result


def _confirm_payment(plan: Plan) -> None:
    kernel, dossier, payload = plan.kernel, plan.dossier, plan.payload
    method = payload.get("method")
    _payment_method(plan, method)
    if dossier.fees_settled:
        # Checked before the payload's fee kind, so available() reports it too.
        plan.refuse("no_fee_due")
        return
    try:
        kind: FeeKind = _choice(payload.get("kind"), FeeKind, "kind")
    except InvalidValueError as exc:
        plan.refuse("payload_invalid", str(exc))
        return
    fee = dossier.fee(kind)
    owed = None if fee is None else fee.outstanding
    if fee is None or not owed:
        plan.refuse("no_fee_due", kind.value)
        return
    if method == "counter" and not _counter_fee_due(plan, fee.timing):
        plan.refuse("fee_not_due", f"the {kind.value} is collected with the result")
    amount = payload.get("amount")
    # Amounts are whole đồng: 200000.0 or True is not a payment record.
    if type(amount) is not int or amount != owed.amount:
        plan.refuse("amount_mismatch", f"{kind.value} due {owed.amount}, got {amount!r}")
        return
    fees = tuple(_paid(f) if f.kind is kind else f for f in dossier.fees)
    plan.changes["fees"] = fees
    settled = all(f.settled for f in fees)
    plan.select["paid"] = "all" if settled else "part"
    plan.data |= {
        "kind": kind.value,
        "amount": amount,
        "method": method,
        "reference": _plain_text(payload.get("reference")),
        "receipt": _plain_text(payload.get("receipt")),
    }
    plan.visit = method == "counter"
    _notify(plan, "payment_received", kind=kind.value, amount=amount)
    if settled and (dossier.state == "result_ready" or dossier.resume_state == "result_ready"):
        _hand_out(plan)
    if dossier.state == "awaiting_payment" and settled and dossier.waits:
        plan.effect(EffectKind.CANCEL_TIMERS, names=["payment_expiry"])
        if dossier.resume_state != "result_ready":
            change = apply_payment_wait(
                kernel.calendar,
                dossier.due_at,
                policy=plan.pack.clock.payment_wait,
                requested_at=dossier.waits[-1].since,
                paid_at=plan.now,
            )
            _set_due(plan, change)


def _expire_payment(plan: Plan) -> None:
    if plan.dossier.fees_settled:
        plan.refuse("no_fee_due")
        return
    for fee in plan.dossier.fees:
        if fee.outstanding:
            plan.effect(EffectKind.CANCEL_PAYMENT, kind=fee.kind.value, reason="expired")
    _notify(plan, "payment_expired")


# -- withdrawal -------------------------------------------------------------------------------


def _request_withdrawal(plan: Plan) -> None:
    if plan.dossier.resolved_at is not None:
        # Waiting for a fee after the result is ready: too late to withdraw.
        plan.refuse("invalid_in_state", "the result is ready")
    reason = plan.payload.get("reason")
    plan.data["reason"] = reason if isinstance(reason, str) else None
    _notify(plan, "withdrawal_requested", to="officer")


def _approve_withdrawal(plan: Plan) -> None:
    _close(plan, "withdrawn")
    _notify(plan, "withdrawn")


def _reject_withdrawal(plan: Plan) -> None:
    plan.data["reason"] = _text(plan, "reason")
    _notify(plan, "withdrawal_rejected")


# -- result -----------------------------------------------------------------------------------


def _resolve(plan: Plan) -> None:
    procedure, dossier = plan.kernel.procedure, plan.dossier
    if procedure.steps and not dossier.steps_done:
        plan.refuse("steps_pending", ", ".join(step.name for step in procedure.steps))
    result = _text(plan, "result", "result_missing")
    signed = plan.payload.get("signed") is True
    if procedure.result.signed and not signed:
        plan.refuse("result_unsigned")
    _approved(plan, DocumentKind.RESULT)
    plan.changes |= {"result_ref": result, "result_signed": signed, "resolved_at": plan.now}
    on_time = dossier.due_at is None or plan.now <= dossier.due_at
    plan.data |= {"on_time": on_time, "result": result}
    plan.effect(EffectKind.CANCEL_TIMERS, names=list(_DUE_TIMERS))
    _notify(plan, "result_ready")
    if dossier.fees_settled:
        _hand_out(plan)


def _hand_out(plan: Plan) -> None:
    """A ready result with nothing left to pay goes out by post or by link, or waits.

    A result for collection waits at the counter, with a reminder to the applicant if it is
    not collected in time.
    """
    delivery = plan.dossier.delivery
    if delivery is DeliveryMethod.IN_PERSON:
        wait = plan.kernel.unclaimed_after
        if wait is not None:
            at = plan.now + wait
            plan.effect(
                EffectKind.SET_TIMER, name="result_unclaimed", at=at.isoformat(), trigger=None
            )
        return
    plan.effect(EffectKind.DELIVER, method=delivery.value, direction="outbound")


def _issue_result(plan: Plan) -> None:
    number = _text(plan, "number", "payload_invalid")
    plan.changes["result_number"] = number
    plan.data["number"] = number


_RETURNERS = {
    DeliveryMethod.IN_PERSON: frozenset({"receiving_officer"}),
    DeliveryMethod.POSTAL: frozenset({"postal_worker", "system"}),
    DeliveryMethod.ELECTRONIC: frozenset({"system"}),
}


def _return_result(plan: Plan) -> None:
    dossier = plan.dossier
    if not dossier.fees_settled:
        owed = ", ".join(f"{f.kind.value} {f.outstanding}" for f in dossier.fees if f.outstanding)
        plan.refuse("fees_unpaid", owed)
    if not plan.actor.roles & _RETURNERS[dossier.delivery]:
        plan.refuse(
            "role_missing",
            f"a {dossier.delivery.value} return is made by "
            + ", ".join(sorted(_RETURNERS[dossier.delivery])),
        )
    if dossier.delivery is not DeliveryMethod.ELECTRONIC:
        receiver = plan.payload.get("receiver")
        if not isinstance(receiver, Mapping) or not receiver.get("name"):
            plan.refuse("receiver_missing")
        else:
            plan.personal["receiver"] = dict(receiver)
            plan.data["receiver_relation"] = _plain_text(receiver.get("relation")) or "holder"
    plan.changes["returned_at"] = plan.now
    plan.data["delivery"] = dossier.delivery.value
    plan.visit = dossier.delivery is DeliveryMethod.IN_PERSON
    plan.effect(EffectKind.CANCEL_TIMERS, names=["*"])
    _notify(plan, "result_returned")


HANDLERS: Mapping[str, Handler] = {
    "accept_supplement": _accept_supplement,
    "answer_consultation": _answer,
    "approve_document": _approve_document,
    "approve_withdrawal": _approve_withdrawal,
    "assign": _assignment,
    "confirm_payment": _confirm_payment,
    "consult": _step_move,
    "correct_due_date": _correct_due_date,
    "expire_payment": _expire_payment,
    "expire_supplement": _expire_supplement,
    "hand_over": _step_move,
    "issue_result": _issue_result,
    "reassign": _assignment,
    "receive": _receive,
    "refuse": _refuse,
    "reject_withdrawal": _reject_withdrawal,
    "request_payment": _request_payment,
    "request_supplement": _request_supplement,
    "request_withdrawal": _request_withdrawal,
    "reschedule": _reschedule,
    "resolve": _resolve,
    "return_result": _return_result,
    "start": _assignment,
    "stop": _stop,
    "submit": _submit,
    "supplement": _supplement,
}
"""One handler per trigger: it checks the guards and records the changes and effects."""
