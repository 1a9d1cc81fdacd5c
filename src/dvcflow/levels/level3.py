"""Level 3: online submission and interactions; fees and result at the counter."""

from __future__ import annotations

from dvcflow._lifecycle import LifecycleSpec
from dvcflow._procedure import ProcedureSpec
from dvcflow._values import Channel
from dvcflow.levels import _parts

__all__ = ["template"]


def template(
    procedure: ProcedureSpec, *, name: str = "level-3", online_payment: bool = False
) -> LifecycleSpec:
    """The level 3 lifecycle: online submission with a reception check; counter intake too.

    Level 4 reuses it with ``online_payment=True``.
    """
    work = _parts.work_states(procedure.steps)
    parts = [_parts.online_intake()]
    if procedure.capabilities.channels - {Channel.ONLINE}:
        parts.insert(0, _parts.counter_intake())
    parts += [
        _parts.processing(procedure.steps, online_supplement=True),
        _parts.payment(procedure.steps, online=online_payment),
        _parts.withdrawal(
            ["submitted", "received", *work, "awaiting_supplement", "awaiting_payment"]
        ),
        _parts.returning(procedure.capabilities.return_methods),
    ]
    return _parts.assemble(name, procedure, parts)
