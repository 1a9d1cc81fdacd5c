"""Counting the applicant's visits to the agency from a dossier's events (DOMAIN.md §1)."""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo

from dvcflow._kernel import Event

__all__ = ["count_visits"]

_LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def count_visits(events: Iterable[Event]) -> int:
    """How many times the applicant came to the agency along the dossier's actual path.

    An in-person intake, a counter supplement, a counter payment and an in-person return each
    count; those made on the same local day at the same counter (agency) count once. A level 4
    dossier whose applicant chose in-person return made one visit.
    """
    return len(
        {(event.at.astimezone(_LOCAL).date(), event.agency) for event in events if event.visit}
    )
