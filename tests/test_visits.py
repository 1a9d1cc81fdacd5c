"""Visits counted from a dossier's actual path (DOMAIN.md §1)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dvcflow import Catalog, Kernel, count_visits
from dvcflow._demo import walk

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def visits(
    catalog: Catalog,
    code: str,
    start: dt.datetime,
    step: dt.timedelta = dt.timedelta(hours=1),
) -> tuple[int, list[str]]:
    """The visits of a happy-path dossier of ``code``, and the triggers that were visits."""
    kernel = Kernel(catalog.get(code))
    events = [d.event for d, _, _ in walk(kernel, start, dossier_id="v", code="C", step=step)]
    return count_visits(events), [event.trigger for event in events if event.visit]


class TestVisits:
    def test_level_4_electronic_return_needs_no_visit(self, catalog: Catalog) -> None:
        """A full-process dossier returned electronically never brings the applicant in."""
        assert visits(catalog, "1.001193", dt.datetime(2026, 3, 2, 8, tzinfo=VN)) == (0, [])

    def test_level_1_counts_intake_and_collection(self, catalog: Catalog) -> None:
        """Level 1: in-person intake and collection are visits (here on one day: one visit)."""
        count, triggers = visits(catalog, "2.000815", dt.datetime(2026, 3, 2, 8, tzinfo=VN))
        assert triggers == ["receive", "return_result"]
        assert count == 1

    def test_level_3_pays_and_collects_together(self, catalog: Catalog) -> None:
        """Level 3: the counter fee is paid when the result is collected, one visit."""
        count, triggers = visits(catalog, "1.009994", dt.datetime(2026, 3, 2, 8, tzinfo=VN))
        assert triggers == ["confirm_payment", "return_result"]
        assert count == 1

    def test_visits_on_different_days_count_apart(self, catalog: Catalog) -> None:
        """Intake and collection on different local days are two visits."""
        start = dt.datetime(2026, 3, 2, 9, tzinfo=VN)
        count, triggers = visits(catalog, "2.000575", start, dt.timedelta(days=1))
        assert triggers == ["receive", "return_result"]
        assert count == 2
