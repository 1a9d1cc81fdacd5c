"""Level 4: online payment, and the result returned online, by post or in person."""

from __future__ import annotations

from dvcflow._lifecycle import LifecycleSpec
from dvcflow._procedure import ProcedureSpec
from dvcflow.levels import level3

__all__ = ["template"]


def template(procedure: ProcedureSpec) -> LifecycleSpec:
    """The level 4 lifecycle: level 3's with payments confirmed by the gateway (``system``).

    Return roles follow the methods the procedure offers: electronic by ``system`` on first
    access, post by the ``postal_worker`` or a verified courier callback, in person by the
    receiving officer. A ``full`` (2022) procedure offers no in-person return and no presence
    step; the kernel refuses counter payments for it.
    """
    return level3.template(procedure, name="level-4", online_payment=True)
