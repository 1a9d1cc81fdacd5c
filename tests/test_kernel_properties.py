"""Random command sequences against every example lifecycle: the kernel's invariants hold.

The pure kernel alone (no database): commands drawn with `dvcflow.testing.strategies`; the
same commands on a real engine are `test_testing_machine.py`'s.
"""

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
    Applicant,
    Catalog,
    Channel,
    DeliveryMethod,
    DvcflowError,
    Level,
    OnlineClass,
    ProcedureSpec,
)
from dvcflow._clock import FrozenClock
from dvcflow._dossier import Dossier, replay
from dvcflow._kernel import Event, Kernel
from dvcflow._lifecycle import FINAL_STATES
from dvcflow.testing import strategies
from support import paid_before_return

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "procedures"
CATALOG = Catalog.from_path(EXAMPLES)

STEPS = [
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=3),
    dt.timedelta(days=1),
    dt.timedelta(days=4),
    dt.timedelta(days=31),
]
"""How far the frozen clock advances before each command."""


class DossierLifecycle(RuleBasedStateMachine):
    """One dossier of one procedure under random (trigger, actor, payload, time) commands."""

    kernel: ClassVar[Kernel]

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(strategies.STARTS[0])
        self.dossier: Dossier | None = None
        self.events: list[Event] = []
        self.names: set[str] = set()
        """The applicants' names the commands carried: personal data kept out of events."""

    @initialize(start=strategies.starts())
    def begin(self, start: dt.datetime) -> None:
        self.clock.set(start)

    # -- the command and its checks -------------------------------------------------------

    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        self.clock.advance(data.draw(st.sampled_from(STEPS), label="advance"))
        now = self.clock.now().astimezone(HCM)
        drawn = data.draw(strategies.commands(self.kernel, self.dossier, now=now), label="command")
        trigger, actor, payload = drawn.trigger, drawn.actor, drawn.payload
        applicant = payload.get("applicant")
        if isinstance(applicant, Applicant):
            self.names.add(applicant.name)
        before = self.dossier
        snapshot = copy.deepcopy(before)
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
        for name in self.names:
            assert name not in text, "an applicant's name is in the history or the outbox"
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


def _lifecycle_test(code: str, procedure: ProcedureSpec | None = None) -> Any:
    kernel = Kernel(procedure or CATALOG.get(code))
    machine = type(
        f"Lifecycle_{code.replace('.', '_')}",
        (DossierLifecycle,),
        {"kernel": kernel},
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
TestLevel4PartialFeeBeforeReturn = _lifecycle_test("2.000488", paid_before_return(CATALOG))
