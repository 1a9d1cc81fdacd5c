"""Choosing and checking a procedure's lifecycle: the level template, its steps, its roles."""

from __future__ import annotations

from collections.abc import Callable

from dvcflow._lifecycle import (
    BUILTIN_STATUSES,
    INITIAL,
    TRIGGERS,
    LifecycleSpec,
    validate_lifecycle,
)
from dvcflow._procedure import ProcedureSpec
from dvcflow.errors import InvalidDefinitionError, Problem
from dvcflow.levels import level1, level2, level3, level4
from dvcflow.levels._derivation import Level, OnlineClass

__all__ = ["lifecycle_for"]

_TEMPLATES: dict[Level, Callable[[ProcedureSpec], LifecycleSpec]] = {
    Level.INFORMATION: level1.template,
    Level.FORMS: level2.template,
    Level.ONLINE_SUBMISSION: level3.template,
    Level.ONLINE_PAYMENT: level4.template,
}


def lifecycle_for(procedure: ProcedureSpec, *, source: str | None = None) -> LifecycleSpec:
    """Build the lifecycle of ``procedure`` from its level's template, steps and permissions.

    Raises:
        InvalidDefinitionError: when a step name clashes with a built-in state or trigger, a
            permission names an unknown trigger or widens the default roles, or the result
            breaks a lifecycle or level rule.
    """
    where = source or procedure.code
    problems: list[Problem] = []
    for index, step in enumerate(procedure.steps):
        if step.name in BUILTIN_STATUSES or step.name in TRIGGERS or step.name == INITIAL:
            problems.append(
                Problem(where, f"steps[{index}].name", f"{step.name!r} is a built-in name")
            )
    if problems:
        raise InvalidDefinitionError(problems)
    spec = _TEMPLATES[procedure.level](procedure)
    defaults: dict[str, frozenset[str]] = {}
    for edge in spec.transitions:
        defaults[edge.trigger] = defaults.get(edge.trigger, frozenset()) | edge.roles
    for trigger, roles in procedure.permissions:
        path = f"permissions.{trigger}"
        if trigger not in defaults:
            problems.append(
                Problem(where, path, f"the {spec.name} lifecycle has no trigger {trigger!r}")
            )
        elif extra := sorted(roles - defaults[trigger]):
            problems.append(
                Problem(where, path, f"may only narrow the default roles; {extra[0]!r} is not one")
            )
    if problems:
        raise InvalidDefinitionError(problems)
    spec = spec.with_roles(dict(procedure.permissions))
    validate_lifecycle(spec, source=where)
    _check_level_rules(procedure, spec, where)
    return spec


def _check_level_rules(procedure: ProcedureSpec, spec: LifecycleSpec, where: str) -> None:
    problems = []
    if procedure.level < Level.ONLINE_SUBMISSION and "submit" in spec.triggers:
        problems.append(
            Problem(where, "transitions.submit", "levels 1-2 take no online submission")
        )
    if procedure.online_class is OnlineClass.FULL:
        presence = [step.name for step in procedure.steps if step.requires_presence]
        presence += sorted(procedure.capabilities.presence_steps)
        if presence:
            problems.append(
                Problem(
                    where, f"steps.{presence[0]}", "a full-process procedure has no presence step"
                )
            )
    if problems:
        raise InvalidDefinitionError(problems)
