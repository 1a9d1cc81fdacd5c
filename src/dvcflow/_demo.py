"""``dvcflow demo``: the example catalogue described, then a simulated workload on the database."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from dvcflow._backends import DeliveryStatus
from dvcflow._calendar import WorkingCalendar
from dvcflow._catalog import Catalog
from dvcflow._clock import FrozenClock
from dvcflow._commands import print_dossier
from dvcflow._config import Config
from dvcflow._dossier import Dossier
from dvcflow._engine import Engine
from dvcflow._forms import check_form
from dvcflow._kernel import Decision, Kernel
from dvcflow._procedure import DocumentKind, FieldType, FormFieldSpec, ProcedureSpec, StepKind
from dvcflow._rulepacks import RulePacks
from dvcflow._snapshots import DossierSnapshot
from dvcflow._values import Actor, Applicant, ApplicantType, Channel, DeliveryMethod, FeeTiming
from dvcflow.errors import NotFoundError
from dvcflow.plugins.fake import FakeBackend

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
    payload: dict[str, Any] = {
        "applicant": applicant,
        "form": form,
        "documents": documents,
        "delivery": delivery.value,
    }
    if delivery is DeliveryMethod.POSTAL:
        payload["address"] = {"address": "Số 1 Tràng Tiền, phường Hoàn Kiếm, Hà Nội"}
    return payload


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


def _first(
    engine: Engine,
    procedure: ProcedureSpec,
    command: Command,
    command_id: str,
) -> DossierSnapshot:
    """The intake command of `happy_path`, through `Engine.submit`."""
    trigger, actor, payload = command
    channel = Channel.ONLINE if trigger == "submit" else Channel.IN_PERSON
    return engine.submit(
        procedure.code,
        applicant=payload["applicant"],
        actor=actor,
        channel=channel,
        form=payload["form"],
        documents=payload["documents"],
        delivery=DeliveryMethod(payload["delivery"]),
        fees_collected=bool(payload.get("fees_collected")),
        address=payload.get("address"),
        command_id=command_id,
    )


DEMO_BACKENDS = {
    "providers": {"fake": {"type": "fake"}},
    "routing": {
        "payment": "fake",
        "notification": "fake",
        "delivery": "fake",
        "storage": "fake",
        "signing": "fake",
    },
}
"""The demo's back ends: the in-memory fakes of every family."""


def _pay_online(engine: Engine, snapshot: DossierSnapshot, kind: str) -> DossierSnapshot:
    """The applicant pays a fee online: link from the (fake) gateway, its callback confirms it.

    The outbox worker asks the gateway for the link; the gateway's signed callback goes
    through ``engine.payments.callback``, which fires ``confirm_payment`` as the system.
    """
    engine.outbox.worker().drain()
    fake = engine.backends.plugin(FakeBackend)
    for payment in engine.payments.of(snapshot.id):
        if payment.fee_kind.value == kind and payment.state == "awaiting":
            body, headers = fake.pay(payment.reference)
            engine.payments.callback("fake", body, headers)
    return engine.get(snapshot.id)


def _run_dossier(
    engine: Engine,
    clock: FrozenClock,
    procedure: ProcedureSpec,
    *,
    run: str,
    stop_after: str | None = None,
) -> DossierSnapshot:
    """Drive one dossier of ``procedure`` on the database, half an hour between commands."""
    commands = happy_path(procedure)
    snapshot = _first(engine, procedure, next(commands), f"{run}:0")
    for number in itertools.count(1):
        if snapshot.state == stop_after:
            return snapshot
        clock.advance(dt.timedelta(minutes=30))
        try:
            trigger, actor, payload = commands.send(snapshot.dossier)
        except StopIteration:
            return snapshot
        if trigger == "confirm_payment" and payload.get("method") == "online":
            snapshot = _pay_online(engine, snapshot, payload["kind"])
            continue
        if trigger == "resolve":
            payload = {"result": _signed_result(engine, snapshot, procedure)}
        if trigger == "return_result" and snapshot.dossier.delivery is not DeliveryMethod.IN_PERSON:
            snapshot = _hand_over(engine, snapshot)
            continue
        snapshot = engine.fire(
            snapshot.id, trigger, actor=actor, payload=payload, command_id=f"{run}:{number}"
        )
    return snapshot


def _signed_result(engine: Engine, snapshot: DossierSnapshot, procedure: ProcedureSpec) -> str:
    """The result as a file, stored and (where the procedure requires it) signed."""
    content = f"{procedure.result.type}: {snapshot.dossier.code}".encode()
    record = engine.results.attach(snapshot.id, content, media_type="text/plain", name="kq.txt")
    if procedure.result.signed:
        engine.results.sign(snapshot.id, record.digest)
    return record.digest


def _hand_over(engine: Engine, snapshot: DossierSnapshot) -> DossierSnapshot:
    """An electronic result downloaded through its link, a postal one delivered by the courier."""
    engine.outbox.worker().drain()
    if snapshot.dossier.delivery is DeliveryMethod.ELECTRONIC:
        engine.results.open(engine.results.link(snapshot.id))
        return engine.get(snapshot.id)
    fake = engine.backends.plugin(FakeBackend)
    for delivery in engine.deliveries.of(snapshot.id):
        for status in (DeliveryStatus.PICKED_UP, DeliveryStatus.IN_TRANSIT):
            engine.deliveries.callback("fake", *fake.courier(delivery.reference, status))
        receiver = {"name": "Nguyễn Văn An", "relation": "holder"}
        report = fake.courier(delivery.reference, DeliveryStatus.DELIVERED, receiver=receiver)
        engine.deliveries.callback("fake", *report)
    return engine.get(snapshot.id)


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _workload(
    engine: Engine, clock: FrozenClock, catalog: Catalog, per_procedure: int, out: TextIO
) -> list[str]:
    """N dossiers of each procedure; every fifth stays in processing to show timers and overdue."""
    total, done, ids = len(catalog) * per_procedure, 0, []
    run = uuid.uuid4().hex[:8]
    print(
        f"\nRunning {total} dossiers on {engine.store.url.render_as_string(hide_password=True)}:",
        file=out,
    )
    for procedure in catalog:
        for number in range(per_procedure):
            stop = "processing" if number % 5 == 4 else None
            snapshot = _run_dossier(
                engine,
                clock,
                procedure,
                run=f"demo-{run}-{procedure.code}-{number}",
                stop_after=stop,
            )
            ids.append(snapshot.id)
            done += 1
        print(f"  {_bar(done, total)}  {procedure.code} {procedure.name.vi}", file=out)
    return ids


def _summary(engine: Engine, ids: list[str], out: TextIO) -> None:
    snapshots = [engine.get(dossier_id) for dossier_id in ids]
    by_status: dict[str, int] = {}
    for snapshot in snapshots:
        label = f"{snapshot.national_status.code} {snapshot.national_status.slug}"
        by_status[label] = by_status.get(label, 0) + 1
    events = sum(engine.verify_history(dossier_id) for dossier_id in ids)
    visits = sum(count_visits_of(engine, dossier_id) for dossier_id in ids)
    now = engine.clock.now()
    overdue = sum(1 for snapshot in snapshots if snapshot.overdue(now))
    payments = [p for dossier_id in ids for p in engine.payments.of(dossier_id)]
    online = sum(1 for p in payments if p.method == "online" and p.state == "paid")
    counter = sum(1 for p in payments if p.method == "counter" and p.state == "paid")
    outbox = engine.outbox.counts()
    deliveries = [d for dossier_id in ids for d in engine.deliveries.of(dossier_id)]
    posted = sum(1 for d in deliveries if d.method is DeliveryMethod.POSTAL)
    downloaded = sum(1 for d in deliveries if d.method is DeliveryMethod.ELECTRONIC)
    print("\nsummary of this run:", file=out)
    print(
        "  dossiers by national status: "
        + ", ".join(f"{label}: {count}" for label, count in sorted(by_status.items())),
        file=out,
    )
    print(
        f"  {events} events written, every history verified; {visits} counter visits in all",
        file=out,
    )
    print(
        f"  {online} fees paid online through the (fake) gateway, {counter} at the counter; "
        f"{downloaded} results by download link, {posted} by (fake) public post",
        file=out,
    )
    print(
        f"  {overdue} dossiers overdue now; outbox (whole database): "
        + ", ".join(f"{count} {status}" for status, count in sorted(outbox.items())),
        file=out,
    )
    print(f"  checkpoint (keep it outside the database): {engine.checkpoint()}", file=out)


def count_visits_of(engine: Engine, dossier_id: str) -> int:
    """Visits of a stored dossier, from its history."""
    days = {
        (event.at.astimezone(LOCAL).date(), event.agency)
        for event in engine.history(dossier_id)
        if event.visit
    }
    return len(days)


def run_demo(
    out: TextIO,
    *,
    catalog_path: Path | None = None,
    db: str = "sqlite:///dvcflow.db",
    per_procedure: int = 10,
) -> int:
    """Describe the catalogue, then run a simulated agency workload on the database."""
    path = catalog_path if catalog_path is not None else example_catalog_path()
    catalog = Catalog.from_path(path)
    # The simulated day begins when the offices next open.
    start = WorkingCalendar().next_working_start(dt.datetime.now(dt.UTC).replace(microsecond=0))
    pack = RulePacks.builtin().in_force(start)
    print(f"dvcflow demo: {len(catalog)} procedures from {path}", file=out)
    print(
        f"rule pack in force now: {pack.name} ({pack.title}; {', '.join(pack.legal_basis)})",
        file=out,
    )
    for procedure in catalog:
        _describe(procedure, out)
    clock = FrozenClock(start)
    engine = Engine.open(db, catalog=catalog, clock=clock, config=Config.from_data(DEMO_BACKENDS))
    try:
        ids = _workload(engine, clock, catalog, per_procedure, out)
        clock.advance(dt.timedelta(days=45))
        fired = engine.tick()
        print(f"\n45 days later: {len(fired)} timers fired (reminders and escalations)", file=out)
        report = engine.outbox.worker().drain()
        fake = engine.backends.plugin(FakeBackend)
        links = sum(1 for hook, _ in fake.calls if hook == "create_payment")
        print(
            f"outbox worker: the back ends got {len(fake.messages)} messages and "
            f"{links} payment links in this run; {report.incidents} incidents",
            file=out,
        )
        print("\none dossier's timeline:", file=out)
        print_dossier(engine, ids[0], out)
        _summary(engine, ids, out)
    finally:
        engine.close()
    return 0
