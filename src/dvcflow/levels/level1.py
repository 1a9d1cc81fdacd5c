"""Level 1: information online; intake, payment and return at the counter."""

from __future__ import annotations

from dvcflow._lifecycle import LifecycleSpec
from dvcflow._procedure import ProcedureSpec
from dvcflow.levels import _parts

__all__ = ["template"]


def template(procedure: ProcedureSpec, *, name: str = "level-1") -> LifecycleSpec:
    """The level 1 lifecycle: the receiving officer creates the dossier at the counter.

    Level 2 reuses it: postal intake differs only in data (the channels `receive` accepts).
    """
    work = _parts.work_states(procedure.steps)
    return _parts.assemble(
        name,
        procedure,
        [
            _parts.counter_intake(),
            _parts.processing(procedure.steps, online_supplement=False),
            _parts.payment(procedure.steps, online=False),
            _parts.withdrawal(["received", *work, "awaiting_supplement", "awaiting_payment"]),
            _parts.returning(procedure.capabilities.return_methods),
        ],
    )
