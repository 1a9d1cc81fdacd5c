"""The command line's database commands: db, show, checkpoint, tick, migrate, worker, incidents."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading
from typing import TextIO
from zoneinfo import ZoneInfo

from dvcflow._config import Config
from dvcflow._engine import Engine
from dvcflow._history import Checkpoint
from dvcflow._store import Store
from dvcflow._values import Actor
from dvcflow.errors import InvalidValueError

__all__ = ["DEFAULT_DB", "add_database_commands", "open_engine", "print_dossier"]

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_DB = "sqlite:///dvcflow.db"


def open_engine(args: argparse.Namespace) -> Engine:
    """The engine on ``--db`` with ``--config``, without publishing anything."""
    return Engine.open(args.db, config=args.config)


def _local(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(LOCAL):%d/%m/%Y %H:%M}"


def _upgrade(args: argparse.Namespace, out: TextIO) -> int:
    config = Config.load(args.config) if args.config else Config.default()
    store = Store(args.db, busy_timeout_ms=config.busy_timeout_ms)
    try:
        revision = store.upgrade()
    finally:
        store.close()
    print(f"{args.db}: schema at revision {revision}", file=out)
    return 0


def _show(args: argparse.Namespace, out: TextIO) -> int:
    engine = open_engine(args)
    try:
        print_dossier(engine, args.dossier, out, checkpoint=args.checkpoint)
    finally:
        engine.close()
    return 0


def print_dossier(engine: Engine, ref: str, out: TextIO, *, checkpoint: str | None = None) -> None:
    """Print a dossier, its fees and its timeline with due dates, then verify its history."""
    snapshot = engine.get(ref)
    dossier = snapshot.dossier
    status = snapshot.national_status
    print(f"dossier {dossier.id}  code {dossier.code or '-'}", file=out)
    print(
        f"  procedure {dossier.procedure} (version {dossier.procedure_version[:12]}), "
        f"case {dossier.case}",
        file=out,
    )
    print(
        f"  state {dossier.state}, national status {status.code} {status.slug}, "
        f"version {dossier.version}",
        file=out,
    )
    now = engine.clock.now()
    late = " (overdue)" if snapshot.overdue(now) else ""
    print(
        f"  received {_local(dossier.received_at)}, due {_local(dossier.due_at)}{late}",
        file=out,
    )
    for fee in dossier.fees:
        print(
            f"  {fee.kind.value}: due {fee.due}, paid {fee.paid}, refunded {fee.refunded}",
            file=out,
        )
    print("  timeline:", file=out)
    history = engine.history(dossier.id)
    for event in history:
        due = event.data.get("due_change") if isinstance(event.data, dict) else None
        moved = ""
        if isinstance(due, dict) and due.get("new") != due.get("old"):
            new = due.get("new")
            when = _local(dt.datetime.fromisoformat(new)) if isinstance(new, str) else "-"
            moved = f"  due -> {when}"
        visit = "  [visit]" if event.visit else ""
        print(
            f"    {event.version:>3} {_local(event.at)}  {event.trigger:<20} {event.source} -> "
            f"{event.target}  by {event.actor}{moved}{visit}",
            file=out,
        )
    saved = None
    if checkpoint is not None:
        try:
            saved = Checkpoint.parse(checkpoint)
        except ValueError as exc:
            raise InvalidValueError("--checkpoint", str(exc)) from None
    verified = engine.verify_history(dossier.id, checkpoint=saved)
    against = f", and the chain up to checkpoint {saved.seq}" if saved else ""
    unsealed = sum(event.seq is None for event in history)
    if unsealed:
        # Committed moments ago (PostgreSQL): verified in the dossier's chain, not yet numbered
        # in the database-wide one.
        against += f" ({unsealed} not sealed into the database-wide chain yet)"
    print(f"  history verified: {verified} events{against}", file=out)


def _checkpoint(args: argparse.Namespace, out: TextIO) -> int:
    engine = open_engine(args)
    try:
        print(engine.checkpoint(), file=out)
    finally:
        engine.close()
    return 0


def _tick(args: argparse.Namespace, out: TextIO) -> int:
    now = None
    if args.now is not None:
        try:
            now = dt.datetime.fromisoformat(args.now)
        except ValueError:
            raise InvalidValueError("--now", f"not an ISO 8601 instant: {args.now!r}") from None
        if now.tzinfo is None:
            raise InvalidValueError("--now", "give a timezone, e.g. 2026-03-02T09:00+07:00")
    engine = open_engine(args)
    try:
        fired = engine.tick(now)
    finally:
        engine.close()
    for dossier_id, name, outcome in fired:
        print(f"{dossier_id} {name}: {outcome}", file=out)
    print(f"{len(fired)} timers fired", file=out)
    return 0


def _state_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        source, sep, dest = pair.partition("=")
        if not sep or not source or not dest:
            raise InvalidValueError("--map", f"want OLD=NEW, got {pair!r}")
        mapping[source] = dest
    return mapping


def _migrate(args: argparse.Namespace, out: TextIO) -> int:
    engine = open_engine(args)
    try:
        plan = engine.plan_migration(
            args.procedure, to_version=args.to, state_map=_state_map(args.map)
        )
        if args.action == "apply":
            agency = engine.kernel(plan.to_version).procedure.agency
            plan = engine.apply_migration(
                plan, actor=Actor.staff(args.actor, roles={"admin"}, agency=agency)
            )
        verb = "moved" if args.action == "apply" else "would move"
        for item in plan.items:
            fate = (
                f"{verb} {item.from_state} -> {item.to_state}"
                if item.ok
                else f"refused: {item.refused}"
            )
            print(f"{item.code or item.dossier_id}: {fate}", file=out)
        print(
            f"{len(plan.movable)} {verb}, {len(plan.refused)} refused "
            f"(to version {plan.to_version[:12]})",
            file=out,
        )
    finally:
        engine.close()
    return 1 if plan.refused and args.action == "apply" else 0


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    if args.concurrency < 1:
        raise InvalidValueError("--concurrency", "must be >= 1")
    engine = open_engine(args)
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        worker = engine.outbox.worker()
        print(f"worker {worker.name}: delivering the outbox of {args.db}", file=out, flush=True)
        report = worker.run(stop=stop, concurrency=args.concurrency, once=args.once)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        engine.close()
    print(
        f"{report.claimed} effects claimed: {report.done} done, {report.retried} to retry, "
        f"{report.incidents} incidents",
        file=out,
    )
    return 0


def _incidents(args: argparse.Namespace, out: TextIO) -> int:
    engine = open_engine(args)
    try:
        if args.action == "list":
            found = engine.outbox.incidents(status=None if args.all else "open")
            for incident in found:
                print(
                    f"{incident.id:>6} {incident.status:<8} {incident.kind:<16} "
                    f"{incident.dossier_id} attempts {incident.attempts}: {incident.error}",
                    file=out,
                )
            print(f"{len(found)} incidents", file=out)
            return 0
        if args.id is None:
            raise InvalidValueError("ID", f"incidents {args.action} needs an incident id")
        if args.action == "retry":
            incident = engine.outbox.retry(args.id, actor=args.actor, note=args.note)
        else:
            incident = engine.outbox.skip(args.id, actor=args.actor, note=args.note or "")
        print(f"incident {incident.id}: {incident.status} by {incident.resolved_by}", file=out)
    finally:
        engine.close()
    return 0


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", default=DEFAULT_DB, metavar="URL", help=f"database URL (default {DEFAULT_DB})"
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")


def add_database_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add db, show, checkpoint, tick, migrate, worker and incidents to the command line."""
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="create or upgrade the schema")
    _database_options(upgrade)
    upgrade.set_defaults(handler=_upgrade)

    show = commands.add_parser("show", help="a dossier with its timeline and due dates")
    show.add_argument("dossier", metavar="DOSSIER", help="dossier id or code")
    show.add_argument(
        "--checkpoint", metavar="SEQ:MAC", help="also verify against a saved checkpoint"
    )
    _database_options(show)
    show.set_defaults(handler=_show)

    checkpoint = commands.add_parser(
        "checkpoint", help="print the history chain's head to keep elsewhere"
    )
    _database_options(checkpoint)
    checkpoint.set_defaults(handler=_checkpoint)

    tick = commands.add_parser("tick", help="fire due timers")
    tick.add_argument("--now", metavar="ISO", help="the instant to fire at (default: now)")
    _database_options(tick)
    tick.set_defaults(handler=_tick)

    migrate = commands.add_parser(
        "migrate", help="move running dossiers to a new procedure version"
    )
    migrate.add_argument("action", choices=("plan", "apply"))
    migrate.add_argument("procedure", metavar="CODE", help="the procedure's national code")
    migrate.add_argument(
        "--to", metavar="VERSION", help="target version (default: the newest published)"
    )
    migrate.add_argument(
        "--map", action="append", default=[], metavar="OLD=NEW", help="rename a state"
    )
    migrate.add_argument("--actor", default="cli-admin", help="the admin account recorded on apply")
    _database_options(migrate)
    migrate.set_defaults(handler=_migrate)

    worker = commands.add_parser("worker", help="deliver the outbox to the back ends")
    worker.add_argument(
        "--once", action="store_true", help="stop when nothing is due instead of waiting"
    )
    worker.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="threads claiming (default 1)"
    )
    _database_options(worker)
    worker.set_defaults(handler=_worker)

    incidents = commands.add_parser("incidents", help="effects that kept failing")
    incidents.add_argument("action", choices=("list", "retry", "skip"))
    incidents.add_argument(
        "id", nargs="?", type=int, metavar="ID", help="the incident (retry, skip)"
    )
    incidents.add_argument("--all", action="store_true", help="list resolved incidents too")
    incidents.add_argument("--note", help="why (required to skip)")
    incidents.add_argument("--actor", default="cli-operator", help="who resolves it")
    _database_options(incidents)
    incidents.set_defaults(handler=_incidents)
