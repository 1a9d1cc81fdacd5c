"""The generated state machine on every example procedure, on drawn procedures of every level,
and with the core guards disabled (it must then fail)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

import dvcflow._handlers
from dvcflow import Catalog, DeliveryMethod, Engine, Level, OnlineClass
from dvcflow._kernel import Kernel, Plan
from dvcflow._store import Store
from dvcflow.errors import RefusedError
from dvcflow.testing import (
    BUILTIN_INVARIANTS,
    DossierMachine,
    _rigs,
    close_engines,
    machine_for,
    strategies,
)
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

    def test_a_due_date_off_the_calendar_is_caught(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With due dates computed a calendar day late (a Friday's becomes a Saturday), the
        machine finds one on a day off."""
        computed = dvcflow._handlers.due_at

        def a_day_late(*args: Any, **kwargs: Any) -> dt.datetime | None:
            due = computed(*args, **kwargs)
            return None if due is None else due + dt.timedelta(days=1)

        monkeypatch.setattr(dvcflow._handlers, "due_at", a_day_late)
        message = _finds(machine_for(EXAMPLES, code="2.000488"))
        assert "not a working day" in message, message

    def test_an_in_person_return_of_a_full_dossier_is_caught(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With intake accepting any return method, a full-process dossier is returned in
        person and the machine says so."""
        checked = dvcflow._handlers._delivery

        def any_method(*args: Any, **kwargs: Any) -> DeliveryMethod:
            problems: list[str] = args[2]
            method = checked(*args, **kwargs)
            if "delivery_not_offered" in problems:
                problems.remove("delivery_not_offered")
            return method

        monkeypatch.setattr(dvcflow._handlers, "_delivery", any_method)
        message = _finds(machine_for(EXAMPLES, code="1.001193"))
        assert "of a full-process dossier: in-person return" in message, message

    def test_a_lost_effect_is_caught(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With the store dropping the last of several effects a command queues, the machine
        finds the effect decided and never queued."""
        queue = Store.add_outbox

        def drop_last(self: Store, connection: Any, rows: Any) -> None:
            queue(self, connection, rows[:-1] if len(rows) > 1 else rows)

        monkeypatch.setattr(Store, "add_outbox", drop_last)
        message = _finds(machine_for(EXAMPLES, code="2.000575"))
        assert "effects decided but not queued" in message, message

    def test_a_refusal_that_writes_is_caught(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With the engine keeping a trace of each refused command (a file attached to the
        dossier), the machine finds a refusal that wrote."""
        fire = Engine.fire

        def tracing(self: Engine, dossier: str, trigger: str, **kwargs: Any) -> Any:
            try:
                return fire(self, dossier, trigger, **kwargs)
            except RefusedError:
                self.results.attach(dossier, trigger.encode(), media_type="text/plain", name="t")
                raise

        monkeypatch.setattr(Engine, "fire", tracing)
        message = _finds(machine_for(EXAMPLES, code="2.000815"))
        assert re.search(r"the refused \w+ wrote to", message), message


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


# -- setting a machine up -------------------------------------------------------------------------


class TestSetUp:
    def test_a_drawn_procedure_leaves_no_engine_behind(self) -> None:
        """Each drawn procedure's engine and database are removed after its example."""
        before = set(_rigs._RIGS.values())
        seen: set[str] = set()

        def where(machine: DossierMachine) -> None:
            path = machine.engine.store.database_path
            assert path is not None
            seen.add(str(path))

        machine = machine_for(strategies.procedures([Level.FORMS]), invariants=[where])
        run_state_machine_as_test(machine, settings=bounded(5))
        assert set(_rigs._RIGS.values()) == before
        assert len(seen) > 1
        assert not [path for path in seen if Path(path).exists()]

    def test_a_bad_store_is_refused_at_once(self) -> None:
        """A store that is neither "sqlite" nor a PostgreSQL URL fails in machine_for."""
        for store in ("mysql://db/x", "sqlite:///x.db", "nonsense"):
            with pytest.raises(ValueError, match="store must be 'sqlite' or a PostgreSQL URL"):
                machine_for(EXAMPLES, code="2.000815", store=store)

    def test_each_set_up_has_its_own_name(self) -> None:
        """Hypothesis keys saved failures by the class: one name per procedure and set-up."""

        def mine(machine: DossierMachine) -> None:
            assert machine.engine is not None

        names = {
            machine_for(EXAMPLES, code="2.000815").__name__,
            machine_for(EXAMPLES, code="2.000815", invariants=[mine]).__name__,
            machine_for(EXAMPLES, code="2.000575").__name__,
            machine_for(strategies.procedures([Level.FORMS])).__name__,
            machine_for(strategies.procedures([Level.INFORMATION])).__name__,
        }
        assert len(names) == 5
        assert machine_for(EXAMPLES, code="2.000815").__name__ in names

    def test_a_relative_path_is_taken_beside_the_caller(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``machine_for("procedures/...")`` finds the file beside the test, from any folder."""
        monkeypatch.chdir(tmp_path)
        here = Path(__file__).resolve().parent
        relative = Path("..", "examples", "procedures")
        assert (here / relative).is_dir()
        machine = machine_for(relative, code="2.000815")
        assert machine.procedure is not None
        assert machine.procedure.code == "2.000815"

    def test_the_builtin_invariants_are_the_machines(self) -> None:
        """Every name of BUILTIN_INVARIANTS but the refusal check is an invariant method."""
        names = set(BUILTIN_INVARIANTS) - {"refused_commands_change_nothing"}
        methods = {
            name
            for name in dir(DossierMachine)
            if getattr(getattr(DossierMachine, name), "hypothesis_stateful_invariant", None)
        }
        assert names == methods


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
