"""``dvcflow demo``: the example catalogue described, then walked dossier by dossier in memory."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from dvcflow._catalog import Catalog
from dvcflow._dossier import Dossier
from dvcflow._forms import check_form
from dvcflow._kernel import Decision, Kernel
from dvcflow._procedure import DocumentKind, FieldType, FormFieldSpec, ProcedureSpec, StepKind
from dvcflow._rulepacks import RulePacks
from dvcflow._values import Actor, Applicant, ApplicantType, Channel, DeliveryMethod, FeeTiming
from dvcflow.errors import NotFoundError

__all__ = ["example_catalog_path", "happy_path", "run_demo", "walk"]

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")

Command = tuple[str, Actor, dict[str, Any]]


def example_catalog_path() -> Path:
    """Where the example procedures are: bundled in a wheel, or in the source checkout.

    Raises:
        NotFoundError: when neither exists.
    """
    package = Path(__file__).parent
    for candidate in (package / "_examples", package.parents[1] / "examples" / "procedures"):
        if candidate.is_dir():
            return candidate
    raise NotFoundError("the example procedures are not installed; pass --catalog PATH")


def _describe(procedure: ProcedureSpec, out: TextIO) -> None:
    klass = procedure.online_class.value if procedure.online_class else "-"
    print(f"\n{procedure.code}  {procedure.name.vi}", file=out)
    if procedure.name.en:
        print(f"    {procedure.name.en}", file=out)
    caps = procedure.capabilities
    print(
        f"    level {procedure.level.value} ({procedure.level.name.lower().replace('_', ' ')}), "
        f"2022 class: {klass}; agency {procedure.agency}",
        file=out,
    )
    channels = ", ".join(sorted(channel.value for channel in caps.channels))
    returns = ", ".join(sorted(method.value for method in caps.return_methods))
    print(f"    intake: {channels}; result: {returns}", file=out)
    for case in procedure.cases:
        marker = " (default)" if case.key == procedure.default_case else ""
        print(f"    case {case.key}{marker}: {case.name.vi}", file=out)
        for channel, duration in case.durations:
            fees = case.fees_for(channel)
            owed = "; ".join(f"{fee.kind.value} {money} {fee.timing.value}" for fee, money in fees)
            print(f"      {channel.value:<9} {duration!s:<18} {owed or 'no fees'}", file=out)
    for step in procedure.steps:
        print(
            f"    step {step.name} ({step.kind.value}, {step.duration})"
            f" by {', '.join(sorted(step.roles))}",
            file=out,
        )


def _sample_value(field: FormFieldSpec) -> object:
    """A value the field accepts, for the demo's form."""
    if field.type is FieldType.CHOICE:
        return field.choices[0]
    candidates: dict[FieldType, tuple[object, ...]] = {
        FieldType.INTEGER: (max(field.minimum or 0, 1),),
        FieldType.BOOLEAN: (True,),
        FieldType.DATE: ("2026-01-15",),
        FieldType.STRING: ("Nguyễn Văn An", "123", "123456", "123456789012"),
    }
    for value in candidates[field.type]:
        if not check_form([field], {field.name: value}):
            return value
    msg = f"the demo has no sample value for form field {field.name!r}"
    raise NotFoundError(msg)


def _intake_payload(procedure: ProcedureSpec, delivery: DeliveryMethod) -> dict[str, Any]:
    kind = min(procedure.applicant_types, key=lambda t: t.national_code)
    identifier = "0101234567" if kind is ApplicantType.BUSINESS else "001099012345"
    applicant = Applicant(
        kind,
        identifier,
        "Nguyễn Văn An",
        phone="0912345678",
        email="an@example.vn",
        vneid_verified=True,
    )
    form = {field.name: _sample_value(field) for field in procedure.form_fields if field.required}
    documents = [c.key for c in procedure.case().components if c.mandatory]
    return {
        "applicant": applicant,
        "form": form,
        "documents": documents,
        "delivery": delivery.value,
    }


def _pay(
    dossier: Dossier,
    cashier: Actor | None,
    *timings: FeeTiming,
) -> Generator[Command, Dossier, Dossier]:
    """Pay what is outstanding (of ``timings`` only, if given): online, or at ``cashier``."""
    for fee in dossier.fees:
        if fee.outstanding and (not timings or fee.timing in timings):
            payer, method = (Actor.system(), "online") if cashier is None else (cashier, "counter")
            body = {
                "kind": fee.kind.value,
                "amount": fee.outstanding.amount,
                "method": method,
                "reference": f"TX-{fee.kind.value}",
            }
            dossier = yield ("confirm_payment", payer, body)
    return dossier


def _through_steps(
    procedure: ProcedureSpec,
    staff: dict[str, Actor],
) -> Generator[Command, Dossier, Dossier | None]:
    """Hand the dossier through the agency's steps in order and back to ``processing``."""
    dossier = None
    steps = list(procedure.steps)
    for leaving, entering in itertools.pairwise([None, *steps, None]) if steps else ():
        if leaving is not None and leaving.kind is StepKind.CONSULTATION:
            agency = leaving.agency or procedure.agency
            external = Actor.staff("external-1", roles={"external_agency"}, agency=agency)
            dossier = yield ("answer_consultation", external, {"answer": "đủ điều kiện"})
        elif entering is not None and entering.kind is StepKind.CONSULTATION:
            dossier = yield ("consult", staff["specialist"], {})
        else:
            role = min(leaving.roles) if leaving is not None else "specialist"
            dossier = yield ("hand_over", staff[role], {})
    return dossier


def happy_path(procedure: ProcedureSpec) -> Generator[Command, Dossier, None]:
    """The commands that take a dossier of ``procedure`` from intake to a returned result.

    Online intake where the procedure offers it, in person otherwise; the result goes back by
    the first of electronic, postal, in person that the procedure offers; fees are paid when
    they fall due. Send the dossier after each command back into the generator.
    """
    agency = procedure.agency
    roles = ("receiving_officer", "department_head", "specialist", "leader", "clerk", "cashier")
    staff = {role: Actor.staff(f"{role}-1", roles={role}, agency=agency) for role in roles}
    methods = procedure.capabilities.return_methods
    order = (DeliveryMethod.ELECTRONIC, DeliveryMethod.POSTAL, DeliveryMethod.IN_PERSON)
    delivery = next(method for method in order if method in methods)
    payload = _intake_payload(procedure, delivery)
    online = Channel.ONLINE in procedure.capabilities.channels
    paying_online = procedure.capabilities.online_payment

    cashier = None if paying_online else staff["cashier"]

    if online:
        dossier = yield ("submit", Actor.citizen("citizen-1"), payload)
        dossier = yield from _pay(dossier, cashier, FeeTiming.BEFORE_RECEPTION)
        dossier = yield ("receive", staff["receiving_officer"], {})
    else:
        intake = payload | {"fees_collected": True}
        dossier = yield ("receive", staff["receiving_officer"], intake)
    dossier = yield ("start", staff["department_head"], {"specialist": "specialist-1"})
    dossier = (yield from _through_steps(procedure, staff)) or dossier
    if DocumentKind.RESULT in procedure.sign_off:
        dossier = yield ("approve_document", staff["leader"], {"document": "result"})
    result = {"result": "sha256:demo-result", "signed": procedure.result.signed}
    dossier = yield ("resolve", staff["leader"], result)
    dossier = yield ("issue_result", staff["clerk"], {"number": "123/KQ"})
    if not dossier.fees_settled:
        if paying_online:
            dossier = yield ("request_payment", staff["specialist"], {})
        dossier = yield from _pay(dossier, cashier)
    returner = {
        DeliveryMethod.ELECTRONIC: Actor.system(),
        DeliveryMethod.POSTAL: Actor.staff("postman-1", roles={"postal_worker"}, agency="VNPOST"),
        DeliveryMethod.IN_PERSON: staff["receiving_officer"],
    }[delivery]
    receiver = {"receiver": {"name": "Nguyễn Văn An", "relation": "holder"}}
    yield ("return_result", returner, receiver)


def walk(
    kernel: Kernel,
    start: dt.datetime,
    *,
    dossier_id: str,
    code: str,
    step: dt.timedelta = dt.timedelta(hours=1),
) -> Iterator[tuple[Decision, str, Actor]]:
    """Run `happy_path` through ``kernel``, ``step`` between commands, yielding each decision."""
    now = start
    commands = happy_path(kernel.procedure)
    dossier: Dossier | None = None
    try:
        trigger, actor, payload = next(commands)
        while True:
            now += step
            decision = kernel.decide(
                dossier,
                trigger,
                actor=actor,
                payload=payload,
                now=now,
                dossier_id=dossier_id,
                code=code,
            )
            dossier = decision.dossier
            yield decision, trigger, actor
            trigger, actor, payload = commands.send(dossier)
    except StopIteration:
        return


def _walk_all(catalog: Catalog, out: TextIO) -> int:
    start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=LOCAL)
    walked = 0
    print("\nWalking one dossier of each procedure (in memory):", file=out)
    for number, procedure in enumerate(catalog, start=1):
        kernel = Kernel(procedure)
        code = f"{procedure.agency}-{start:%Y%m%d}-{number:07d}"
        print(f"\n{procedure.code} {procedure.name.vi}", file=out)
        for decision, trigger, actor in walk(kernel, start, dossier_id=f"demo-{number}", code=code):
            dossier = decision.dossier
            due = (
                ""
                if dossier.due_at is None
                else f" due {dossier.due_at.astimezone(LOCAL):%d/%m/%Y %H:%M}"
            )
            visit = " [visit]" if decision.event.visit else ""
            print(
                f"    {trigger:<20} by {actor.id:<20} -> {dossier.state:<20} "
                f"{decision.status.code:>2} {decision.status.slug}{due}{visit}",
                file=out,
            )
        walked += 1
    return walked


def run_demo(out: TextIO, *, catalog_path: Path | None = None) -> int:
    """Describe the catalogue, then walk a dossier of each procedure from intake to return."""
    path = catalog_path if catalog_path is not None else example_catalog_path()
    catalog = Catalog.from_path(path)
    now = dt.datetime.now(dt.UTC)
    pack = RulePacks.builtin().in_force(now)
    print(f"dvcflow demo: {len(catalog)} procedures from {path}", file=out)
    print(
        f"rule pack in force now: {pack.name} ({pack.title}; {', '.join(pack.legal_basis)})",
        file=out,
    )
    for procedure in catalog:
        _describe(procedure, out)
    by_level: dict[int, int] = {}
    for procedure in catalog:
        by_level[procedure.level.value] = by_level.get(procedure.level.value, 0) + 1
    summary = ", ".join(f"level {level}: {count}" for level, count in sorted(by_level.items()))
    walked = _walk_all(catalog, out)
    print(f"\nsummary: {summary}; {walked} dossiers walked to a returned result", file=out)
    return 0
