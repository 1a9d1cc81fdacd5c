"""The generated state machine on every example procedure, on drawn procedures of every level,
and with the core guards disabled (it must then fail)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

import dvcflow._handlers
from dvcflow import Catalog, Level, OnlineClass
from dvcflow._kernel import Kernel, Plan
from dvcflow.testing import DossierMachine, close_engines, machine_for, strategies
from pg import Cluster
from support import paid_before_return

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "procedures"
CATALOG = Catalog.from_path(EXAMPLES)


def bounded(steps: int = 30) -> settings:
    """The suite's bound for a machine: a quarter of the profile's examples (15 under ``ci``)."""
    current = settings.default
    return settings(
        current,
        max_examples=max(5, current.max_examples // 4),
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def _case(machine: type[DossierMachine], steps: int = 30) -> Any:
    case = machine.TestCase
    case.settings = bounded(steps)
    return case


# -- every example procedure ---------------------------------------------------------------------

TestLevel1CertifiedCopy = _case(machine_for(EXAMPLES, code="2.000815"))
TestLevel2HouseholdBusiness = _case(machine_for(EXAMPLES, code="2.000575"))
TestLevel3Marriage = _case(machine_for(EXAMPLES, code="1.000894"))
TestLevel3ConstructionPermit = _case(machine_for(EXAMPLES, code="1.009994"), steps=40)
TestLevel4PartialJudicialRecord = _case(machine_for(EXAMPLES, code="2.000488"))
TestLevel4PartialDrivingLicence = _case(machine_for(EXAMPLES, code="1.002804"))
TestLevel4FullBirthRegistration = _case(machine_for(EXAMPLES, code="1.001193"))

# -- drawn procedures of every built-in level and both 2022 classes -------------------------------

TestDrawnLevel1 = _case(machine_for(strategies.procedures([Level.INFORMATION])))
TestDrawnLevel2 = _case(machine_for(strategies.procedures([Level.FORMS])))
TestDrawnLevel3 = _case(machine_for(strategies.procedures([Level.ONLINE_SUBMISSION])))
TestDrawnLevel4Partial = _case(
    machine_for(strategies.procedures([Level.ONLINE_PAYMENT], classes=[OnlineClass.PARTIAL]))
)
TestDrawnLevel4Full = _case(
    machine_for(strategies.procedures([Level.ONLINE_PAYMENT], classes=[OnlineClass.FULL]))
)


class TestEveryExampleIsCovered:
    def test_each_example_procedure_has_a_machine(self) -> None:
        """Every procedure of examples/procedures is run by one of the machines above."""
        tested = {
            case.runTest._hypothesis_state_machine_class.procedure.code
            for name, case in globals().items()
            if name.startswith("TestLevel")
        }
        assert tested == {procedure.code for procedure in CATALOG}


# -- the guards disabled: the machine must fail ------------------------------------------------


def _finds(machine: type[DossierMachine], examples: int = 200) -> str:
    """Run ``machine`` without shrinking until it fails; the failure's message."""
    quick = settings(
        max_examples=examples,
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    with pytest.raises(AssertionError) as failure:
        run_state_machine_as_test(machine, settings=quick)
    return str(failure.value)


class TestMutations:
    @pytest.mark.parametrize("procedure", ["1.009994", "pay later"])
    def test_return_before_payment_is_caught(
        self, procedure: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With return_result's fee guard removed, the machine finds a result returned unpaid.

        At level 3 (a counter charge collected with the result) and at level 4 (the judicial
        record with its fee paid online before the return).
        """
        guarded = dvcflow._handlers.HANDLERS["return_result"]

        def unguarded(plan: Plan) -> None:
            guarded(plan)
            if "fees_unpaid" in plan.reasons:
                plan.reasons.remove("fees_unpaid")

        monkeypatch.setitem(dvcflow._handlers.HANDLERS, "return_result", unguarded)
        spec = paid_before_return(CATALOG) if procedure == "pay later" else CATALOG.get(procedure)
        message = _finds(machine_for(spec))
        assert re.search(r"the result was returned with .* unpaid", message), message

    @pytest.mark.parametrize("code", ["2.000815", "1.001193"])
    def test_missing_role_check_is_caught(self, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """With the kernel's role and scope check removed, the machine finds an unauthorized
        command."""
        monkeypatch.setattr(Kernel, "_authorize", lambda *_args: [])
        message = _finds(machine_for(EXAMPLES, code=code))
        scope = r"needs one of|not the owner's dossier|staff of .*, dossier of|not addressed|postal"
        assert re.search(scope, message), message


# -- a user's own invariants and rules ---------------------------------------------------------


class TestUserExtensions:
    def test_invariants_and_rules_given_to_machine_for_run(self) -> None:
        """A user's invariant runs after every step and a user's rule is drawn among the others."""
        seen: dict[str, int] = {"invariant": 0, "rule": 0}

        def count_checks(machine: DossierMachine) -> None:
            seen["invariant"] += 1
            assert machine.engine is not None

        def look_around(machine: DossierMachine, data: st.DataObject) -> None:
            seen["rule"] += 1
            assert machine.snapshot is not None
            assert data.draw(st.integers(0, 3)) <= 3

        machine = machine_for(
            EXAMPLES, code="2.000575", invariants=[count_checks], rules=[look_around]
        )
        run_state_machine_as_test(machine, settings=bounded(20))
        assert seen["invariant"] > 0
        assert seen["rule"] > 0

    def test_a_failing_user_invariant_fails_the_machine(self) -> None:
        """A user's invariant that does not hold makes the run fail with its message."""

        def never_stopped(machine: DossierMachine) -> None:
            assert machine.dossier is None or machine.dossier.state != "received", "received"

        machine = machine_for(EXAMPLES, code="2.000575", invariants=[never_stopped])
        message = _finds(machine, examples=50)
        assert "received" in message

    def test_a_subclass_adds_rules_and_invariants(self) -> None:
        """Subclassing the generated machine with hypothesis decorators extends it."""
        ticks: list[int] = []

        class Extended(machine_for(EXAMPLES, code="2.000815")):  # type: ignore[misc]
            @rule()
            def nothing_due_twice(self) -> None:
                self.observe(self.engine.tick)
                ticks.append(len(self.observe(self.engine.tick)))

            @invariant()
            def ticks_are_idempotent(self) -> None:
                assert not ticks or ticks[-1] == 0

        run_state_machine_as_test(Extended, settings=bounded(20))
        assert ticks


# -- on PostgreSQL ------------------------------------------------------------------------------


class TestOnPostgreSQL:
    def test_the_machine_runs_on_a_postgresql_server(self, pg_cluster: Cluster) -> None:
        """With ``store=`` a server's URL, every example runs on a PostgreSQL database of its
        own, and `close_engines` removes them."""
        dialects: set[str] = set()

        def on_which_database(machine: DossierMachine) -> None:
            dialects.add(machine.engine.store.dialect)

        machine = machine_for(
            EXAMPLES, code="1.001193", store=pg_cluster.url(), invariants=[on_which_database]
        )
        try:
            run_state_machine_as_test(machine, settings=bounded(20))
        finally:
            close_engines()
        assert dialects == {"postgresql"}
        server = sa.create_engine(pg_cluster.url())
        try:
            with server.connect() as connection:
                left = connection.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE '%_rig_%'")
                ).all()
        finally:
            server.dispose()
        assert left == []
