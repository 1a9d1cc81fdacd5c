"""The working calendar: Vietnamese holidays and swaps, agency overrides, office hours."""

from __future__ import annotations

import datetime as dt
import os
import threading
import zoneinfo
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from pathlib import Path

import attrs
from holidays import country_holidays
from holidays.countries.vietnam import Vietnam

from dvcflow._clock import require_aware
from dvcflow._reader import Node, Report, read_document
from dvcflow.errors import CalendarError, ConfigurationError

__all__ = [
    "DEFAULT_OFFICE_HOURS",
    "CalendarOverride",
    "OfficeHours",
    "WorkingCalendar",
    "load_overrides",
]

_US = 1_000_000
_ONE_US = dt.timedelta(microseconds=1)
_SATURDAY = 5
# The years for which the `holidays` package publishes VN data (its lunar tables end in 2100).
# Outside them a calendar would silently know only weekends, so it refuses instead.
_FIRST_YEAR: int = Vietnam.start_year
_LAST_YEAR: int = Vietnam.end_year


def _time_us(value: dt.time) -> int:
    """Microseconds since local midnight."""
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US + value.microsecond


def _to_periods(value: object) -> object:
    # Accept lists (as read from a file) and keep anything else for the validator to name.
    if isinstance(value, tuple | list):
        return tuple(tuple(p) if isinstance(p, list | tuple) else p for p in value)
    return value


def _check_periods(_instance: object, _attribute: object, value: object) -> None:
    if not isinstance(value, tuple) or not value:
        raise CalendarError("periods", "office hours need at least one (start, end) period")
    previous_end: dt.time | None = None
    for index, period in enumerate(value):
        if (
            not isinstance(period, tuple)
            or len(period) != 2
            or not all(isinstance(t, dt.time) and t.tzinfo is None for t in period)
        ):
            raise CalendarError(
                f"periods[{index}]",
                f"must be a (start, end) pair of local times without tzinfo, got {period!r}",
            )
        start, end = period
        if start >= end:
            raise CalendarError(f"periods[{index}]", f"starts at {start} but ends at {end}")
        if previous_end is not None and start < previous_end:
            raise CalendarError(
                f"periods[{index}]",
                f"starts at {start}, before the previous period ends ({previous_end}); "
                "give periods in order without overlaps",
            )
        previous_end = end


_DEFAULT_PERIODS = ((dt.time(7), dt.time(11, 30)), (dt.time(13, 30), dt.time(17)))


@attrs.frozen
class OfficeHours:
    """An agency's office hours (giờ làm việc): the same periods on every working day.

    The default, 07:00-11:30 and 13:30-17:00 (8 hours with a two-hour lunch break), is one
    agency's published hours; another uses 07:30-11:30 and 13:30-16:00
    (``OfficeHours.parse("07:30-11:30", "13:30-16:00")``). Times are local to the calendar's
    time zone; a period includes its start and excludes its end.
    """

    periods: tuple[tuple[dt.time, dt.time], ...] = attrs.field(
        default=_DEFAULT_PERIODS,
        converter=_to_periods,
        validator=_check_periods,
    )

    @classmethod
    def parse(cls, *periods: str) -> OfficeHours:
        """Build office hours from ``"HH:MM-HH:MM"`` strings.

        Raises:
            CalendarError: when a period is not written ``HH:MM-HH:MM``, or periods overlap.
        """
        parsed = []
        for index, text in enumerate(periods):
            start, sep, end = text.partition("-")
            try:
                if not sep:
                    raise ValueError(text)  # noqa: TRY301 - one message for every bad form
                parsed.append(
                    (dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip()))
                )
            except ValueError:
                raise CalendarError(
                    f"periods[{index}]", f'must look like "07:30-11:30", got {text!r}'
                ) from None
        return cls(tuple(parsed))

    @property
    def working_time_per_day(self) -> dt.timedelta:
        """The total length of the periods: one working day expressed as working time."""
        return sum(
            (
                dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)
                for start, end in self.periods
            ),
            dt.timedelta(0),
        )

    @property
    def hours_per_day(self) -> float:
        """How many working hours make one working day (8.0 by default)."""
        return self.working_time_per_day / dt.timedelta(hours=1)

    @property
    def opens(self) -> dt.time:
        """The start of the first period."""
        return self.periods[0][0]

    @property
    def closes(self) -> dt.time:
        """The end of the last period: the close of business."""
        return self.periods[-1][1]


DEFAULT_OFFICE_HOURS = OfficeHours()
"""07:00-11:30 and 13:30-17:00, Asia/Ho_Chi_Minh local time."""


def _plain_date(_instance: object, attribute: attrs.Attribute[dt.date], value: object) -> None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise CalendarError(attribute.name, f"must be a date, got {value!r}")


def _non_empty(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise CalendarError(attribute.name, "must be a non-empty string")


@attrs.frozen
class CalendarOverride:
    """An agency's change to the national calendar, with the decision or notice behind it.

    A closure (``working=False``) makes a day a non-working day, e.g. an extra Tết day the
    province grants; a working day (``working=True``) makes a day a working day, e.g. a make-up
    Saturday the `holidays` data does not know yet.
    """

    date: dt.date = attrs.field(validator=_plain_date)
    working: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    source: str = attrs.field(validator=_non_empty)
    """The decision or notice that set it, e.g. ``"Công văn 1234/UBND-VX"``."""
    note: str = attrs.field(default="", validator=attrs.validators.instance_of(str))

    @classmethod
    def closure(cls, date: dt.date, source: str, note: str = "") -> CalendarOverride:
        """A day the agency is closed."""
        return cls(date, working=False, source=source, note=note)

    @classmethod
    def working_day(cls, date: dt.date, source: str, note: str = "") -> CalendarOverride:
        """A day the agency works, such as a make-up Saturday."""
        return cls(date, working=True, source=source, note=note)


def load_overrides(path: str | os.PathLike[str]) -> tuple[CalendarOverride, ...]:
    """Read calendar overrides from a TOML or JSON file, sorted by date.

    The file holds ``[[closures]]`` and ``[[working_days]]`` entries, each with a ``date``, a
    ``source`` and an optional ``note``::

        [[closures]]
        date = 2027-02-05
        source = "Quyết định 123/QĐ-UBND"
        note = "extra Tết day"

    Raises:
        ConfigurationError: listing every problem as ``file: entry: message``, e.g.
            ``overrides.toml: closures[2].date: duplicate date 2027-02-05``.
    """
    file = Path(path)
    report = Report(str(file))
    data = read_document(file, report)
    found: list[CalendarOverride] = []
    if data is not None:
        root = Node(data, "", report)
        if root.table(optional=("closures", "working_days")):
            _read_entries(root, report, found)
    report.raise_if_any(ConfigurationError)
    return tuple(sorted(found, key=lambda override: override.date))


def _read_entries(root: Node, report: Report, found: list[CalendarOverride]) -> None:
    first_seen: dict[dt.date, tuple[str, bool]] = {}
    for key, working in (("closures", False), ("working_days", True)):
        for entry in root.array(key):
            if not entry.table(required=("date", "source"), optional=("note",)):
                continue
            day = entry.date("date")
            source = entry.string("source")
            note = entry.string("note", "")
            if day is None or source is None or note is None:
                continue
            where = entry.child_path("date")
            if day in first_seen:
                other, other_working = first_seen[day]
                if other_working == working:
                    report.add(where, f"duplicate date {day}")
                else:
                    report.add(where, f"{day} is both a closure and a working day (see {other})")
                continue
            first_seen[day] = (where, working)
            found.append(CalendarOverride(day, working=working, source=source, note=note))


def _plain_ordinal(value: object, field: str) -> int:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        # A datetime is a date subclass; taking its date would silently pick UTC's day.
        raise CalendarError(field, f"must be a date (not a datetime), got {value!r}")
    return value.toordinal()


def _whole_days(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise CalendarError(field, f"must be an integer number of days, got {value!r}")
    return value


class WorkingCalendar:
    """Working days and working time for one agency: `holidays` VN data plus overrides.

    A day is a working day when it is Monday to Friday and not a public holiday (lunar Tết,
    observed days and the government's swapped days off included), or when it is a make-up
    working Saturday (`holidays`' ``weekend_workdays``); an override then has the last word.
    Working time is the office hours of working days. Dates are local to ``timezone``; instants
    must be timezone-aware and come back in UTC.

    Working days are kept per year as a sorted tuple of ordinals, built on first use and cached
    (safely under threads), so every operation costs a few binary searches whatever the
    duration.

    Args:
        office_hours: the agency's office hours; `DEFAULT_OFFICE_HOURS` by default.
        overrides: closures and extra working days (see `load_overrides`).
        timezone: the IANA time zone the agency works in.

    Raises:
        CalendarError: for an unknown time zone, or two overrides that disagree about a date.
    """

    __slots__ = ("_day_us", "_lock", "_office_hours", "_overrides", "_spans", "_tz", "_years")

    def __init__(
        self,
        office_hours: OfficeHours = DEFAULT_OFFICE_HOURS,
        overrides: Iterable[CalendarOverride] = (),
        timezone: str = "Asia/Ho_Chi_Minh",
    ) -> None:
        if not isinstance(office_hours, OfficeHours):
            raise CalendarError("office_hours", f"must be OfficeHours, got {office_hours!r}")
        try:
            self._tz = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise CalendarError("timezone", f"unknown time zone {timezone!r}") from None
        self._office_hours = office_hours
        self._spans = tuple((_time_us(start), _time_us(end)) for start, end in office_hours.periods)
        self._day_us = sum(end - start for start, end in self._spans)
        by_date: dict[dt.date, CalendarOverride] = {}
        for override in overrides:
            if not isinstance(override, CalendarOverride):
                raise CalendarError("overrides", f"must be CalendarOverride, got {override!r}")
            known = by_date.setdefault(override.date, override)
            if known.working != override.working:
                raise CalendarError(
                    "overrides",
                    f"{override.date} is both a closure and a working day "
                    f"({known.source!r}, {override.source!r})",
                )
        self._overrides = tuple(sorted(by_date.values(), key=lambda override: override.date))
        self._years: dict[int, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------------

    @property
    def office_hours(self) -> OfficeHours:
        """The agency's office hours."""
        return self._office_hours

    @property
    def overrides(self) -> tuple[CalendarOverride, ...]:
        """The overrides in force, sorted by date."""
        return self._overrides

    @property
    def timezone(self) -> zoneinfo.ZoneInfo:
        """The time zone dates are counted in."""
        return self._tz

    def __repr__(self) -> str:
        return (
            f"WorkingCalendar(office_hours={self._office_hours!r}, "
            f"overrides=<{len(self._overrides)}>, timezone={self._tz.key!r})"
        )

    # -- the per-year tables ------------------------------------------------------------------

    def _year(self, year: int) -> tuple[int, ...]:
        table = self._years.get(year)
        if table is None:
            if not _FIRST_YEAR <= year <= _LAST_YEAR:
                raise CalendarError(
                    "date",
                    f"year {year} is outside the calendar's years {_FIRST_YEAR}-{_LAST_YEAR}",
                )
            with self._lock:
                table = self._years.get(year)
                if table is None:
                    table = self._build_year(year)
                    self._years[year] = table
        return table

    def _build_year(self, year: int) -> tuple[int, ...]:
        national = country_holidays("VN", years=year)
        closed = {day.toordinal() for day in national}
        # weekend_workdays also holds make-up Saturdays of other years.
        worked = {day.toordinal() for day in national.weekend_workdays if day.year == year}
        for override in self._overrides:
            if override.date.year == year:
                target, other = (worked, closed) if override.working else (closed, worked)
                target.add(override.date.toordinal())
                other.discard(override.date.toordinal())
        first = dt.date(year, 1, 1).toordinal()
        last = dt.date(year, 12, 31).toordinal()
        # Ordinal 1 (0001-01-01) was a Monday, so (ordinal - 1) % 7 is the weekday.
        return tuple(
            ordinal
            for ordinal in range(first, last + 1)
            if ordinal in worked or ((ordinal - 1) % 7 < _SATURDAY and ordinal not in closed)
        )

    def _count(self, low: int, high: int) -> int:
        """The number of working days with ordinals in ``[low, high)``."""
        if low >= high:
            return 0
        first_year = dt.date.fromordinal(low).year
        last_year = dt.date.fromordinal(high - 1).year
        table = self._year(first_year)
        if first_year == last_year:
            return bisect_left(table, high) - bisect_left(table, low)
        total = len(table) - bisect_left(table, low)
        for year in range(first_year + 1, last_year):
            total += len(self._year(year))
        return total + bisect_left(self._year(last_year), high)

    # -- days ---------------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day.

        Raises:
            CalendarError: when ``day`` is not a date or lies outside the calendar's years.
        """
        ordinal = _plain_ordinal(day, "day")
        table = self._year(day.year)
        index = bisect_left(table, ordinal)
        return index < len(table) and table[index] == ordinal

    def add_working_days(self, day: dt.date, days: int) -> dt.date:
        """The ``days``-th working day after ``day`` (before it when negative).

        ``day`` itself is day 0 and need not be a working day; ``days == 0`` returns it
        unchanged. Adding ``a`` then ``b`` days equals adding ``a + b`` for ``a, b >= 0``.

        Raises:
            CalendarError: for a non-date, a non-integer count, or a result outside the
                calendar's years.
        """
        ordinal = _plain_ordinal(day, "day")
        count = _whole_days(days, "days")
        if count == 0:
            return day
        year = day.year
        table = self._year(year)
        if count > 0:
            index = bisect_right(table, ordinal) + count - 1
            while index >= len(table):
                index -= len(table)
                year += 1
                table = self._year(year)
        else:
            index = bisect_left(table, ordinal) + count
            while index < 0:
                year -= 1
                table = self._year(year)
                index += len(table)
        return dt.date.fromordinal(table[index])

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """The number of working days after ``start`` up to and including ``end``.

        Negative when ``end`` is before ``start`` (then the working days from ``end`` up to but
        excluding ``start``), so that ``add_working_days(start, working_days_between(start,
        end)) == end`` whenever ``end`` is a working day.

        Raises:
            CalendarError: for a non-date or a date outside the calendar's years.
        """
        low = _plain_ordinal(start, "start")
        high = _plain_ordinal(end, "end")
        if high >= low:
            return self._count(low + 1, high + 1)
        return -self._count(high, low)

    # -- instants -----------------------------------------------------------------------------

    def to_local(self, instant: dt.datetime, field: str = "instant") -> dt.datetime:
        """``instant`` in the calendar's time zone.

        Raises:
            CalendarError: when ``instant`` is naive.
        """
        return require_aware(instant, field).astimezone(self._tz)

    def local_date(self, instant: dt.datetime, field: str = "instant") -> dt.date:
        """The local calendar date ``instant`` falls on."""
        return self.to_local(instant, field).date()

    def _instant(self, day: dt.date, position: int) -> dt.datetime:
        """The UTC instant ``position`` microseconds of wall-clock time after local midnight."""
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=self._tz)
        return (midnight + dt.timedelta(microseconds=position)).astimezone(dt.UTC)

    def _worked_before(self, position: int) -> int:
        """Working microseconds of a working day before ``position``."""
        return sum(max(0, min(end, position) - start) for start, end in self._spans)

    def _earliest_position(self, worked: int) -> int:
        """The earliest position of a working day with ``worked`` microseconds behind it."""
        done = 0
        for start, end in self._spans:
            if worked <= done + end - start:
                return start + worked - done
            done += end - start
        return self._spans[-1][1]

    def _latest_position(self, worked: int) -> int:
        """The latest position of a working day with ``worked`` microseconds behind it."""
        done = 0
        for start, end in self._spans:
            if worked < done + end - start:
                return start + worked - done
            done += end - start
        return self._spans[-1][1]

    def start_of_business(self, day: dt.date) -> dt.datetime:
        """The opening instant of ``day`` (its first office period), in UTC."""
        _plain_ordinal(day, "day")
        return self._instant(day, self._spans[0][0])

    def close_of_business(self, day: dt.date) -> dt.datetime:
        """The closing instant of ``day`` (the end of its last office period), in UTC.

        Computed from the office hours alone, whether or not ``day`` is a working day.
        """
        _plain_ordinal(day, "day")
        return self._instant(day, self._spans[-1][1])

    def is_working_time(self, instant: dt.datetime) -> bool:
        """Whether ``instant`` falls inside office hours on a working day.

        Raises:
            CalendarError: when ``instant`` is naive.
        """
        local = self.to_local(instant)
        if not self.is_working_day(local.date()):
            return False
        position = _time_us(local.time())
        return any(start <= position < end for start, end in self._spans)

    def next_working_start(self, instant: dt.datetime) -> dt.datetime:
        """The first instant at or after ``instant`` that is working time, in UTC.

        Raises:
            CalendarError: when ``instant`` is naive.
        """
        local = self.to_local(instant)
        day = local.date()
        if self.is_working_day(day):
            position = _time_us(local.time())
            for start, end in self._spans:
                if position < end:
                    return (
                        instant.astimezone(dt.UTC)
                        if position >= start
                        else self._instant(day, start)
                    )
        return self._instant(self.add_working_days(day, 1), self._spans[0][0])

    def add_working_time(self, instant: dt.datetime, delta: dt.timedelta) -> dt.datetime:
        """The instant after ``delta`` of working time from ``instant``, in UTC.

        Time outside office hours (lunch, nights, weekends, holidays) does not count. The
        result is the earliest such instant, so 4h30 from 07:00 ends at 11:30, not at 13:30.
        A negative ``delta`` counts backwards and gives the latest such instant (the mirror
        image). ``delta == 0`` returns ``instant``.

        Raises:
            CalendarError: when ``instant`` is naive or ``delta`` is not a timedelta.
        """
        local = self.to_local(instant)
        if not isinstance(delta, dt.timedelta):
            raise CalendarError("delta", f"must be a timedelta, got {type(delta).__name__}")
        amount = delta // _ONE_US
        if amount == 0:
            return instant.astimezone(dt.UTC)
        if amount > 0:
            return self._forward(local, amount)
        return self._backward(local, -amount)

    def _forward(self, local: dt.datetime, amount: int) -> dt.datetime:
        day = local.date()
        if self.is_working_day(day):
            left_today = self._day_us - self._worked_before(_time_us(local.time()))
            if amount <= left_today:
                return self._instant(
                    day, self._earliest_position(self._day_us - left_today + amount)
                )
            amount -= left_today
        full_days, rest = divmod(amount, self._day_us)
        if rest == 0:
            # End at the close of the last day rather than at the next opening.
            full_days, rest = full_days - 1, self._day_us
        target = self.add_working_days(day, full_days + 1)
        return self._instant(target, self._earliest_position(rest))

    def _backward(self, local: dt.datetime, amount: int) -> dt.datetime:
        day = local.date()
        if self.is_working_day(day):
            done_today = self._worked_before(_time_us(local.time()))
            if amount <= done_today:
                return self._instant(day, self._latest_position(done_today - amount))
            amount -= done_today
        full_days, rest = divmod(amount, self._day_us)
        if rest == 0:
            full_days, rest = full_days - 1, self._day_us
        target = self.add_working_days(day, -(full_days + 1))
        return self._instant(target, self._latest_position(self._day_us - rest))

    def working_time_between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """The working time from ``start`` to ``end`` (negative when ``end`` is earlier).

        Raises:
            CalendarError: when either instant is naive.
        """
        first = self.to_local(start, "start")
        last = self.to_local(end, "end")
        if last < first:
            return -self.working_time_between(end, start)
        first_day, last_day = first.date(), last.date()
        before_first = (
            self._worked_before(_time_us(first.time())) if self.is_working_day(first_day) else 0
        )
        before_last = (
            self._worked_before(_time_us(last.time())) if self.is_working_day(last_day) else 0
        )
        if first_day == last_day:
            return dt.timedelta(microseconds=before_last - before_first)
        after_first = self._day_us - before_first if self.is_working_day(first_day) else 0
        between = self._count(first_day.toordinal() + 1, last_day.toordinal())
        return dt.timedelta(microseconds=after_first + between * self._day_us + before_last)
