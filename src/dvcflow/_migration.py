"""Moving running dossiers to a new procedure version: a state map, a dry run, an audited apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from dvcflow._clock import to_utc
from dvcflow._dossier import Wait, encode_changes, load_dossier, replace
from dvcflow._kernel import Decision, Event
from dvcflow._schema import dossiers
from dvcflow._values import Actor
from dvcflow.errors import InvalidValueError, PermissionDeniedError

if TYPE_CHECKING:
    from dvcflow._engine import Engine

__all__ = ["MigrationItem", "MigrationPlan", "apply_migration", "plan_migration"]


@attrs.frozen
class MigrationItem:
    """One dossier in a migration: where it is, where it would go, or why it cannot."""

    dossier_id: str
    code: str | None
    version: int
    from_version: str
    from_state: str
    to_state: str | None
    refused: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the dossier can move."""
        return self.refused is None


@attrs.frozen
class MigrationPlan:
    """A dry run: every running dossier of a procedure on another version, and its fate."""

    procedure: str
    to_version: str
    state_map: Mapping[str, str]
    items: tuple[MigrationItem, ...]

    @property
    def movable(self) -> tuple[MigrationItem, ...]:
        """The dossiers that can move."""
        return tuple(item for item in self.items if item.ok)

    @property
    def refused(self) -> tuple[MigrationItem, ...]:
        """The dossiers that cannot, with the reason."""
        return tuple(item for item in self.items if not item.ok)


def plan_migration(
    engine: Engine,
    procedure: str,
    *,
    to_version: str | None = None,
    state_map: Mapping[str, str] | None = None,
) -> MigrationPlan:
    """List every running dossier of ``procedure`` not on ``to_version`` and where it would go.

    A state keeps its name unless ``state_map`` renames it; a state the new lifecycle lacks, or
    a final one, refuses the dossier. Nothing is written.

    Raises:
        NotFoundError: for an unknown procedure or version.
        InvalidValueError: when ``to_version`` belongs to another procedure.
    """
    target = to_version or engine.current_version(procedure)
    kernel = engine.kernel(target)
    if kernel.procedure.code != procedure:
        raise InvalidValueError(
            "to_version", f"version {target[:12]} is of procedure {kernel.procedure.code}"
        )
    mapping = dict(state_map or {})
    states = {state.name: state for state in kernel.lifecycle.states}
    for source, dest in mapping.items():
        if dest not in states:
            raise InvalidValueError(
                "state_map", f"{source} -> {dest}: the new lifecycle has no state {dest!r}"
            )
    items = []
    with engine.store.connect() as connection:
        query = (
            sa.select(
                dossiers.c.id,
                dossiers.c.code,
                dossiers.c.version,
                dossiers.c.procedure_version,
                dossiers.c.state,
                dossiers.c.data,
            )
            .where(dossiers.c.procedure_code == procedure, dossiers.c.procedure_version != target)
            .order_by(dossiers.c.id)
        )
        rows = list(connection.execute(query))
    for row in rows:
        old = engine.kernel(row.procedure_version)
        if old.lifecycle.state(row.state).final:
            continue
        dest = mapping.get(row.state, row.state)
        # A waiting dossier also names the states its waits return to.
        waits = load_dossier(row.data).waits
        lost = [
            name
            for wait in waits
            for name in (wait.state, wait.resume)
            if mapping.get(name, name) not in states
        ]
        refused = None
        if dest not in states:
            refused = f"state {row.state!r} has no counterpart in the new version; map it"
        elif states[dest].final:
            refused = f"would move to the final state {dest!r}"
        elif lost:
            refused = f"it waits to return to {lost[0]!r}, which the new version lacks; map it"
        items.append(
            MigrationItem(
                row.id, row.code, row.version, row.procedure_version, row.state, dest, refused
            ),
        )
    return MigrationPlan(procedure, target, mapping, tuple(items))


def apply_migration(engine: Engine, plan: MigrationPlan, *, actor: Actor) -> MigrationPlan:
    """Move each movable dossier of ``plan``: compare-and-set per dossier, plus an audit event.

    A dossier changed since the plan was made is left where it is and reported refused.

    Returns:
        The plan as applied: each item moved, or refused with the reason.

    Raises:
        PermissionDeniedError: unless ``actor`` is an admin.
    """
    if "admin" not in actor.roles:
        raise PermissionDeniedError(
            "migrate", ["role_missing"], message="only an admin migrates dossiers"
        )
    kernel = engine.kernel(plan.to_version)
    applied = []
    for item in plan.items:
        if not item.ok or item.to_state is None:
            applied.append(item)
            continue
        with engine.store.transaction() as connection:
            row = engine.store.dossier(connection, item.dossier_id)
            if row is None or row.version != item.version:
                applied.append(
                    attrs.evolve(item, refused="changed since the plan was made; plan again")
                )
                continue
            before = load_dossier(row.data)
            now = to_utc(engine.clock.now(), "now")
            changes: dict[str, Any] = {
                "procedure_version": plan.to_version,
                "state": item.to_state,
                "version": before.version + 1,
            }
            waits = tuple(
                Wait(
                    plan.state_map.get(wait.state, wait.state),
                    plan.state_map.get(wait.resume, wait.resume),
                    wait.since,
                )
                for wait in before.waits
            )
            if waits != before.waits:
                changes["waits"] = waits
            after = replace(before, changes)
            event = Event(
                dossier_id=after.id,
                version=after.version,
                trigger="migrate",
                source=before.state,
                target=after.state,
                at=now,
                actor=actor.id,
                roles=tuple(sorted(actor.roles)),
                acting_for=actor.acting_for,
                agency=actor.agency,
                data={"from_version": item.from_version, "to_version": plan.to_version},
                changes=encode_changes(changes),
            )
            decision = Decision(after, event, (), {}, kernel.status(after.state))
            engine.recorder.write(
                connection, kernel, before, decision, now, previous_mac=row.last_mac
            )
        applied.append(item)
    # The audit events join the database-wide chain now rather than at the next command.
    engine.sealer.seal()
    return attrs.evolve(plan, items=tuple(applied))
