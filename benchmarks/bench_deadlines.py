"""Benchmark: one due-date computation with WorkingCalendar against a day-by-day loop.

Run ``python benchmarks/bench_deadlines.py`` (or ``make bench``). The target (issue 3) is a
median of at most 20 us for any duration up to 365 working days, flat in the duration.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
import zoneinfo
from collections.abc import Callable

import holidays

from dvcflow._calendar import WorkingCalendar
from dvcflow._deadlines import due_at
from dvcflow._values import Duration

TZ = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
CLOSE = dt.time(17)
DURATIONS = (5, 60, 365)
TARGET_US = 20.0


def _receipts(count: int, seed: int = 20250124) -> list[dt.datetime]:
    """Receipt instants spread over 2025-2026, at any hour, in UTC like stored instants."""
    rng = random.Random(seed)
    first = dt.datetime(2025, 1, 1, tzinfo=TZ)
    span = int(dt.timedelta(days=730).total_seconds())
    return [
        (first + dt.timedelta(seconds=rng.randrange(span))).astimezone(dt.UTC) for _ in range(count)
    ]


def _day_by_day() -> Callable[[dt.datetime, int], dt.datetime]:
    """The obvious implementation: step one day at a time, asking `holidays` about each."""
    national = holidays.VN(years=range(2024, 2030))
    make_up = {day for day in national.weekend_workdays if 2024 <= day.year < 2030}

    def working(day: dt.date) -> bool:
        return day in make_up or (day.weekday() < 5 and day not in national)

    def due(received: dt.datetime, days: int) -> dt.datetime:
        local = received.astimezone(TZ)
        day = local.date()
        if not working(day) or local.time() >= CLOSE:
            day += dt.timedelta(days=1)
            while not working(day):
                day += dt.timedelta(days=1)
        left = days
        while left:
            day += dt.timedelta(days=1)
            if working(day):
                left -= 1
        return dt.datetime.combine(day, CLOSE, TZ).astimezone(dt.UTC)

    return due


def _sample(call: Callable[[dt.datetime], object], receipts: list[dt.datetime]) -> list[int]:
    """Nanoseconds per call, one perf_counter_ns pair around each call."""
    clock = time.perf_counter_ns
    samples = []
    for received in receipts:
        start = clock()
        call(received)
        samples.append(clock() - start)
    return samples


def _stats(samples: list[int]) -> tuple[float, float]:
    """Median and 90th percentile, in microseconds."""
    deciles = statistics.quantiles(samples, n=10)
    return statistics.median(samples) / 1000, deciles[8] / 1000


def main(repetitions: int = 20_000, loop_repetitions: int = 2_000) -> None:
    """Measure and print the table."""
    calendar = WorkingCalendar()
    loop = _day_by_day()
    receipts = _receipts(repetitions)

    cold = time.perf_counter_ns()
    calendar.is_working_day(dt.date(2025, 6, 1))
    cold_us = (time.perf_counter_ns() - cold) / 1000
    for received in receipts[:200]:  # the two implementations must agree before we time them
        for days in DURATIONS:
            ours = due_at(calendar, received, Duration.working_days(days))
            if ours != loop(received, days):
                msg = f"disagreement at {received.isoformat()} + {days} working days"
                raise AssertionError(msg)

    print(
        "one due-date computation: due_at() with WorkingCalendar ('ours') against a day-by-day"
        f" loop over holidays.VN ('loop'); receipts spread over 2025-2026, {repetitions} calls"
        f" each ({loop_repetitions} for the loop)",
    )
    print(f"first use of a year (builds its table, once per calendar): {cold_us:.0f} us")
    print()
    columns = ("working days", "ours median", "ours p90", "loop median", "loop p90", "ratio")
    print(" | ".join(f"{name:>12}" for name in columns))
    print("-+-".join("-" * 12 for _ in columns))
    worst = 0.0
    for days in DURATIONS:
        duration = Duration.working_days(days)
        ours = _stats(_sample(lambda r, d=duration: due_at(calendar, r, d), receipts))
        theirs = _stats(_sample(lambda r, n=days: loop(r, n), receipts[:loop_repetitions]))
        worst = max(worst, ours[0])
        cells = (f"{days}", *(f"{value:.1f} us" for value in (*ours, *theirs)))
        print(" | ".join(f"{cell:>12}" for cell in (*cells, f"{theirs[0] / ours[0]:.1f}x")))
    print()
    verdict = "met" if worst <= TARGET_US else "MISSED"
    print(
        f"target: median <= {TARGET_US:.0f} us for every duration: {verdict} (worst {worst:.1f} us)"
    )


if __name__ == "__main__":
    main()
