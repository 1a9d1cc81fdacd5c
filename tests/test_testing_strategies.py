"""The public hypothesis strategies of `dvcflow.testing.strategies`: what each draw promises.

Every strategy is checked against the library itself: drawn applicants rebuild through
`Applicant`, drawn procedures load and build their lifecycle, drawn invalid definitions are
refused with the problem they carry, and drawn command sequences fired at a real `Engine`
raise nothing but `DvcflowError`. That a variant is drawn at all is shown with `hypothesis.find`
on the generate phase only (without shrinking, a find costs what its draws do), or with `met`,
which draws many values per example, for variants a plain run rarely reaches.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import itertools
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, Phase, assume, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from dvcflow import (
    Actor,
    ActorKind,
    Applicant,
    ApplicantType,
    Catalog,
    Channel,
    Dossier,
    DossierSnapshot,
    DvcflowError,
    Engine,
    FrozenClock,
    InvalidDefinitionError,
    Kernel,
    Level,
    OnlineClass,
    ProcedureSpec,
)
from dvcflow._lifecycle import TRIGGERS
from dvcflow._values import APPLICANT_ROLES, ROLES
from dvcflow.levels import lifecycle_for
from dvcflow.plugins.fake import FakeBackend
from dvcflow.testing import OWNER, Command, InvalidDefinition, check_definition, strategies
from dvcflow.testing._invalid import MUTATIONS, Mutation
from dvcflow.testing._payloads import KEYS, pool
from dvcflow.testing._procedures import EXTERNAL_AGENCIES
from dvcflow.testing._rigs import KEY_ENV, fake_config

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "procedures"
CATALOG = Catalog.from_path(EXAMPLES)
BY_CODE = {procedure.code: procedure for procedure in CATALOG}
CERTIFIED_COPY = BY_CODE["2.000815"]  # level 1, at the counter only
BIRTH = BY_CODE["1.001193"]  # level 4, full process
CONSTRUCTION = BY_CODE["1.009994"]  # level 3, with agency steps
JUDICIAL_RECORD = BY_CODE["2.000488"]  # level 4, partial, consulting the police

START = strategies.STARTS[4]
"""Where replayed stories start: a Monday morning of the VNeID rule pack."""
AFTER = START + dt.timedelta(days=1)
"""Later than any replayed command (at most 20, half an hour apart): when the next is drawn."""

SOME = settings(max_examples=40, deadline=None)
"""The bound of a property over cheap draws (identifiers, applicants, actors)."""
FEW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""The bound of a property over costly draws (procedures, definitions, sequences)."""


def reach(strategy: st.SearchStrategy[T], condition: Callable[[T], object], tries: int = 400) -> T:
    """A draw satisfying ``condition``, found on the generate phase (no shrinking)."""
    return find(
        strategy,
        condition,
        settings=settings(max_examples=tries, phases=[Phase.generate], database=None),
    )


def met(
    strategy: st.SearchStrategy[T], conditions: Mapping[str, Callable[[T], object]]
) -> set[str]:
    """The names of the ``conditions`` some draws of ``strategy`` meet (up to 500 draws).

    Values are drawn 25 to an example: hypothesis tries several variations of each example
    it generates, which keep its first choices, so one value per example explores far less
    (a run of 100 examples of `invalid_definitions` makes about half of the mistakes).
    """
    seen: set[str] = set()

    def names(value: T) -> frozenset[str]:
        return frozenset(name for name, condition in conditions.items() if condition(value))

    def every_one_met(drawn: list[frozenset[str]]) -> bool:
        seen.update(*drawn)
        return len(seen) == len(conditions)

    with contextlib.suppress(NoSuchExample):
        find(
            st.lists(strategy.map(names), min_size=25, max_size=25),
            every_one_met,
            settings=settings(
                max_examples=20,
                phases=[Phase.generate],
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    return seen


def replay(kernel: Kernel, sequence: list[Command], start: dt.datetime) -> list[Dossier | None]:
    """The dossier after each command, decided by the pure kernel half an hour apart."""
    dossier: Dossier | None = None
    now = start
    reached = []
    for command in sequence:
        now += dt.timedelta(minutes=30)
        try:
            decision = kernel.decide(
                dossier,
                command.trigger,
                actor=command.actor,
                payload=command.payload,
                now=now,
                dossier_id="replayed",
            )
        except DvcflowError:
            pass
        else:
            dossier = decision.dossier
        reached.append(dossier)
    return reached


def reached_dossiers(procedure: ProcedureSpec) -> st.SearchStrategy[Dossier]:
    """Dossiers of ``procedure`` in the state a drawn command sequence leaves them in.

    Replayed from `START`, the last command is decided before `AFTER`.
    """
    kernel = Kernel(procedure)
    sequences = strategies.command_sequences(procedure, min_size=1, max_size=12)

    @st.composite
    def build(draw: st.DrawFn) -> Dossier:
        dossier = replay(kernel, draw(sequences), START)[-1]
        assume(dossier is not None)
        assert dossier is not None
        return dossier

    return build()


# -- identifiers -------------------------------------------------------------------------------


class TestIdentifiers:
    @SOME
    @given(strategies.citizen_ids())
    def test_citizen_ids_are_accepted_for_citizens(self, citizen_id: str) -> None:
        """A drawn citizen id is 12 digits from a province 001-096, and a citizen may hold it."""
        assert re.fullmatch(r"[0-9]{12}", citizen_id)
        assert 1 <= int(citizen_id[:3]) <= 96
        applicant = Applicant(ApplicantType.CITIZEN, citizen_id, "Lê Văn An")
        assert applicant.identifier == citizen_id

    def test_citizen_ids_vary_in_province_and_century(self) -> None:
        """Drawn citizen ids come from the first and last provinces and from both centuries."""
        wanted: dict[str, Callable[[str], object]] = {
            "province 001": lambda cid: cid.startswith("001"),
            "province 09x": lambda cid: cid.startswith("09"),
            "20th century": lambda cid: cid[3] in "01",
            "21st century": lambda cid: cid[3] in "23",
        }
        assert met(strategies.citizen_ids(), wanted) == set(wanted)

    @SOME
    @given(strategies.tax_codes())
    def test_tax_codes_are_accepted_for_businesses(self, code: str) -> None:
        """A drawn tax code is taken by a business as its identifier, without its dash."""
        applicant = Applicant(ApplicantType.BUSINESS, code, "Công ty TNHH Đông Á")
        assert applicant.identifier == code.replace("-", "")
        assert len(applicant.identifier) in {10, 13}

    @pytest.mark.parametrize(
        "written",
        [r"[0-9]{10}", r"[0-9]{13}", r"[0-9]{10}-[0-9]{3}"],
        ids=["head", "branch", "dash"],
    )
    def test_every_way_of_writing_a_tax_code_is_drawn(self, written: str) -> None:
        """The head office's 10 digits, a branch's 13, and a branch written with its dash."""
        reach(strategies.tax_codes(), lambda code: re.fullmatch(written, code))

    @SOME
    @given(strategies.mobiles())
    def test_mobiles_are_accepted_and_normalised(self, mobile: str) -> None:
        """A drawn mobile number is taken as an applicant's phone, stored as ``0xxxxxxxxx``."""
        applicant = Applicant(ApplicantType.CITIZEN, "001090000001", "Lê Văn An", phone=mobile)
        assert applicant.phone is not None
        assert re.fullmatch(r"0[35789][0-9]{8}", applicant.phone)
        assert applicant.phone[-7:] == re.sub(r"\D", "", mobile)[-7:]

    @pytest.mark.parametrize(
        "written",
        [r"0[0-9]{9}", r"\+84[0-9]{9}", r"84[0-9]{9}", r"0[0-9]{3} [0-9]{3} [0-9]{3}"],
        ids=["plain", "plus-84", "84", "spaced"],
    )
    def test_every_way_of_typing_a_mobile_is_drawn(self, written: str) -> None:
        """Numbers are drawn as people type them: plain, ``+84``, ``84`` and with spaces."""
        reach(strategies.mobiles(), lambda mobile: re.fullmatch(written, mobile))

    @SOME
    @given(strategies.emails())
    def test_emails_are_accepted(self, email: str) -> None:
        """A drawn email address is taken as an applicant's email, unchanged."""
        applicant = Applicant(ApplicantType.CITIZEN, "001090000001", "Lê Văn An", email=email)
        assert applicant.email == email

    def test_emails_use_several_domains(self) -> None:
        """Drawn addresses are on a government domain as well as on public ones."""
        reach(strategies.emails(), lambda email: email.endswith("@mail.gov.vn"))
        reach(strategies.emails(), lambda email: email.endswith("@gmail.com"))

    @SOME
    @given(strategies.starts())
    def test_starts_are_the_listed_aware_instants(self, start: dt.datetime) -> None:
        """A story starts at one of `STARTS`, an aware instant in Vietnam's time."""
        assert start in strategies.STARTS
        assert start.utcoffset() == dt.timedelta(hours=7)


# -- applicants --------------------------------------------------------------------------------


def rebuilt(applicant: Applicant) -> Applicant:
    """The applicant rebuilt through the public constructor from its own fields."""
    return Applicant(**attrs.asdict(applicant, recurse=False))


class TestApplicants:
    @SOME
    @given(strategies.applicants())
    def test_every_draw_is_a_valid_applicant(self, applicant: Applicant) -> None:
        """A drawn applicant rebuilds through `Applicant` and from its plain data, unchanged."""
        assert rebuilt(applicant) == applicant
        plain = attrs.asdict(applicant, recurse=False)
        plain |= {"kind": applicant.kind.value, "employees": sorted(applicant.employees)}
        assert Applicant.from_data(plain) == applicant

    @pytest.mark.parametrize("kind", list(ApplicantType), ids=lambda kind: kind.value)
    def test_kinds_are_respected(self, kind: ApplicantType) -> None:
        """Only applicants of the kinds asked for are drawn, with that kind's identifier."""

        @SOME
        @given(strategies.applicants([kind]))
        def check(applicant: Applicant) -> None:
            assert applicant.kind is kind
            if kind is ApplicantType.CITIZEN:
                assert len(applicant.identifier) == 12
                assert not applicant.employees
            elif kind is ApplicantType.BUSINESS:
                assert len(applicant.identifier) in {10, 13}

        check()

    def test_a_household_business_holds_either_identifier(self) -> None:
        """A household business is drawn with a citizen id and with a tax code."""
        households = strategies.applicants([ApplicantType.HOUSEHOLD_BUSINESS])
        reach(households, lambda applicant: len(applicant.identifier) == 12)
        reach(households, lambda applicant: len(applicant.identifier) != 12)
        reach(households, lambda applicant: applicant.employees)

    @SOME
    @given(strategies.applicants(contacts=True))
    def test_contacts_true_gives_phone_and_email(self, applicant: Applicant) -> None:
        """``contacts=True``: both a mobile number and an email."""
        assert applicant.phone is not None
        assert applicant.email is not None
        assert applicant.has_contact

    @SOME
    @given(strategies.applicants(contacts=False))
    def test_contacts_false_gives_at_most_one(self, applicant: Applicant) -> None:
        """``contacts=False``: a mobile number, an email, or neither, never both."""
        assert not applicant.has_contact

    @pytest.mark.parametrize(
        "has",
        [
            lambda a: a.phone and not a.email,
            lambda a: a.email and not a.phone,
            lambda a: not a.phone and not a.email,
        ],
        ids=["phone only", "email only", "neither"],
    )
    def test_contacts_false_draws_each_shortfall(self, has: Callable[[Applicant], object]) -> None:
        """Without both contacts, the phone alone, the email alone and neither are all drawn."""
        reach(strategies.applicants(contacts=False), has)

    def test_contacts_none_draws_either(self) -> None:
        """``contacts=None``: applicants with both contacts and without are drawn."""
        reach(strategies.applicants(contacts=None), lambda applicant: applicant.has_contact)
        reach(strategies.applicants(contacts=None), lambda applicant: not applicant.has_contact)

    @pytest.mark.parametrize("vneid", [True, False])
    def test_vneid_is_respected_for_citizens(self, vneid: bool) -> None:
        """``vneid``: whether a citizen's account is verified; other kinds never are."""

        @SOME
        @given(strategies.applicants(vneid=vneid))
        def check(applicant: Applicant) -> None:
            citizen = applicant.kind is ApplicantType.CITIZEN
            assert applicant.vneid_verified is (vneid and citizen)

        check()

    def test_vneid_none_draws_either(self) -> None:
        """``vneid=None``: verified and unverified citizens are both drawn."""
        citizens = strategies.applicants([ApplicantType.CITIZEN])
        reach(citizens, lambda applicant: applicant.vneid_verified)
        reach(citizens, lambda applicant: not applicant.vneid_verified)

    def test_no_kind_is_an_error(self) -> None:
        """Asking for applicants of no kind at all is refused at once."""
        with pytest.raises(ValueError, match="at least one applicant type"):
            strategies.applicants([])


# -- actors ------------------------------------------------------------------------------------


def consulted(procedure: ProcedureSpec | None) -> set[str]:
    """The agencies in scope for ``external_agency`` staff: those the consultations address."""
    if procedure is None:
        return set(EXTERNAL_AGENCIES)
    return {step.agency for step in procedure.steps if step.agency} or set(EXTERNAL_AGENCIES)


def in_scope(actor: Actor, procedure: ProcedureSpec | None, owner: str) -> bool:
    """Whether ``actor`` is in the scope `actors` documents: agency, consultation or owner."""
    if actor.kind is ActorKind.SYSTEM:
        return True
    if actor.kind is ActorKind.APPLICANT:
        return owner in {actor.id, actor.acting_for}
    if actor.roles == {"external_agency"}:
        return actor.agency in consulted(procedure)
    agency = procedure.agency if procedure is not None else "UBND-XA.001"
    return actor.agency == agency


class TestActors:
    @pytest.mark.parametrize("role", sorted(ROLES))
    def test_each_role_alone(self, role: str) -> None:
        """``roles=[r]``: every actor holds ``r``, on the side of the counter ``r`` belongs to."""

        @SOME
        @given(strategies.actors(roles=[role]))
        def check(actor: Actor) -> None:
            assert actor.roles == {role}
            if role == "system":
                assert actor.kind is ActorKind.SYSTEM
            elif role in APPLICANT_ROLES:
                assert actor.kind is ActorKind.APPLICANT
            else:
                assert actor.kind is ActorKind.STAFF

        check()

    @SOME
    @given(strategies.actors(roles=["specialist", "leader", "cashier"]))
    def test_staff_hold_one_or_two_of_the_roles(self, actor: Actor) -> None:
        """A staff actor holds its drawn role, sometimes with a second one of those asked for."""
        assert actor.roles <= {"specialist", "leader", "cashier"}
        assert 1 <= len(actor.roles) <= 2

    def test_staff_sometimes_hold_two_roles(self) -> None:
        """Two roles at once are drawn (one officer may be both specialist and leader)."""
        reach(strategies.actors(roles=["specialist", "leader"]), lambda a: len(a.roles) == 2)

    @pytest.mark.parametrize("inside", [True, False], ids=["in scope", "out of scope"])
    @pytest.mark.parametrize(
        "procedure",
        [None, CERTIFIED_COPY, CONSTRUCTION, JUDICIAL_RECORD],
        ids=["none", "level 1", "with steps", "consulting"],
    )
    def test_scope_is_respected(self, procedure: ProcedureSpec | None, inside: bool) -> None:
        """``in_scope``: the agency, consulted agency or owner scope holds, or does not."""

        @SOME
        @given(strategies.actors(procedure, in_scope=inside))
        def check(actor: Actor) -> None:
            assert in_scope(actor, procedure, OWNER) is (inside or actor.kind is ActorKind.SYSTEM)
            if not inside and actor.kind is ActorKind.STAFF:
                assert actor.agency == strategies.OTHER_AGENCY

        check()

    def test_scope_none_draws_either(self) -> None:
        """``in_scope=None``: staff of the procedure's agency and of another are both drawn."""
        staff = strategies.actors(CERTIFIED_COPY, roles=["specialist"])
        reach(staff, lambda actor: actor.agency == CERTIFIED_COPY.agency)
        reach(staff, lambda actor: actor.agency == strategies.OTHER_AGENCY)

    @pytest.mark.parametrize("owner", [OWNER, "acc-2", "acc-3", "biz-9", "rep-1"])
    def test_another_owner_is_respected(self, owner: str) -> None:
        """``owner``: applicants in scope own or act for it; out of scope they do neither."""
        roles = sorted(APPLICANT_ROLES)

        @SOME
        @given(
            strategies.actors(roles=roles, in_scope=True, owner=owner),
            strategies.actors(roles=roles, in_scope=False, owner=owner),
        )
        def check(inside: Actor, outside: Actor) -> None:
            assert owner in {inside.id, inside.acting_for}
            assert owner not in {outside.id, outside.acting_for}

        check()

    def test_applicants_acting_for_the_owner_are_drawn(self) -> None:
        """In scope: the owner itself, a business for its employee, a representative."""
        inside = strategies.actors(roles=APPLICANT_ROLES, in_scope=True)
        reach(inside, lambda actor: actor.id == OWNER and actor.acting_for is None)
        reach(inside, lambda actor: "business" in actor.roles and actor.acting_for == OWNER)
        reach(inside, lambda actor: "representative" in actor.roles)

    @FEW
    @given(st.data())
    def test_scope_is_the_kernels(self, data: st.DataObject) -> None:
        """The kernel lets an in-scope actor fire its role's triggers, an out-of-scope one none."""
        procedure = data.draw(
            st.sampled_from([CERTIFIED_COPY, CONSTRUCTION, JUDICIAL_RECORD, BIRTH])
        )
        dossier = data.draw(reached_dossiers(procedure))
        # The scope `actors` knows is the owner's; the one who filed online is in scope too.
        assume(dossier.owner is not None and dossier.filed_by in {None, dossier.owner})
        kernel = Kernel(procedure)
        # A postal worker's scope is the dossier's delivery, an external agency's its leg.
        roles = ROLES - {"system", "postal_worker", "external_agency"}
        inside = data.draw(
            strategies.actors(procedure, roles=roles, in_scope=True, owner=dossier.owner)
        )
        outside = data.draw(
            strategies.actors(procedure, roles=roles, in_scope=False, owner=dossier.owner)
        )
        edges = kernel.lifecycle.outgoing(dossier.state)
        assert set(kernel.allowed_now(dossier, inside)) == {
            edge.trigger for edge in edges if edge.roles & inside.roles
        }
        assert kernel.allowed_now(dossier, outside) == ()

    @SOME
    @given(strategies.actors(JUDICIAL_RECORD, roles=["external_agency"], in_scope=True))
    def test_external_agencies_in_scope_are_the_consulted_ones(self, actor: Actor) -> None:
        """In scope, an external agency is one the procedure's consultations address."""
        addressed = {step.agency for step in JUDICIAL_RECORD.steps if step.agency}
        assert addressed
        assert actor.agency in addressed

    def test_no_known_role_is_an_error(self) -> None:
        """Asking for actors of no role dvcflow knows is refused at once."""
        with pytest.raises(ValueError, match="at least one known role"):
            strategies.actors(roles=["wizard"])


# -- procedures --------------------------------------------------------------------------------

LEVEL_CLASSES = [
    (Level.INFORMATION, None),
    (Level.FORMS, None),
    (Level.ONLINE_SUBMISSION, OnlineClass.PARTIAL),
    (Level.ONLINE_PAYMENT, OnlineClass.PARTIAL),
    (Level.ONLINE_PAYMENT, OnlineClass.FULL),
]


def steps_of(kind: str) -> Callable[[ProcedureSpec], bool]:
    """Whether a procedure has a step of ``kind``."""
    return lambda procedure: any(step.kind.value == kind for step in procedure.steps)


def fee_of(condition: Callable[[Any], bool]) -> Callable[[ProcedureSpec], bool]:
    """Whether a procedure has a fee satisfying ``condition``."""
    return lambda procedure: any(condition(fee) for case in procedure.cases for fee in case.fees)


EXTENSIONS: Mapping[str, Callable[[ProcedureSpec], object]] = {
    "appraisal step": steps_of("appraisal"),
    "approval step": steps_of("approval"),
    "inspection step": steps_of("inspection"),
    "consultation of another agency": lambda p: any(s.agency for s in p.steps),
    "step needing presence": lambda p: any(s.requires_presence for s in p.steps),
    "presence steps": lambda p: p.capabilities.presence_steps,
    "sign-off of the result": lambda p: "result" in {k.value for k in p.sign_off},
    "sign-off of a supplement request": lambda p: (
        "supplement_request" in {k.value for k in p.sign_off}
    ),
    "narrowed permissions": lambda p: p.permissions,
    "pinned rule pack": lambda p: p.rule_pack is not None,
    "intake cut-off": lambda p: p.intake_cutoff is not None,
    "form fields": lambda p: p.form_fields,
    "choice field": lambda p: any(f.type.value == "choice" for f in p.form_fields),
    "second case": lambda p: len(p.cases) == 2,
    "fees": lambda p: p.charges_fees,
    "per-channel fee amounts": fee_of(lambda fee: len(fee.amounts) >= 2),
    "fee exemptions": fee_of(lambda fee: fee.exemptions),
    "per-channel durations": lambda p: any(
        len({duration for _channel, duration in case.durations}) >= 2 for case in p.cases
    ),
    "components": lambda p: any(case.components for case in p.cases),
    "postal intake": lambda p: "postal" in {c.value for c in p.capabilities.channels},
    "declared level": lambda p: p.declared_level is not None,
}
"""The optional parts `procedures` documents, each as a property of a drawn procedure."""


class TestProcedures:
    @FEW
    @given(strategies.procedure_data([3]))
    def test_procedure_data_takes_levels_as_numbers(self, data: dict[str, Any]) -> None:
        """``procedure_data`` accepts a level by its number, as ``procedures`` does."""
        assert check_definition(data).level is Level.ONLINE_SUBMISSION

    def test_nothing_to_draw_from_is_refused_at_once(self) -> None:
        """No level, or level 4 with no class, is a ValueError when the strategy is made."""
        with pytest.raises(ValueError, match="at least one level"):
            strategies.procedures([])
        with pytest.raises(ValueError, match="at least one online class"):
            strategies.procedures([Level.ONLINE_PAYMENT], classes=[])
        with pytest.raises(ValueError, match="is not a valid Level"):
            strategies.procedures([7])

    @pytest.mark.parametrize(
        ("level", "klass"), LEVEL_CLASSES, ids=["1", "2", "3", "4-partial", "4-full"]
    )
    def test_level_and_class_are_the_requested_ones(
        self, level: Level, klass: OnlineClass | None
    ) -> None:
        """A procedure drawn at one level (and class) derives exactly that level and class."""
        classes = [klass] if klass is not None else list(OnlineClass)

        @FEW
        @given(strategies.procedures([level], classes=classes))
        def check(procedure: ProcedureSpec) -> None:
            assert procedure.level is level
            assert procedure.online_class is klass
            if procedure.declared_level is not None:
                assert procedure.declared_level == level.value

        check()

    @FEW
    @given(strategies.procedures())
    def test_every_draw_loads_and_builds_its_lifecycle(self, procedure: ProcedureSpec) -> None:
        """A drawn procedure's lifecycle builds, and a kernel on it starts with an intake."""
        lifecycle = lifecycle_for(procedure)
        kernel = Kernel(procedure)
        assert kernel.lifecycle == lifecycle
        assert {"submit", "receive"} & set(kernel.triggers_from("initial"))
        assert "returned" in {state.name for state in lifecycle.states}

    @FEW
    @given(strategies.procedures([1, 2]))
    def test_levels_are_taken_as_numbers(self, procedure: ProcedureSpec) -> None:
        """Levels may be given as their numbers, as definitions write them."""
        assert procedure.level in {Level.INFORMATION, Level.FORMS}

    def test_every_level_and_class_is_drawn(self) -> None:
        """Without arguments, every level and both 2022 classes are drawn."""
        for level, klass in LEVEL_CLASSES:
            reach(
                strategies.procedures(),
                lambda p, level=level, klass=klass: (p.level, p.online_class) == (level, klass),
            )

    @pytest.mark.parametrize("name", list(EXTENSIONS))
    def test_extension_is_drawn(self, name: str) -> None:
        """Each optional part the docstring lists appears in some drawn procedures."""
        reach(strategies.procedures(), EXTENSIONS[name])

    def test_extensions_are_drawn_together(self) -> None:
        """Agency steps with a consultation and sign-off come in one procedure, at level 4."""
        reach(
            strategies.procedures([Level.ONLINE_PAYMENT]),
            lambda p: (
                EXTENSIONS["consultation of another agency"](p) and p.sign_off and p.charges_fees
            ),
        )

    @FEW
    @given(strategies.procedure_data())
    def test_procedure_data_is_what_check_definition_loads(self, data: dict[str, Any]) -> None:
        """Drawn data loads through `check_definition` as `ProcedureSpec.from_data` loads it."""
        spoilt_later = copy.deepcopy(data)
        procedure = check_definition(data)
        assert procedure == ProcedureSpec.from_data(spoilt_later)
        assert data == spoilt_later, "loading changed the definition"


class TestCheckDefinition:
    def test_the_lifecycle_is_checked_too(self) -> None:
        """A definition the loader takes but whose lifecycle is broken is refused."""
        data = reach(strategies.procedure_data((Level.ONLINE_SUBMISSION,)), lambda _: True)
        data["permissions"] = {"request_supplement": ["specialist"]}
        ProcedureSpec.from_data(copy.deepcopy(data))  # the fields alone are fine
        with pytest.raises(InvalidDefinitionError) as raised:
            check_definition(data, source="drawn.toml")
        assert "drawn.toml" in str(raised.value)
        assert any(
            problem.path == "transitions.request_supplement[submitted]"
            for problem in raised.value.problems
        )


# -- invalid definitions -----------------------------------------------------------------------


class TestInvalidDefinitions:
    @FEW
    @given(strategies.invalid_definitions())
    def test_every_draw_is_refused_with_its_problem(self, invalid: InvalidDefinition) -> None:
        """Loading a drawn definition raises `InvalidDefinitionError` naming its problem."""
        with pytest.raises(InvalidDefinitionError) as raised:
            check_definition(invalid.data)
        assert type(raised.value) is InvalidDefinitionError
        assert any(
            problem.path == invalid.path and invalid.message in problem.message
            for problem in raised.value.problems
        ), (invalid.mistake, raised.value.problems)
        assert type(invalid.check()) is InvalidDefinitionError
        assert invalid.mistake in {mutation.name for mutation in MUTATIONS}

    @pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda mutation: mutation.name)
    def test_the_mistake_is_the_only_one(self, mutation: Mutation) -> None:
        """Each kind of mistake spoils a definition that loads; the refusal names that mistake."""

        @settings(max_examples=4, deadline=None)
        @given(st.data())
        def check(data: st.DataObject) -> None:
            valid = data.draw(strategies.procedure_data(mutation.levels), label="valid")
            check_definition(copy.deepcopy(valid))
            spoilt = copy.deepcopy(valid)
            path, message = mutation.apply(data.draw, spoilt)
            assert spoilt != valid
            InvalidDefinition(spoilt, path, message, mutation.name).check()

        check()

    def test_every_mutation_is_drawn(self) -> None:
        """Every kind of mistake in `MUTATIONS` is made by some draws."""
        kinds = {m.name: lambda invalid, name=m.name: invalid.mistake == name for m in MUTATIONS}
        assert set(kinds) - met(strategies.invalid_definitions(), kinds) == set()

    def test_mutation_names_are_unique(self) -> None:
        """Each kind of mistake has its own name (the name is how a failure reports it)."""
        names = [mutation.name for mutation in MUTATIONS]
        assert len(names) == len(set(names))

    def test_check_fails_when_the_definition_loads(self) -> None:
        """`check` is an assertion: a definition that loads fails it."""
        valid = reach(strategies.procedure_data(), lambda _: True)
        with pytest.raises(AssertionError, match="the definition loaded"):
            InvalidDefinition(valid, "code", "anything", "nothing wrong").check()

    def test_check_fails_on_another_problem(self) -> None:
        """`check` fails when the refusal does not name the expected path and message."""
        invalid = reach(
            strategies.invalid_definitions(), lambda invalid: invalid.mistake == "misspelt key"
        )
        with pytest.raises(AssertionError, match="misspelt key: expected"):
            attrs.evolve(invalid, path="code").check()
        with pytest.raises(AssertionError, match="expected"):
            attrs.evolve(invalid, message="something else entirely").check()


# -- commands ----------------------------------------------------------------------------------

KNOWN = TRIGGERS | {"fly"}
"""Triggers a command may carry: every trigger dvcflow knows, and one it does not."""
PAYLOAD_KEYS = {key for keys in KEYS.values() for key in keys} | {"x"}
"""Keys a payload may hold: those some trigger reads, and one none does."""


def plausible_intake(command: Command, procedure: ProcedureSpec) -> bool:
    """Whether a first command is an intake of the parts its trigger reads, well typed."""
    payload = command.payload
    if command.trigger not in {"submit", "receive"}:
        return False
    if not set(payload) <= set(KEYS[command.trigger]):
        return False
    applicant = payload.get("applicant")
    return (
        isinstance(applicant, Applicant)
        and applicant.kind in procedure.applicant_types
        and isinstance(payload.get("form"), dict)
        and isinstance(payload.get("documents"), list)
    )


class TestCommands:
    @FEW
    @given(st.data())
    def test_first_commands(self, data: st.DataObject) -> None:
        """Without a dossier: a known trigger, an actor of the pool, a payload of known keys."""
        procedure = data.draw(st.sampled_from(list(CATALOG)))
        command = data.draw(strategies.commands(procedure))
        assert isinstance(command, Command)
        assert command.trigger in KNOWN
        assert command.actor in pool(procedure)
        assert set(command.payload) <= PAYLOAD_KEYS

    @pytest.mark.parametrize("procedure", [CERTIFIED_COPY, BIRTH], ids=["counter", "online"])
    def test_first_commands_are_intakes(self, procedure: ProcedureSpec) -> None:
        """A first command is drawn as an intake the procedure can take, by someone who may."""
        kernel = Kernel(procedure)

        def accepted(command: Command) -> bool:
            try:
                kernel.decide(
                    None,
                    command.trigger,
                    actor=command.actor,
                    payload=command.payload,
                    now=strategies.STARTS[4],
                    dossier_id="drawn",
                )
            except DvcflowError:
                return False
            return True

        first = strategies.commands(procedure)
        intake = reach(first, lambda command: plausible_intake(command, procedure))
        assert intake.trigger in kernel.triggers_from("initial")
        reach(first, accepted)

    @pytest.mark.parametrize("trigger", ["submit", "receive"])
    def test_both_intake_triggers_are_drawn(self, trigger: str) -> None:
        """Online submission and reception at the counter are both drawn where both exist."""
        reach(strategies.commands(BIRTH), lambda command: command.trigger == trigger)

    @FEW
    @given(st.data())
    def test_commands_for_a_dossier(self, data: st.DataObject) -> None:
        """With a dossier: a known trigger, an actor of the pool, payload keys it may carry."""
        procedure = data.draw(
            st.sampled_from([CERTIFIED_COPY, CONSTRUCTION, JUDICIAL_RECORD, BIRTH])
        )
        dossier = data.draw(reached_dossiers(procedure))
        command = data.draw(strategies.commands(procedure, dossier, now=AFTER))
        assert command.trigger in KNOWN
        assert command.actor in pool(procedure)
        assert set(command.payload) <= PAYLOAD_KEYS

    def test_commands_for_a_dossier_leave_its_state(self) -> None:
        """Drawn for a dossier, commands are of its state, by one who may fire them, or not."""
        kernel = Kernel(CONSTRUCTION)
        dossier = reach(reached_dossiers(CONSTRUCTION), lambda d: d.state == "processing")
        drawn = strategies.commands(CONSTRUCTION, dossier, now=AFTER)
        here = set(kernel.triggers_from(dossier.state))

        def fit(command: Command) -> bool:
            return (
                command.trigger in here
                and command.trigger in kernel.allowed_now(dossier, command.actor)
                and set(command.payload) == set(KEYS.get(command.trigger, ()))
            )

        reach(drawn, fit)
        reach(drawn, lambda command: command.trigger not in here)
        reach(
            drawn,
            lambda command: (
                command.trigger in here
                and command.trigger not in kernel.allowed_now(dossier, command.actor)
            ),
        )

    @pytest.mark.parametrize(
        "payload",
        [
            lambda p: any(v is None or isinstance(v, float) for v in p.values()),
            lambda p: any(isinstance(v, dt.datetime) and v.tzinfo is None for v in p.values()),
            lambda p: "x" in p,
        ],
        ids=["wrong types", "naive instant", "unread key"],
    )
    def test_garbage_payloads_are_drawn(self, payload: Callable[[Mapping[str, Any]], bool]) -> None:
        """Payloads are sometimes garbage: values of the wrong type, naive instants, stray keys."""
        reach(strategies.commands(CERTIFIED_COPY), lambda command: payload(command.payload), 800)

    def test_unknown_triggers_are_drawn(self) -> None:
        """Commands carry triggers the lifecycle lacks or no lifecycle knows, even when finished."""
        lifecycle = Kernel(CERTIFIED_COPY).lifecycle
        wanted: dict[str, Callable[[Command], object]] = {
            "unknown": lambda command: command.trigger == "fly",
            "not in the lifecycle": lambda command: command.trigger not in lifecycle.triggers,
        }
        returned = reach(reached_dossiers(CERTIFIED_COPY), lambda d: d.state == "returned")
        assert met(strategies.commands(CERTIFIED_COPY, returned, now=AFTER), wanted) == set(wanted)
        first = met(strategies.commands(CERTIFIED_COPY), wanted)
        assert "not in the lifecycle" in first


# -- command sequences -------------------------------------------------------------------------


class TestCommandSequences:
    @pytest.mark.parametrize(("low", "high"), [(1, 1), (3, 5), (0, 2)])
    def test_sizes_are_respected(self, low: int, high: int) -> None:
        """A sequence has between ``min_size`` and ``max_size`` commands."""

        @FEW
        @given(strategies.command_sequences(CERTIFIED_COPY, min_size=low, max_size=high))
        def check(sequence: list[Command]) -> None:
            assert low <= len(sequence) <= high
            assert all(command.actor in pool(CERTIFIED_COPY) for command in sequence)
            assert all(command.trigger in KNOWN for command in sequence)

        check()

    @pytest.mark.parametrize("procedure", list(CATALOG), ids=lambda procedure: procedure.code)
    def test_sequences_reach_a_returned_result(self, procedure: ProcedureSpec) -> None:
        """Drawn for the states they reach, sequences take a dossier all the way to its return."""
        kernel = Kernel(procedure)
        reach(
            strategies.command_sequences(procedure),
            lambda sequence: any(
                dossier is not None and dossier.state == "returned"
                for dossier in replay(kernel, sequence, START)
            ),
        )

    def test_sequences_are_drawn_for_the_state_reached(self) -> None:
        """After an intake, the commands that follow are mostly the new state's triggers."""
        kernel = Kernel(CONSTRUCTION)
        taken = 0
        total = 0

        @FEW
        @given(strategies.command_sequences(CONSTRUCTION, min_size=6, max_size=12))
        def count(sequence: list[Command]) -> None:
            nonlocal taken, total
            reached = replay(kernel, sequence, START)
            for dossier, command in zip(reached, sequence[1:], strict=False):
                here = () if dossier is None else kernel.triggers_from(dossier.state)
                if here:  # a finished dossier has none: any trigger is drawn for the refusals
                    total += 1
                    taken += command.trigger in here

        count()
        assert total
        assert taken * 3 >= total * 2, f"{taken} of {total} commands had a trigger of their state"


# -- drawn sequences fired at a real engine ----------------------------------------------------

INTAKE_KEYWORDS = frozenset(
    {"applicant", "case", "form", "documents", "delivery", "exemption", "notify", "address"}
)
"""The parts of an intake `Engine.submit` takes as keywords, besides the counter's three."""
COUNTER_KEYWORDS = frozenset({"fees_collected", "owner"})
COMMAND_IDS = itertools.count(1)
"""Command ids, unique in the module (portals send one with every command)."""


def submit_arguments(command: Command) -> dict[str, Any] | None:
    """``command`` as `Engine.submit`'s keywords, or ``None`` when they cannot express it.

    `Engine.submit` takes the intake typed (mappings for the form, the preferences and the
    address; a channel); a drawn first command is a trigger and a payload, spoilt ones
    included. Those whose spoilt part is of a type the keywords do not take go to the kernel
    alone, which is what decides an intake.
    """
    payload = dict(command.payload)
    keys = set(payload)
    if command.trigger == "submit":
        allowed = INTAKE_KEYWORDS
        channel = Channel.ONLINE
    elif command.trigger == "receive":
        allowed = INTAKE_KEYWORDS | COUNTER_KEYWORDS | {"channel"}
        channel = payload.pop("channel", None)
        if channel is None or channel is Channel.ONLINE or "fees_collected" not in payload:
            return None  # submit would fill them in: another command
    else:
        return None
    typed = all(
        isinstance(payload.get(key, {}), Mapping) for key in ("form", "notify", "address")
    ) and isinstance(payload.get("documents", []), list | tuple)
    if not keys <= allowed or "applicant" not in payload or not typed:
        return None
    return {"channel": channel, **payload}


@pytest.fixture(scope="module")
def catalogue_engine() -> Iterator[tuple[Engine, FrozenClock]]:
    """One engine for the module, with the example catalogue, the fakes and a frozen clock."""
    clock = FrozenClock(strategies.STARTS[4])
    with tempfile.TemporaryDirectory() as folder:
        engine = open_engine(Path(folder), CATALOG, clock)
        try:
            yield engine, clock
        finally:
            engine.close()


def open_engine(folder: Path, catalog: Any, clock: FrozenClock) -> Engine:
    """An engine on a SQLite file in ``folder``, as the pytest plugin's fixture opens one."""
    return Engine.open(
        f"sqlite:///{folder / 'dvcflow.db'}",
        catalog=catalog,
        config=fake_config(),
        clock=clock,
        environ={KEY_ENV: "5a" * 32},
        plugins=[FakeBackend()],
        entry_points=False,
    )


def fire_sequence(
    engine: Engine, clock: FrozenClock, procedure: ProcedureSpec, sequence: list[Command]
) -> list[str]:
    """Fire ``sequence`` at ``engine`` for one dossier; what became of each command.

    Anything but a `DvcflowError` propagates and fails the test.
    """
    kernel = Kernel(procedure)
    snapshot: DossierSnapshot | None = None
    outcomes = []
    for command in sequence:
        clock.advance(dt.timedelta(minutes=30))
        try:
            if snapshot is not None:
                snapshot = engine.fire(
                    snapshot.id,
                    command.trigger,
                    actor=command.actor,
                    payload=command.payload,
                    command_id=f"command-{next(COMMAND_IDS)}",
                )
            elif (arguments := submit_arguments(command)) is not None:
                snapshot = engine.submit(procedure.code, actor=command.actor, **arguments)
            else:
                kernel.decide(
                    None,
                    command.trigger,
                    actor=command.actor,
                    payload=command.payload,
                    now=clock.now(),
                    dossier_id="kernel-only",
                )
                outcomes.append("decided by the kernel")
                continue
        except DvcflowError as error:
            outcomes.append(type(error).__name__)
        else:
            assert snapshot is not None
            outcomes.append(snapshot.state)
    return outcomes


class TestSequencesOnAnEngine:
    @settings(FEW, max_examples=25)
    @given(data=st.data())
    def test_example_procedures_raise_only_dvcflow_errors(
        self, data: st.DataObject, catalogue_engine: tuple[Engine, FrozenClock]
    ) -> None:
        """Drawn sequences fired at an engine raise `DvcflowError` or nothing, on every example."""
        engine, clock = catalogue_engine
        procedure = data.draw(st.sampled_from(list(CATALOG)), label="procedure")
        sequence = data.draw(strategies.command_sequences(procedure, max_size=15), label="sequence")
        outcomes = fire_sequence(engine, clock, procedure, sequence)
        assert len(outcomes) == len(sequence)

    @settings(FEW, max_examples=15)
    @given(st.data())
    def test_drawn_procedures_raise_only_dvcflow_errors(self, data: st.DataObject) -> None:
        """On a drawn procedure, on an engine of its own, sequences raise only `DvcflowError`."""
        procedure = data.draw(strategies.procedures(), label="procedure")
        sequence = data.draw(strategies.command_sequences(procedure, max_size=15), label="sequence")
        clock = FrozenClock(data.draw(strategies.starts(), label="start"))
        with tempfile.TemporaryDirectory() as folder:
            engine = open_engine(Path(folder), [procedure], clock)
            try:
                fire_sequence(engine, clock, procedure, sequence)
            finally:
                engine.close()

    def test_engines_accept_drawn_sequences(
        self, catalogue_engine: tuple[Engine, FrozenClock]
    ) -> None:
        """Fired at an engine, drawn sequences take a dossier all the way to its return."""
        engine, clock = catalogue_engine
        reach(
            strategies.command_sequences(CERTIFIED_COPY),
            lambda sequence: "returned" in fire_sequence(engine, clock, CERTIFIED_COPY, sequence),
            tries=100,
        )
