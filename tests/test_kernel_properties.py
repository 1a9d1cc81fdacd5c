"""Random command sequences against every example lifecycle: the kernel's invariants hold."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Channel,
    DeliveryMethod,
    DocumentKind,
    DvcflowError,
    Level,
    OnlineClass,
    ProcedureSpec,
)
from dvcflow._clock import FrozenClock
from dvcflow._dossier import Dossier, replay
from dvcflow._kernel import Event, Kernel
from dvcflow._lifecycle import FINAL_STATES, TRIGGERS

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "procedures"
CATALOG = Catalog.from_path(EXAMPLES)

STARTS = [
    dt.datetime(2022, 3, 7, 9, 0, tzinfo=HCM),  # levels-2009
    dt.datetime(2023, 5, 15, 14, 30, tzinfo=HCM),  # online-2022
    dt.datetime(2024, 6, 30, 23, 50, tzinfo=HCM),  # the last minutes of online-2022
    dt.datetime(2025, 3, 3, 8, 0, tzinfo=HCM),  # vneid-2024
    dt.datetime(2026, 2, 13, 17, 30, tzinfo=HCM),  # after hours before Tết
]
"""Where a sequence starts: inside each rule pack, at its edge, and around holidays."""

STEPS = [
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=3),
    dt.timedelta(days=1),
    dt.timedelta(days=4),
    dt.timedelta(days=31),
]
"""How far the frozen clock advances before each command."""

CITIZENS = [
    Applicant(
        ApplicantType.CITIZEN,
        "001203004567",
        "Nguyễn Thị Bình",
        phone="0912345678",
        email="binh@example.vn",
        vneid_verified=True,
    ),
    Applicant(
        ApplicantType.CITIZEN,
        "079188001234",
        "Trần Văn Cường",
        phone="0987654321",
        email="cuong@example.vn",
    ),
    Applicant(ApplicantType.CITIZEN, "001203004568", "Lê Thị Dung", vneid_verified=True),
    Applicant(ApplicantType.BUSINESS, "0101234567", "Công ty Đông Á", "0912000111", "a@b.vn"),
]
NAMES = [applicant.name for applicant in CITIZENS]

FORMS: dict[str, dict[str, object]] = {
    "2.000815": {},
    "2.000575": {"business_name": "Minh An", "capital_vnd": 1_000_000, "business_lines": "Bán lẻ"},
    "1.000894": {"husband_full_name": "Hùng", "wife_full_name": "Mai"},
    "1.009994": {"plot_number": "123", "floor_area_m2": 120, "floors": 3},
    "2.000488": {"purpose": "Xin việc", "copies": 1},
    "1.002804": {"licence_number": "123456789012", "licence_class": "B"},
    "1.001193": {
        "child_full_name": "Bảo",
        "child_birth_date": "2025-02-20",
        "child_sex": "nam",
        "relationship": "me",
    },
}

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


_INTAKE = ("applicant", "documents", "form", "delivery", "case")
KEYS: dict[str, tuple[str, ...]] = {
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
ALL_KEYS = frozenset(key for keys in KEYS.values() for key in keys) | {"exemption", "x"}
_LEFT_OUT = object()
STAFF_ROLES = frozenset(
    {
        "admin",
        "cashier",
        "clerk",
        "department_head",
        "leader",
        "postal_worker",
        "receiving_officer",
        "specialist",
    }
)
ONWARD = frozenset(
    {
        "accept_supplement",
        "answer_consultation",
        "confirm_payment",
        "consult",
        "hand_over",
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


def _pool(kernel: Kernel) -> list[Actor]:
    agency = kernel.procedure.agency
    roles = (
        "receiving_officer",
        "specialist",
        "department_head",
        "leader",
        "clerk",
        "cashier",
        "admin",
    )
    actors = [Actor.staff(f"{r}-1", roles={r}, agency=agency) for r in roles]
    actors += [Actor.staff(f"{r}-9", roles={r}, agency="ELSEWHERE.9") for r in roles]
    actors += [
        Actor.staff(f"ext-{step.agency}", roles={"external_agency"}, agency=step.agency or "")
        for step in kernel.procedure.steps
        if step.agency
    ]
    actors += [
        Actor.staff("ext-9", roles={"external_agency"}, agency="ELSEWHERE.9"),
        Actor.staff("post-1", roles={"postal_worker"}, agency="VNPOST"),
        Actor.staff("multi-1", roles={"specialist", "leader", "cashier"}, agency=agency),
        Actor.system(),
        Actor.citizen("acc-1"),
        Actor.citizen("acc-2"),
        Actor.representative("rep-1", acting_for="acc-1"),
        Actor.representative("rep-2", acting_for="acc-2"),
        Actor.business("biz-1"),
        Actor.business("biz-1", acting_for="acc-1"),
    ]
    return actors


class DossierLifecycle(RuleBasedStateMachine):
    """One dossier of one procedure under random (trigger, actor, payload, time) commands."""

    kernel: ClassVar[Kernel]
    pool: ClassVar[list[Actor]]
    guide: ClassVar[Actor]
    """A staff account of the agency holding every staff role, to ask available() with."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(STARTS[0])
        self.dossier: Dossier | None = None
        self.events: list[Event] = []

    @initialize(start=st.sampled_from(STARTS))
    def begin(self, start: dt.datetime) -> None:
        self.clock.set(start)

    # -- drawing a command ----------------------------------------------------------------

    def _trigger(self, data: st.DataObject) -> str:
        state = "initial" if self.dossier is None else self.dossier.state
        here = self.kernel.triggers_from(state)
        onward = [trigger for trigger in here if trigger in ONWARD]
        pick = data.draw(st.integers(0, 9), label="which triggers")
        if pick < 4 and self.dossier is not None:
            # Guided by available(): onward triggers someone may fire now, to reach deep states.
            guides = [self.guide, Actor.citizen("acc-1"), Actor.system()]
            actions = [
                action
                for actor in guides
                for action in self.kernel.available(self.dossier, actor, self.clock.now())
            ]
            open_now = {a.trigger for a in actions if a.allowed and a.trigger in ONWARD}
            open_now |= {"answer_consultation"} & set(here)
            if any(a.reasons == ("document_not_approved",) for a in actions):
                open_now.add("approve_document")
            if state not in {"submitted", "awaiting_payment", "result_ready"}:
                # Paying early would hide the return-before-payment path.
                open_now -= {"request_payment", "confirm_payment"}
            open_now.discard("request_supplement")
            if open_now:
                return data.draw(st.sampled_from(sorted(open_now)), label="open trigger")
        if onward and pick < 7:
            return data.draw(st.sampled_from(onward), label="onward trigger")
        if here and pick < 9:
            return data.draw(st.sampled_from(here), label="trigger")
        return data.draw(st.sampled_from([*sorted(TRIGGERS), "fly"]), label="any trigger")

    def _actor(self, data: st.DataObject, trigger: str) -> Actor:
        fit = [a for a in self.pool if trigger in self.kernel.allowed_now(self.dossier, a)]
        if fit and data.draw(st.integers(0, 9), label="fit") < 7:
            return data.draw(st.sampled_from(fit), label="actor")
        return data.draw(st.sampled_from(self.pool), label="any actor")

    def _plausible(self, data: st.DataObject, trigger: str, actor: Actor) -> dict[str, Any]:
        procedure = self.kernel.procedure
        case = procedure.case(self.dossier.case if self.dossier else None)
        mandatory = [c.key for c in case.components if c.mandatory]
        optional = [c.key for c in case.components if not c.mandatory]
        owed = [f for f in self.dossier.fees if f.outstanding] if self.dossier else []
        fee = owed[0] if owed else None
        now = self.clock.now().astimezone(HCM)
        methods = sorted(m.value for m in procedure.capabilities.return_methods)
        choices: dict[str, list[Any]] = {
            "applicant": CITIZENS,
            "documents": [mandatory, mandatory + optional, mandatory[:-1], optional or mandatory],
            "form": [FORMS[procedure.code], FORMS[procedure.code], {}],
            "delivery": [*methods, *methods, "in_person", "electronic"],
            "channel": ["in_person", "postal", "online"],
            "case": [c.key for c in procedure.cases],
            "fees_collected": [True, True, False],
            "owner": ["acc-1", "acc-2"],
            "kind": [fee.kind.value if fee else "fee", "fee", "charge"],
            "amount": [fee.outstanding.amount if fee else 0, 1, 200_000],
            "method": ["online" if "system" in actor.roles else "counter", "online", "counter"],
            "reference": ["TX-1"],
            "specialist": ["specialist-1"],
            "reason": ["lý do"],
            "answer": ["ok"],
            "to": ["leader-1"],
            "document": [kind.value for kind in DocumentKind],
            "result": ["kq-1"],
            "signed": [True, True, False],
            "number": ["123/QĐ"],
            "legal_basis": ["QĐ 1/2025"],
            "receiver": [{"name": "Người nhận"}, {"name": "Người nhận", "relation": "spouse"}],
            "new_due": [now + dt.timedelta(days=d) for d in (1, 7, 20, 45)],
            "due_at": [now + dt.timedelta(days=d) for d in (1, 10)],
        }
        payload: dict[str, Any] = {}
        for key in KEYS.get(trigger, ()):
            # Each key is left out now and then, to reach the "missing" refusals.
            value = data.draw(st.sampled_from([*choices[key] * 4, _LEFT_OUT]), label=key)
            if value is not _LEFT_OUT:
                payload[key] = value
        return payload

    def _payload(self, data: st.DataObject, trigger: str, actor: Actor) -> dict[str, Any]:
        mode = data.draw(st.sampled_from(["plausible"] * 6 + ["mixed"] * 3 + ["garbage"]))
        if mode == "garbage":
            return data.draw(st.dictionaries(st.sampled_from(sorted(ALL_KEYS)), GARBAGE))
        payload = self._plausible(data, trigger, actor)
        if mode == "mixed":
            key = data.draw(st.sampled_from(sorted(ALL_KEYS)), label="spoilt key")
            payload[key] = data.draw(GARBAGE, label=f"garbage {key}")
        return payload

    # -- the command and its checks -------------------------------------------------------

    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        self.clock.advance(data.draw(st.sampled_from(STEPS), label="advance"))
        trigger = self._trigger(data)
        actor = self._actor(data, trigger)
        payload = self._payload(data, trigger, actor)
        before = self.dossier
        snapshot = copy.deepcopy(before)
        now = self.clock.now().astimezone(HCM)
        try:
            decision = self.kernel.decide(
                before, trigger, actor=actor, payload=payload, now=now, dossier_id="p-1"
            )
        except DvcflowError:
            # Refused: nothing changed, nothing was returned.
            assert before == snapshot
            assert self.dossier is before
            return
        finally:
            assert self.kernel.machine.models == []
        after = decision.dossier
        source = "initial" if before is None else before.state
        assert source not in FINAL_STATES, f"{trigger} left the final state {source}"
        if trigger == "return_result":
            assert before is not None
            assert before.fees_settled
            assert after.fees_settled
        event = decision.event
        self.events.append(event)
        self.dossier = after
        self._check_level_rules(trigger, event, after)
        self._check_plain(decision.event, decision.effects)

    def _check_level_rules(self, trigger: str, event: Event, dossier: Dossier) -> None:
        procedure = self.kernel.procedure
        if procedure.level < Level.ONLINE_SUBMISSION:
            assert trigger != "submit"
            assert dossier.channel is not Channel.ONLINE
        if procedure.online_class is OnlineClass.FULL:
            assert dossier.delivery is not DeliveryMethod.IN_PERSON
            assert not (trigger == "confirm_payment" and event.data.get("method") == "counter")
            if dossier.channel is Channel.ONLINE:
                assert not event.visit, f"{trigger} made a full-process dossier visit"

    def _check_plain(self, event: Event, effects: tuple[Any, ...]) -> None:
        text = json.dumps(
            [event.changes, event.data, [dict(effect.data) for effect in effects]],
            ensure_ascii=False,
        )
        for name in NAMES:
            assert name not in text
        for number, effect in enumerate(effects):
            assert effect.key == f"p-1:{event.version}:{number}"

    @invariant()
    def history_rebuilds_the_dossier(self) -> None:
        if self.dossier is None:
            assert self.events == []
            return
        assert self.dossier.version == len(self.events)
        assert [event.version for event in self.events] == list(range(1, len(self.events) + 1))
        assert replay(event.changes for event in self.events) == self.dossier


def _pay_later() -> ProcedureSpec:
    """The judicial record with its fee paid before the return, not before reception."""
    data = CATALOG.get("2.000488").to_data()
    for case in data["cases"].values():
        for fee in case["fees"]:
            fee["timing"] = "before_return"
    return ProcedureSpec.from_data(data)


def _lifecycle_test(code: str, procedure: ProcedureSpec | None = None) -> Any:
    kernel = Kernel(procedure or CATALOG.get(code))
    machine = type(
        f"Lifecycle_{code.replace('.', '_')}",
        (DossierLifecycle,),
        {
            "kernel": kernel,
            "pool": _pool(kernel),
            "guide": Actor.staff("guide", roles=STAFF_ROLES, agency=kernel.procedure.agency),
        },
    )
    case = machine.TestCase
    # Fewer steps than hypothesis's default keep the CI profile well under a minute; max_examples
    # stays the profile's.
    case.settings = settings(stateful_step_count=30)
    return case


TestLevel1CertifiedCopy = _lifecycle_test("2.000815")
TestLevel2HouseholdBusiness = _lifecycle_test("2.000575")
TestLevel3Marriage = _lifecycle_test("1.000894")
TestLevel3ConstructionPermit = _lifecycle_test("1.009994")
TestLevel4PartialJudicialRecord = _lifecycle_test("2.000488")
TestLevel4PartialDrivingLicence = _lifecycle_test("1.002804")
TestLevel4FullBirthRegistration = _lifecycle_test("1.001193")
TestLevel4PartialFeeBeforeReturn = _lifecycle_test("2.000488", _pay_later())
