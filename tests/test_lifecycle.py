"""Lifecycle definitions: validation, national statuses, level templates and permissions."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import pytest

from dvcflow import Catalog, InvalidDefinitionError, Level, OnlineClass, ProcedureSpec
from dvcflow._lifecycle import (
    FINAL_STATES,
    INITIAL,
    TRIGGERS,
    LifecycleSpec,
    NationalStatus,
    StateSpec,
    TransitionSpec,
    validate_lifecycle,
)
from dvcflow.levels import Derivation, level1, level2, level3, level4, lifecycle_for
from dvcflow.levels._templates import _check_level_rules

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "procedures"
CATALOG = Catalog.from_path(EXAMPLES)
CODES = sorted(procedure.code for procedure in CATALOG)

SLUGS = {
    1: "receiving",
    2: "new",
    3: "denied",
    4: "processing",
    5: "waiting",
    6: "paying",
    7: "cancelled",
    8: "unresolved",
    9: "releasing",
    10: "done",
}
"""The portal's slugs of DOMAIN.md §2, by national code."""

BUILTIN_CODES = {
    "submitted": 1,
    "received": 2,
    "refused": 3,
    "processing": 4,
    "awaiting_supplement": 5,
    "awaiting_payment": 6,
    "withdrawal_requested": 7,
    "withdrawn": 7,
    "stopped": 8,
    "result_ready": 9,
    "returned": 10,
}


def state(name: str, status: int = 4, *, final: bool = False) -> StateSpec:
    """A state mapped onto national code ``status``."""
    return StateSpec(name, NationalStatus(status), final=final)


def edge(
    trigger: str, source: str, dest: str | None, roles: Iterable[str] = ("leader",)
) -> TransitionSpec:
    """An edge fired by ``roles``."""
    return TransitionSpec(trigger, source, dest, frozenset(roles))


def small(
    extra_states: Iterable[StateSpec] = (), extra_edges: Iterable[TransitionSpec] = ()
) -> LifecycleSpec:
    """A valid three-state lifecycle, plus what a test adds to break it."""
    return LifecycleSpec(
        "small",
        [
            state("received", 2),
            state("processing"),
            state("returned", 10, final=True),
            *extra_states,
        ],
        [
            edge("receive", INITIAL, "received", {"receiving_officer"}),
            edge("start", "received", "processing", {"department_head"}),
            edge("return_result", "processing", "returned", {"receiving_officer"}),
            *extra_edges,
        ],
    )


def problems_of(spec: LifecycleSpec) -> list[str]:
    """The problems `validate_lifecycle` raises for ``spec``, as ``path: message``."""
    with pytest.raises(InvalidDefinitionError) as caught:
        validate_lifecycle(spec, source="test")
    assert all(problem.source == "test" for problem in caught.value.problems)
    return [f"{problem.path}: {problem.message}" for problem in caught.value.problems]


class TestValidateLifecycle:
    def test_small_lifecycle_is_valid(self) -> None:
        """The base lifecycle of these tests validates, so each break below is the only one."""
        validate_lifecycle(small())

    def test_unreachable_state(self) -> None:
        """A state no edge leads to is named as unreachable."""
        found = problems_of(small([state("limbo")], [edge("stop", "limbo", "returned")]))
        assert found == ["states.limbo: is unreachable from the initial state"]

    def test_trap_state(self) -> None:
        """A reachable state from which no final state can be reached is named as a trap."""
        found = problems_of(
            small([state("stuck")], [edge("hand_over", "processing", "stuck", {"specialist"})])
        )
        assert found == ["states.stuck: is a trap: no final state can be reached from it"]

    def test_edge_leaving_a_final_state(self) -> None:
        """An edge out of a final state names its trigger and the state."""
        found = problems_of(small(extra_edges=[edge("reschedule", "returned", None)]))
        assert found == ["transitions.reschedule[returned]: leaves the final state 'returned'"]

    def test_edge_without_roles(self) -> None:
        """An edge nobody may fire names its trigger."""
        found = problems_of(small(extra_edges=[edge("stop", "processing", "returned", ())]))
        assert found == ["transitions.stop[processing]: names no role that may fire it"]

    def test_unknown_role(self) -> None:
        """An edge naming a role dvcflow does not know names the role and the trigger."""
        found = problems_of(
            small(extra_edges=[edge("stop", "processing", "returned", {"leader", "mayor"})])
        )
        assert found == ["transitions.stop[processing]: unknown role 'mayor'"]

    def test_unknown_destination_state(self) -> None:
        """An edge into an undefined state names that state."""
        found = problems_of(small(extra_edges=[edge("stop", "processing", "nowhere")]))
        assert found == ["transitions.stop[processing]: unknown destination state 'nowhere'"]

    def test_unknown_source_state(self) -> None:
        """An edge out of an undefined state names that state."""
        found = problems_of(small(extra_edges=[edge("stop", "nowhere", "returned")]))
        assert found == ["transitions.stop[nowhere]: unknown source state 'nowhere'"]

    def test_no_creating_trigger(self) -> None:
        """A lifecycle without an edge out of the initial pseudo-state cannot create dossiers."""
        spec = small()
        spec = attrs.evolve(spec, transitions=[t for t in spec.transitions if t.source != INITIAL])
        found = problems_of(spec)
        assert "states.initial: no trigger creates a dossier" in found
        assert "states.received: is unreachable from the initial state" in found

    def test_duplicate_state(self) -> None:
        """A state defined twice is named."""
        found = problems_of(small([state("processing")]))
        assert found == ["states.processing: defined twice"]

    def test_initial_is_never_stored(self) -> None:
        """The initial pseudo-state may not be declared as a stored state."""
        found = problems_of(small([state(INITIAL)]))
        assert found == ["states.initial: the initial pseudo-state is never a stored state"]

    def test_no_final_state(self) -> None:
        """A lifecycle without a final state is refused."""
        spec = LifecycleSpec(
            "loop",
            [state("received", 2)],
            [edge("receive", INITIAL, "received", {"receiving_officer"})],
        )
        found = problems_of(spec)
        assert "states: a lifecycle needs at least one final state" in found

    def test_edge_back_to_initial(self) -> None:
        """An edge into the initial pseudo-state is refused."""
        found = problems_of(small(extra_edges=[edge("stop", "processing", INITIAL)]))
        assert "transitions.stop[processing]: returns to the initial pseudo-state" in found

    def test_internal_edge_on_initial(self) -> None:
        """An internal edge on the initial pseudo-state would store it, and is refused."""
        found = problems_of(small(extra_edges=[edge("confirm_payment", INITIAL, None)]))
        assert found == [
            "transitions.confirm_payment[initial]: returns to the initial pseudo-state"
        ]

    def test_every_problem_is_reported_at_once(self) -> None:
        """Several problems come back together, each naming its state or trigger."""
        found = problems_of(
            small(
                [state("limbo"), state("processing")],
                [edge("stop", "processing", "returned", ()), edge("stop", "returned", None)],
            )
        )
        assert len(found) == 4
        assert {item.split(":")[0] for item in found} == {
            "states.processing",
            "states.limbo",
            "transitions.stop[processing]",
            "transitions.stop[returned]",
        }


class TestTemplates:
    @pytest.mark.parametrize("code", CODES)
    def test_every_example_validates(self, code: str) -> None:
        """Every example procedure's lifecycle passes validation and the level rules."""
        procedure = CATALOG.get(code)
        spec = lifecycle_for(procedure)
        validate_lifecycle(spec)
        assert spec.name == f"level-{procedure.level.value}"

    @pytest.mark.parametrize(
        ("template", "code"),
        [
            (level1.template, "2.000815"),
            (level2.template, "2.000575"),
            (level3.template, "1.000894"),
            (level3.template, "1.009994"),
            (level4.template, "2.000488"),
            (level4.template, "1.002804"),
            (level4.template, "1.001193"),
        ],
    )
    def test_every_level_template_validates(self, template: Any, code: str) -> None:
        """Each level's template, built straight from its module, is a valid lifecycle."""
        spec = template(CATALOG.get(code))
        validate_lifecycle(spec)
        assert spec.triggers <= TRIGGERS

    @pytest.mark.parametrize("code", CODES)
    def test_states_map_to_national_statuses(self, code: str) -> None:
        """Every stored state maps onto a national code 1-10 and its portal slug."""
        procedure = CATALOG.get(code)
        steps = {step.name for step in procedure.steps}
        for spec_state in lifecycle_for(procedure).states:
            assert spec_state.name != INITIAL
            assert 1 <= spec_state.status.code <= 10
            assert spec_state.status.slug == SLUGS[spec_state.status.code]
            if spec_state.name in steps:
                assert spec_state.status is NationalStatus.PROCESSING
                assert spec_state.step == spec_state.name
            else:
                assert spec_state.status.code == BUILTIN_CODES[spec_state.name]
            assert spec_state.final is (spec_state.name in FINAL_STATES)

    def test_national_status_table(self) -> None:
        """The enum holds exactly the ten codes of the portal, with their slugs."""
        assert {status.code: status.slug for status in NationalStatus} == SLUGS

    @pytest.mark.parametrize("code", ["2.000815", "2.000575"])
    def test_levels_1_and_2_have_no_submit(self, code: str) -> None:
        """Level 1-2 lifecycles create dossiers only by `receive` at the counter or by post."""
        spec = lifecycle_for(CATALOG.get(code))
        assert "submit" not in spec.triggers
        assert "submitted" not in {s.name for s in spec.states}
        assert [t.trigger for t in spec.outgoing(INITIAL)] == ["receive"]

    @pytest.mark.parametrize("code", ["1.000894", "1.009994", "2.000488", "1.002804", "1.001193"])
    def test_online_levels_submit(self, code: str) -> None:
        """Level 3-4 lifecycles take online submission by the applicant roles."""
        spec = lifecycle_for(CATALOG.get(code))
        submit = [t for t in spec.outgoing(INITIAL) if t.trigger == "submit"]
        assert len(submit) == 1
        assert submit[0].dest == "submitted"
        assert submit[0].roles == {"citizen", "business", "representative"}

    def test_online_only_procedure_has_no_counter_intake(self) -> None:
        """Without a counter or postal channel, `receive` only checks submitted dossiers."""
        data = CATALOG.get("1.001193").to_data()
        data["capabilities"]["channels"] = ["online"]
        del data["cases"]["default"]["durations"]["in_person"]
        spec = lifecycle_for(ProcedureSpec.from_data(data))
        assert [t.trigger for t in spec.outgoing(INITIAL)] == ["submit"]

    def test_return_roles_follow_the_methods(self) -> None:
        """Who returns the result follows the return methods the procedure offers."""
        roles = {
            code: next(
                t.roles
                for t in lifecycle_for(CATALOG.get(code)).transitions
                if t.trigger == "return_result"
            )
            for code in ("2.000815", "1.001193", "2.000488")
        }
        assert roles["2.000815"] == {"receiving_officer"}
        assert roles["1.001193"] == {"postal_worker", "system"}
        assert roles["2.000488"] == {"receiving_officer", "postal_worker", "system"}

    def test_counter_payment_below_level_4(self) -> None:
        """Below level 4 a cashier confirms payments in processing; at level 4 the gateway too."""
        l3 = lifecycle_for(CATALOG.get("1.009994"))
        l4 = lifecycle_for(CATALOG.get("2.000488"))
        assert {
            t.roles
            for t in l3.transitions
            if t.trigger == "confirm_payment" and t.source != "submitted"
        } == {frozenset({"cashier"})}
        assert {t.roles for t in l4.transitions if t.trigger == "confirm_payment"} == {
            frozenset({"system", "cashier"})
        }
        assert "expire_payment" not in l3.triggers
        assert "expire_payment" in l4.triggers

    def test_steps_become_processing_states(self) -> None:
        """Agency steps are chained after `processing` and hand back to it."""
        spec = lifecycle_for(CATALOG.get("1.009994"))
        chain = [
            (t.trigger, t.source, t.dest, t.roles)
            for t in spec.transitions
            if t.trigger == "hand_over"
        ]
        assert chain == [
            ("hand_over", "processing", "appraisal", {"specialist"}),
            ("hand_over", "appraisal", "site_inspection", {"specialist"}),
            ("hand_over", "site_inspection", "approval", {"specialist"}),
            ("hand_over", "approval", "processing", {"leader"}),
        ]

    def test_consultation_leg(self) -> None:
        """A consultation step is opened by `consult` and closed by `answer_consultation`."""
        spec = lifecycle_for(CATALOG.get("2.000488"))
        legs = {
            t.trigger: (t.source, t.dest, t.roles)
            for t in spec.transitions
            if t.trigger in {"consult", "answer_consultation"}
        }
        assert legs == {
            "consult": ("processing", "police_check", {"specialist"}),
            "answer_consultation": ("police_check", "processing", {"external_agency"}),
        }

    def test_waiting_states_return_where_they_came_from(self) -> None:
        """Leaving a waiting state by return has one edge per state it may have interrupted."""
        spec = lifecycle_for(CATALOG.get("1.009994"))
        back = {t.returns_to for t in spec.transitions if t.trigger == "accept_supplement"}
        assert back == {"submitted", "processing", "appraisal", "site_inspection", "approval"}
        for t in spec.transitions:
            if t.returns_to is not None:
                assert t.dest == t.returns_to

    def test_final_states_are_absorbing(self) -> None:
        """No edge of any example lifecycle leaves a final state."""
        for procedure in CATALOG:
            spec = lifecycle_for(procedure)
            finals = {s.name for s in spec.states if s.final}
            assert finals == FINAL_STATES & {s.name for s in spec.states}
            assert not [t for t in spec.transitions if t.source in finals]


class TestLevelRules:
    def test_presence_step_makes_a_procedure_partial(self) -> None:
        """Declaring a presence step on an otherwise full-process procedure makes it partial."""
        data = CATALOG.get("1.001193").to_data()
        data["capabilities"]["presence_steps"] = ["receive"]
        procedure = ProcedureSpec.from_data(data)
        assert procedure.level is Level.ONLINE_PAYMENT
        assert procedure.online_class is OnlineClass.PARTIAL
        lifecycle_for(procedure)

    def test_full_procedure_with_presence_step_is_refused(self) -> None:
        """A procedure claimed `full` that has a presence step is refused, naming the step."""
        data = CATALOG.get("1.001193").to_data()
        data["steps"] = [
            {
                "name": "identity_check",
                "kind": "inspection",
                "roles": ["specialist"],
                "requires_presence": True,
            },
        ]
        procedure = ProcedureSpec.from_data(data)
        # The derivation would say `partial`; a hand-made claim of `full` must still be caught.
        object.__setattr__(
            procedure, "derivation", Derivation(Level.ONLINE_PAYMENT, OnlineClass.FULL)
        )
        with pytest.raises(InvalidDefinitionError) as caught:
            lifecycle_for(procedure)
        assert [(p.path, p.message) for p in caught.value.problems] == [
            ("steps.identity_check", "a full-process procedure has no presence step")
        ]

    def test_level_2_with_submit_is_refused(self) -> None:
        """A level 1-2 lifecycle that somehow offers `submit` breaks the level rules."""
        procedure = CATALOG.get("2.000575")
        online = level3.template(procedure)
        assert "submit" in online.triggers
        with pytest.raises(InvalidDefinitionError, match="levels 1-2 take no online submission"):
            _check_level_rules(procedure, online, "test")

    @pytest.mark.parametrize("name", ["processing", "resolve", "initial"])
    def test_step_named_like_a_builtin_is_refused(self, name: str) -> None:
        """A step may not take the name of a built-in state or trigger."""
        data = CATALOG.get("1.009994").to_data()
        data["steps"][0]["name"] = name
        with pytest.raises(InvalidDefinitionError) as caught:
            lifecycle_for(ProcedureSpec.from_data(data))
        assert [(p.path, p.message) for p in caught.value.problems] == [
            ("steps[0].name", f"{name!r} is a built-in name")
        ]


class TestPermissions:
    @staticmethod
    def narrowed(permissions: dict[str, list[str]]) -> ProcedureSpec:
        data = CATALOG.get("2.000488").to_data()
        data["permissions"] = permissions
        return ProcedureSpec.from_data(data)

    def test_narrowing_works(self) -> None:
        """An agency may narrow a trigger's roles; every edge of the trigger is narrowed."""
        spec = lifecycle_for(
            self.narrowed({"request_payment": ["cashier"], "reassign": ["department_head"]})
        )
        payment = {t.roles for t in spec.transitions if t.trigger == "request_payment"}
        reassign = {t.roles for t in spec.transitions if t.trigger == "reassign"}
        assert payment == {frozenset({"cashier"})}
        assert reassign == {frozenset({"department_head"})}
        untouched = {t.roles for t in spec.transitions if t.trigger == "resolve"}
        assert untouched == {frozenset({"leader"})}

    def test_widening_is_an_error(self) -> None:
        """A permission granting a role the default table does not is refused."""
        with pytest.raises(InvalidDefinitionError) as caught:
            lifecycle_for(self.narrowed({"resolve": ["leader", "specialist"]}))
        assert [(p.path, p.message) for p in caught.value.problems] == [
            ("permissions.resolve", "may only narrow the default roles; 'specialist' is not one")
        ]

    def test_unknown_trigger_is_an_error(self) -> None:
        """A permission for a trigger the lifecycle lacks is refused, naming the trigger."""
        with pytest.raises(InvalidDefinitionError) as caught:
            lifecycle_for(self.narrowed({"fly": ["leader"]}))
        assert [(p.path, p.message) for p in caught.value.problems] == [
            ("permissions.fly", "the level-4 lifecycle has no trigger 'fly'")
        ]

    def test_trigger_of_another_level_is_unknown(self) -> None:
        """Narrowing `submit` at level 1 names the trigger the level lacks."""
        data = CATALOG.get("2.000815").to_data()
        data["permissions"] = {"submit": ["citizen"]}
        with pytest.raises(InvalidDefinitionError, match="level-1 lifecycle has no trigger"):
            lifecycle_for(ProcedureSpec.from_data(data))

    def test_narrowing_an_edge_to_nobody_is_an_error(self) -> None:
        """Narrowing that leaves some edge of a trigger without roles fails validation."""
        with pytest.raises(InvalidDefinitionError) as caught:
            lifecycle_for(self.narrowed({"request_supplement": ["receiving_officer"]}))
        assert {p.path for p in caught.value.problems} == {
            "transitions.request_supplement[processing]",
            "transitions.request_supplement[police_check]",
        }
