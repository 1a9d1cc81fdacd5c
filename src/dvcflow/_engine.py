"""The engine: the kernel made durable, one transaction per command, on SQLite or PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Row

from dvcflow._backends import TransitionRecord
from dvcflow._catalog import Catalog
from dvcflow._clock import Clock, SystemClock, to_utc
from dvcflow._config import Config
from dvcflow._deliveries import Deliveries
from dvcflow._dossier import Dossier, load_dossier
from dvcflow._history import (
    GENESIS,
    Checkpoint,
    StoredEvent,
    canonical,
    chain_mac,
    keyed_digest,
    verify_chain,
    verify_dossier,
)
from dvcflow._hooks import Backends
from dvcflow._intake import Intake
from dvcflow._kernel import Action, EffectKind, Kernel, content_hash
from dvcflow._lifecycle import FINAL_STATES, NationalStatus
from dvcflow._migration import MigrationPlan, apply_migration, plan_migration
from dvcflow._notifications import Notifications
from dvcflow._outbox import Outbox
from dvcflow._outbox_store import queued
from dvcflow._payments import Payments
from dvcflow._procedure import ProcedureSpec
from dvcflow._recording import Recorder, plain
from dvcflow._results import Results
from dvcflow._sealing import BATCH, Sealer
from dvcflow._snapshots import DossierSnapshot, HistoryEvent, Page, aware, history_event
from dvcflow._store import Store, default_key_path, read_or_create_key
from dvcflow._values import Actor, Applicant, Channel, DeliveryMethod
from dvcflow.errors import (
    CommandConflictError,
    ConcurrencyError,
    ConfigurationError,
    DvcflowError,
    InvalidValueError,
    NotFoundError,
    Problem,
    RefusedError,
    StoreUnavailableError,
    TamperedHistoryError,
)

__all__ = ["Engine", "retry"]

logger = logging.getLogger("dvcflow")

T = TypeVar("T")


def retry(
    operation: Callable[[], T],
    *,
    attempts: int = 5,
    backoff: float = 0.02,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``operation``, retrying it on `ConcurrencyError` with exponential backoff and jitter.

    Safe for commands that carry a ``command_id``: a retry after an unseen commit returns the
    recorded outcome instead of acting twice.

    Raises:
        ConcurrencyError: when every attempt lost its race.
    """
    import random  # noqa: PLC0415 - only needed on a retry

    pause = sleep or time.sleep
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except ConcurrencyError:
            if attempt == attempts:
                raise
            pause(backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))  # noqa: S311 - jitter
    msg = "unreachable"
    raise AssertionError(msg)


class Engine:
    """dvcflow's front door: dossiers that survive restarts, one transaction per command.

    Open it with `Engine.open`; one per process, safe to share between threads.
    """

    def __init__(
        self,
        store: Store,
        *,
        config: Config,
        clock: Clock,
        key: bytes,
        backends: Backends | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self._key = key
        self.sealer = Sealer(store, key)
        self.recorder = Recorder(store, key, self.sealer)
        self.backends = backends or Backends(
            providers=config.resolved_providers(), routing=config.routing, entry_points=False
        )
        """The plugins and configured providers: the one caller of every hook."""
        self.intake = Intake(self)
        """The checks every back-end callback passes, and the security log."""
        self.payments = Payments(self)
        """Payment links, callbacks, reconciliation and refunds."""
        self.notifications = Notifications(self)
        """Messages per channel and locale, their receipts."""
        self.deliveries = Deliveries(self)
        """Results by post and electronically, the couriers' reports."""
        self.results = Results(self, key)
        """Result files, their signatures, download links."""
        self.outbox = Outbox(self)
        """Queued effects, the worker that delivers them, and incidents."""
        self._kernels: dict[str, Kernel] = {}
        self._current: dict[str, str] = {}
        self._lock = threading.Lock()
        self._sealed_at = -float("inf")

    @classmethod
    def open(  # noqa: PLR0913 - the engine's parts, keyword-only
        cls,
        url: str = "sqlite:///dvcflow.db",
        *,
        catalog: Catalog | Iterable[ProcedureSpec] | None = None,
        config: Config | str | Path | None = None,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        plugins: Sequence[object] = (),
        entry_points: bool = True,
    ) -> Engine:
        """Open (creating or upgrading) the database and publish the catalogue.

        Args:
            url: the database.
            catalog: procedures to publish (new versions are stored).
            config: a `Config`, or the path of a configuration file.
            clock: where time comes from; the system clock by default.
            environ: where the history key and provider secrets are read; `os.environ`.
            plugins: back-end plugins to register; one serving a provider type a built-in
                serves takes its place.
            entry_points: also load the plugins of the ``dvcflow`` entry-point group.

        Raises:
            SchemaError: the database was written by a newer dvcflow.
            StoreUnavailableError: the database cannot be reached.
            ConfigurationError: the configuration file is invalid, a secret or the history key
                is missing (the key is always required on PostgreSQL), or a provider's type
                is served by no plugin.
            PluginError: a plugin implements a hook that is not specified.
        """
        settings = (
            config
            if isinstance(config, Config)
            else Config.load(config)
            if config
            else Config.default()
        )
        # The key, the secrets and the plugins are checked before the database is touched: a
        # missing one writes nothing.
        key = settings.history_key(environ)
        backends = Backends(
            providers=settings.resolved_providers(environ),
            routing=settings.routing,
            plugins=plugins,
            entry_points=entry_points,
            source=settings.source or "<config>",
        )
        store = Store(
            url,
            busy_timeout_ms=settings.busy_timeout_ms,
            statement_timeout_ms=settings.statement_timeout_ms,
            pool_size=settings.pool_size,
        )
        if key is None and store.dialect != "sqlite":
            store.close()
            raise _key_required()
        try:
            store.upgrade()
            if key is None:
                key = _embedded_key(store)
            engine = cls(
                store, config=settings, clock=clock or SystemClock(), key=key, backends=backends
            )
            engine._load_versions()
            if catalog is not None:
                engine.publish(catalog)
        except BaseException:
            store.close()
            raise
        return engine

    def close(self) -> None:
        """Release the database connections."""
        self.store.close()

    # -- procedure versions ----------------------------------------------------------------

    def publish(self, catalog: Catalog | Iterable[ProcedureSpec]) -> list[str]:
        """Store the catalogue's procedures as immutable versions; returns the new version ids.

        A procedure whose content is unchanged keeps its version. Running dossiers stay on the
        version they were pinned to.
        """
        created, current = [], {}
        now = to_utc(self.clock.now(), "now")
        with self.store.transaction() as connection:
            for procedure in catalog:
                version = content_hash(procedure)
                row = {
                    "id": version,
                    "code": procedure.code,
                    "agency": procedure.agency,
                    "published_at": now,
                    "definition": canonical(procedure.to_data()),
                }
                if self.store.save_version(connection, **row):
                    created.append(version)
                self._register(version, procedure)
                current[procedure.code] = version
        # Only once stored: a dossier pinned to a version must find it in the database.
        with self._lock:
            self._current.update(current)
        return created

    def _register(self, version: str, procedure: ProcedureSpec) -> Kernel:
        with self._lock:
            kernel = self._kernels.get(version)
            if kernel is None:
                calendar = self.config.calendar_for(procedure.agency)
                kernel = Kernel(
                    procedure,
                    calendar=calendar,
                    rule_packs=self.config.rule_packs,
                    version=version,
                    refund_on=self.config.payments.refund_on,
                    unclaimed_after=dt.timedelta(days=self.config.delivery.unclaimed_after_days),
                )
                self._kernels[version] = kernel
            return kernel

    def _load_versions(self) -> None:
        with self.store.connect() as connection:
            for row in self.store.versions(connection):
                self._current[row.code] = row.id

    def kernel(self, version: str) -> Kernel:
        """The compiled kernel of a stored procedure version.

        Raises:
            NotFoundError: when no such version is stored.
        """
        kernel = self._kernels.get(version)
        if kernel is not None:
            return kernel
        with self.store.connect() as connection:
            row = self.store.version(connection, version)
        if row is None:
            raise NotFoundError(f"no procedure version {version!r} is stored")
        procedure = ProcedureSpec.from_data(
            json.loads(row.definition), source=f"version {version[:12]}"
        )
        return self._register(version, procedure)

    def current_version(self, code: str) -> str:
        """The version of ``code`` new dossiers are pinned to.

        Raises:
            NotFoundError: when the procedure was never published.
        """
        try:
            return self._current[code]
        except KeyError:
            raise NotFoundError(f"procedure {code!r} is not published in this database") from None

    # -- commands ------------------------------------------------------------------------------

    def submit(  # noqa: PLR0913 - the parts of an intake, all keyword-only
        self,
        procedure: str,
        *,
        applicant: Applicant | Mapping[str, Any],
        actor: Actor,
        channel: Channel = Channel.ONLINE,
        case: str | None = None,
        form: Mapping[str, Any] | None = None,
        documents: Sequence[str] = (),
        delivery: DeliveryMethod | None = None,
        exemption: str | None = None,
        owner: str | None = None,
        fees_collected: bool = False,
        notify: Mapping[str, Any] | None = None,
        address: Mapping[str, str] | None = None,
        command_id: str | None = None,
    ) -> DossierSnapshot:
        """Create a dossier: ``submit`` online by the applicant, ``receive`` otherwise.

        ``notify`` holds the applicant's notification preferences: the channels they opt
        into (``{"channels": ["zalo", "sms"], "locale": "vi"}``; email and SMS by default).
        ``address`` is where a postal result goes (``{"address": ..., "name": ..., "phone":
        ...}``; name and phone default to the applicant's), required for a postal return.

        Raises:
            RefusedError: with reason codes when the intake is not acceptable.
            NotFoundError: for an unpublished procedure.
        """
        payload: dict[str, Any] = {
            "applicant": applicant,
            "form": dict(form or {}),
            "documents": list(documents),
        }
        if case is not None:
            payload["case"] = case
        if delivery is not None:
            payload["delivery"] = delivery
        if exemption is not None:
            payload["exemption"] = exemption
        if notify is not None:
            payload["notify"] = dict(notify)
        if address is not None:
            payload["address"] = dict(address)
        if channel is Channel.ONLINE:
            trigger = "submit"
        else:
            trigger = "receive"
            payload["channel"] = channel
            payload["fees_collected"] = fees_collected
            if owner is not None:
                payload["owner"] = owner
        return self._command(None, trigger, actor, payload, command_id, procedure=procedure)

    def fire(
        self,
        dossier: str,
        trigger: str,
        *,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        command_id: str | None = None,
    ) -> DossierSnapshot:
        """Fire ``trigger`` on the dossier with id or code ``dossier``.

        Raises:
            RefusedError: the command is not possible now; nothing was written.
            PermissionDeniedError: the actor lacks the role or the scope.
            ConcurrencyError: another command changed the dossier first; nothing was written.
            CommandConflictError: ``command_id`` was used before for a different command.
            NotFoundError: no such dossier.
        """
        return self._command(dossier, trigger, actor, dict(payload or {}), command_id)

    def fire_internal(  # noqa: PLR0913 - the command's parts
        self,
        dossier: str,
        trigger: str,
        payload: Mapping[str, Any],
        *,
        command_id: str,
        now: dt.datetime | None = None,
        before: Callable[[Connection], None] | None = None,
    ) -> DossierSnapshot:
        """Fire a trigger as ``system`` for a verified back-end report (payment, courier).

        ``before`` runs first in the command's transaction (to record the report itself, so
        report and command commit together or not at all).
        """
        return self._command(
            dossier, trigger, Actor.system(), dict(payload), command_id, now=now, before=before
        )

    def _fingerprint(self, ref: str, trigger: str, actor: Actor, payload: Mapping[str, Any]) -> str:
        # Keyed: the payload holds personal data (applicant, form) and the fingerprint stays.
        return keyed_digest(
            self._key,
            "command",
            {
                "ref": ref,
                "trigger": trigger,
                "actor": [actor.id, sorted(actor.roles), actor.agency, actor.acting_for],
                "payload": plain(payload),
            },
        )

    def _command(  # noqa: PLR0913 - the command's parts
        self,
        ref: str | None,
        trigger: str,
        actor: Actor,
        payload: dict[str, Any],
        command_id: str | None,
        *,
        procedure: str | None = None,
        now: dt.datetime | None = None,
        before: Callable[[Connection], None] | None = None,
    ) -> DossierSnapshot:
        at = to_utc(now if now is not None else self.clock.now(), "now")
        wrote: list[bool] = []

        def seal(connection: Connection) -> None:
            # Only after a command that wrote: a repeated one returns its outcome, nothing else.
            if wrote:
                self._seal_opportunistically(connection)

        with self.store.transaction(then=seal) as connection:
            if before is not None:
                # First: a timer another process fired is not reported fired again by the
                # recorded outcome of its command.
                before(connection)
            row = None if ref is None else self._row(connection, ref)
            command = None
            if command_id is not None:
                # By id, not by the reference given: the id and the code are one dossier.
                target = f"new:{procedure}" if row is None else row.id
                fingerprint = self._fingerprint(target, trigger, actor, payload)
                seen = self.store.recorded_command(connection, command_id)
                if seen is not None:
                    if seen.fingerprint != fingerprint:
                        raise CommandConflictError(
                            f"command {command_id!r} was used before for a different command",
                        )
                    return DossierSnapshot.from_data(seen.outcome)
                command = {"id": command_id, "fingerprint": fingerprint}
            snapshot, source = self._decide(
                connection,
                row,
                trigger=trigger,
                actor=actor,
                payload=payload,
                now=at,
                procedure=procedure,
                command=command,
            )
            wrote.append(True)
        logger.info(
            "dvcflow command",
            extra={
                "trigger": trigger,
                "dossier": snapshot.id,
                "version": snapshot.version,
                "state": snapshot.state,
            },
        )
        if self.backends.observed:
            value = snapshot.dossier
            self.backends.after_transition(
                TransitionRecord(
                    value.id,
                    value.code,
                    value.procedure,
                    value.agency,
                    trigger,
                    source,
                    value.state,
                    value.version,
                    snapshot.national_status,
                    at,
                )
            )
        return snapshot

    def _row(self, connection: Connection, ref: str) -> Row[Any]:
        row = self.store.dossier(connection, ref)
        if row is None:
            raise NotFoundError(f"no dossier {ref!r}")
        return row

    def _load(self, connection: Connection, ref: str) -> tuple[Row[Any], Dossier]:
        row = self._row(connection, ref)
        return row, load_dossier(row.data)

    def _decide(  # noqa: PLR0913 - the command's parts
        self,
        connection: Connection,
        row: Row[Any] | None,
        *,
        trigger: str,
        actor: Actor,
        payload: Mapping[str, Any],
        now: dt.datetime,
        procedure: str | None,
        command: Mapping[str, str] | None,
    ) -> tuple[DossierSnapshot, str]:
        """The command decided and written; with the state it left."""
        if row is None:
            kernel = self.kernel(self.current_version(procedure or ""))
            dossier = None
        else:
            dossier = load_dossier(row.data)
            kernel = self.kernel(dossier.procedure_version)
        if trigger == "resolve" and row is not None:
            # An attached result's signature is checked here, whatever the payload claims.
            verified = self.results.verified(row, payload.get("result"))
            if verified is not None:
                payload = {**payload, "signed": verified}
        code = None
        if trigger == "receive" and (dossier is None or dossier.code is None):
            code = self._next_code(connection, kernel.procedure.agency, now)
        decision = kernel.decide(
            dossier,
            trigger,
            actor=actor,
            payload=payload,
            now=now,
            dossier_id=str(uuid.uuid4()) if dossier is None else None,
            code=code,
        )
        previous = GENESIS if row is None else row.last_mac
        snapshot = self.recorder.write(
            connection, kernel, dossier, decision, now, previous_mac=previous, command=command
        )
        return snapshot, decision.event.source

    def _next_code(self, connection: Connection, agency: str, now: dt.datetime) -> str:
        day = now.astimezone(self.config.calendar_for(agency).timezone).date()
        codes = self.config.codes
        number = self.store.next_code_number(connection, agency, codes.period_key(day))
        return codes.render(agency, day, number)

    # -- reading -------------------------------------------------------------------------------

    def get(self, dossier: str) -> DossierSnapshot:
        """The dossier with id or code ``dossier``.

        Raises:
            NotFoundError: no such dossier.
        """
        with self.store.connect() as connection:
            row, value = self._load(connection, dossier)
        return DossierSnapshot(value, NationalStatus(row.national_status), aware(row.updated_at))

    def available(self, dossier: str, actor: Actor) -> list[Action]:
        """Every trigger from the dossier's state, allowed or refused with reasons; no effects."""
        snapshot = self.get(dossier)
        return self.kernel(snapshot.dossier.procedure_version).available(
            snapshot.dossier, actor, self.clock.now()
        )

    def history(self, dossier: str) -> list[HistoryEvent]:
        """The dossier's events, oldest first."""
        with self.store.connect() as connection:
            row = self._row(connection, dossier)
            stored = self.store.events_of(connection, row.id)
        events = []
        for event in stored:
            try:
                events.append(history_event(event.seq, json.loads(event.body)))
            except (ValueError, KeyError, TypeError):
                msg = (
                    f"dossier {row.id}: {event.where} is not a "
                    "readable event; verify_history says what was done to it"
                )
                raise TamperedHistoryError(msg) from None
        return events

    def personal_data(self, dossier: str) -> dict[str, Any]:
        """The personal data still held for a dossier (applicant, form, documents, receiver)."""
        with self.store.connect() as connection:
            row = self._row(connection, dossier)
            return self.store.personal(connection, row.id)

    def erase_personal_data(self, dossier: str) -> int:
        """Erase a dossier's personal data (after its retention period); history still verifies.

        Returns:
            How many records were erased.
        """
        with self.store.transaction() as connection:
            row = self._row(connection, dossier)
            return self.store.erase(connection, row.id, to_utc(self.clock.now(), "now"))

    def verify_history(self, dossier: str, *, checkpoint: Checkpoint | None = None) -> int:
        """Check the dossier's chain (and, given a saved checkpoint, the database-wide chain).

        Each sealed event is also checked at its place in the database-wide chain. Events
        not sealed yet (committed moments ago, on PostgreSQL) are verified in the dossier's
        chain; `history` shows them with ``seq`` ``None`` and the count is logged.

        Returns:
            The number of the dossier's events verified.

        Raises:
            TamperedHistoryError: naming the event that was edited, deleted, inserted or moved.
        """
        with self.store.connect() as connection:
            row = self._row(connection, dossier)
            stored = self.store.events_of(connection, row.id)
            verify_dossier(self._key, row.id, stored, row.version)
            unsealed = self._verify_sealed(connection, row.id, stored)
            if checkpoint is not None:
                self._verify_checkpoint(connection, checkpoint)
        if unsealed:
            logger.info("dvcflow unsealed events", extra={"dossier": row.id, "unsealed": unsealed})
        return len(stored)

    def _verify_sealed(
        self, connection: Connection, dossier_id: str, stored: Sequence[StoredEvent]
    ) -> int:
        """Check each sealed event's link in the database-wide chain; return how many are not."""
        unsealed: StoredEvent | None = None
        last = 0
        for event in stored:
            if event.seq is None:
                unsealed = unsealed or event
                continue
            where = f"dossier {dossier_id}: {event.where}"
            if unsealed is not None:
                # Sealers number events oldest first: an older event cannot wait for a newer.
                msg = f"{where} is sealed but {unsealed.where} is not: its chain number was removed"
                raise TamperedHistoryError(msg)
            previous = self.store.chain_mac_at(connection, event.seq - 1)
            if (
                event.seq <= last
                or previous is None
                or event.chain_mac is None
                or not hmac.compare_digest(
                    chain_mac(self._key, event.seq, event.mac, previous), event.chain_mac
                )
            ):
                msg = f"{where} is not where the database-wide chain put it"
                raise TamperedHistoryError(msg)
            last = event.seq
        return sum(event.seq is None for event in stored)

    def _verify_checkpoint(self, connection: Connection, checkpoint: Checkpoint) -> None:
        head = verify_chain(self._key, self.store.events_from(connection, 1, checkpoint.seq))
        if head.seq < checkpoint.seq:
            msg = (
                f"the history ends at event {head.seq} but checkpoint {checkpoint.seq} "
                "was saved: the newest events were deleted"
            )
            raise TamperedHistoryError(msg)
        if not hmac.compare_digest(head.mac, checkpoint.mac):
            msg = f"event {checkpoint.seq} does not match the saved checkpoint: history rewritten"
            raise TamperedHistoryError(msg)

    def checkpoint(self) -> Checkpoint:
        """The head of the database-wide chain, to keep outside the database.

        Seals first: the checkpoint covers every event committed before the call.
        """
        seq, mac = self.sealer.checkpoint()
        return Checkpoint(seq, mac)

    def seal(self, *, batch: int = BATCH) -> int:
        """Seal every event committed so far into the database-wide chain, ``batch`` at a time.

        Commands seal opportunistically and `tick` and `checkpoint` seal too; this is for a
        dedicated sealer or a maintenance job. Several processes may seal at once: each event
        gets one number, and the numbers have no gaps.

        Returns:
            How many events this call sealed (those another sealer took are not counted).
        """
        if batch < 1:
            raise InvalidValueError("batch", "must be at least 1")
        return self.sealer.seal(batch=batch)

    def _seal_opportunistically(self, connection: Connection) -> None:
        """After a commit, on its connection: seal, unless another sealer is at it.

        At most once per ``seal_interval_ms`` per engine; nothing to do where commands seal
        their own events (SQLite). Never fails the command that just committed: what is left
        is sealed by the next sealer.
        """
        if self.store.seals_in_command:
            return
        now = time.monotonic()
        if now - self._sealed_at < self.config.seal_interval_ms / 1000:
            # Sealed moments ago: under load one batch a few milliseconds covers the commands
            # of every process, at a fraction of the cost of a sealing after each.
            return
        self._sealed_at = now
        try:
            self.sealer.seal_on(connection, wait=False)
        except DvcflowError as exc:
            logger.info("dvcflow sealing left for later", extra={"error": str(exc)})

    def find(  # noqa: PLR0913 - one keyword per filter
        self,
        *,
        national_status: NationalStatus | int | None = None,
        agency: str | None = None,
        procedure: str | None = None,
        owner: str | None = None,
        applicant: str | None = None,
        overdue: bool = False,
        due_before: dt.datetime | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page:
        """Dossiers matching every filter, one page at a time (keyset pagination).

        ``applicant`` is a citizen id or tax code (matched by keyed hash); ``overdue`` means
        unresolved with a due date before now; pass the returned ``next`` as ``after``.
        """
        if not 1 <= limit <= 1000:
            raise InvalidValueError("limit", "must be between 1 and 1000")
        status = (
            national_status.code if isinstance(national_status, NationalStatus) else national_status
        )
        ordered_by_due = overdue or due_before is not None
        # Instants, not wall clocks: the database keeps UTC without an offset.
        bounds = [
            to_utc(self.clock.now(), "now") if overdue else None,
            None if due_before is None else to_utc(due_before, "due_before"),
        ]
        before = min(d for d in bounds if d is not None) if ordered_by_due else None
        cursor: tuple[Any, ...] | None = None
        if after is not None:
            cursor = _parse_cursor(after, by_due=ordered_by_due)
        with self.store.connect() as connection:
            rows = self.store.find(
                connection,
                national_status=status,
                agency=agency,
                procedure=procedure,
                owner=owner,
                applicant_digest=None
                if applicant is None
                else self.recorder.identifier_digest(applicant),
                due_before=before,
                unresolved=overdue,
                # A dossier that ended without a result (refused, stopped, withdrawn) is not late.
                ended=FINAL_STATES,
                after=cursor,
                limit=limit + 1,
            )
        items = tuple(
            DossierSnapshot(
                load_dossier(row.data),
                NationalStatus(row.national_status),
                aware(row.updated_at),
            )
            for row in rows[:limit]
        )
        following = None
        if len(rows) > limit:
            last = rows[limit - 1]
            following = f"{aware(last.due_at).isoformat()}|{last.id}" if ordered_by_due else last.id
        return Page(items, following)

    # -- migrations ----------------------------------------------------------------------------

    def plan_migration(
        self,
        procedure: str,
        *,
        to_version: str | None = None,
        state_map: Mapping[str, str] | None = None,
    ) -> MigrationPlan:
        """A dry run moving running dossiers of ``procedure`` to a version (see `_migration`)."""
        return plan_migration(self, procedure, to_version=to_version, state_map=state_map)

    def apply_migration(self, plan: MigrationPlan, *, actor: Actor) -> MigrationPlan:
        """Apply a migration plan, dossier by dossier, each with an audit event."""
        return apply_migration(self, plan, actor=actor)

    # -- timers --------------------------------------------------------------------------------

    def tick(
        self, now: dt.datetime | None = None, *, limit: int = 100
    ) -> list[tuple[str, str, str]]:
        """Fire every timer due at ``now`` (the engine's clock by default), each exactly once.

        A timer with a trigger fires it as ``system`` through the ordinary command path; a
        reminder or escalation queues its notification. Several processes may tick at once.

        Returns:
            ``(dossier id, timer name, outcome)`` for each timer fired: ``"fired"``,
            ``"notified"`` or ``"refused: <reasons>"``.
        """
        at = to_utc(now if now is not None else self.clock.now(), "now")
        fired: list[tuple[str, str, str]] = []
        busy: set[int] = set()
        while True:
            # Timers left for a later tick stay due: read past them so each round makes progress.
            wanted = limit + len(busy)
            with self.store.connect() as connection:
                due = self.store.due_timers(connection, at, wanted)
            for timer in due:
                if timer.id in busy:
                    continue
                try:
                    outcome = self._fire_timer(timer, at)
                except ConcurrencyError:
                    # Nothing was written and the timer is still active: the next tick fires it.
                    logger.info("dvcflow timer busy", extra={"timer": timer.id})
                    busy.add(timer.id)
                    continue
                if outcome is not None:
                    fired.append((timer.dossier_id, timer.name, outcome))
            if len(due) < wanted:
                break
        try:
            self.sealer.seal()
        except ConcurrencyError as exc:
            # The timers fired; their events wait for the next sealer.
            logger.info("dvcflow sealing left for later", extra={"error": str(exc)})
        return fired

    def _fire_timer(self, timer: Row[Any], now: dt.datetime) -> str | None:
        def claim(connection: Connection) -> None:
            if not self.store.claim_timer(connection, timer.id, now):
                raise _AlreadyFiredError

        try:
            if timer.trigger is None:
                with self.store.transaction() as connection:
                    claim(connection)
                    self.store.add_outbox(connection, [_reminder(timer, now)])
                return "notified"
            self._command(
                timer.dossier_id,
                timer.trigger,
                Actor.system(),
                {},
                f"timer:{timer.id}",
                now=now,
                before=claim,
            )
        except _AlreadyFiredError:
            return None
        except RefusedError as exc:
            # Spent: the command it stood for is not possible any more (e.g. answered in time).
            with self.store.transaction() as connection:
                if not self.store.claim_timer(connection, timer.id, now):
                    return None
            return f"refused: {', '.join(exc.reasons)}"
        return "fired"


class _AlreadyFiredError(DvcflowError):
    """Another process fired the timer first."""


_TIMER_RECIPIENTS = {"result_unclaimed": "applicant"}
"""Who a notification-only timer tells; the officer holding the dossier unless named here."""


def _reminder(timer: Row[Any], now: dt.datetime) -> dict[str, Any]:
    data = {"event": timer.name, "to": _TIMER_RECIPIENTS.get(timer.name, "officer")}
    return queued(f"timer:{timer.id}", timer.dossier_id, EffectKind.NOTIFY.value, data, now)


def _parse_cursor(text: str, *, by_due: bool) -> tuple[Any, ...]:
    if not by_due:
        return (text,)
    due, _, dossier_id = text.partition("|")
    try:
        return (dt.datetime.fromisoformat(due), dossier_id)
    except ValueError:
        raise InvalidValueError("after", f"not a cursor this query returned: {text!r}") from None


def _key_required() -> ConfigurationError:
    return ConfigurationError(
        [Problem("<config>", "history.key_env", "PostgreSQL needs a configured history key")],
    )


def _embedded_key(store: Store) -> bytes:
    path = default_key_path(store)
    if path is None:
        if store.dialect == "sqlite":
            # An in-memory database lives as long as the process: so does its key.
            import os  # noqa: PLC0415

            return os.urandom(32)
        raise _key_required()
    try:
        key, created = read_or_create_key(path)
    except OSError as exc:
        raise StoreUnavailableError(f"cannot read or create the history key {path}: {exc}") from exc
    if created:
        logger.warning(
            "dvcflow created a random history key at %s (owner-only); production must "
            "supply its own through the configuration's history.key_env",
            path,
        )
    return key
