"""Hypothesis strategies for dvcflow's values: applicants, actors, procedures, commands.

Every strategy builds values through dvcflow's own constructors and loader, so what it draws
is what a portal would hand the library: identifiers valid by the rules of `dvcflow.Applicant`,
procedures loaded by `ProcedureSpec.from_data` with their lifecycle built, commands whose
payloads are the ones each trigger reads (plausible, spoilt or garbage).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from dvcflow._dossier import Dossier
from dvcflow._kernel import Kernel
from dvcflow._procedure import ProcedureSpec
from dvcflow._values import (
    APPLICANT_ROLES,
    ROLES,
    STAFF_ROLES,
    Actor,
    Applicant,
    ApplicantType,
)
from dvcflow.errors import DvcflowError
from dvcflow.levels import Level, OnlineClass
from dvcflow.testing._invalid import MUTATIONS, InvalidDefinition
from dvcflow.testing._payloads import OWNER, Command, command_payload, draw_trigger, pool
from dvcflow.testing._procedures import EXTERNAL_AGENCIES, check_definition, procedure_data

__all__ = [
    "OTHER_AGENCY",
    "STARTS",
    "Command",
    "InvalidDefinition",
    "actors",
    "applicants",
    "citizen_ids",
    "command_sequences",
    "commands",
    "emails",
    "invalid_definitions",
    "mobiles",
    "procedure_data",
    "procedures",
    "starts",
    "tax_codes",
]

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")

OTHER_AGENCY = "ELSEWHERE.9"
"""The agency of staff drawn out of a procedure's scope."""

STARTS = (
    dt.datetime(2022, 3, 7, 9, 0, tzinfo=LOCAL),  # levels-2009
    dt.datetime(2022, 8, 12, 16, 45, tzinfo=LOCAL),  # the last working day of levels-2009
    dt.datetime(2023, 5, 15, 14, 30, tzinfo=LOCAL),  # online-2022
    dt.datetime(2024, 6, 30, 23, 50, tzinfo=LOCAL),  # the last minutes of online-2022
    dt.datetime(2025, 3, 3, 8, 0, tzinfo=LOCAL),  # vneid-2024
    dt.datetime(2025, 4, 25, 15, 10, tzinfo=LOCAL),  # after a 15:00 cut-off, before a holiday
    dt.datetime(2026, 2, 13, 17, 30, tzinfo=LOCAL),  # after hours on the eve of Tết
)
"""Instants a dossier's story starts at: inside each rule pack, at its edges, around holidays."""


def starts() -> st.SearchStrategy[dt.datetime]:
    """One of `STARTS`: where a frozen clock starts a dossier's story."""
    return st.sampled_from(STARTS)


# -- identifiers ------------------------------------------------------------------------------


def _citizen_id(province: int, century: int, year: int, serial: int) -> str:
    return f"{province:03d}{century}{year:02d}{serial:06d}"


def _ten_digits(number: int) -> str:
    return f"{number:010d}"


def _three_digits(number: int) -> str:
    return f"{number:03d}"


def _joined(parts: tuple[str, str]) -> str:
    return "".join(parts)


def _dashed(parts: tuple[str, str]) -> str:
    return "-".join(parts)


_CITIZEN_IDS = st.builds(
    _citizen_id, st.integers(1, 96), st.integers(0, 3), st.integers(0, 99), st.integers(0, 999_999)
)
_HEAD = st.integers(0, 9_999_999_999).map(_ten_digits)
_BRANCH = st.tuples(_HEAD, st.integers(1, 999).map(_three_digits))
_TAX_CODES = st.one_of(_HEAD, _BRANCH.map(_joined), _BRANCH.map(_dashed))


def citizen_ids() -> st.SearchStrategy[str]:
    """12-digit citizen ids (CCCD): province 001-096, century-and-sex digit, birth year, serial."""
    return _CITIZEN_IDS


def tax_codes() -> st.SearchStrategy[str]:
    """Tax codes (mã số thuế): 10 digits, or 13 for a branch, written ``0101234567-001`` or not."""
    return _TAX_CODES


_MOBILE_PREFIXES = (
    [f"03{d}" for d in "23456789"]
    + [f"05{d}" for d in "25689"]
    + [f"07{d}" for d in "06789"]
    + [f"08{d}" for d in "123456789"]
    + [f"09{d}" for d in "0123456789"]
)


def _written(prefix: str, number: int, style: int) -> str:
    digits = f"{prefix}{number:07d}"
    if style == 1:
        return "+84" + digits[1:]
    if style == 2:
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"
    if style == 3:
        return "84" + digits[1:]
    return digits


_MOBILES = st.builds(
    _written, st.sampled_from(_MOBILE_PREFIXES), st.integers(0, 9_999_999), st.integers(0, 3)
)


def mobiles() -> st.SearchStrategy[str]:
    """Vietnamese mobile numbers as people type them: ``0912345678``, ``+84 912 345 678``, ..."""
    return _MOBILES


def _address(name: str, host: str) -> str:
    return f"{name}@{host}"


_EMAILS = st.builds(
    _address,
    st.from_regex(r"[a-z][a-z0-9._]{0,12}[a-z0-9]", fullmatch=True),
    st.sampled_from(["example.vn", "gmail.com", "mail.gov.vn", "co.example.com.vn"]),
)


def emails() -> st.SearchStrategy[str]:
    """Plain email addresses on Vietnamese-looking domains."""
    return _EMAILS


_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi")
_GIVEN = ("Văn An", "Thị Bình", "Minh Châu", "Quốc Dũng", "Thu Hà", "Đức Long", "Ngọc Mai")
_COMPANIES = ("Công ty TNHH Đông Á", "Công ty CP Sông Hồng", "Hộ kinh doanh Minh An")


def applicants(
    kinds: Iterable[ApplicantType] = tuple(ApplicantType),
    *,
    contacts: bool | None = None,
    vneid: bool | None = None,
) -> st.SearchStrategy[Applicant]:
    """Applicants of ``kinds`` with valid identifiers.

    Args:
        kinds: citizen, business and/or household business.
        contacts: ``True``: a mobile number and an email; ``False``: at most one of them;
            ``None``: either.
        vneid: whether a citizen's VNeID account is verified; ``None``: either.
    """
    return _applicants(frozenset(kinds), contacts=contacts, vneid=vneid)


@functools.cache
def _applicants(
    kinds: frozenset[ApplicantType], *, contacts: bool | None, vneid: bool | None
) -> st.SearchStrategy[Applicant]:
    choices = sorted(set(kinds), key=lambda kind: kind.national_code)
    if not choices:
        msg = "applicants() needs at least one applicant type"
        raise ValueError(msg)

    @st.composite
    def build(draw: st.DrawFn) -> Applicant:
        kind = draw(st.sampled_from(choices))
        if kind is ApplicantType.CITIZEN:
            identifier = draw(citizen_ids())
        elif kind is ApplicantType.BUSINESS:
            identifier = draw(tax_codes())
        else:
            identifier = draw(st.one_of(citizen_ids(), tax_codes()))
        if kind is ApplicantType.CITIZEN:
            name = f"{draw(st.sampled_from(_FAMILY))} {draw(st.sampled_from(_GIVEN))}"
        else:
            name = draw(st.sampled_from(_COMPANIES))
        both = draw(st.booleans()) if contacts is None else contacts
        phone: str | None = draw(mobiles())
        email: str | None = draw(emails())
        if not both:
            phone, email = draw(st.sampled_from([(phone, None), (None, email), (None, None)]))
        verified = draw(st.booleans()) if vneid is None else vneid
        employees: list[str] = []
        if kind is not ApplicantType.CITIZEN:
            employees = draw(st.lists(citizen_ids(), max_size=2, unique=True))
        return Applicant.from_data(
            {
                "kind": kind.value,
                "identifier": identifier,
                "name": name,
                "phone": phone,
                "email": email,
                "vneid_verified": verified and kind is ApplicantType.CITIZEN,
                "employees": employees,
            }
        )

    return build()


# -- actors -----------------------------------------------------------------------------------


def actors(
    procedure: ProcedureSpec | None = None,
    *,
    roles: Iterable[str] = ROLES,
    in_scope: bool | None = None,
    owner: str = OWNER,
) -> st.SearchStrategy[Actor]:
    """Actors holding one of ``roles``, in or out of a procedure's scope.

    Args:
        procedure: whose agency is "in scope" for staff (another agency is not); without one,
            staff belong to the agency ``"UBND-XA.001"``.
        roles: the roles drawn from (one per actor; a staff actor sometimes holds two).
        in_scope: ``True``: staff of the procedure's agency (external agencies: the ones its
            consultations address), applicants owning the dossier (``owner``) or acting for
            its owner; ``False``: another agency, another applicant; ``None``: either.
        owner: the account id of the dossier's owner.
    """
    wanted = sorted(set(roles) & ROLES)
    if not wanted:
        msg = "actors() needs at least one known role"
        raise ValueError(msg)
    agency = procedure.agency if procedure is not None else "UBND-XA.001"
    consulted = sorted({s.agency for s in procedure.steps if s.agency}) if procedure else []
    # Out of scope is neither the owner nor acting for it, whatever ``owner`` is: the other
    # accounts and the agents' own ids are never the owner's.
    strangers = [account for account in ("acc-2", "acc-3", "acc-4") if account != owner][:2]
    company = next(account for account in ("biz-9", "biz-8") if account != owner)
    agents = [f"rep-{n}" for n in range(1, 5) if f"rep-{n}" != owner][:3]

    @st.composite
    def build(draw: st.DrawFn) -> Actor:  # noqa: PLR0911 - one return per kind of actor
        role = draw(st.sampled_from(wanted))
        inside = draw(st.booleans()) if in_scope is None else in_scope
        if role == "system":
            return Actor.system()
        if role in APPLICANT_ROLES:
            account = owner if inside else draw(st.sampled_from(strangers))
            if role == "citizen":
                return Actor.citizen(account)
            if role == "business":
                if draw(st.booleans()):
                    return Actor.business(company, acting_for=account)
                return Actor.business(account)
            return Actor.representative(draw(st.sampled_from(agents)), acting_for=account)
        if role == "external_agency":
            ours = consulted or list(EXTERNAL_AGENCIES)
            where = draw(st.sampled_from(ours)) if inside else OTHER_AGENCY
            return Actor.staff(f"ext-{where}", roles={role}, agency=where)
        held = {role}
        others = sorted(STAFF_ROLES & set(wanted) - {"external_agency"} - held)
        if others and draw(st.integers(0, 4)) == 0:
            held.add(draw(st.sampled_from(others)))
        where = agency if inside else OTHER_AGENCY
        return Actor.staff(f"{role}-{draw(st.integers(1, 3))}", roles=held, agency=where)

    return build()


# -- procedures -------------------------------------------------------------------------------


def procedures(
    levels: Iterable[Level | int] = tuple(Level),
    *,
    classes: Iterable[OnlineClass] = tuple(OnlineClass),
) -> st.SearchStrategy[ProcedureSpec]:
    """Valid procedures at ``levels`` (and, at level 4, of ``classes``), loaded as files are.

    Built as data (`procedure_data`) and loaded through `ProcedureSpec.from_data`, with the
    lifecycle built as `Engine.open` builds it: both 2022 classes, cases with per-channel
    durations and fees, exemptions, components, form fields, agency steps (appraisals,
    inspections, consultations of other agencies), sign-off, narrowed permissions, pinned
    rule packs and intake cut-offs. Nothing is filtered: every drawn definition is valid.

    Raises:
        ValueError: no level, an unknown one, or level 4 asked for with no class.
    """
    return procedure_data(levels, classes).map(check_definition)


def invalid_definitions() -> st.SearchStrategy[InvalidDefinition]:
    """Definitions that must be refused, each with the problem the refusal must name.

    Each is a valid definition with one mistake made in it (a misspelt key, a negative fee,
    a level rule broken, a step named like a built-in state, a widened permission...);
    `InvalidDefinition.check` loads it and asserts that `InvalidDefinitionError` names the
    problem's path and message.
    """

    @st.composite
    def build(draw: st.DrawFn) -> InvalidDefinition:
        mutation = draw(st.sampled_from(MUTATIONS))
        levels = mutation.levels
        data = draw(procedure_data(levels))
        spoilt = copy.deepcopy(data)
        path, message = mutation.apply(draw, spoilt)
        return InvalidDefinition(spoilt, path, message, mutation.name)

    return build()


# -- commands ---------------------------------------------------------------------------------


def commands(
    procedure: ProcedureSpec | Kernel,
    dossier: Dossier | None = None,
    *,
    now: dt.datetime = STARTS[4],
) -> st.SearchStrategy[Command]:
    """One command for a dossier of ``procedure`` in the state of ``dossier``.

    The trigger is one leaving the dossier's state (sometimes one that does not, or one the
    lifecycle does not know), the actor one with or without the role and scope, the payload
    the keys the trigger reads with plausible values, some left out or spoilt, or garbage.
    ``dossier=None``: a first command (``submit`` or ``receive``) with its intake payload.

    ``procedure`` may be the procedure's `Kernel`, when one is at hand: drawing a command per
    step of a state machine then does not compile the lifecycle again each time.
    """
    kernel = procedure if isinstance(procedure, Kernel) else Kernel(procedure)
    actors_ = pool(kernel.procedure)
    return st.composite(lambda draw: _command(draw, kernel, actors_, dossier, now))()


def command_sequences(
    procedure: ProcedureSpec, *, min_size: int = 1, max_size: int = 20
) -> st.SearchStrategy[list[Command]]:
    """Sequences of commands for one dossier, each drawn for the state the ones before reached.

    The dossier is advanced through the pure kernel as the sequence is drawn (refused
    commands leave it as it was), so later commands are drawn for reachable states.
    """
    kernel = Kernel(procedure)
    actors_ = pool(procedure)

    @st.composite
    def build(draw: st.DrawFn) -> list[Command]:
        size = draw(st.integers(min_size, max_size))
        dossier: Dossier | None = None
        now = draw(starts()).astimezone(dt.UTC)
        sequence = []
        for _ in range(size):
            now += draw(st.sampled_from([dt.timedelta(minutes=30), dt.timedelta(days=1)]))
            command = _command(draw, kernel, actors_, dossier, now)
            sequence.append(command)
            try:
                decision = kernel.decide(
                    dossier,
                    command.trigger,
                    actor=command.actor,
                    payload=command.payload,
                    now=now,
                    dossier_id="drawn",
                )
            except DvcflowError:
                continue  # refused: the dossier stays as it was
            dossier = decision.dossier
        return sequence

    return build()


def _command(
    draw: st.DrawFn,
    kernel: Kernel,
    actors_: tuple[Actor, ...],
    dossier: Dossier | None,
    now: dt.datetime,
) -> Command:
    trigger = draw_trigger(draw, kernel, dossier, now)
    fit = [a for a in actors_ if trigger in kernel.allowed_now(dossier, a)]
    if fit and draw(st.integers(0, 9)) < 7:
        actor = draw(st.sampled_from(fit))
    else:
        actor = draw(st.sampled_from(actors_))
    payload = command_payload(
        draw, kernel.procedure, dossier=dossier, trigger=trigger, actor=actor, now=now
    )
    return Command(trigger, actor, payload)
