"""Helpers of the store suites: walking dossiers through `happy_path`, the schema's head."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from dvcflow import (
    Actor,
    Applicant,
    ApplicantType,
    Catalog,
    Channel,
    DeliveryMethod,
    DossierSnapshot,
    Engine,
    FrozenClock,
    ProcedureSpec,
)
from dvcflow._demo import happy_path

__all__ = [
    "AGENCY",
    "AN",
    "FORM",
    "HALF_HOUR",
    "HEAD",
    "OFFICER",
    "START",
    "drive",
    "intake",
    "migrations_head",
    "paid_before_return",
]

HALF_HOUR = dt.timedelta(minutes=30)

# A household business registered at the counter of a commune (2.000575), as the store suites
# drive it.
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
AGENCY = "UBND-XA.002"
OFFICER = Actor.staff("officer-1", roles={"receiving_officer"}, agency=AGENCY)
HEAD = Actor.staff("head-1", roles={"department_head"}, agency=AGENCY)
AN = Applicant(ApplicantType.CITIZEN, "001099012345", "Nguyễn Văn An", phone="0912345678")
FORM = {"business_name": "Tạp hóa An", "capital_vnd": 1, "business_lines": "bán lẻ"}


def intake(
    engine: Engine, procedure: ProcedureSpec, command: tuple[str, Actor, dict[str, Any]]
) -> DossierSnapshot:
    """The first command of `happy_path`, through `Engine.submit`."""
    trigger, actor, payload = command
    return engine.submit(
        procedure.code,
        applicant=payload["applicant"],
        actor=actor,
        channel=Channel.ONLINE if trigger == "submit" else Channel.IN_PERSON,
        form=payload["form"],
        documents=payload["documents"],
        delivery=DeliveryMethod(payload["delivery"]),
        fees_collected=bool(payload.get("fees_collected")),
        address=payload.get("address"),
    )


def drive(
    engine: Engine,
    clock: FrozenClock,
    procedure: ProcedureSpec,
    *,
    stop_after: str | None = None,
    each: Callable[[DossierSnapshot, str], None] | None = None,
) -> DossierSnapshot:
    """Run `happy_path` on the database, half an hour apart, calling ``each`` after a command."""
    commands = happy_path(procedure)
    snapshot = intake(engine, procedure, next(commands))
    if each is not None:
        each(snapshot, "intake")
    while snapshot.state != stop_after:
        clock.advance(HALF_HOUR)
        try:
            trigger, actor, payload = commands.send(snapshot.dossier)
        except StopIteration:
            break
        snapshot = engine.fire(snapshot.id, trigger, actor=actor, payload=payload)
        if each is not None:
            each(snapshot, trigger)
    return snapshot


def migrations_head() -> str:
    """The newest revision of the migrations shipped in the package."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(resources.files("dvcflow") / "_migrations"))
    return ScriptDirectory.from_config(config).get_current_head() or ""


def paid_before_return(catalog: Catalog) -> ProcedureSpec:
    """The judicial record (2.000488) with its fee paid before the return, not at reception."""
    data = catalog.get("2.000488").to_data()
    for case in data["cases"].values():
        for fee in case["fees"]:
            fee["timing"] = "before_return"
    return ProcedureSpec.from_data(data)
