"""The generated state machine: a real engine on a throwaway database, driven by random commands."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from dvcflow._backends import DeliveryStatus, PaymentOutcome
from dvcflow._catalog import Catalog
from dvcflow._clock import FrozenClock
from dvcflow._config import Config
from dvcflow._dossier import Dossier, decode_changes, replay
from dvcflow._engine import Engine
from dvcflow._kernel import Decision, Kernel, content_hash
from dvcflow._procedure import ProcedureSpec
from dvcflow._reasons import REASONS
from dvcflow._snapshots import DossierSnapshot
from dvcflow._values import Actor, Channel, DeliveryMethod
from dvcflow.errors import CallbackError, RefusedError
from dvcflow.plugins.fake import FakeBackend
from dvcflow.testing import _checks
from dvcflow.testing._payloads import (
    OWNER,
    command_payload,
    draw_trigger,
    intake_values,
    pool,
)
from dvcflow.testing._rigs import CommitWatch, Rig, check_store, release, rig_for, snapshot
from dvcflow.testing.strategies import starts

__all__ = ["DossierMachine", "machine_for"]

T = TypeVar("T")

Invariant = Callable[["DossierMachine"], object]
"""A user's invariant: called with the machine after every step; raise (or assert) to fail."""
Rule = Callable[["DossierMachine", st.DataObject], object]
"""A user's rule: called with the machine and a hypothesis data object to draw from."""

PAUSES = (
    dt.timedelta(0),
    dt.timedelta(minutes=5),
    dt.timedelta(hours=1),
    dt.timedelta(days=1),
)
"""How far the clock moves before a command (shrinks to not at all)."""
WAITS = (
    dt.timedelta(minutes=30),
    dt.timedelta(hours=3),
    dt.timedelta(days=1),
    dt.timedelta(days=4),
    dt.timedelta(days=16),
    dt.timedelta(days=45),
)
"""How far time passes before the timers are swept."""


def _has_dossier(machine: DossierMachine) -> bool:
    return machine.snapshot is not None


def _no_dossier(machine: DossierMachine) -> bool:
    return machine.snapshot is None


def _undelivered(machine: DossierMachine) -> bool:
    return machine.snapshot is not None and machine.undelivered


def _payable(machine: DossierMachine) -> bool:
    value = machine.snapshot
    return (
        value is not None
        and machine.spec.capabilities.online_payment
        and not value.dossier.fees_settled
        and value.state not in machine.finals
    )


def _result_goes_out(machine: DossierMachine) -> bool:
    value = machine.snapshot
    if value is None or value.state != "result_ready":
        return False
    delivery, result = value.dossier.delivery, value.dossier.result_ref or ""
    # An electronic result is downloaded from the file resolve attached.
    return delivery is DeliveryMethod.POSTAL or (
        delivery is DeliveryMethod.ELECTRONIC and result.startswith("sha256:")
    )


class DossierMachine(RuleBasedStateMachine):
    """One dossier of one procedure on a real `Engine`, under random commands and time.

    Make one with `machine_for`. Each example starts an engine as freshly opened: one engine
    per procedure, store and thread, on its own database (a SQLite file in a temporary folder,
    or a PostgreSQL database), emptied before each example of everything but the published
    procedure versions; with the in-memory fake back ends (``fakes``, emptied too) and a
    frozen clock (``clock``) that only the rules move. Machines run on one thread each. Every
    command the kernel accepts is kept (``decisions``); the stored history, dossier row,
    outbox and timers are checked against them after every step.

    Subclass it (or the class `machine_for` returns) to add ``@rule``s and ``@invariant``s;
    ``fire`` sends a command with the refusal checks, ``observe`` runs anything else that
    may fire commands (ticks, callbacks) and records what it decided.
    """

    procedure: ClassVar[ProcedureSpec | None] = None
    """The procedure (set by `machine_for`; ``None`` when drawn per example)."""
    store: ClassVar[str] = "sqlite"
    config: ClassVar[Config | None] = None
    environ: ClassVar[Mapping[str, str] | None] = None
    plugins: ClassVar[tuple[object, ...]] = ()

    def __init__(self) -> None:
        if not __debug__:
            msg = "dvcflow.testing's checks are assertions: run it without python -O"
            raise RuntimeError(msg)
        super().__init__()
        self.clock = FrozenClock(dt.datetime(2025, 3, 3, 1, tzinfo=dt.UTC))
        """The engine's clock: frozen; rules move it (``clock.advance``)."""
        self.fakes = FakeBackend()
        """The in-memory back ends: payments, messages, deliveries, files they were given.

        Both are the engine's own once the initialize rule has run (``open``)."""
        self.snapshot: DossierSnapshot | None = None
        """The dossier as last read from the database; ``None`` before intake."""
        self.decisions: list[Decision] = []
        """Every decision the engine committed for the dossier, in order."""
        self.steps: list[str] = []
        """What each rule did, one line each: the trace a failure shrinks."""
        self._engine: Engine | None = None
        self._kernel: Kernel | None = None
        self._rig: Rig | None = None
        self._pending: list[Decision] = []
        self._numbers = iter(range(1, 1_000_000))
        self._timeline: tuple[int, list[_checks.Step]] | None = None
        self._ended: str | None = None
        self.undelivered = False
        """Whether something may wait in the outbox (a command or a tick since the last drain)."""
        self._watch: CommitWatch | None = None
        self._changes = 0
        self._seen: dict[str, tuple[int, object]] = {}

    @classmethod
    def rule_names(cls) -> list[str]:
        """The names of the machine's rules (initialize rules apart), as its traces show them.

        A falsifying example prints one ``state.<rule>(...)`` line per step.
        """
        return sorted(
            name
            for name, value in inspect.getmembers(cls)
            if getattr(value, "hypothesis_stateful_rule", None) is not None
        )

    # -- the engine ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine of this example."""
        if self._engine is None:
            msg = "the machine's engine is opened by its initialize rule"
            raise RuntimeError(msg)
        return self._engine

    @property
    def kernel(self) -> Kernel:
        """The kernel the engine decides this example's commands with."""
        if self._kernel is None:
            msg = "the machine's engine is opened by its initialize rule"
            raise RuntimeError(msg)
        return self._kernel

    @property
    def spec(self) -> ProcedureSpec:
        """This example's procedure."""
        return self.kernel.procedure

    @property
    def finals(self) -> frozenset[str]:
        """The final states of this example's lifecycle."""
        return frozenset(s.name for s in self.kernel.lifecycle.states if s.final)

    @property
    def dossier(self) -> Dossier | None:
        """The dossier's value as last read, or ``None`` before intake."""
        return None if self.snapshot is None else self.snapshot.dossier

    def open(self, procedure: ProcedureSpec, start: dt.datetime) -> None:
        """Start the example: the procedure's engine, its database emptied, the clock at ``start``.

        The engine (one per procedure and store in a process) starts each example as a freshly
        opened one would: nothing in its database but the published procedure versions.
        """
        rig = rig_for(
            self.store, procedure, config=self.config, environ=self.environ, plugins=self.plugins
        )
        rig.reset(start)
        self._rig = rig
        self._engine, self._watch = rig.engine, rig.watch
        self.clock, self.fakes = rig.clock, rig.fakes
        self._kernel = rig.kernel(procedure.code)
        self.steps.append(f"open {procedure.code} (level {procedure.level.value}) at {start}")

    def teardown(self) -> None:
        """Let the engine go (the next example of the procedure empties its database).

        A drawn procedure's engine and database, never drawn again, are closed and removed.
        """
        if self._rig is not None:
            if type(self).procedure is None:
                release(self._rig)
            self._rig = None

    def _recording(self) -> contextlib.AbstractContextManager[None]:
        """The kernel's decisions go to ``_pending`` while the block runs, and only then."""
        assert self._rig is not None
        return self._rig.recording(self._pending)

    def database(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table (for comparing the database before and after something)."""
        return snapshot(self.engine)

    def _look(self) -> object:
        assert self._watch is not None
        return self._watch.look()

    def _unchanged(self, before: object, what: str) -> None:
        assert self._watch is not None
        changed = self._watch.changes(before, self._watch.look())
        assert not changed, f"{what} wrote to {', '.join(changed)}"

    def _fresh(self, name: str) -> bool:
        """Whether the check ``name`` has not yet seen the database as it is now.

        The built-in invariants depend only on the database and the decisions kept; after a
        step that changed neither (a refused command, which is checked to write nothing)
        they would find what they found before.
        """
        if self.snapshot is None or self._watch is None:
            return False
        # The steps the machine knows of, and (on SQLite, where asking is cheap) whether any
        # commit happened since: a subclass's rule that wrote by itself is seen too.
        now = (self._changes, self._watch.commits())
        if self._seen.get(name) == now:
            return False
        self._seen[name] = now
        return True

    # -- commands -------------------------------------------------------------------------------

    def _record(self, line: str) -> None:
        self.steps.append(line)
        note(line)

    def fire(
        self,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
    ) -> DossierSnapshot | RefusedError:
        """Fire a command on the dossier: its snapshot, or the refusal (after its checks).

        A refusal must write nothing anywhere in the database and carry documented reason
        codes; an accepted command must have been decided once, and stored as decided.
        """
        if self.snapshot is None:
            msg = "fire() needs a dossier: the intake rule creates it"
            raise RuntimeError(msg)
        before = self._look()
        try:
            with self._recording():
                outcome = self.engine.fire(
                    self.snapshot.id, trigger, actor=actor, payload=payload, command_id=command_id
                )
        except RefusedError as refusal:
            self._refused(refusal, before)
            self._record(f"{trigger} by {actor.id}: refused {', '.join(refusal.reasons)}")
            return refusal
        self._accepted(outcome)
        self._record(f"{trigger} by {actor.id} -> {outcome.state}")
        return outcome

    def _refused(self, refusal: RefusedError, before: object) -> None:
        assert not self._pending, "a refused command was decided"
        assert refusal.reasons, f"{refusal} carries no reason code"
        unknown = [reason for reason in refusal.reasons if reason not in REASONS]
        assert not unknown, f"undocumented reason codes {unknown}"
        self._unchanged(before, f"the refused {refusal.trigger}")

    def _accepted(self, outcome: DossierSnapshot) -> None:
        assert len(self._pending) == 1, f"one command, {len(self._pending)} decisions"
        decision = self._pending.pop()
        assert outcome.dossier == decision.dossier, "the engine stored another dossier"
        self.decisions.append(decision)
        self.snapshot = outcome
        self.undelivered = True
        self._changes += 1

    def observe(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` (a tick, a worker, a callback) and keep what it decided.

        Commands sent to the engine other than through `fire` and `observe` are not kept, and
        the history check then finds events no accepted command explains.
        """
        self._changes += 1
        try:
            with self._recording():
                result = operation()
        finally:
            self.undelivered = self.undelivered or bool(self._pending)
            self.decisions.extend(self._pending)
            self._pending.clear()
            if self.snapshot is not None:
                self.snapshot = self.engine.get(self.snapshot.id)
        return result

    def _repeat(
        self,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        command_id: str,
        outcome: DossierSnapshot,
    ) -> None:
        """Send an accepted command again with its id: the recorded outcome, nothing written."""
        assert self.snapshot is not None
        before = self._look()
        with self._recording():
            again = self.engine.fire(
                self.snapshot.id, trigger, actor=actor, payload=payload, command_id=command_id
            )
        assert not self._pending, "a repeated command was decided again"
        assert again == outcome, "a repeated command id returned another outcome"
        self._unchanged(before, "a repeated command id")
        self._record(f"{trigger} again with id {command_id}: recorded outcome")

    # -- rules ----------------------------------------------------------------------------------

    @precondition(_no_dossier)
    @rule(data=st.data())
    def intake(self, data: st.DataObject) -> None:
        """A first command: online by an applicant, at the counter or by post by an officer."""
        spec = self.spec
        offered = sorted(spec.capabilities.channels, key=lambda c: c.value)
        channel = data.draw(st.sampled_from([*offered * 3, *Channel]), label="channel")
        values = intake_values(data.draw, spec, online=channel is Channel.ONLINE)
        everyone = pool(spec)
        if channel is Channel.ONLINE:
            usual = [a for a in everyone if a.id in {OWNER, "rep-1"} or a.acting_for == OWNER]
        else:
            usual = [
                a for a in everyone if a.roles == {"receiving_officer"} and a.agency == spec.agency
            ]
        actors = usual if data.draw(st.integers(0, 9), label="usual actor") < 8 else everyone
        actor = data.draw(st.sampled_from(actors), label="actor")
        delivery = DeliveryMethod(values["delivery"])
        before = self._look()
        try:
            with self._recording():
                outcome = self.engine.submit(
                    spec.code,
                    applicant=values["applicant"],
                    actor=actor,
                    channel=channel,
                    case=values.get("case"),
                    form=values["form"],
                    documents=values["documents"],
                    delivery=delivery,
                    exemption=values.get("exemption"),
                    owner=values.get("owner"),
                    fees_collected=bool(values.get("fees_collected")),
                    notify=values.get("notify"),
                    address=values.get("address"),
                    command_id=f"intake-{next(self._numbers)}",
                )
        except RefusedError as refusal:
            self._refused(refusal, before)
            self._record(f"intake {channel.value} by {actor.id}: refused {refusal.reasons}")
            return
        self._accepted(outcome)
        self._record(f"intake {channel.value} by {actor.id} -> {outcome.state}")

    @precondition(_has_dossier)
    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        """A command: a trigger (mostly one possible now), an actor, a payload (some spoilt)."""
        assert self.snapshot is not None
        self.clock.advance(data.draw(st.sampled_from(PAUSES), label="pause"))
        dossier, now = self.snapshot.dossier, self.clock.now()
        trigger = draw_trigger(data.draw, self.kernel, dossier, now)
        everyone = pool(self.spec)
        fit = [a for a in everyone if trigger in self.kernel.allowed_now(dossier, a)]
        choose_fit = fit and data.draw(st.integers(0, 9), label="fit actor") < 7
        actor = data.draw(st.sampled_from(fit if choose_fit else everyone), label="actor")
        payload = command_payload(
            data.draw, self.spec, dossier=dossier, trigger=trigger, actor=actor, now=now
        )
        if trigger == "resolve" and data.draw(st.booleans(), label="attach a result file"):
            payload["result"] = self._result_file(data)
        command_id = f"command-{next(self._numbers)}"
        outcome = self.fire(trigger, actor, payload, command_id=command_id)
        if (
            isinstance(outcome, DossierSnapshot)
            and data.draw(st.integers(0, 7), label="again") == 7
        ):
            self._repeat(trigger, actor, payload, command_id, outcome)

    def _result_file(self, data: st.DataObject) -> str:
        """Attach (and, where required, sign) a result file; its digest for ``resolve``."""
        assert self.snapshot is not None
        self._changes += 1
        content = f"kết quả {next(self._numbers)}".encode()
        record = self.engine.results.attach(
            self.snapshot.id, content, media_type="text/plain", name="ket-qua.txt"
        )
        if data.draw(st.integers(0, 4), label="sign it") > 0:
            self.engine.results.sign(self.snapshot.id, record.digest)
        return record.digest

    @precondition(_has_dossier)
    @rule(wait=st.sampled_from(WAITS))
    def time_passes(self, wait: dt.timedelta) -> None:
        """Time passes and the timers are swept (`Engine.tick`)."""
        self.clock.advance(wait)
        fired = self.observe(self.engine.tick)
        self._record(f"{wait} later, tick: {fired or 'nothing due'}")

    @precondition(_undelivered)
    @rule()
    def outbox_drains(self) -> None:
        """The outbox worker delivers everything due to the fake back ends."""
        report = self._drain()
        self._record(f"worker: {report.claimed} claimed, {report.done} done")

    def _drain(self) -> Any:  # noqa: ANN401 - the worker's report
        report = self.observe(self.engine.outbox.worker().drain)
        self.undelivered = False
        return report

    @precondition(_payable)
    @rule(data=st.data())
    def gateway_pays(self, data: st.DataObject) -> None:
        """The applicant pays a link at the fake gateway; its signed callback comes back.

        Mostly a success; sometimes a failure, a callback replayed, or one reporting another
        amount (rejected, and nothing but the security log written).
        """
        assert self.snapshot is not None
        self._drain()
        links = [p for p in self.engine.payments.of(self.snapshot.id) if p.state == "awaiting"]
        if not links:
            self._record("gateway: no payment link to pay")
            return
        payment = data.draw(st.sampled_from(links), label="link")
        how = data.draw(st.sampled_from(["paid"] * 5 + ["failed", "twice", "wrong amount"]))
        if how == "wrong amount":
            body, headers = self.fakes.pay(payment.reference, amount=payment.amount.amount + 1)
            before = self.database()
            try:
                self.observe(lambda: self.engine.payments.callback("fake", body, headers))
            except CallbackError as error:
                if error.kind != "amount_mismatch":
                    raise
                after = self.database()
                changed = sorted(n for n in before if n != "security_log" and before[n] != after[n])
                assert not changed, f"a rejected callback wrote to {', '.join(changed)}"
                self._record(f"gateway: {payment.reference} reported wrong amount: rejected")
                return
            msg = "a callback with another amount than requested was accepted"
            raise AssertionError(msg)
        outcome = PaymentOutcome.FAILED if how == "failed" else PaymentOutcome.SUCCEEDED
        body, headers = self.fakes.pay(payment.reference, outcome=outcome)
        self.observe(lambda: self.engine.payments.callback("fake", body, headers))
        if how == "twice":
            before = self.database()
            self.observe(lambda: self.engine.payments.callback("fake", body, headers))
            after = self.database()
            changed = sorted(n for n in before if n != "security_log" and before[n] != after[n])
            assert not changed, f"a replayed callback wrote to {', '.join(changed)}"
        assert self.snapshot is not None
        self._record(f"gateway: {payment.reference} {how} -> {self.snapshot.state}")

    @precondition(_result_goes_out)
    @rule()
    def result_handed_over(self) -> None:
        """A ready result reaches the applicant: downloaded through its link, or by courier."""
        assert self.snapshot is not None
        self._drain()
        dossier_id = self.snapshot.id
        if self.snapshot.dossier.delivery is DeliveryMethod.ELECTRONIC:
            try:
                link = self.engine.results.link(dossier_id)
                self.observe(lambda: self.engine.results.open(link))
            except RefusedError as refusal:
                # The one refusal a fresh link to a ready result may meet: a fee still owed.
                unexpected = self.snapshot.dossier.fees_settled or refusal.reasons != (
                    "fees_unpaid",
                )
                if unexpected:
                    msg = f"the download of a ready result was refused: {refusal}"
                    raise AssertionError(msg) from refusal
                self._record("download: refused, fees unpaid")
                return
        else:
            receiver = {"name": "Nguyễn Văn An", "relation": "holder"}
            for delivery in self.engine.deliveries.of(dossier_id):
                for status in (
                    DeliveryStatus.PICKED_UP,
                    DeliveryStatus.IN_TRANSIT,
                    DeliveryStatus.DELIVERED,
                ):
                    body, headers = self.fakes.courier(
                        delivery.reference,
                        status,
                        receiver=receiver if status is DeliveryStatus.DELIVERED else None,
                    )
                    self._report(body, headers)
        assert self.snapshot is not None
        self._record(f"result handed over -> {self.snapshot.state}")

    def _report(self, body: bytes, headers: Mapping[str, str]) -> None:
        self.observe(lambda: self.engine.deliveries.callback("fake", body, headers))

    # -- invariants -----------------------------------------------------------------------------

    def timeline(self) -> list[_checks.Step]:
        """The stored history, each event with the dossier before and after it (replayed)."""
        if self.snapshot is None:
            return []
        version = self.snapshot.version
        if self._timeline is not None and self._timeline[0] == version:
            return self._timeline[1]
        fields: dict[str, Any] = {}
        steps: list[_checks.Step] = []
        before: Dossier | None = None
        for event in self.engine.history(self.snapshot.id):
            fields.update(decode_changes(event.changes))
            after = Dossier(**fields)
            steps.append(_checks.Step(event, before, after))
            before = after
        self._timeline = (version, steps)
        return steps

    @invariant()
    def history_replays_to_the_stored_state(self) -> None:
        """The history replays (`dvcflow.replay`) to the stored dossier and its chain verifies.

        Each event is the one the kernel decided, in order.
        """
        if not self._fresh("history"):
            return
        assert self.snapshot is not None
        stored = self.engine.get(self.snapshot.id)
        assert stored == self.snapshot, "the dossier changed outside the machine's commands"
        history = self.engine.history(stored.id)
        assert replay(event.changes for event in history) == stored.dossier
        assert self.engine.verify_history(stored.id, checkpoint=self.engine.checkpoint()) == (
            stored.version
        )
        _checks.check_history_matches(self.timeline(), self.decisions)

    @invariant()
    def final_states_stay_final(self) -> None:
        """No event leaves a final state; a dossier that ended stays as it ended."""
        if not self._fresh("finals"):
            return
        assert self.snapshot is not None
        _checks.check_finals(self.timeline(), self.kernel.lifecycle)
        if self._ended is not None:
            assert self.snapshot.state == self._ended, (
                f"the dossier left the final state {self._ended!r} for {self.snapshot.state!r}"
            )
        elif self.snapshot.state in self.finals:
            self._ended = self.snapshot.state

    @invariant()
    def no_result_returned_with_fees_unpaid(self) -> None:
        """``return_result`` happens only when every fee is paid."""
        if not self._fresh("fees"):
            return
        _checks.check_fees_before_return(self.timeline())

    @invariant()
    def due_dates_on_working_days(self) -> None:
        """Due dates, step deadlines and supplement deadlines fall on the agency's working days."""
        if not self._fresh("due"):
            return
        calendar = self.engine.config.calendar_for(self.spec.agency)
        _checks.check_due_dates(self.timeline(), calendar)

    @invariant()
    def full_process_never_needs_presence(self) -> None:
        """A `full` (2022 class) dossier has no visit, counter payment or presence step."""
        if not self._fresh("presence"):
            return
        _checks.check_no_presence(self.timeline(), self.spec)

    @invariant()
    def effects_queued_exactly_once(self) -> None:
        """Every effect of every accepted command is in the outbox once (or a timer row)."""
        if not self._fresh("effects"):
            return
        assert self.snapshot is not None
        queued = self.engine.outbox.items(self.snapshot.id)
        with self.engine.store.connect() as connection:
            timers = len(self.engine.store.timers_of(connection, self.snapshot.id))
        _checks.check_effects(self.snapshot.id, self.decisions, queued, timers)

    @invariant()
    def fakes_take_every_effect(self) -> None:
        """No effect becomes an incident: the fakes accept everything they are asked.

        A fake fails only when told to (`FakeBackend.fail_next`, ``refuse_channel``); a rule
        that does so overrides this invariant.
        """
        if not self._fresh("incidents"):
            return
        assert self.snapshot is not None
        incidents = self.engine.outbox.incidents(status=None)
        assert not incidents, "; ".join(f"{i.kind} {i.effect}: {i.error}" for i in incidents)

    @invariant()
    def commands_were_authorized(self) -> None:
        """Every event's actor held a role of its edge and the scope (owner, agency, leg)."""
        if not self._fresh("authorized"):
            return
        _checks.check_authorized(self.timeline(), self.kernel.lifecycle, self.spec)


BUILTIN_INVARIANTS: Mapping[str, str] = {
    "refused_commands_change_nothing": (
        "a refused command writes nothing and carries documented reason codes (checked as each "
        "command is refused, not as an @invariant)"
    ),
    "history_replays_to_the_stored_state": (
        "the history replays to the stored dossier, verifies, and is what the kernel decided"
    ),
    "final_states_stay_final": "no event leaves a final state",
    "no_result_returned_with_fees_unpaid": "return_result only with every fee paid",
    "due_dates_on_working_days": "computed due dates and deadlines fall on working days",
    "full_process_never_needs_presence": (
        "a full-process dossier: no in-person return, counter payment or visit"
    ),
    "effects_queued_exactly_once": "every effect of every accepted command queued once",
    "fakes_take_every_effect": "no effect ends as an incident",
    "commands_were_authorized": "every event's actor held a role of its edge, in scope",
}
"""The built-in checks by name (each an ``@invariant`` method of `DossierMachine` but the
first), and what each one holds."""


def _beside_caller(path: Path, caller: str) -> Path:
    """A relative path is taken from the folder of the file that called `machine_for`."""
    if path.is_absolute() or caller.startswith("<"):
        return path
    return Path(caller).resolve().parent / path


def _procedure_of(
    procedure: ProcedureSpec | str | os.PathLike[str], code: str | None
) -> ProcedureSpec:
    if isinstance(procedure, ProcedureSpec):
        return procedure
    catalog = Catalog.from_path(Path(procedure))
    if code is not None:
        return catalog.get(code)
    if len(catalog) != 1:
        codes = ", ".join(p.code for p in catalog)
        msg = f"{procedure} holds {len(catalog)} procedures ({codes}); pass code="
        raise ValueError(msg)
    return next(iter(catalog))


def _class_name(procedure: ProcedureSpec | None, *parts: object) -> str:
    """A name per procedure and set-up: hypothesis keys its saved failures by it."""
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:8]
    if procedure is None:
        return f"DrawnProcedureMachine_{digest}"
    return "Procedure_" + re.sub(r"\W", "_", procedure.code) + f"_{digest}Machine"


def machine_for(  # noqa: PLR0913 - the machine's parts, keyword-only
    procedure: ProcedureSpec | str | os.PathLike[str] | st.SearchStrategy[ProcedureSpec],
    *,
    code: str | None = None,
    store: str = "sqlite",
    invariants: Iterable[Invariant] = (),
    rules: Iterable[Rule] = (),
    config: Config | str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    plugins: Sequence[object] = (),
    start: st.SearchStrategy[dt.datetime] | None = None,
) -> type[DossierMachine]:
    """A hypothesis `RuleBasedStateMachine` class driving a real engine for ``procedure``.

    Args:
        procedure: a `ProcedureSpec`; the path of a procedure file (or of a folder, with
            ``code``), a relative one taken from the folder of the file calling
            `machine_for`; or a strategy (e.g. `strategies.procedures`) drawing one per
            example.
        code: which procedure of the folder ``procedure`` names.
        store: ``"sqlite"`` (a file in a temporary folder) or a PostgreSQL URL whose role may
            create databases (a database of its own, dropped by `close_engines` or at exit);
            emptied before each example.
        invariants: more invariants, each called with the machine after every step.
        rules: more rules, each called with the machine and a `hypothesis` data object.
        config: the engine's configuration (its providers must include a ``fake`` provider
            the routing uses); by default every family goes to the fake, with a history key.
        environ: where the configuration's secrets and history key are read.
        plugins: more back-end plugins to register (the fake is always registered); they
            are shared by the examples, so reset what they capture in a rule or invariant.
        start: where each example's clock starts; `strategies.starts` by default.

    Returns:
        The machine class; its ``TestCase`` is a test pytest and unittest collect.

    Raises:
        ValueError: ``store`` is neither ``"sqlite"`` nor a PostgreSQL URL, or a folder holds
            several procedures and no ``code`` was given.
    """
    check_store(store)
    invariants, rules = tuple(invariants), tuple(rules)
    drawn = procedure if isinstance(procedure, st.SearchStrategy) else None
    fixed: ProcedureSpec | None = None
    if isinstance(procedure, ProcedureSpec):
        fixed = procedure
    elif drawn is None:
        where = _beside_caller(Path(procedure), inspect.stack()[1].filename)  # type: ignore[arg-type]
        fixed = _procedure_of(where, code)
    settings = Config.load(config) if isinstance(config, str | os.PathLike) else config

    starting = start if start is not None else starts()
    if drawn is not None:

        @initialize(start=starting, procedure=drawn)
        def open_engine(self: DossierMachine, start: dt.datetime, procedure: ProcedureSpec) -> None:
            """Open the engine on a fresh database with a drawn procedure published."""
            self.open(procedure, start)

    else:
        assert fixed is not None
        chosen = fixed

        @initialize(start=starting)
        def open_engine(self: DossierMachine, start: dt.datetime) -> None:
            """Open the engine on a fresh database with the procedure published."""
            self.open(chosen, start)

    namespace: dict[str, Any] = {
        "procedure": fixed,
        "store": store,
        "config": settings,
        "environ": environ,
        "plugins": tuple(plugins),
        "open_engine": open_engine,
        "__module__": DossierMachine.__module__,
    }
    for number, check in enumerate(invariants):
        namespace[f"user_invariant_{number}_{_name(check)}"] = invariant()(_as_invariant(check))
    for number, action in enumerate(rules):
        namespace[f"user_rule_{number}_{_name(action)}"] = precondition(_has_dossier)(
            rule(data=st.data())(_as_rule(action))
        )
    name = _class_name(
        fixed,
        content_hash(fixed) if fixed is not None else repr(drawn),
        store,
        [_name(check) for check in invariants],
        [_name(action) for action in rules],
    )
    machine = type(name, (DossierMachine,), namespace)
    machine.__qualname__ = name
    return machine


def _name(function: Callable[..., object]) -> str:
    return re.sub(r"\W", "_", getattr(function, "__name__", "check"))


def _as_invariant(check: Invariant) -> Callable[[DossierMachine], None]:
    def method(self: DossierMachine) -> None:
        if self._engine is not None:
            check(self)

    method.__name__ = _name(check)
    method.__doc__ = check.__doc__
    return method


def _as_rule(action: Rule) -> Callable[[DossierMachine, st.DataObject], None]:
    def method(self: DossierMachine, data: st.DataObject) -> None:
        try:
            action(self, data)
        finally:
            # It may have written (through fire or observe, or by itself): check again.
            self._changes += 1

    method.__name__ = _name(action)
    method.__doc__ = action.__doc__
    return method
