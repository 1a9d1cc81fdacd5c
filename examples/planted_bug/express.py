"""UBND-XA.007's "express counter": an agency shortcut with a planted bug.

The commune wanted express copies handed over the moment they are ready, "the charge to be
collected by the cashier afterwards". dvcflow offers no such extension point (no result is
returned with fees unpaid), so the portal team wrapped the kernel's ``return_result`` handler
in their own code. The bug: nothing ever makes anyone collect the charge afterwards, so an
express result goes out unpaid, for good. The generated state machine finds it and shrinks
it to a handful of steps (see ``test_express.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dvcflow import _handlers
from dvcflow._kernel import Plan


@contextlib.contextmanager
def express_counter() -> Iterator[None]:
    """Install the shortcut while the block runs (the portal installs it at start-up)."""
    handlers = _handlers.HANDLERS
    original = handlers["return_result"]

    def express_return(plan: Plan) -> None:
        original(plan)
        if plan.dossier.case == "express" and "fees_unpaid" in plan.reasons:
            # "The cashier collects it after the hand-over" -- the planted bug.
            plan.reasons.remove("fees_unpaid")

    handlers["return_result"] = express_return  # type: ignore[index]
    try:
        yield
    finally:
        handlers["return_result"] = original  # type: ignore[index]
