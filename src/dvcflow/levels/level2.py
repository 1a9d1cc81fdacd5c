"""Level 2: downloadable forms; dossiers come in person or by post, the rest at the counter."""

from __future__ import annotations

from dvcflow._lifecycle import LifecycleSpec
from dvcflow._procedure import ProcedureSpec
from dvcflow.levels import level1

__all__ = ["template"]


def template(procedure: ProcedureSpec) -> LifecycleSpec:
    """The level 2 lifecycle: level 1's, with postal intake allowed by the procedure's channels.

    The shape is level 1's; what differs is data: the intake channels the `receive` guard
    accepts come from the procedure's capabilities.
    """
    return level1.template(procedure, name="level-2")
