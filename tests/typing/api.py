"""The public API as users type it: ``make test`` checks this file with ``mypy --strict``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dvcflow
import dvcflow.plugins
from dvcflow import deadlines
from dvcflow.levels import Level, OnlineClass, lifecycle_for


def catalogue(path: Path) -> list[tuple[str, Level, OnlineClass | None]]:
    """Procedures with their derived level and class."""
    catalog = dvcflow.Catalog.from_path(path)
    return [(procedure.code, procedure.level, procedure.online_class) for procedure in catalog]


def due(received: dt.datetime) -> dt.datetime | None:
    """A due date on the default calendar."""
    calendar = dvcflow.WorkingCalendar()
    return deadlines.due_at(calendar, received, dvcflow.Duration.working_days(5))


def kernel_walk(procedure: dvcflow.ProcedureSpec, now: dt.datetime) -> dvcflow.Decision:
    """A first command decided in memory."""
    kernel = dvcflow.Kernel(procedure)
    officer = dvcflow.Actor.staff("cb-01", roles={"receiving_officer"}, agency=procedure.agency)
    applicant = dvcflow.Applicant(dvcflow.ApplicantType.CITIZEN, "001099012345", "Nguyễn Văn An")
    payload: dict[str, object] = {"applicant": applicant, "fees_collected": True}
    try:
        return kernel.decide(
            None, "receive", actor=officer, payload=payload, now=now, dossier_id="d-1"
        )
    except dvcflow.RefusedError as refusal:
        reasons: tuple[str, ...] = refusal.reasons
        raise ValueError(reasons) from refusal


def engine_walk(catalog: dvcflow.Catalog, clock: dvcflow.FrozenClock) -> dvcflow.DossierSnapshot:
    """A command through the durable engine, retried on a lost race."""
    engine = dvcflow.Engine.open("sqlite:///:memory:", catalog=catalog, clock=clock)
    head = dvcflow.Actor.staff("tp-01", roles={"department_head"}, agency="G01")
    snapshot = dvcflow.retry(lambda: engine.fire("d-1", "start", actor=head, command_id="c-1"))
    status: dvcflow.NationalStatus = snapshot.national_status
    page: dvcflow.Page = engine.find(national_status=status, limit=10)
    checkpoint: dvcflow.Checkpoint = engine.checkpoint()
    engine.verify_history(snapshot.id, checkpoint=checkpoint)
    history: list[dvcflow.HistoryEvent] = engine.history(snapshot.id)
    sealed: int = engine.seal(batch=100)
    numbers: list[int | None] = [event.seq for event in history]  # None: not sealed yet
    del page, history, sealed, numbers
    engine.close()
    return snapshot


def diagram(procedure: dvcflow.ProcedureSpec) -> int:
    """The number of states a procedure's lifecycle has."""
    spec: dvcflow.LifecycleSpec = lifecycle_for(procedure)
    return len(spec.states)


class Sms:
    """A third-party notification plugin, typed as its author would."""

    @dvcflow.hookimpl
    def dvcflow_provider_types(self) -> list[str]:
        """The type it serves."""
        return ["my_sms"]

    @dvcflow.hookimpl
    def dvcflow_send_message(
        self, provider: dvcflow.Provider, message: dvcflow.Message
    ) -> dvcflow.NotificationReceipt | None:
        """Send one SMS."""
        if provider.type != "my_sms" or message.channel is not dvcflow.MessageChannel.SMS:
            return None
        if not provider.setting("url"):
            raise dvcflow.BackendError("settings.url is missing", retryable=False)
        return dvcflow.NotificationReceipt(message.reference, "sending")


def outbox_and_payments(catalog: dvcflow.Catalog) -> list[dvcflow.PaymentRecord]:
    """Deliver the outbox, answer a callback, list a dossier's payments and the incidents."""
    engine = dvcflow.Engine.open("sqlite:///:memory:", catalog=catalog, plugins=[Sms()])
    report: dvcflow.WorkerReport = engine.outbox.worker(name="w-1").drain()
    incidents: list[dvcflow.Incident] = engine.outbox.incidents()
    if incidents:
        engine.outbox.retry(incidents[0].id, actor="ops-1", note="back up")
    handle = engine.payments.endpoint("paygov")
    reply: dvcflow.CallbackReply = handle(b"{}", {"content-type": "application/json"})
    fake = engine.backends.plugin(dvcflow.plugins.FakeBackend)
    body, headers = fake.pay("P0000", outcome=dvcflow.PaymentOutcome.SUCCEEDED)
    try:
        engine.payments.callback("fake", body, headers)
    except (dvcflow.SignatureError, dvcflow.CallbackError) as rejected:
        del rejected
    log: list[dvcflow.SecurityRecord] = engine.payments.security_log()
    payments = engine.payments.of("d-1")
    del report, reply, log
    engine.close()
    return payments
