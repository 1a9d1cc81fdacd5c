"""The decision kernel: happy paths and refusals of every level and 2022 class."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
import transitions

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Channel,
    ClockPolicy,
    ContactRule,
    DeliveryMethod,
    DocumentKind,
    Duration,
    FeeKind,
    FeeTiming,
    InvalidValueError,
    Level,
    Money,
    OnlineClass,
    PaymentWaitPolicy,
    PermissionDeniedError,
    ProcedureSpec,
    RefusedError,
    RulePacks,
    RulePackSpec,
    ServiceModel,
    StepKind,
    SupplementExpiry,
    SupplementPolicy,
)
from dvcflow._deadlines import due_at
from dvcflow._dossier import Dossier, FeeObligation, replay
from dvcflow._kernel import Decision, EffectKind, Event, Kernel, _Model
from dvcflow._lifecycle import NationalStatus

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "procedures"
CATALOG = Catalog.from_path(EXAMPLES)

MONDAY = dt.datetime(2025, 3, 3, 8, 0, tzinfo=HCM)
"""Monday 3 March 2025, 08:00 in Hanoi: a working day well inside the vneid-2024 pack."""


def local(day: int, hour: int, minute: int = 0, *, month: int = 3, year: int = 2025) -> dt.datetime:
    """A local instant in Hanoi."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=HCM)


FORMS: Mapping[str, Mapping[str, object]] = {
    "2.000815": {},
    "2.000575": {
        "business_name": "Tạp hóa Minh An",
        "capital_vnd": 50_000_000,
        "business_lines": "Bán lẻ",
    },
    "1.000894": {"husband_full_name": "Trần Văn Hùng", "wife_full_name": "Lê Thị Mai"},
    "1.009994": {"plot_number": "123", "floor_area_m2": 120, "floors": 3},
    "2.000488": {"purpose": "Xin việc", "copies": 1},
    "1.002804": {"licence_number": "123456789012", "licence_class": "B"},
    "1.001193": {
        "child_full_name": "Phạm Gia Bảo",
        "child_birth_date": "2025-02-20",
        "child_sex": "nam",
        "relationship": "me",
    },
}
"""A valid form per example procedure."""

APPLICANT = Applicant(
    ApplicantType.CITIZEN,
    "001203004567",
    "Nguyễn Thị Bình",
    phone="0912345678",
    email="binh@example.vn",
    vneid_verified=True,
)
PERSONAL = ("Nguyễn Thị Bình", "001203004567", "0912345678", "binh@example.vn")
"""The applicant's personal data, which must never reach an event or an effect."""

CITIZEN = Actor.citizen("acc-1")
OTHER_CITIZEN = Actor.citizen("acc-2")
SYSTEM = Actor.system()
POSTAL = Actor.staff("post-1", roles={"postal_worker"}, agency="VNPOST")


def staff(kernel: Kernel, role: str, *, agency: str | None = None) -> Actor:
    """An officer of the procedure's agency (or ``agency``) holding ``role``."""
    return Actor.staff(f"{role}-1", roles={role}, agency=agency or kernel.procedure.agency)


def variant(code: str, change: Callable[[dict[str, Any]], None]) -> ProcedureSpec:
    """An example procedure with its plain data changed by ``change``, loaded and checked."""
    data = CATALOG.get(code).to_data()
    change(data)
    return ProcedureSpec.from_data(data, source=f"variant of {code}")


def _fee_before_return(data: dict[str, Any]) -> None:
    for case in data["cases"].values():
        for fee in case["fees"]:
            fee["timing"] = "before_return"


def _two_fee_kinds(data: dict[str, Any]) -> None:
    _fee_before_return(data)
    data["cases"]["default"]["fees"].append(
        {"kind": "charge", "name": "Lệ phí", "amount": 30_000, "timing": "before_return"}
    )


def _full_with_fee(data: dict[str, Any]) -> None:
    data["cases"]["default"]["fees"] = [
        {"kind": "charge", "name": "Lệ phí", "amount": 8_000, "timing": "before_return"}
    ]


def _businesses_too(data: dict[str, Any]) -> None:
    data["applicant_types"] = ["citizen", "business"]


def _apology_signed(data: dict[str, Any]) -> None:
    data["sign_off"] = ["apology"]


def _two_consultations(data: dict[str, Any]) -> None:
    data["steps"].append(
        {
            "name": "court_check",
            "kind": "consultation",
            "roles": ["specialist"],
            "agency": "TAND-TINH.01",
            "duration": {"amount": 2, "unit": "working_days"},
        }
    )


PAY_LATER = variant("2.000488", _fee_before_return)
"""Level 4 partial with its fee paid online in processing, not before reception."""
TWO_FEES = variant("2.000488", _two_fee_kinds)
FULL_WITH_FEE = variant("1.001193", _full_with_fee)
"""Level 4 full, with a charge: payment online only."""
BUSINESSES = variant("2.000488", _businesses_too)
APOLOGY_SIGNED = variant("2.000488", _apology_signed)
TWO_LEGS = variant("2.000488", _two_consultations)


def packs(**clock: Any) -> RulePacks:
    """One pack in force from 2020 with the clock policy ``clock``."""
    return RulePacks(
        [
            RulePackSpec(
                name="test",
                title="test",
                legal_basis=(),
                effective_from=dt.date(2020, 1, 1),
                effective_until=None,
                model=ServiceModel.CLASSES,
                contact=ContactRule.VNEID,
                clock=ClockPolicy(**clock),
            )
        ]
    )


_KERNELS: dict[str, Kernel] = {}


def kernel_for(code: str) -> Kernel:
    """The (cached) kernel of an example procedure."""
    if code not in _KERNELS:
        _KERNELS[code] = Kernel(CATALOG.get(code))
    return _KERNELS[code]


def mandatory(kernel: Kernel, case: str | None = None) -> list[str]:
    """The mandatory component keys of a case."""
    return [c.key for c in kernel.procedure.case(case).components if c.mandatory]


_MISSING = object()


class Walk:
    """One dossier driven through a kernel, checking every decision as it goes."""

    def __init__(self, kernel: Kernel, *, start: dt.datetime = MONDAY, dossier_id: str = "d-1"):
        self.kernel = kernel
        self.now = start
        self.id = dossier_id
        self.dossier: Dossier | None = None
        self.decisions: list[Decision] = []

    @property
    def events(self) -> list[Event]:
        return [decision.event for decision in self.decisions]

    @property
    def last(self) -> Decision:
        return self.decisions[-1]

    @property
    def state(self) -> str:
        assert self.dossier is not None
        return self.dossier.state

    @property
    def current(self) -> Dossier:
        assert self.dossier is not None
        return self.dossier

    def _when(self, at: dt.datetime | None, after: dt.timedelta) -> dt.datetime:
        self.now = at if at is not None else self.now + after
        return self.now

    def do(  # noqa: PLR0913 - a command's parts, as decide() takes them
        self,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        *,
        at: dt.datetime | None = None,
        after: dt.timedelta = dt.timedelta(minutes=10),
        code: str | None = None,
    ) -> Decision:
        """Decide ``trigger`` and check the decision against the dossier's history."""
        decision = self.kernel.decide(
            self.dossier,
            trigger,
            actor=actor,
            payload=payload,
            now=self._when(at, after),
            dossier_id=self.id,
            code=code,
        )
        self.decisions.append(decision)
        after_ = decision.dossier
        assert replay(event.changes for event in self.events) == after_
        assert after_.version == len(self.decisions) == decision.event.version
        assert decision.event.trigger == trigger
        assert decision.event.target == after_.state
        assert decision.status is self.kernel.status(after_.state)
        for number, effect in enumerate(decision.effects):
            assert effect.key == f"{self.id}:{after_.version}:{number}"
        self.dossier = after_
        return decision

    def refuse(  # noqa: PLR0913 - a command's parts, as decide() takes them
        self,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        *,
        at: dt.datetime | None = None,
        after: dt.timedelta = dt.timedelta(minutes=10),
        error: type[RefusedError] = RefusedError,
    ) -> RefusedError:
        """Decide a command that must be refused, and check that it changed nothing."""
        before = self.dossier
        snapshot = copy.deepcopy(before)
        now = at if at is not None else self.now + after
        result: object = _MISSING
        with pytest.raises(error) as caught:
            result = self.kernel.decide(
                before, trigger, actor=actor, payload=payload, now=now, dossier_id=self.id
            )
        assert result is _MISSING
        assert before == snapshot
        assert self.dossier is before
        assert caught.value.trigger == trigger
        return caught.value

    def effects(self, kind: EffectKind) -> list[Mapping[str, Any]]:
        """The data of the last decision's effects of ``kind``."""
        return [effect.data for effect in self.last.effects if effect.kind is kind]

    def visits(self) -> int:
        """Visits along the path: in-person events, one per local day and counter."""
        return len(
            {
                (event.at.astimezone(HCM).date(), event.agency)
                for event in self.events
                if event.visit
            }
        )


# -- the steps of a happy path ---------------------------------------------------------------


def intake_payload(kernel: Kernel, delivery: DeliveryMethod | None, **extra: Any) -> dict[str, Any]:
    """What an applicant hands in: identity, mandatory documents, form, return method."""
    payload: dict[str, Any] = {
        "applicant": APPLICANT,
        "documents": mandatory(kernel),
        "form": dict(FORMS[kernel.procedure.code]),
    }
    if delivery is not None:
        payload["delivery"] = delivery.value
    if delivery is DeliveryMethod.POSTAL:
        payload["address"] = {"address": "Số 1 Tràng Tiền, Hoàn Kiếm, Hà Nội"}
    return payload | extra


def online_payment(fee: FeeObligation) -> dict[str, Any]:
    return {
        "kind": fee.kind.value,
        "amount": fee.outstanding.amount,
        "method": "online",
        "reference": "TX-1",
    }


def counter_payment(fee: FeeObligation) -> dict[str, Any]:
    return {"kind": fee.kind.value, "amount": fee.outstanding.amount, "method": "counter"}


def intake(walk: Walk, channel: Channel, delivery: DeliveryMethod, **extra: Any) -> None:
    """Create and receive the dossier through ``channel``, paying prepaid fees on the way."""
    kernel = walk.kernel
    officer = staff(kernel, "receiving_officer")
    payload = intake_payload(kernel, delivery, **extra)
    if channel is Channel.ONLINE:
        walk.do("submit", CITIZEN, payload)
        assert walk.last.status is NationalStatus.RECEIVING
        for fee in walk.current.fees:
            if fee.timing is FeeTiming.BEFORE_RECEPTION:
                walk.do("confirm_payment", SYSTEM, online_payment(fee))
        walk.do("receive", staff(kernel, "receiving_officer"), code="C-1")
    else:
        payload |= {"channel": channel.value, "fees_collected": True}
        walk.do("receive", officer, payload, code="C-1")
    assert walk.last.status is NationalStatus.NEW
    assert walk.current.code == "C-1"
    assert walk.effects(EffectKind.ISSUE_DOCUMENT)[0]["form"] == "01"


def process(walk: Walk) -> None:
    """Start processing and walk every agency step back to `processing`."""
    kernel = walk.kernel
    walk.do("start", staff(kernel, "department_head"), {"specialist": "specialist-1"})
    assert walk.last.status is NationalStatus.PROCESSING
    steps = kernel.procedure.steps
    if not steps:
        return
    for leaving, entering in itertools.pairwise([None, *steps, None]):
        if leaving is not None and leaving.kind is StepKind.CONSULTATION:
            agency = staff(kernel, "external_agency", agency=leaving.agency)
            walk.do("answer_consultation", agency, {"answer": "không có án tích"})
        elif entering is not None and entering.kind is StepKind.CONSULTATION:
            walk.do("consult", staff(kernel, "specialist"))
        else:
            role = min(leaving.roles) if leaving is not None else "specialist"
            walk.do("hand_over", staff(kernel, role), {"to": "next"})
        assert walk.state == (entering.name if entering is not None else "processing")
        assert walk.last.status is NationalStatus.PROCESSING
    assert walk.current.steps_done


def resolve(walk: Walk) -> None:
    """Sign off (where the procedure asks for it) and resolve."""
    leader = staff(walk.kernel, "leader")
    if DocumentKind.RESULT in walk.kernel.procedure.sign_off:
        walk.do("approve_document", leader, {"document": "result"})
    walk.do("resolve", leader, {"result": "kq-001", "signed": True})
    assert walk.last.status is NationalStatus.RELEASING


def settle(walk: Walk) -> None:
    """Request and pay every outstanding fee: online at level 4, at the counter below."""
    if walk.current.fees_settled:
        return
    kernel = walk.kernel
    cashier = staff(kernel, "cashier")
    resume = walk.state
    walk.do("request_payment", cashier)
    assert walk.last.status is NationalStatus.PAYING
    online = kernel.procedure.capabilities.online_payment
    for fee in walk.current.fees:
        if fee.outstanding:
            if online:
                walk.do("confirm_payment", SYSTEM, online_payment(fee))
            else:
                walk.do("confirm_payment", cashier, counter_payment(fee))
    assert walk.state == resume
    assert walk.current.fees_settled


RECEIVER = {"name": "Người nhận", "relation": "holder"}


def give_back(walk: Walk) -> None:
    """Return the result the way the applicant chose."""
    kernel = walk.kernel
    delivery = walk.current.delivery
    if delivery is DeliveryMethod.IN_PERSON:
        walk.do("return_result", staff(kernel, "receiving_officer"), {"receiver": RECEIVER})
    elif delivery is DeliveryMethod.POSTAL:
        walk.do("return_result", POSTAL, {"receiver": RECEIVER})
    else:
        walk.do("return_result", SYSTEM)
    assert walk.last.status is NationalStatus.DONE
    assert walk.current.returned_at == walk.now.astimezone(dt.UTC)


def happy(
    kernel: Kernel, channel: Channel, delivery: DeliveryMethod, *, start: dt.datetime = MONDAY
) -> Walk:
    """A dossier walked from intake to returned."""
    walk = Walk(kernel, start=start)
    intake(walk, channel, delivery)
    process(walk)
    resolve(walk)
    settle(walk)
    give_back(walk)
    return walk


def paths() -> Iterator[Any]:
    for procedure in CATALOG:
        for channel in sorted(procedure.capabilities.channels, key=lambda c: c.value):
            for delivery in sorted(procedure.capabilities.return_methods, key=lambda m: m.value):
                klass = procedure.online_class.value if procedure.online_class else "-"
                yield pytest.param(
                    procedure.code,
                    channel,
                    delivery,
                    id=f"L{procedure.level.value}-{klass}-{procedure.code}-"
                    f"{channel.value}-{delivery.value}",
                )


LEVELS = [
    pytest.param("2.000815", id="L1"),
    pytest.param("2.000575", id="L2"),
    pytest.param("1.009994", id="L3-partial"),
    pytest.param("2.000488", id="L4-partial"),
    pytest.param("1.001193", id="L4-full"),
]


def received(code_or_kernel: str | Kernel, **kwargs: Any) -> Walk:
    """A dossier received through the first channel of the procedure (online if offered)."""
    kernel = kernel_for(code_or_kernel) if isinstance(code_or_kernel, str) else code_or_kernel
    channels = kernel.procedure.capabilities.channels
    channel = Channel.ONLINE if Channel.ONLINE in channels else Channel.IN_PERSON
    delivery = min(kernel.procedure.capabilities.return_methods, key=lambda m: m.value)
    walk = Walk(kernel, **kwargs)
    intake(walk, channel, delivery)
    return walk


def processing(code_or_kernel: str | Kernel, **kwargs: Any) -> Walk:
    """A dossier in `processing`, every agency step still ahead."""
    walk = received(code_or_kernel, **kwargs)
    walk.do("start", staff(walk.kernel, "department_head"), {"specialist": "specialist-1"})
    return walk


def ready(code_or_kernel: str | Kernel, **kwargs: Any) -> Walk:
    """A dossier whose result is ready, fees as the path left them."""
    walk = received(code_or_kernel, **kwargs)
    process(walk)
    resolve(walk)
    return walk


# -- happy paths ------------------------------------------------------------------------------


class TestHappyPaths:
    @pytest.mark.parametrize(("code", "channel", "delivery"), list(paths()))
    def test_every_channel_and_return_method(
        self, code: str, channel: Channel, delivery: DeliveryMethod
    ) -> None:
        """Every example walks from intake to returned by each channel and method it offers."""
        walk = happy(kernel_for(code), channel, delivery)
        dossier = walk.current
        assert dossier.state == "returned"
        assert dossier.channel is channel
        assert dossier.delivery is delivery
        assert dossier.fees_settled
        assert dossier.waits == ()
        assert dossier.received_at is not None
        assert dossier.resolved_at is not None
        assert walk.kernel.available(dossier, CITIZEN, walk.now) == []

    @pytest.mark.parametrize("code", [p.values[0] for p in LEVELS])
    def test_national_status_after_each_step(self, code: str) -> None:
        """Each step reports the national status of the state it leads to."""
        kernel = kernel_for(code)
        channel = Channel.ONLINE if kernel.procedure.level >= Level.ONLINE_SUBMISSION else None
        delivery = min(kernel.procedure.capabilities.return_methods, key=lambda m: m.value)
        walk = happy(kernel, channel or Channel.IN_PERSON, delivery)
        codes = [
            (event.trigger, d.status.code)
            for event, d in zip(walk.events, walk.decisions, strict=True)
        ]
        expected_first = [("submit", 1)] if channel else []
        assert codes[: len(expected_first)] == expected_first
        assert ("receive", 2) in codes
        assert ("start", 4) in codes
        assert ("resolve", 9) in codes
        assert codes[-1] == ("return_result", 10)
        if ("request_payment", 6) in codes:
            index = codes.index(("request_payment", 6))
            assert codes[index + 1] == ("confirm_payment", 9)

    def test_level_1_walk(self) -> None:
        """Level 1: the fee at the counter with intake, the result collected in person."""
        walk = Walk(kernel_for("2.000815"))
        officer = staff(walk.kernel, "receiving_officer")
        walk.do("receive", officer, intake_payload(walk.kernel, None, fees_collected=True))
        assert walk.current.fees[0].paid == Money(2_000)
        assert walk.last.event.data["payments"] == [
            {"kind": "fee", "amount": 2_000, "method": "counter"}
        ]
        # Same day with the 15:00 cut-off: received at 08:10, due at the close of that day.
        assert walk.current.due_at == local(3, 17).astimezone(dt.UTC)
        process(walk)
        resolve(walk)
        walk.do("return_result", officer, {"receiver": RECEIVER}, at=local(4, 9))
        assert [e.trigger for e in walk.events] == [
            "receive",
            "start",
            "resolve",
            "return_result",
        ]
        assert walk.visits() == 2

    def test_cutoff_moves_same_day_to_next_day(self) -> None:
        """A same-day procedure received after its 15:00 cut-off is due the next working day."""
        walk = Walk(kernel_for("1.001193"), start=local(7, 15, 20))
        intake(walk, Channel.ONLINE, DeliveryMethod.ELECTRONIC)
        # Received Friday 7 March after 15:00: due at the close of Monday 10 March.
        assert walk.current.due_at == local(10, 17).astimezone(dt.UTC)

    def test_level_2_postal_intake(self) -> None:
        """Level 2: a dossier arriving by post is no visit; collecting the result is one."""
        walk = happy(kernel_for("2.000575"), Channel.POSTAL, DeliveryMethod.IN_PERSON)
        assert walk.events[0].data["channel"] == "postal"
        assert not walk.events[0].visit
        assert walk.visits() == 1

    def test_level_3_pays_when_collecting(self) -> None:
        """Level 3: the counter fee and the collection make one visit on the same day."""
        walk = happy(kernel_for("1.009994"), Channel.ONLINE, DeliveryMethod.IN_PERSON)
        triggers = [e.trigger for e in walk.events if e.visit]
        assert triggers == ["confirm_payment", "return_result"]
        assert walk.visits() == 1

    @pytest.mark.parametrize(
        ("delivery", "visits"),
        [
            (DeliveryMethod.ELECTRONIC, 0),
            (DeliveryMethod.POSTAL, 0),
            (DeliveryMethod.IN_PERSON, 1),
        ],
    )
    def test_level_4_visits_follow_the_return(self, delivery: DeliveryMethod, visits: int) -> None:
        """Level 4: only an in-person return brings the applicant in."""
        walk = happy(kernel_for("2.000488"), Channel.ONLINE, delivery)
        assert walk.visits() == visits

    def test_in_person_intake_is_a_visit(self) -> None:
        """An in-person intake at level 4 is a visit, even when the return is electronic."""
        walk = happy(kernel_for("2.000488"), Channel.IN_PERSON, DeliveryMethod.ELECTRONIC)
        assert [e.trigger for e in walk.events if e.visit] == ["receive"]
        assert walk.visits() == 1

    def test_steps_are_walked_in_order(self) -> None:
        """Appraisal, site inspection and approval are walked in order, each with a deadline."""
        walk = received("1.009994")
        process(walk)
        moves = [(e.data["from_step"], e.data["to_step"]) for e in walk.events[-4:]]
        assert moves == [
            ("processing", "appraisal"),
            ("appraisal", "site_inspection"),
            ("site_inspection", "approval"),
            ("approval", "processing"),
        ]
        assert walk.current.step_due is None
        assert all(e.data["giver"] for e in walk.events[-4:])
        assert {e.data.get("timeliness") for e in walk.events[-3:]} == {"early"}

    def test_consultation_leg(self) -> None:
        """A consultation opens a leg with its own deadline and notifies the agency addressed."""
        walk = processing("2.000488")
        walk.do("consult", staff(walk.kernel, "specialist"))
        assert walk.state == "police_check"
        assert walk.current.step_due == due_at(
            walk.kernel.calendar, walk.now, walk.kernel.procedure.steps[0].duration
        )
        assert walk.effects(EffectKind.NOTIFY) == [
            {"event": "consultation", "to": "external_agency", "agency": "CA-TINH.01"}
        ]
        police = staff(walk.kernel, "external_agency", agency="CA-TINH.01")
        walk.do("answer_consultation", police, {"answer": "không có án tích"})
        assert walk.state == "processing"
        assert walk.current.steps_done

    def test_consecutive_consultations_notify_each_agency(self) -> None:
        """A leg opened by the answer of the leg before it still notifies its agency."""
        walk = processing(Kernel(TWO_LEGS))
        walk.do("consult", staff(walk.kernel, "specialist"))
        police = staff(walk.kernel, "external_agency", agency="CA-TINH.01")
        walk.do("answer_consultation", police, {"answer": "ok"})
        assert walk.state == "court_check"
        assert walk.effects(EffectKind.NOTIFY) == [
            {"event": "consultation", "to": "external_agency", "agency": "TAND-TINH.01"}
        ]
        court = staff(walk.kernel, "external_agency", agency="TAND-TINH.01")
        walk.refuse("answer_consultation", police, {"answer": "ok"}, error=PermissionDeniedError)
        walk.do("answer_consultation", court, {"answer": "ok"})
        assert walk.state == "processing"

    def test_hand_over_without_steps(self) -> None:
        """Without agency steps a hand-over is logged and the dossier stays in processing."""
        walk = processing("1.000894")
        walk.do("hand_over", staff(walk.kernel, "specialist"), {"to": "leader-1"})
        assert walk.state == "processing"
        data = walk.last.event.data
        assert (data["giver"], data["receiver"], data["to_step"]) == (
            "specialist-1",
            "leader-1",
            "processing",
        )

    def test_assign_and_reassign(self) -> None:
        """A department head assigns; an admin reassigns only with a written reason."""
        walk = processing("2.000488")
        walk.do("assign", staff(walk.kernel, "department_head"), {"specialist": "s-2"})
        assert walk.current.assignee == "s-2"
        admin = staff(walk.kernel, "admin")
        refused = walk.refuse("reassign", admin, {"specialist": "s-3"})
        assert refused.reasons == ("reason_missing",)
        walk.do("reassign", admin, {"specialist": "s-3", "reason": "nghỉ ốm"})
        assert walk.current.assignee == "s-3"
        assert walk.last.event.data["reason"] == "nghỉ ốm"

    def test_issue_result(self) -> None:
        """A clerk numbers the result while it waits to be returned."""
        walk = ready("2.000488")
        walk.do("issue_result", staff(walk.kernel, "clerk"), {"number": "123/STP"})
        assert walk.current.result_number == "123/STP"
        assert walk.state == "result_ready"

    def test_resolve_measures_on_time(self) -> None:
        """Resolving records whether the due date was kept and stops the due-date timers."""
        walk = ready("2.000488")
        assert walk.last.event.data["on_time"] is True
        assert walk.effects(EffectKind.CANCEL_TIMERS) == [
            {"names": ["due_reminder", "due_escalation"]}
        ]

    def test_receive_sets_due_date_and_timers(self) -> None:
        """Reception computes the due date and sets a reminder and an escalation around it."""
        walk = received("2.000488")
        due = local(17, 17).astimezone(dt.UTC)
        assert walk.current.due_at == due
        timers = walk.effects(EffectKind.SET_TIMER)
        assert [t["name"] for t in timers] == ["due_reminder", "due_escalation"]
        assert timers[1]["at"] == due.isoformat()
        assert walk.last.event.data["due_change"]["new"] == due.isoformat()

    def test_a_reminder_already_past_is_due_at_reception(self) -> None:
        """A same-day dossier's one-working-day reminder would fall before it was received:
        its timer is set for the reception itself (the next tick sends it)."""
        walk = received("1.001193")
        now = walk.last.event.at
        timers = {
            t["name"]: dt.datetime.fromisoformat(t["at"])
            for t in walk.effects(EffectKind.SET_TIMER)
        }
        assert timers["due_reminder"] == now
        assert timers["due_escalation"] == walk.current.due_at > now


class TestSupplements:
    def test_at_reception_starts_no_clock(self) -> None:
        """Written guidance at reception, once; the clock starts only at reception."""
        walk = Walk(kernel_for("2.000488"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, DeliveryMethod.ELECTRONIC))
        walk.do("confirm_payment", SYSTEM, online_payment(walk.current.fees[0]))
        officer = staff(walk.kernel, "receiving_officer")
        walk.do("request_supplement", officer, {"reason": "thiếu bản chụp"}, at=local(3, 9))
        assert walk.last.status is NationalStatus.WAITING
        assert walk.current.guidance_given
        assert walk.current.due_at is None
        assert walk.last.event.data["stage"] == "reception"
        assert walk.effects(EffectKind.ISSUE_DOCUMENT) == [{"form": "02"}]
        walk.do("supplement", CITIZEN, {"documents": ["identity_document"]}, at=local(5, 10))
        walk.do("accept_supplement", officer, at=local(6, 9))
        assert walk.state == "submitted"
        assert walk.current.due_at is None
        assert walk.current.waits == ()
        walk.do("receive", officer, at=local(7, 9))
        assert walk.current.due_at == local(21, 17).astimezone(dt.UTC)

    @pytest.mark.parametrize(
        ("policy", "due"),
        [
            # Restart: ten working days again from the acceptance on Monday 10 March.
            (SupplementPolicy.RESTART, local(24, 17)),
            # Pause: three working days waited (Wednesday 09:00 to Monday 09:00).
            (SupplementPolicy.PAUSE, local(20, 17)),
            (SupplementPolicy.CONTINUE, local(17, 17)),
        ],
    )
    def test_in_processing_follows_the_clock_policy(
        self, policy: SupplementPolicy, due: dt.datetime
    ) -> None:
        """A supplement in processing moves the due date as the rule pack's policy says."""
        kernel = Kernel(CATALOG.get("2.000488"), rule_packs=packs(supplement=policy))
        walk = processing(kernel)
        assert walk.current.due_at == local(17, 17).astimezone(dt.UTC)
        specialist = staff(kernel, "specialist")
        walk.do("request_supplement", specialist, {"reason": "bổ sung"}, at=local(5, 9))
        assert walk.current.waits[-1].resume == "processing"
        expiry = walk.effects(EffectKind.SET_TIMER)
        assert expiry == [
            {
                "name": "supplement_expiry",
                "at": walk.current.supplement_due.isoformat(),  # type: ignore[union-attr]
                "trigger": "expire_supplement",
            }
        ]
        walk.do("supplement", CITIZEN, {"documents": ["identity_document"]}, at=local(7, 10))
        assert walk.state == "awaiting_supplement"
        walk.do("accept_supplement", staff(kernel, "receiving_officer"), at=local(10, 9))
        assert walk.state == "processing"
        assert walk.current.due_at == due.astimezone(dt.UTC)
        assert walk.last.event.data["due_change"]["policy"] == f"supplement.{policy.value}"

    def test_supplement_returns_to_the_interrupted_step(self) -> None:
        """A supplement requested during an agency step returns to that step."""
        walk = processing("1.009994")
        walk.do("hand_over", staff(walk.kernel, "specialist"))
        leader = staff(walk.kernel, "leader")
        walk.do("approve_document", leader, {"document": "supplement_request"})
        assert walk.current.approvals == {DocumentKind.SUPPLEMENT_REQUEST}
        walk.do("request_supplement", staff(walk.kernel, "specialist"), {"reason": "bản vẽ"})
        assert walk.current.approvals == frozenset()
        walk.do("supplement", CITIZEN, {"documents": ["drawings"]})
        walk.do("accept_supplement", staff(walk.kernel, "receiving_officer"))
        assert walk.state == "appraisal"

    def test_counter_supplement_at_level_1(self) -> None:
        """At levels 1-2 the receiving officer records a supplement brought to the counter."""
        walk = processing("2.000815")
        walk.do("request_supplement", staff(walk.kernel, "specialist"), {"reason": "bản chính"})
        officer = staff(walk.kernel, "receiving_officer")
        walk.do("supplement", officer, {"documents": ["original"]})
        assert walk.last.event.visit
        walk.do("accept_supplement", officer)
        assert walk.state == "processing"

    @pytest.mark.parametrize(
        ("expiry", "state", "status"),
        [
            (SupplementExpiry.STOP, "stopped", NationalStatus.UNRESOLVED),
            (SupplementExpiry.WITHDRAW, "withdrawn", NationalStatus.CANCELLED),
        ],
    )
    def test_expiry_follows_the_policy(
        self, expiry: SupplementExpiry, state: str, status: NationalStatus
    ) -> None:
        """An unanswered supplement request ends the dossier as the rule pack says."""
        kernel = Kernel(CATALOG.get("2.000488"), rule_packs=packs(supplement_expiry=expiry))
        walk = processing(kernel)
        walk.do("request_supplement", staff(kernel, "specialist"), {"reason": "bổ sung"})
        deadline = walk.current.supplement_due
        assert deadline is not None
        refused = walk.refuse("expire_supplement", SYSTEM, at=deadline - dt.timedelta(minutes=1))
        assert refused.reasons == ("not_yet_due",)
        walk.do("expire_supplement", SYSTEM, at=deadline + dt.timedelta(minutes=1))
        assert (walk.state, walk.last.status) == (state, status)
        assert walk.current.waits == ()
        assert walk.effects(EffectKind.REFUND) == [{"kind": "fee", "amount": 200_000}]


class TestPayments:
    def test_online_payment_in_processing(self) -> None:
        """Level 4: a payment request issues a link with an expiry; paying returns and pauses."""
        kernel = Kernel(PAY_LATER)
        walk = Walk(kernel)
        intake(walk, Channel.ONLINE, DeliveryMethod.ELECTRONIC)
        assert walk.current.fees[0].outstanding == Money(200_000)
        walk.do("start", staff(kernel, "department_head"), {"specialist": "s-1"})
        due = walk.current.due_at
        assert due == local(17, 17).astimezone(dt.UTC)
        walk.do("request_payment", staff(kernel, "specialist"), at=local(5, 9))
        assert walk.last.status is NationalStatus.PAYING
        assert walk.effects(EffectKind.REQUEST_PAYMENT) == [
            {"kind": "fee", "amount": 200_000, "method": "online"}
        ]
        timer = walk.effects(EffectKind.SET_TIMER)[0]
        assert timer["name"] == "payment_expiry"
        assert timer["at"] == (local(5, 10, 30)).astimezone(dt.UTC).isoformat()
        walk.do("expire_payment", SYSTEM, at=local(5, 10, 31))
        assert walk.state == "awaiting_payment"
        assert walk.effects(EffectKind.CANCEL_PAYMENT) == [{"kind": "fee", "reason": "expired"}]
        walk.do("confirm_payment", SYSTEM, online_payment(walk.current.fees[0]), at=local(6, 9))
        assert walk.state == "processing"
        assert not walk.last.event.visit
        # The payment wait pauses the clock: one working day waited, one day later.
        assert walk.current.due_at == local(18, 17).astimezone(dt.UTC)
        assert walk.effects(EffectKind.CANCEL_TIMERS)[0] == {"names": ["payment_expiry"]}

    def test_payment_wait_continue_keeps_due_date(self) -> None:
        """With the `continue` payment-wait policy the due date stays."""
        kernel = Kernel(PAY_LATER, rule_packs=packs(payment_wait=PaymentWaitPolicy.CONTINUE))
        walk = processing(kernel)
        walk.do("request_payment", staff(kernel, "cashier"), at=local(5, 9))
        walk.do("confirm_payment", SYSTEM, online_payment(walk.current.fees[0]), at=local(6, 9))
        assert walk.current.due_at == local(17, 17).astimezone(dt.UTC)

    def test_partial_payment_keeps_waiting(self) -> None:
        """With two fee kinds, paying one keeps the dossier waiting for the other."""
        kernel = Kernel(TWO_FEES)
        walk = processing(kernel)
        walk.do("request_payment", staff(kernel, "specialist"))
        assert len(walk.effects(EffectKind.REQUEST_PAYMENT)) == 2
        charge, fee = walk.current.fees
        assert (charge.kind, fee.kind) == (FeeKind.CHARGE, FeeKind.FEE)
        walk.do("confirm_payment", SYSTEM, online_payment(charge))
        assert walk.state == "awaiting_payment"
        walk.do("confirm_payment", SYSTEM, online_payment(fee))
        assert walk.state == "processing"
        assert walk.current.waits == ()

    def test_counter_payment_at_level_4(self) -> None:
        """A level 4 partial procedure also takes counter payments, recorded by a cashier."""
        kernel = Kernel(PAY_LATER)
        walk = ready(kernel)
        cashier = staff(kernel, "cashier")
        walk.do("confirm_payment", cashier, counter_payment(walk.current.fees[0]))
        assert walk.state == "result_ready"
        assert walk.last.event.visit
        assert walk.current.fees_settled

    def test_prepaid_online_before_reception(self) -> None:
        """A fee due before reception is requested at submission and confirmed by the gateway."""
        walk = Walk(kernel_for("1.002804"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, DeliveryMethod.POSTAL))
        assert walk.effects(EffectKind.REQUEST_PAYMENT) == [
            {"kind": "charge", "amount": 115_000, "method": "online"}
        ]
        walk.do("confirm_payment", SYSTEM, online_payment(walk.current.fees[0]))
        assert walk.state == "submitted"
        assert walk.last.event.data["reference"] == "TX-1"
        walk.do("receive", staff(walk.kernel, "receiving_officer"))
        assert walk.state == "received"

    def test_counter_fee_differs_from_online_fee(self) -> None:
        """The amount due follows the channel: 135,000 at the counter, 115,000 online."""
        walk = Walk(kernel_for("1.002804"))
        payload = intake_payload(walk.kernel, DeliveryMethod.IN_PERSON, fees_collected=True)
        walk.do("receive", staff(walk.kernel, "receiving_officer"), payload)
        assert walk.current.fees[0].due == Money(135_000)
        assert walk.current.fees[0].paid == Money(135_000)

    def test_reduced_case_owes_less(self) -> None:
        """The reduced case of the judicial record owes half the fee."""
        walk = Walk(kernel_for("2.000488"))
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL, case="reduced")
        payload["documents"] = ["request_form", "reduction_proof"]
        walk.do("submit", CITIZEN, payload)
        assert walk.current.case == "reduced"
        assert walk.current.fees[0].due == Money(100_000)


class TestWithdrawalStopRefuse:
    def test_withdrawal_approved(self) -> None:
        """An approved withdrawal ends the dossier and refunds what was paid."""
        walk = processing("2.000488")
        walk.do("request_withdrawal", CITIZEN, {"reason": "không cần nữa"})
        assert walk.last.status is NationalStatus.CANCELLED
        assert walk.current.waits[-1].resume == "processing"
        walk.do("approve_withdrawal", staff(walk.kernel, "leader"))
        assert (walk.state, walk.last.status) == ("withdrawn", NationalStatus.CANCELLED)
        assert walk.effects(EffectKind.REFUND) == [{"kind": "fee", "amount": 200_000}]
        assert walk.current.fees[0].refunded == Money(200_000)
        assert walk.effects(EffectKind.CANCEL_TIMERS) == [{"names": ["*"]}]
        assert walk.current.waits == ()

    def test_withdrawal_rejected_returns(self) -> None:
        """A rejected withdrawal returns to the state it interrupted."""
        walk = processing("2.000488")
        walk.do("request_withdrawal", CITIZEN)
        walk.do("reject_withdrawal", staff(walk.kernel, "leader"), {"reason": "đã xử lý"})
        assert (walk.state, walk.last.status) == ("processing", NationalStatus.PROCESSING)
        assert walk.current.waits == ()

    def test_withdrawal_inside_a_supplement_wait(self) -> None:
        """Waits nest: a rejected withdrawal goes back to waiting for the supplement."""
        walk = processing("2.000488")
        walk.do("request_supplement", staff(walk.kernel, "specialist"), {"reason": "bổ sung"})
        walk.do("request_withdrawal", CITIZEN)
        assert [w.state for w in walk.current.waits] == [
            "awaiting_supplement",
            "withdrawal_requested",
        ]
        walk.do("reject_withdrawal", staff(walk.kernel, "leader"), {"reason": "tiếp tục"})
        assert walk.state == "awaiting_supplement"
        walk.do("supplement", CITIZEN, {"documents": ["identity_document"]})
        walk.do("accept_supplement", staff(walk.kernel, "receiving_officer"))
        assert walk.state == "processing"

    def test_representative_withdraws_for_the_owner(self) -> None:
        """A representative acting for the owner may withdraw the owner's dossier."""
        walk = processing("2.000488")
        walk.do("request_withdrawal", Actor.representative("rep-1", acting_for="acc-1"))
        assert walk.state == "withdrawal_requested"
        assert walk.last.event.acting_for == "acc-1"

    def test_no_withdrawal_once_the_result_is_ready(self) -> None:
        """Waiting for a fee after the result is ready is too late to withdraw."""
        walk = ready(Kernel(PAY_LATER))
        walk.do("request_payment", staff(walk.kernel, "cashier"))
        refused = walk.refuse("request_withdrawal", CITIZEN)
        assert refused.reasons == ("invalid_in_state",)

    def test_stop(self) -> None:
        """A leader stops processing with a written reason; fees are refunded, timers cancelled."""
        walk = processing("2.000488")
        walk.do("stop", staff(walk.kernel, "leader"), {"reason": "không đủ điều kiện"})
        assert (walk.state, walk.last.status) == ("stopped", NationalStatus.UNRESOLVED)
        assert walk.effects(EffectKind.REFUND) == [{"kind": "fee", "amount": 200_000}]
        assert walk.effects(EffectKind.CANCEL_TIMERS) == [{"names": ["*"]}]

    def test_stop_cancels_unpaid_requests(self) -> None:
        """Stopping a dossier waiting for payment cancels the unpaid request."""
        walk = processing(Kernel(PAY_LATER))
        walk.do("request_payment", staff(walk.kernel, "specialist"))
        walk.do("stop", staff(walk.kernel, "leader"), {"reason": "quá hạn nộp phí"})
        assert walk.effects(EffectKind.CANCEL_PAYMENT) == [{"kind": "fee"}]
        assert walk.effects(EffectKind.REFUND) == []

    def test_refuse_at_reception(self) -> None:
        """Refusal at reception issues Form 03 and refunds the prepaid fee."""
        walk = Walk(kernel_for("2.000488"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, DeliveryMethod.ELECTRONIC))
        walk.do("confirm_payment", SYSTEM, online_payment(walk.current.fees[0]))
        walk.do("refuse", staff(walk.kernel, "receiving_officer"), {"reason": "sai thẩm quyền"})
        assert (walk.state, walk.last.status) == ("refused", NationalStatus.DENIED)
        assert walk.effects(EffectKind.ISSUE_DOCUMENT) == [{"form": "03"}]
        assert walk.effects(EffectKind.REFUND) == [{"kind": "fee", "amount": 200_000}]

    def test_withdrawal_before_reception(self) -> None:
        """An online dossier may be withdrawn before it is received."""
        walk = Walk(kernel_for("1.000894"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, DeliveryMethod.IN_PERSON))
        walk.do("request_withdrawal", CITIZEN)
        walk.do("approve_withdrawal", staff(walk.kernel, "leader"))
        assert walk.state == "withdrawn"

    @pytest.mark.parametrize("final", ["refused", "withdrawn", "stopped", "returned"])
    def test_final_states_take_no_command(self, final: str) -> None:
        """No trigger leaves a final state, for anyone."""
        kernel = kernel_for("2.000488")
        walk = processing(kernel)
        leader = staff(kernel, "leader")
        if final == "stopped":
            walk.do("stop", leader, {"reason": "r"})
        elif final == "withdrawn":
            walk.do("request_withdrawal", CITIZEN)
            walk.do("approve_withdrawal", leader)
        elif final == "returned":
            walk = happy(kernel, Channel.ONLINE, DeliveryMethod.ELECTRONIC)
        else:
            walk = Walk(kernel)
            walk.do("submit", CITIZEN, intake_payload(kernel, DeliveryMethod.ELECTRONIC))
            walk.do("refuse", staff(kernel, "receiving_officer"), {"reason": "r"})
        assert walk.state == final
        for role in ("leader", "admin", "receiving_officer", "department_head"):
            assert kernel.available(walk.current, staff(kernel, role), walk.now) == []
            assert kernel.allowed_now(walk.current, staff(kernel, role)) == ()
        refused = walk.refuse("reschedule", leader, {"reason": "r"})
        assert refused.reasons == ("invalid_in_state",)
        assert refused.allowed == ()


class TestReschedule:
    def test_reschedule_moves_the_due_date(self) -> None:
        """A leader reschedules once, before the due date, issuing the apology (Form 04)."""
        walk = processing("2.000488")
        leader = staff(walk.kernel, "leader")
        new_due = local(24, 17)
        payload = {"reason": "chờ xác minh", "new_due": new_due.isoformat()}
        walk.do("reschedule", leader, payload, at=local(10, 9))
        assert walk.current.due_at == new_due.astimezone(dt.UTC)
        assert walk.current.reschedules == 1
        assert walk.effects(EffectKind.ISSUE_DOCUMENT) == [{"form": "04"}]
        assert walk.last.event.data["due_change"]["policy"] == "reschedule"
        assert walk.effects(EffectKind.NOTIFY)[0]["event"] == "rescheduled"
        again = {"reason": "lần nữa", "new_due": local(31, 17)}
        refused = walk.refuse("reschedule", leader, again, at=local(11, 9))
        assert refused.reasons == ("reschedule_limit_reached",)

    @pytest.mark.parametrize("when", [local(17, 10), local(18, 9)])
    def test_not_before_due(self, when: dt.datetime) -> None:
        """Too close to (or after) the due date, a reschedule is refused."""
        walk = processing("2.000488")
        payload = {"reason": "trễ", "new_due": local(24, 17)}
        refused = walk.refuse("reschedule", staff(walk.kernel, "leader"), payload, at=when)
        assert refused.reasons == ("not_before_due",)

    def test_apology_needs_sign_off(self) -> None:
        """Where the apology needs sign-off, a reschedule waits for approve_document."""
        walk = processing(Kernel(APOLOGY_SIGNED))
        leader = staff(walk.kernel, "leader")
        payload = {"reason": "chờ", "new_due": local(24, 17)}
        refused = walk.refuse("reschedule", leader, payload, at=local(10, 9))
        assert refused.reasons == ("document_not_approved",)
        walk.do("approve_document", leader, {"document": "apology"}, at=local(10, 9))
        walk.do("reschedule", leader, payload, at=local(10, 10))
        assert walk.current.approvals == frozenset()

    def test_correct_due_date(self) -> None:
        """An admin corrects a due date with a reason and a legal basis; history stays."""
        walk = processing("2.000488")
        admin = staff(walk.kernel, "admin")
        payload = {"reason": "nhập sai", "legal_basis": "QĐ 01/2025", "due_at": local(19, 17)}
        walk.do("correct_due_date", admin, payload)
        assert walk.current.due_at == local(19, 17).astimezone(dt.UTC)
        change = walk.last.event.data["due_change"]
        assert change["old"] == local(17, 17).astimezone(dt.UTC).isoformat()
        assert change["policy"] == "correction"
        assert walk.last.event.data["legal_basis"] == "QĐ 01/2025"


# -- refusals ---------------------------------------------------------------------------------


class TestRefusalsByLevel:
    @pytest.mark.parametrize("code", LEVELS)
    def test_authorization(self, code: str) -> None:
        """Deny by default: wrong role, wrong agency and strangers' dossiers, at every level."""
        walk = received(code)
        kernel = walk.kernel
        refused = walk.refuse("start", CITIZEN, {"specialist": "s"}, error=PermissionDeniedError)
        assert refused.reasons == ("role_missing",)
        head = staff(kernel, "department_head", agency="OTHER.01")
        refused = walk.refuse("start", head, {"specialist": "s"}, error=PermissionDeniedError)
        assert refused.reasons == ("wrong_agency",)
        refused = walk.refuse("request_withdrawal", OTHER_CITIZEN, error=PermissionDeniedError)
        assert refused.reasons == ("not_owner",)

    @pytest.mark.parametrize("code", LEVELS)
    def test_invalid_in_state(self, code: str) -> None:
        """Resolving a dossier not yet in processing is refused with what the leader may do."""
        walk = received(code)
        refused = walk.refuse("resolve", staff(walk.kernel, "leader"), {"result": "r"})
        assert refused.reasons == ("invalid_in_state",)
        assert "approve_document" in refused.allowed
        assert "resolve" not in refused.allowed

    @pytest.mark.parametrize("code", LEVELS)
    def test_processing_guards(self, code: str) -> None:
        """A specialist must be named, a stop needs a reason, a result must be attached."""
        walk = received(code)
        kernel = walk.kernel
        head, leader = staff(kernel, "department_head"), staff(kernel, "leader")
        assert walk.refuse("start", head, {}).reasons == ("specialist_missing",)
        process(walk)
        assert walk.refuse("stop", leader, {}).reasons == ("reason_missing",)
        if DocumentKind.RESULT in kernel.procedure.sign_off:
            walk.do("approve_document", leader, {"document": "result"})
        assert walk.refuse("resolve", leader, {"signed": True}).reasons == ("result_missing",)

    @pytest.mark.parametrize("code", LEVELS)
    def test_never_online_below_level_3(self, code: str) -> None:
        """Levels 1-2 take no online submission; online dossiers never arrive by `receive`."""
        kernel = kernel_for(code)
        walk = Walk(kernel)
        payload = intake_payload(kernel, None, channel="online", fees_collected=True)
        officer = staff(kernel, "receiving_officer")
        if kernel.procedure.level < Level.ONLINE_SUBMISSION:
            refused = walk.refuse("submit", CITIZEN, payload)
            assert refused.reasons == ("unknown_trigger",)
        if Channel.IN_PERSON in kernel.procedure.capabilities.channels:
            refused = walk.refuse("receive", officer, payload)
            assert "channel_not_offered" in refused.reasons


class TestRefusals:
    def test_invalid_in_state_lists_allowed(self) -> None:
        """A trigger not possible in the state is refused with the actor's possible triggers."""
        walk = received("2.000488")
        refused = walk.refuse("resolve", staff(walk.kernel, "leader"), {"result": "x"})
        assert refused.reasons == ("invalid_in_state",)
        assert refused.allowed == ("reschedule", "approve_document")
        assert not isinstance(refused, PermissionDeniedError)

    def test_invalid_in_state_before_creation(self) -> None:
        """Only a creating trigger may start a dossier, whatever the payload carries."""
        kernel = kernel_for("2.000488")
        walk = Walk(kernel)
        refused = walk.refuse("resolve", staff(kernel, "leader"), {})
        assert refused.reasons == ("invalid_in_state",)
        assert refused.allowed == ()
        refused = walk.refuse("start", staff(kernel, "receiving_officer"), {})
        assert refused.allowed == ("receive",)

    @pytest.mark.parametrize(("code", "trigger"), [("2.000815", "submit"), ("2.000488", "fly")])
    def test_unknown_trigger(self, code: str, trigger: str) -> None:
        """A trigger the lifecycle lacks is unknown (level 1 has no `submit`)."""
        walk = Walk(kernel_for(code))
        refused = walk.refuse(trigger, CITIZEN, intake_payload(walk.kernel, None))
        assert refused.reasons == ("unknown_trigger",)

    def test_role_missing(self) -> None:
        """An actor without the trigger's role is denied, before the payload is looked at."""
        walk = Walk(kernel_for("2.000488"))
        refused = walk.refuse("receive", CITIZEN, {}, error=PermissionDeniedError)
        assert refused.reasons == ("role_missing",)
        assert refused.allowed == ("submit",)
        walk = processing("2.000488")
        refused = walk.refuse("resolve", staff(walk.kernel, "specialist"), {"result": "x"})
        assert isinstance(refused, PermissionDeniedError)
        assert refused.reasons == ("role_missing",)

    def test_return_by_the_wrong_carrier(self) -> None:
        """A postal return is not the receiving officer's, even though in-person ones are."""
        walk = ready("2.000488")
        assert walk.current.delivery is DeliveryMethod.ELECTRONIC
        officer = staff(walk.kernel, "receiving_officer")
        refused = walk.refuse(
            "return_result", officer, {"receiver": RECEIVER}, error=PermissionDeniedError
        )
        assert refused.reasons == ("role_missing",)
        refused = walk.refuse("return_result", POSTAL, {"receiver": RECEIVER})
        assert refused.reasons == ("wrong_agency",)

    def test_not_owner(self) -> None:
        """An applicant may act only on their own (or represented) dossiers."""
        walk = processing("2.000488")
        refused = walk.refuse("request_withdrawal", OTHER_CITIZEN, error=PermissionDeniedError)
        assert refused.reasons == ("not_owner",)
        other = Actor.representative("rep-9", acting_for="acc-9")
        assert walk.refuse("request_withdrawal", other).reasons == ("not_owner",)

    def test_wrong_agency(self) -> None:
        """Staff act only on dossiers of their agency; external agencies on their own leg."""
        walk = Walk(kernel_for("2.000488"))
        stranger = staff(walk.kernel, "receiving_officer", agency="STP.99")
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL, fees_collected=True)
        refused = walk.refuse("receive", stranger, payload, error=PermissionDeniedError)
        assert refused.reasons == ("wrong_agency",)
        walk = processing("2.000488")
        walk.do("consult", staff(walk.kernel, "specialist"))
        other = staff(walk.kernel, "external_agency", agency="CA-TINH.02")
        refused = walk.refuse("answer_consultation", other, {"answer": "x"})
        assert refused.reasons == ("wrong_agency",)

    @pytest.mark.parametrize(
        ("code", "channel"),
        [("2.000815", "postal"), ("2.000575", "online"), ("2.000488", "fax")],
    )
    def test_channel_not_offered(self, code: str, channel: str) -> None:
        """A counter intake through a channel the procedure lacks is refused."""
        walk = Walk(kernel_for(code))
        payload = intake_payload(
            walk.kernel, DeliveryMethod.IN_PERSON, channel=channel, fees_collected=True
        )
        refused = walk.refuse("receive", staff(walk.kernel, "receiving_officer"), payload)
        expected = "payload_invalid" if channel == "fax" else "channel_not_offered"
        assert refused.reasons == (expected,)

    def test_applicant_type_not_accepted(self) -> None:
        """A business may not apply for a citizens-only procedure."""
        walk = Walk(kernel_for("2.000488"))
        business = Applicant(
            ApplicantType.BUSINESS, "0101234567", "Công ty A", "0912345678", "a@b.vn"
        )
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL, applicant=business)
        refused = walk.refuse("submit", Actor.business("biz-1"), payload)
        assert refused.reasons == ("applicant_type_not_accepted",)

    @pytest.mark.parametrize(
        ("when", "applicant", "reasons"),
        [
            # online-2022: a mobile number and an email; VNeID is not asked for.
            (local(30, 23, 30, month=6, year=2024), {"vneid_verified": False}, ()),
            (
                local(30, 23, 30, month=6, year=2024),
                {"phone": None, "email": None, "vneid_verified": True},
                ("contact_missing",),
            ),
            # vneid-2024 from 1 July 2024, local time: VNeID instead of phone and email.
            (local(1, 0, 30, month=7, year=2024), {"vneid_verified": False}, ("vneid_required",)),
            (
                local(1, 0, 30, month=7, year=2024),
                {"phone": None, "email": None, "vneid_verified": True},
                (),
            ),
        ],
    )
    def test_contact_rule_of_the_pack_in_force(
        self, when: dt.datetime, applicant: dict[str, Any], reasons: tuple[str, ...]
    ) -> None:
        """The contact rule is the one of the rule pack in force at the first command."""
        walk = Walk(kernel_for("2.000488"), start=when)
        person = attrs.evolve(APPLICANT, **applicant)
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL, applicant=person)
        if reasons:
            assert walk.refuse("submit", CITIZEN, payload, at=when).reasons == reasons
        else:
            walk.do("submit", CITIZEN, payload, at=when)
            pack = "online-2022" if when.month == 6 else "vneid-2024"
            assert walk.current.rule_pack == pack

    def test_businesses_keep_phone_and_email(self) -> None:
        """Under vneid-2024 a business still needs a registered phone and email."""
        walk = Walk(Kernel(BUSINESSES))
        business = Applicant(ApplicantType.BUSINESS, "0101234567", "Công ty A")
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL, applicant=business)
        assert walk.refuse("submit", Actor.business("biz-1"), payload).reasons == (
            "contact_missing",
        )
        business = attrs.evolve(business, phone="0912345678", email="a@b.vn")
        walk.do("submit", Actor.business("biz-1"), payload | {"applicant": business})
        assert walk.current.owner == "biz-1"

    def test_dossier_stays_pinned_to_its_pack(self) -> None:
        """A dossier submitted under online-2022 keeps that pack after vneid-2024 starts."""
        walk = Walk(kernel_for("2.000488"), start=local(28, 9, month=6, year=2024))
        person = attrs.evolve(APPLICANT, vneid_verified=False)
        payload = intake_payload(walk.kernel, DeliveryMethod.ELECTRONIC, applicant=person)
        walk.do("submit", CITIZEN, payload)
        walk.do("confirm_payment", SYSTEM, online_payment(walk.current.fees[0]))
        walk.do(
            "receive", staff(walk.kernel, "receiving_officer"), at=local(2, 9, month=7, year=2024)
        )
        assert walk.current.rule_pack == "online-2022"

    def test_components_missing(self) -> None:
        """Every mandatory component must be in the dossier."""
        walk = Walk(kernel_for("2.000488"))
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL, documents=["request_form"])
        assert walk.refuse("submit", CITIZEN, payload).reasons == ("components_missing",)

    def test_form_invalid(self) -> None:
        """The form must match the procedure's fields."""
        walk = Walk(kernel_for("2.000488"))
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL, form={"copies": 0})
        refused = walk.refuse("submit", CITIZEN, payload)
        assert refused.reasons == ("form_invalid",)
        assert "purpose: is required" in str(refused)

    def test_delivery_not_offered(self) -> None:
        """A full-process procedure returns no result in person."""
        walk = Walk(kernel_for("1.001193"))
        payload = intake_payload(walk.kernel, DeliveryMethod.IN_PERSON)
        assert walk.refuse("submit", CITIZEN, payload).reasons == ("delivery_not_offered",)

    def test_delivery_missing(self) -> None:
        """With several return methods, the applicant must choose one."""
        walk = Walk(kernel_for("2.000488"))
        payload = intake_payload(walk.kernel, None)
        assert walk.refuse("submit", CITIZEN, payload).reasons == ("delivery_missing",)

    def test_single_method_needs_no_choice(self) -> None:
        """With one return method, it is chosen for the applicant."""
        walk = Walk(kernel_for("1.000894"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, None))
        assert walk.current.delivery is DeliveryMethod.IN_PERSON

    def test_receive_before_prepaid_fee(self) -> None:
        """An online dossier whose fee is due before reception cannot be received unpaid."""
        walk = Walk(kernel_for("2.000488"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, DeliveryMethod.POSTAL))
        refused = walk.refuse("receive", staff(walk.kernel, "receiving_officer"))
        assert refused.reasons == ("fees_unpaid",)
        assert "receive" in refused.allowed

    def test_counter_receive_without_collecting(self) -> None:
        """A counter intake of a prepaid procedure must collect the fee."""
        walk = Walk(kernel_for("2.000815"))
        payload = intake_payload(walk.kernel, None)
        refused = walk.refuse("receive", staff(walk.kernel, "receiving_officer"), payload)
        assert refused.reasons == ("fees_unpaid",)

    def test_return_before_fees(self) -> None:
        """No result is returned while a fee is unpaid."""
        walk = ready("1.009994")
        officer = staff(walk.kernel, "receiving_officer")
        refused = walk.refuse("return_result", officer, {"receiver": RECEIVER})
        assert refused.reasons == ("fees_unpaid",)

    @pytest.mark.parametrize("amount", [199_999, 200_001, 200_000.0, "200000", None])
    def test_amount_mismatch(self, amount: object) -> None:
        """A confirmation must carry exactly the integer amount due."""
        walk = Walk(kernel_for("2.000488"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, DeliveryMethod.POSTAL))
        payload = {"kind": "fee", "amount": amount, "method": "online"}
        assert walk.refuse("confirm_payment", SYSTEM, payload).reasons == ("amount_mismatch",)

    def test_no_fee_due(self) -> None:
        """Nothing to request or confirm when no such fee is owed."""
        walk = processing("1.000894")
        refused = walk.refuse("request_payment", staff(walk.kernel, "specialist"))
        assert refused.reasons == ("no_fee_due",)
        walk = processing("2.000488")
        payload = {"kind": "charge", "amount": 1, "method": "online"}
        assert walk.refuse("confirm_payment", SYSTEM, payload).reasons == ("no_fee_due",)
        payload = {"kind": "fee", "amount": 200_000, "method": "online"}
        assert walk.refuse("confirm_payment", SYSTEM, payload).reasons == ("no_fee_due",)

    def test_online_payment_not_offered(self) -> None:
        """A level 3 procedure takes no online payment."""
        walk = Walk(kernel_for("1.009994"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, None))
        payload = {"kind": "charge", "amount": 75_000, "method": "online"}
        refused = walk.refuse("confirm_payment", SYSTEM, payload)
        assert refused.reasons == ("online_payment_not_offered",)

    def test_presence_not_allowed_for_counter_payment(self) -> None:
        """A full-process procedure takes no counter payment."""
        kernel = Kernel(FULL_WITH_FEE)
        assert kernel.procedure.online_class is OnlineClass.FULL
        walk = ready(kernel)
        payload = counter_payment(walk.current.fees[0])
        refused = walk.refuse("confirm_payment", staff(kernel, "cashier"), payload)
        assert refused.reasons == ("presence_not_allowed",)
        walk.do("confirm_payment", SYSTEM, online_payment(walk.current.fees[0]))
        walk.do("return_result", SYSTEM)
        assert walk.visits() == 0

    def test_presence_not_allowed_for_counter_supplement(self) -> None:
        """An online full-process dossier is supplemented online, not at the counter."""
        walk = processing("1.001193")
        walk.do("request_supplement", staff(walk.kernel, "specialist"), {"reason": "bổ sung"})
        officer = staff(walk.kernel, "receiving_officer")
        refused = walk.refuse("supplement", officer, {"documents": ["birth_notice"]})
        assert refused.reasons == ("presence_not_allowed",)
        walk.do("supplement", CITIZEN, {"documents": ["birth_notice"]})
        assert not walk.last.event.visit

    def test_online_payment_by_a_cashier(self) -> None:
        """Online payments are confirmed by the gateway, not by a cashier."""
        walk = processing(Kernel(PAY_LATER))
        payload = online_payment(walk.current.fees[0])
        refused = walk.refuse("confirm_payment", staff(walk.kernel, "cashier"), payload)
        assert isinstance(refused, PermissionDeniedError)
        assert refused.reasons == ("role_missing",)

    @pytest.mark.parametrize(
        ("setup", "trigger", "role"),
        [
            ("processing", "stop", "leader"),
            ("processing", "request_supplement", "specialist"),
            ("submitted", "refuse", "receiving_officer"),
            ("withdrawal", "reject_withdrawal", "leader"),
        ],
    )
    def test_reason_missing(self, setup: str, trigger: str, role: str) -> None:
        """Refusals, stops, rejections and supplement requests need a written reason."""
        kernel = kernel_for("2.000488")
        if setup == "submitted":
            walk = Walk(kernel)
            walk.do("submit", CITIZEN, intake_payload(kernel, DeliveryMethod.POSTAL))
        else:
            walk = processing(kernel)
            if setup == "withdrawal":
                walk.do("request_withdrawal", CITIZEN)
        for payload in ({}, {"reason": "   "}, {"reason": 7}):
            refused = walk.refuse(trigger, staff(kernel, role), payload)
            assert refused.reasons == ("reason_missing",)

    def test_guidance_already_given(self) -> None:
        """Written guidance at reception is given once."""
        walk = Walk(kernel_for("2.000488"))
        walk.do("submit", CITIZEN, intake_payload(walk.kernel, DeliveryMethod.POSTAL))
        officer = staff(walk.kernel, "receiving_officer")
        walk.do("request_supplement", officer, {"reason": "thiếu"})
        walk.do("supplement", CITIZEN, {"documents": ["identity_document"]})
        walk.do("accept_supplement", officer)
        refused = walk.refuse("request_supplement", officer, {"reason": "lại thiếu"})
        assert refused.reasons == ("guidance_already_given",)

    def test_supplement_missing(self) -> None:
        """A supplement is accepted only once the applicant has sent it."""
        walk = processing("2.000488")
        walk.do("request_supplement", staff(walk.kernel, "specialist"), {"reason": "thiếu"})
        officer = staff(walk.kernel, "receiving_officer")
        assert walk.refuse("accept_supplement", officer).reasons == ("supplement_missing",)
        refused = walk.refuse("supplement", CITIZEN, {"documents": []})
        assert refused.reasons == ("payload_invalid",)

    def test_no_expiry_after_the_applicant_answered(self) -> None:
        """A supplement sent in time is not expired while it waits for acceptance."""
        walk = processing("2.000488")
        walk.do("request_supplement", staff(walk.kernel, "specialist"), {"reason": "thiếu"})
        deadline = walk.current.supplement_due
        assert deadline is not None
        walk.do("supplement", CITIZEN, {"documents": ["identity_document"]})
        refused = walk.refuse("expire_supplement", SYSTEM, at=deadline + dt.timedelta(hours=1))
        assert refused.reasons == ("invalid_in_state",)

    def test_no_expiry_without_a_deadline(self) -> None:
        """Without a supplement deadline in the policy, nothing expires."""
        kernel = Kernel(
            CATALOG.get("2.000488"), rule_packs=packs(supplement_deadline=Duration.none())
        )
        walk = processing(kernel)
        walk.do("request_supplement", staff(kernel, "specialist"), {"reason": "thiếu"})
        assert walk.current.supplement_due is None
        assert walk.effects(EffectKind.SET_TIMER) == []
        refused = walk.refuse("expire_supplement", SYSTEM, at=local(3, 9, month=12))
        assert refused.reasons == ("not_yet_due",)

    def test_specialist_missing(self) -> None:
        """Starting processing names the specialist."""
        walk = received("2.000488")
        refused = walk.refuse("start", staff(walk.kernel, "department_head"), {})
        assert refused.reasons == ("specialist_missing",)

    def test_steps_pending_and_document_not_approved(self) -> None:
        """A result waits for every agency step and, where required, the leader's sign-off."""
        walk = processing("1.009994")
        leader = staff(walk.kernel, "leader")
        payload = {"result": "gp-1", "signed": True}
        refused = walk.refuse("resolve", leader, payload)
        assert refused.reasons == ("steps_pending", "document_not_approved")
        specialist = staff(walk.kernel, "specialist")
        refused = walk.refuse("request_supplement", specialist, {"reason": "x"})
        assert refused.reasons == ("document_not_approved",)

    def test_result_missing_and_unsigned(self) -> None:
        """A result must be attached and, where required, digitally signed."""
        walk = processing("2.000488")
        walk.do("consult", staff(walk.kernel, "specialist"))
        police = staff(walk.kernel, "external_agency", agency="CA-TINH.01")
        walk.do("answer_consultation", police, {"answer": "ok"})
        leader = staff(walk.kernel, "leader")
        assert walk.refuse("resolve", leader, {"signed": True}).reasons == ("result_missing",)
        refused = walk.refuse("resolve", leader, {"result": "p-1"})
        assert refused.reasons == ("result_unsigned",)
        refused = walk.refuse("resolve", leader, {"result": "", "signed": "yes"})
        assert refused.reasons == ("result_missing", "result_unsigned")

    def test_receiver_missing(self) -> None:
        """An in-person or postal return records who received the result."""
        walk = Walk(kernel_for("2.000488"))
        intake(walk, Channel.ONLINE, DeliveryMethod.POSTAL)
        process(walk)
        resolve(walk)
        for payload in ({}, {"receiver": {"name": ""}}, {"receiver": "Bình"}):
            assert walk.refuse("return_result", POSTAL, payload).reasons == ("receiver_missing",)

    def test_legal_basis_missing(self) -> None:
        """A due-date correction cites its legal basis."""
        walk = processing("2.000488")
        payload = {"reason": "sai", "due_at": local(19, 17)}
        refused = walk.refuse("correct_due_date", staff(walk.kernel, "admin"), payload)
        assert refused.reasons == ("legal_basis_missing",)

    def test_several_reasons_at_once(self) -> None:
        """Every payload problem of a submission is reported together."""
        walk = Walk(kernel_for("2.000488"))
        person = attrs.evolve(APPLICANT, vneid_verified=False)
        payload = intake_payload(
            walk.kernel, DeliveryMethod.POSTAL, applicant=person, documents=[], form={}
        )
        refused = walk.refuse("submit", CITIZEN, payload)
        assert refused.reasons == ("vneid_required", "components_missing", "form_invalid")

    def test_new_dossier_needs_an_id(self) -> None:
        """A dossier is created with its id: the effects' idempotency keys start with it."""
        kernel = kernel_for("2.000488")
        payload = intake_payload(kernel, DeliveryMethod.POSTAL)
        for dossier_id in (None, "", "  "):
            with pytest.raises(InvalidValueError, match="dossier_id"):
                kernel.decide(
                    None,
                    "submit",
                    actor=CITIZEN,
                    payload=payload,
                    now=MONDAY,
                    dossier_id=dossier_id,
                )

    @pytest.mark.parametrize(
        "extra",
        [
            {"exemption": ["list"]},
            {"exemption": "nobody"},
            {"case": "unknown"},
            {"delivery": "pigeon"},
            {"applicant": {"kind": "alien"}},
            {"applicant": 42},
            {"documents": "request_form"},
            {"documents": ["request_form", "identity_document", "passport"]},
            {"form": ["purpose"]},
        ],
    )
    def test_implausible_intake_payloads_are_refused(self, extra: dict[str, Any]) -> None:
        """Garbage in an intake payload is a refusal, never a crash."""
        walk = Walk(kernel_for("2.000488"))
        payload = intake_payload(walk.kernel, DeliveryMethod.POSTAL) | extra
        refused = walk.refuse("submit", CITIZEN, payload)
        assert refused.reasons
        assert set(refused.reasons) <= {
            "exemption_unknown",
            "case_unknown",
            "payload_invalid",
            "applicant_missing",
            "form_invalid",
        }

    @pytest.mark.parametrize(
        "value",
        ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00+00:00", "2025-03-24", "soon", 7],
    )
    def test_implausible_instants_are_refused(self, value: object) -> None:
        """A due date out of range, naive or not a date is refused as invalid data."""
        walk = processing("2.000488")
        payload = {"reason": "r", "legal_basis": "b", "due_at": value}
        refused = walk.refuse("correct_due_date", staff(walk.kernel, "admin"), payload)
        assert refused.reasons == ("payload_invalid",)


# -- available(), history, effects ------------------------------------------------------------


class TestAvailable:
    def test_reports_allowed_and_refused(self) -> None:
        """Every trigger from the state is listed, allowed or refused with its reasons."""
        walk = processing("2.000488")
        actions = {
            a.trigger: a
            for a in walk.kernel.available(walk.current, staff(walk.kernel, "specialist"), walk.now)
        }
        assert set(actions) == set(walk.kernel.triggers_from("processing"))
        assert actions["consult"].allowed
        assert actions["request_supplement"].allowed  # the missing reason is the payload's
        assert actions["resolve"].reasons == ("role_missing",)
        assert actions["request_payment"].reasons == ("no_fee_due",)
        assert not actions["request_withdrawal"].allowed

    def test_guards_without_payload_reasons(self) -> None:
        """State guards are reported; reasons about a command's data are not."""
        walk = processing("1.009994")
        leader = staff(walk.kernel, "leader")
        actions = {a.trigger: a for a in walk.kernel.available(walk.current, leader, walk.now)}
        assert actions["resolve"].reasons == ("steps_pending", "document_not_approved")
        assert actions["stop"].allowed
        assert actions["approve_document"].allowed
        walk = ready("1.009994")
        officer = staff(walk.kernel, "receiving_officer")
        actions = {a.trigger: a for a in walk.kernel.available(walk.current, officer, walk.now)}
        assert actions["return_result"].reasons == ("fees_unpaid",)

    def test_applicant_view(self) -> None:
        """The owner may withdraw; another applicant may do nothing."""
        walk = processing("2.000488")
        mine = [
            a.trigger for a in walk.kernel.available(walk.current, CITIZEN, walk.now) if a.allowed
        ]
        assert mine == ["request_withdrawal"]
        theirs = walk.kernel.available(walk.current, OTHER_CITIZEN, walk.now)
        assert {a.reasons for a in theirs} <= {("role_missing",), ("not_owner",)}
        assert not any(a.allowed for a in theirs)

    def test_no_side_effects(self) -> None:
        """available() changes neither the dossier nor the kernel, and repeats itself."""
        walk = processing("2.000488")
        kernel = walk.kernel
        snapshot = copy.deepcopy(walk.current)
        machine_vars = dict(vars(kernel.machine))
        first = kernel.available(walk.current, staff(kernel, "specialist"), walk.now)
        second = kernel.available(walk.current, staff(kernel, "specialist"), walk.now)
        assert first == second
        assert walk.current == snapshot
        assert kernel.machine.models == []
        assert dict(vars(kernel.machine)).keys() == machine_vars.keys()

    def test_allowed_matches_decide(self) -> None:
        """What available() allows, decide() accepts with the right data; the rest it refuses."""
        walk = processing("2.000488")
        kernel, dossier = walk.kernel, walk.current
        payloads: dict[str, dict[str, Any]] = {
            "assign": {"specialist": "s-2"},
            "reassign": {"specialist": "s-2", "reason": "r"},
            "request_supplement": {"reason": "r"},
            "reschedule": {"reason": "r", "new_due": local(24, 17)},
            "correct_due_date": {"reason": "r", "legal_basis": "b", "due_at": local(19, 17)},
            "stop": {"reason": "r"},
            "resolve": {"result": "p-1", "signed": True},
            "request_withdrawal": {},
            "approve_document": {"document": "result"},
            "confirm_payment": online_payment(dossier.fees[0]),
        }
        actors = [staff(kernel, role) for role in ("department_head", "specialist", "leader")]
        actors += [staff(kernel, "admin"), staff(kernel, "cashier"), CITIZEN, SYSTEM]
        for actor in actors:
            for action in kernel.available(dossier, actor, walk.now):
                payload = payloads.get(action.trigger, {})
                if action.allowed:
                    decision = kernel.decide(
                        dossier, action.trigger, actor=actor, payload=payload, now=walk.now
                    )
                    assert decision.dossier.version == dossier.version + 1
                else:
                    with pytest.raises(RefusedError) as caught:
                        kernel.decide(
                            dossier, action.trigger, actor=actor, payload=payload, now=walk.now
                        )
                    assert set(action.reasons) <= set(caught.value.reasons)


class TestHistoryAndEffects:
    @pytest.mark.parametrize(("code", "channel", "delivery"), list(paths()))
    def test_no_personal_data_in_events_or_effects(
        self, code: str, channel: Channel, delivery: DeliveryMethod
    ) -> None:
        """No applicant name, id, phone or email reaches an event or an effect."""
        walk = happy(kernel_for(code), channel, delivery)
        for decision in walk.decisions:
            text = json.dumps(
                [
                    attrs.asdict(decision.event),
                    [attrs.asdict(effect) for effect in decision.effects],
                ],
                default=str,
                ensure_ascii=False,
            )
            for value in PERSONAL:
                assert value not in text
        first = walk.decisions[0]
        assert first.personal["applicant"] == APPLICANT
        assert "form" in first.personal

    def test_idempotency_keys_are_unique(self) -> None:
        """Effect keys are `<id>:<version>:<n>`, unique over a dossier's history."""
        walk = happy(kernel_for("2.000488"), Channel.ONLINE, DeliveryMethod.POSTAL)
        keys = [effect.key for d in walk.decisions for effect in d.effects]
        assert len(keys) == len(set(keys))
        assert keys[0] == "d-1:1:0"

    def test_replay_rebuilds_every_step(self) -> None:
        """Folding the events' changes gives the dossier after each step (checked by Walk)."""
        walk = happy(kernel_for("1.009994"), Channel.IN_PERSON, DeliveryMethod.IN_PERSON)
        for number in range(1, len(walk.decisions) + 1):
            prefix = [e.changes for e in walk.events[:number]]
            assert replay(prefix) == walk.decisions[number - 1].dossier
        assert json.loads(json.dumps([e.changes for e in walk.events])) == [
            e.changes for e in walk.events
        ]

    def test_first_event_creates_the_dossier(self) -> None:
        """The first event carries every field; later ones only what changed."""
        walk = received("2.000488")
        assert set(walk.events[0].changes) == {f.name for f in attrs.fields(Dossier)}
        assert set(walk.events[1].changes) == {"fees", "state", "version"}

    def test_event_records_actor_and_time(self) -> None:
        """Events name the actor's account, roles and agency, and the instant in UTC."""
        walk = received("2.000488")
        event = walk.events[-1]
        assert (event.actor, event.roles, event.agency) == (
            "receiving_officer-1",
            ("receiving_officer",),
            "STP.01",
        )
        assert event.at.tzinfo is dt.UTC
        assert event.source == "submitted"
        assert event.dossier_id == "d-1"


class TestBinding:
    def test_one_machine_per_kernel(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A kernel compiles exactly one Machine, with auto transitions off."""
        created = count_machines(monkeypatch)
        kernel = Kernel(CATALOG.get("2.000488"))
        assert created == [1]
        machine = kernel.machine
        assert isinstance(machine, transitions.Machine)
        assert machine.auto_transitions is False
        assert not [name for name in machine.events if name.startswith("to_")]
        assert set(machine.events) == kernel.lifecycle.triggers
        assert machine.models == []

    def test_decide_registers_nothing(self) -> None:
        """decide() never registers a model and adds attributes to nothing."""
        kernel = Kernel(CATALOG.get("1.009994"))
        machine_vars = {key: id(value) for key, value in vars(kernel.machine).items()}
        kernel_vars = set(vars(kernel))
        events = {name: id(event) for name, event in kernel.machine.events.items()}
        walk = happy(kernel, Channel.ONLINE, DeliveryMethod.IN_PERSON)
        assert kernel.machine.models == []
        assert {key: id(value) for key, value in vars(kernel.machine).items()} == machine_vars
        assert set(vars(kernel)) == kernel_vars
        assert {name: id(event) for name, event in kernel.machine.events.items()} == events
        assert not hasattr(walk.current, "__dict__")

    def test_trigger_selects_as_transitions_does(self) -> None:
        """The kernel's `Event.trigger` takes the edge transitions' own would, from every state.

        It leaves out the machine's queue and its prepare, finalize and exception callbacks,
        so the machine must have none; its conditions answer as transitions' `Condition` does.
        """
        kernel = Kernel(CATALOG.get("1.009994"))
        machine = kernel.machine
        assert not machine.has_queue
        assert machine.prepare_event == machine.finalize_event == machine.on_exception == []
        assert machine.before_state_change == machine.after_state_change == []
        resumes = [None, *(state.name for state in kernel.lifecycle.states)]
        whens = {edge.when for edge in kernel.lifecycle.transitions if edge.when is not None}
        selections = [{}, *(dict([when.split(":")]) for when in sorted(whens))]
        compared = 0
        for event in machine.events.values():
            assert isinstance(event, transitions.Event)
            assert type(event).trigger is not transitions.Event.trigger
            for source in event.transitions:
                for resume, select in itertools.product(resumes, selections):
                    plan = SimpleNamespace(
                        dossier=SimpleNamespace(resume_state=resume), select=select
                    )
                    ours, stock = _Model(source), _Model(source)
                    taken = event.trigger(ours, plan=plan)
                    assert taken == transitions.Event.trigger(event, stock, plan=plan)
                    assert (ours.state, ours.edge) == (stock.state, stock.edge)
                    compared += taken
                    data = transitions.EventData(
                        machine.states[source], event, machine, _Model(source), (), {"plan": plan}
                    )
                    for edge in event.transitions[source]:
                        for condition in edge.conditions:
                            stock_check = transitions.core.Condition.check(condition, data)
                            assert condition.check(data) == stock_check
        assert compared > len(machine.events)

    def test_thousand_dossiers_no_new_machine(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Deciding 1,000 dossiers on one kernel creates no Machine."""
        kernel = kernel_for("2.000815")
        officer = staff(kernel, "receiving_officer")
        payload = intake_payload(kernel, None, fees_collected=True)
        created = count_machines(monkeypatch)
        for number in range(1_000):
            decision = kernel.decide(
                None,
                "receive",
                actor=officer,
                payload=payload,
                now=MONDAY + dt.timedelta(seconds=number),
                dossier_id=f"d-{number}",
            )
            assert decision.dossier.state == "received"
        assert created == [0]
        assert kernel.machine.models == []


def count_machines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the Machines created from now on (a one-item list, updated in place)."""
    created = [0]
    original = transitions.Machine.__init__

    def counting(self: transitions.Machine, *args: Any, **kwargs: Any) -> None:
        created[0] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(transitions.Machine, "__init__", counting)
    return created


class TestCounterFeeTiming:
    def test_level_3_fee_waits_for_the_result(self) -> None:
        """At level 3 a fee collected with the result is refused at the counter before it."""
        walk = processing("1.009994")
        cashier = staff(walk.kernel, "cashier")
        fee = walk.current.fees[0]
        refused = walk.refuse("confirm_payment", cashier, counter_payment(fee))
        assert refused.reasons == ("fee_not_due",)

    def test_level_3_fee_taken_with_the_result(self) -> None:
        """Once the result is ready the cashier takes the fee, and the result can go out."""
        walk = ready("1.009994")
        cashier = staff(walk.kernel, "cashier")
        walk.do("confirm_payment", cashier, counter_payment(walk.current.fees[0]))
        assert walk.current.fees_settled
