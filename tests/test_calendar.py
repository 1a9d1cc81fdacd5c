"""Tests for dvcflow._calendar: VN holidays, overrides, office hours and working time."""

from __future__ import annotations

import datetime as dt
import json
import threading
import zoneinfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvcflow._calendar import (
    DEFAULT_OFFICE_HOURS,
    CalendarOverride,
    OfficeHours,
    WorkingCalendar,
    load_overrides,
)
from dvcflow.errors import CalendarError, ConfigurationError, InvalidDefinitionError

HANOI = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
CALENDAR = WorkingCalendar()
D = dt.date


def at(year, month, day, hour=0, minute=0):
    """A Hà Nội wall-clock instant."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=HANOI)


def local(instant):
    return instant.astimezone(HANOI)


# -- a day-by-day reference implementation, to cross-check the per-year tables ----------------

_NATIONAL = holidays.VN(years=range(2018, 2035))
_MAKE_UP_SATURDAYS = frozenset(_NATIONAL.weekend_workdays)


def ref_is_working(day, overrides=None):
    if overrides and day in overrides:
        return overrides[day]
    if day in _MAKE_UP_SATURDAYS:
        return True
    return day.weekday() < 5 and day not in _NATIONAL


def ref_add(day, n, overrides=None):
    step = 1 if n > 0 else -1
    left = abs(n)
    while left:
        day += dt.timedelta(days=step)
        if ref_is_working(day, overrides):
            left -= 1
    return day


def ref_between(a, b):
    if b >= a:
        days = (a + dt.timedelta(days=i) for i in range(1, (b - a).days + 1))
        return sum(ref_is_working(day) for day in days)
    return -sum(ref_is_working(b + dt.timedelta(days=i)) for i in range((a - b).days))


_PERIODS = [(dt.time(7), dt.time(11, 30)), (dt.time(13, 30), dt.time(17))]


def ref_add_time(instant, delta):
    """Walk office periods day by day from ``instant`` until ``delta`` is used up."""
    if not delta:
        return instant.astimezone(dt.UTC)
    start = local(instant)
    day = start.date()
    left = delta
    while True:
        if ref_is_working(day):
            for open_, close in _PERIODS:
                begin = max(dt.datetime.combine(day, open_, HANOI), start)
                end = dt.datetime.combine(day, close, HANOI)
                if begin >= end:
                    continue
                if left <= end - begin:
                    return (begin + left).astimezone(dt.UTC)
                left -= end - begin
        day += dt.timedelta(days=1)


def ref_between_time(a, b):
    first, last = local(a), local(b)
    total = dt.timedelta(0)
    day = first.date()
    while day <= last.date():
        if ref_is_working(day):
            for open_, close in _PERIODS:
                begin = max(dt.datetime.combine(day, open_, HANOI), first)
                end = min(dt.datetime.combine(day, close, HANOI), last)
                total += max(end - begin, dt.timedelta(0))
        day += dt.timedelta(days=1)
    return total


dates = st.dates(min_value=D(2020, 1, 1), max_value=D(2030, 12, 31))
instants = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=dt.datetime(2030, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([HANOI, dt.UTC]),
).map(lambda value: value.replace(microsecond=0))


def in_office_hours(instant):
    """Inside a period, its end included (a due instant may be the close of a period)."""
    value = local(instant)
    if not CALENDAR.is_working_day(value.date()):
        return False
    return any(open_ <= value.time() <= close for open_, close in _PERIODS)


class TestHolidayData:
    """Pins the `holidays` VN data dvcflow depends on (pyproject allows 0.109.x only)."""

    def test_2025_non_working_weekdays_and_working_saturdays(self):
        """2025: Tết 27-31/01, Hùng Kings 07/04, 30/4-1/5 plus the 02/05 swap, 1-2/9."""
        off, worked = self._exceptions(2025)
        assert off == [
            D(2025, 1, 1),
            D(2025, 1, 27),
            D(2025, 1, 28),
            D(2025, 1, 29),
            D(2025, 1, 30),
            D(2025, 1, 31),
            D(2025, 4, 7),
            D(2025, 4, 30),
            D(2025, 5, 1),
            D(2025, 5, 2),
            D(2025, 9, 1),
            D(2025, 9, 2),
        ]
        assert worked == [D(2025, 4, 26)]

    def test_2026_non_working_weekdays_and_working_saturdays(self):
        """2026: Tết 16-20/02, Hùng Kings observed 27/04, 31/08 swap, 1-2/9, 24/11."""
        off, worked = self._exceptions(2026)
        assert off == [
            D(2026, 1, 1),
            D(2026, 2, 16),
            D(2026, 2, 17),
            D(2026, 2, 18),
            D(2026, 2, 19),
            D(2026, 2, 20),
            D(2026, 4, 27),
            D(2026, 4, 30),
            D(2026, 5, 1),
            D(2026, 8, 31),
            D(2026, 9, 1),
            D(2026, 9, 2),
            D(2026, 11, 24),
        ]
        assert worked == [D(2026, 8, 22)]

    @staticmethod
    def _exceptions(year):
        days = [D(year, 1, 1) + dt.timedelta(days=i) for i in range(366)]
        days = [day for day in days if day.year == year]
        off = [day for day in days if day.weekday() < 5 and not CALENDAR.is_working_day(day)]
        worked = [day for day in days if day.weekday() >= 5 and CALENDAR.is_working_day(day)]
        return off, worked

    def test_make_up_saturdays_of_other_years_do_not_leak(self):
        """holidays' weekend_workdays holds other years too; only a year's own ones count."""
        assert not CALENDAR.is_working_day(D(2025, 8, 23))
        assert CALENDAR.is_working_day(D(2024, 5, 4))
        assert not CALENDAR.is_working_day(D(2026, 4, 25))


class TestOfficeHours:
    def test_default_is_seven_to_five_with_a_lunch_break(self):
        """The documented default: 07:00-11:30 and 13:30-17:00, 8 hours a day."""
        hours = OfficeHours()
        assert hours == DEFAULT_OFFICE_HOURS
        assert hours.periods == (
            (dt.time(7), dt.time(11, 30)),
            (dt.time(13, 30), dt.time(17)),
        )
        assert hours.hours_per_day == 8.0
        assert hours.working_time_per_day == dt.timedelta(hours=8)
        assert (hours.opens, hours.closes) == (dt.time(7), dt.time(17))

    def test_parse_another_agencys_hours(self):
        """07:30-11:30 and 13:30-16:00 make 6.5 hours."""
        hours = OfficeHours.parse("07:30-11:30", "13:30 - 16:00")
        assert hours.periods == ((dt.time(7, 30), dt.time(11, 30)), (dt.time(13, 30), dt.time(16)))
        assert hours.hours_per_day == 6.5

    def test_lists_are_converted(self):
        """Periods read from a file as lists become tuples."""
        hours = OfficeHours([[dt.time(8), dt.time(12)]])  # type: ignore[list-item]
        assert hours.periods == ((dt.time(8), dt.time(12)),)

    @pytest.mark.parametrize(
        ("periods", "message"),
        [
            ((), "at least one"),
            (((dt.time(12), dt.time(8)),), "starts at 12:00:00 but ends at 08:00:00"),
            (((dt.time(7), dt.time(12)), (dt.time(11), dt.time(17))), "before the previous"),
            (((dt.time(7, tzinfo=dt.UTC), dt.time(12)),), "without tzinfo"),
            (((dt.time(7),),), "pair"),
        ],
    )
    def test_invalid_periods_are_rejected(self, periods, message):
        """Empty, reversed, overlapping, zoned or malformed periods raise CalendarError."""
        with pytest.raises(CalendarError, match=message):
            OfficeHours(periods)

    @pytest.mark.parametrize("text", ["07:00", "7h-11h", "25:00-26:00"])
    def test_parse_rejects_malformed_text(self, text):
        """parse names the period written wrongly."""
        with pytest.raises(CalendarError, match=r"periods\[0\]"):
            OfficeHours.parse(text)


class TestCalendarOverride:
    def test_constructors(self):
        """closure and working_day set the working flag."""
        closure = CalendarOverride.closure(D(2027, 2, 5), "QĐ 1/UBND", note="extra Tết day")
        extra = CalendarOverride.working_day(D(2027, 2, 20), "QĐ 1/UBND")
        assert (closure.working, closure.note) == (False, "extra Tết day")
        assert (extra.working, extra.note) == (True, "")

    def test_source_is_required(self):
        """An override without a source cannot be audited, so it is refused."""
        with pytest.raises(CalendarError, match="source"):
            CalendarOverride.closure(D(2027, 2, 5), "  ")

    def test_datetime_is_not_a_date(self):
        """A datetime would hide a time zone question; an override takes a date."""
        with pytest.raises(CalendarError, match="date"):
            CalendarOverride.closure(dt.datetime(2027, 2, 5, tzinfo=dt.UTC), "QĐ 1")


GOOD_TOML = """\
[[closures]]
date = 2027-02-11
source = "Quyết định 123/QĐ-UBND"
note = "extra Tết day"

[[closures]]
date = 2027-02-03
source = "Quyết định 123/QĐ-UBND"

[[working_days]]
date = 2027-02-20
source = "Quyết định 123/QĐ-UBND"
note = "make-up Saturday"
"""


class TestLoadOverrides:
    def test_good_toml_file(self, tmp_path):
        """A TOML file gives its closures and working days, sorted by date."""
        path = tmp_path / "overrides.toml"
        path.write_text(GOOD_TOML, encoding="utf-8")
        assert load_overrides(path) == (
            CalendarOverride.closure(D(2027, 2, 3), "Quyết định 123/QĐ-UBND"),
            CalendarOverride.closure(D(2027, 2, 11), "Quyết định 123/QĐ-UBND", "extra Tết day"),
            CalendarOverride.working_day(
                D(2027, 2, 20), "Quyết định 123/QĐ-UBND", "make-up Saturday"
            ),
        )

    def test_good_json_file(self, tmp_path):
        """A JSON file writes dates as ISO strings."""
        path = tmp_path / "overrides.json"
        path.write_text(
            json.dumps({"working_days": [{"date": "2027-02-20", "source": "CV 9"}]}),
            encoding="utf-8",
        )
        assert load_overrides(str(path)) == (CalendarOverride.working_day(D(2027, 2, 20), "CV 9"),)

    def test_loaded_overrides_change_the_calendar(self, tmp_path):
        """The loaded closure and working day take effect in a calendar."""
        path = tmp_path / "overrides.toml"
        path.write_text(GOOD_TOML, encoding="utf-8")
        calendar = WorkingCalendar(overrides=load_overrides(path))
        assert not calendar.is_working_day(D(2027, 2, 11))
        assert calendar.is_working_day(D(2027, 2, 20))
        assert CALENDAR.is_working_day(D(2027, 2, 11))
        assert not CALENDAR.is_working_day(D(2027, 2, 20))

    def test_empty_file_means_no_overrides(self, tmp_path):
        """A file with no entries is valid."""
        path = tmp_path / "overrides.toml"
        path.write_text("", encoding="utf-8")
        assert load_overrides(path) == ()

    @pytest.mark.parametrize(
        ("name", "text", "expected"),
        [
            (
                "bad-date.json",
                '{"closures": [{"date": "2027-02-30", "source": "QĐ 1"}]}',
                "closures[0].date: must be a date (YYYY-MM-DD), got '2027-02-30'",
            ),
            (
                "bad-date.toml",
                '[[closures]]\ndate = "05/02/2027"\nsource = "QĐ 1"\n',
                "closures[0].date: must be a date (YYYY-MM-DD), got '05/02/2027'",
            ),
            (
                "duplicate.toml",
                (
                    "[[closures]]\ndate = 2027-02-05\nsource = 'a'\n"
                    "[[closures]]\ndate = 2027-02-06\nsource = 'b'\n"
                    "[[closures]]\ndate = 2027-02-05\nsource = 'c'\n"
                ),
                "closures[2].date: duplicate date 2027-02-05",
            ),
            (
                "unknown-key.toml",
                "[[closures]]\ndate = 2027-02-05\nsource = 'a'\nnotes = 'x'\n",
                "closures[0].notes: unknown key (did you mean 'note'?)",
            ),
            (
                "unknown-table.toml",
                "[[holidays]]\ndate = 2027-02-05\nsource = 'a'\n",
                "holidays: unknown key",
            ),
            (
                "missing-source.toml",
                "[[working_days]]\ndate = 2027-02-20\n",
                "working_days[0].source: is required",
            ),
            (
                "both.toml",
                (
                    "[[closures]]\ndate = 2027-02-05\nsource = 'a'\n"
                    "[[working_days]]\ndate = 2027-02-05\nsource = 'b'\n"
                ),
                (
                    "working_days[0].date: 2027-02-05 is both a closure and a working day "
                    "(see closures[0].date)"
                ),
            ),
            ("not-toml.toml", "closures = [[[", "not valid TOML"),
            ("not-a-table.toml", "closures = [1]", "closures[0]: must be a table, got 1"),
            ("wrong.yaml", "closures: []", "unsupported file type '.yaml'"),
        ],
    )
    def test_bad_files_name_the_file_and_entry(self, tmp_path, name, text, expected):
        """Each problem reads ``file: entry: message``."""
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigurationError) as info:
            load_overrides(path)
        assert isinstance(info.value, InvalidDefinitionError)
        assert f"{path}: {expected}" in str(info.value)
        assert all(problem.source == str(path) for problem in info.value.problems)

    def test_invalid_toml_date_is_reported(self, tmp_path):
        """A TOML date that does not exist is a parse error naming the file."""
        path = tmp_path / "overrides.toml"
        path.write_text("[[closures]]\ndate = 2027-02-30\nsource = 'a'\n", encoding="utf-8")
        with pytest.raises(ConfigurationError, match="not valid TOML") as info:
            load_overrides(path)
        assert info.value.problems[0].source == str(path)

    def test_every_problem_is_reported_at_once(self, tmp_path):
        """A file is fixed in one pass: all problems come in one error."""
        path = tmp_path / "overrides.toml"
        path.write_text(
            "[[closures]]\ndate = 2027-02-05\n"
            "[[closures]]\ndate = 2027-02-05\nsource = 'a'\nwhy = 'x'\n",
            encoding="utf-8",
        )
        with pytest.raises(ConfigurationError) as info:
            load_overrides(path)
        assert [problem.path for problem in info.value.problems] == [
            "closures[0].source",
            "closures[1].why",
        ]

    def test_missing_file(self, tmp_path):
        """A file that does not exist is a configuration error naming it."""
        path = tmp_path / "nowhere.toml"
        with pytest.raises(ConfigurationError, match="cannot read"):
            load_overrides(path)


class TestWorkingDays:
    @pytest.mark.parametrize(
        ("day", "working"),
        [
            (D(2025, 1, 24), True),  # Friday before Tết
            (D(2025, 1, 25), False),  # Saturday
            (D(2025, 1, 29), False),  # Tết
            (D(2025, 2, 3), True),  # back to work
            (D(2025, 4, 26), True),  # make-up Saturday
            (D(2025, 5, 2), False),  # the swapped day off
            (D(2026, 4, 27), False),  # Hùng Kings observed
            (D(2026, 11, 24), False),  # Vietnam Cultural Day
        ],
    )
    def test_is_working_day(self, day, working):
        """Weekends, holidays and swaps decide whether a day is worked."""
        assert CALENDAR.is_working_day(day) is working

    def test_overrides_have_the_last_word(self):
        """A closure closes a weekday; a working day opens a Sunday or a holiday."""
        calendar = WorkingCalendar(
            overrides=[
                CalendarOverride.closure(D(2027, 2, 11), "QĐ 1"),
                CalendarOverride.working_day(D(2027, 2, 21), "QĐ 1"),
                CalendarOverride.working_day(D(2025, 9, 2), "QĐ 2"),
                CalendarOverride.closure(D(2025, 4, 26), "QĐ 3"),
            ],
        )
        assert not calendar.is_working_day(D(2027, 2, 11))
        assert calendar.is_working_day(D(2027, 2, 21))
        assert calendar.is_working_day(D(2025, 9, 2))
        assert not calendar.is_working_day(D(2025, 4, 26))
        assert [o.date for o in calendar.overrides] == sorted(o.date for o in calendar.overrides)

    def test_conflicting_overrides_are_rejected(self):
        """Two sources disagreeing about a date is an error, not a coin toss."""
        with pytest.raises(CalendarError, match="both a closure and a working day"):
            WorkingCalendar(
                overrides=[
                    CalendarOverride.closure(D(2027, 2, 5), "QĐ 1"),
                    CalendarOverride.working_day(D(2027, 2, 5), "QĐ 2"),
                ],
            )

    def test_agreeing_overrides_from_two_sources_are_kept_once(self):
        """The same closure in a national and an agency file is harmless."""
        calendar = WorkingCalendar(
            overrides=[
                CalendarOverride.closure(D(2027, 2, 5), "national"),
                CalendarOverride.closure(D(2027, 2, 5), "agency"),
            ],
        )
        assert [o.source for o in calendar.overrides] == ["national"]

    def test_add_working_days_examples(self):
        """Tết and make-up Saturdays are skipped and counted as they should be."""
        assert CALENDAR.add_working_days(D(2025, 1, 24), 5) == D(2025, 2, 7)
        assert CALENDAR.add_working_days(D(2025, 4, 25), 2) == D(2025, 4, 28)
        assert CALENDAR.add_working_days(D(2026, 2, 23), 3) == D(2026, 2, 26)
        assert CALENDAR.add_working_days(D(2025, 2, 3), -1) == D(2025, 1, 24)
        assert CALENDAR.add_working_days(D(2025, 1, 26), 0) == D(2025, 1, 26)

    def test_add_working_days_across_years(self):
        """Counting 365 working days crosses a year boundary correctly."""
        assert CALENDAR.add_working_days(D(2025, 1, 2), 365) == ref_add(D(2025, 1, 2), 365)
        assert CALENDAR.add_working_days(D(2026, 12, 31), -365) == ref_add(D(2026, 12, 31), -365)

    def test_working_days_between_examples(self):
        """Counting is after the start, up to and including the end; negative backwards."""
        assert CALENDAR.working_days_between(D(2025, 1, 24), D(2025, 2, 7)) == 5
        assert CALENDAR.working_days_between(D(2025, 2, 7), D(2025, 1, 24)) == -5
        assert CALENDAR.working_days_between(D(2025, 1, 25), D(2025, 1, 26)) == 0
        assert CALENDAR.working_days_between(D(2024, 1, 1), D(2026, 1, 1)) == ref_between(
            D(2024, 1, 1),
            D(2026, 1, 1),
        )

    @pytest.mark.parametrize("method", ["is_working_day", "add_working_days"])
    def test_datetime_is_not_a_date(self, method):
        """A datetime's date depends on its zone, so day operations refuse it."""
        args = (dt.datetime(2025, 1, 24, tzinfo=dt.UTC),) + ((1,) if "add" in method else ())
        with pytest.raises(CalendarError, match="not a datetime"):
            getattr(CALENDAR, method)(*args)

    @pytest.mark.parametrize("days", [1.5, True, "3"])
    def test_day_count_must_be_an_integer(self, days):
        """Only whole numbers of working days can be added."""
        with pytest.raises(CalendarError, match="integer"):
            CALENDAR.add_working_days(D(2025, 1, 24), days)

    def test_years_without_holiday_data_are_refused(self):
        """Beyond the holidays package's years the calendar would be silently wrong."""
        with pytest.raises(CalendarError, match="outside the calendar's years"):
            CALENDAR.is_working_day(D(2101, 1, 3))
        with pytest.raises(CalendarError, match="outside"):
            CALENDAR.add_working_days(D(2100, 12, 1), 100)

    def test_wrong_argument_types(self):
        """Office hours and overrides must be the library's own values."""
        with pytest.raises(CalendarError, match="office_hours"):
            WorkingCalendar(office_hours="07:00-17:00")  # type: ignore[arg-type]
        with pytest.raises(CalendarError, match="overrides"):
            WorkingCalendar(overrides=[D(2027, 2, 11)])  # type: ignore[list-item]

    def test_unknown_timezone(self):
        """A misspelt time zone is a CalendarError."""
        with pytest.raises(CalendarError, match="unknown time zone"):
            WorkingCalendar(timezone="Asia/Saigon_City")

    def test_tables_are_built_lazily_per_year(self):
        """Only the years an operation touches are built."""
        calendar = WorkingCalendar()
        calendar.add_working_days(D(2025, 12, 20), 30)
        assert sorted(calendar._years) == [2025, 2026]

    def test_concurrent_first_use_is_consistent(self):
        """Threads racing to build the same year tables all see the same answers."""
        calendar = WorkingCalendar()
        results: list[dt.date] = []
        lock = threading.Lock()

        def work() -> None:
            value = calendar.add_working_days(D(2021, 3, 1), 1500)
            with lock:
                results.append(value)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [ref_add(D(2021, 3, 1), 1500)] * 16


class TestWorkingTime:
    @pytest.mark.parametrize(
        ("instant", "working"),
        [
            (at(2025, 1, 24, 7, 0), True),
            (at(2025, 1, 24, 6, 59), False),
            (at(2025, 1, 24, 11, 30), False),  # lunch starts
            (at(2025, 1, 24, 12, 0), False),
            (at(2025, 1, 24, 13, 30), True),
            (at(2025, 1, 24, 16, 59), True),
            (at(2025, 1, 24, 17, 0), False),  # close of business
            (at(2025, 1, 29, 9, 0), False),  # Tết
            (at(2025, 4, 26, 9, 0), True),  # make-up Saturday
            (dt.datetime(2025, 1, 24, 1, 0, tzinfo=dt.UTC), True),  # 08:00 local
        ],
    )
    def test_is_working_time(self, instant, working):
        """Office hours on working days, lunch excluded, end exclusive."""
        assert CALENDAR.is_working_time(instant) is working

    @pytest.mark.parametrize(
        ("instant", "expected"),
        [
            (at(2025, 1, 24, 15, 30), at(2025, 1, 24, 15, 30)),  # in hours: itself
            (at(2025, 1, 24, 6, 0), at(2025, 1, 24, 7, 0)),  # before opening
            (at(2025, 1, 24, 12, 0), at(2025, 1, 24, 13, 30)),  # lunch
            (at(2025, 1, 24, 17, 0), at(2025, 2, 3, 7, 0)),  # after hours, then Tết
            (at(2026, 2, 13, 17, 30), at(2026, 2, 23, 7, 0)),  # DOMAIN.md §3 example
            (at(2025, 4, 25, 18, 0), at(2025, 4, 26, 7, 0)),  # make-up Saturday
        ],
    )
    def test_next_working_start(self, instant, expected):
        """The first working instant at or after the given one, returned in UTC."""
        result = CALENDAR.next_working_start(instant)
        assert result == expected
        assert result.tzinfo is dt.UTC

    def test_start_and_close_of_business_are_utc(self):
        """07:00 and 17:00 in Hà Nội are 00:00 and 10:00 UTC."""
        assert CALENDAR.start_of_business(D(2025, 2, 7)) == dt.datetime(2025, 2, 7, tzinfo=dt.UTC)
        close = CALENDAR.close_of_business(D(2025, 2, 7))
        assert close == dt.datetime(2025, 2, 7, 10, tzinfo=dt.UTC)
        assert close.tzinfo is dt.UTC

    @pytest.mark.parametrize(
        ("start", "hours", "expected"),
        [
            (at(2025, 1, 24, 7, 0), 4.5, at(2025, 1, 24, 11, 30)),  # ends at lunch, not after
            (at(2025, 1, 24, 10, 0), 2, at(2025, 1, 24, 14, 0)),  # across lunch
            (at(2025, 1, 24, 7, 0), 8, at(2025, 1, 24, 17, 0)),  # a full day
            (at(2025, 1, 24, 15, 30), 8, at(2025, 2, 3, 15, 30)),  # across nights and Tết
            (at(2025, 1, 24, 20, 0), 1, at(2025, 2, 3, 8, 0)),  # after hours
            (at(2025, 4, 25, 16, 0), 2, at(2025, 4, 26, 8, 0)),  # make-up Saturday
            (at(2025, 1, 24, 15, 30), 0, at(2025, 1, 24, 15, 30)),
        ],
    )
    def test_add_working_time(self, start, hours, expected):
        """Working time skips lunch, nights and holidays."""
        assert CALENDAR.add_working_time(start, dt.timedelta(hours=hours)) == expected

    @pytest.mark.parametrize(
        ("start", "hours", "expected"),
        [
            (at(2025, 2, 7, 17, 0), 8, at(2025, 2, 7, 7, 0)),  # latest: the same morning
            (at(2025, 2, 3, 8, 0), 2, at(2025, 1, 24, 16, 0)),  # back over Tết
            (at(2025, 1, 24, 13, 30), 4.5, at(2025, 1, 24, 7, 0)),
            (at(2025, 1, 24, 14, 0), 1, at(2025, 1, 24, 11, 0)),  # back over lunch
            (at(2025, 2, 3, 7, 0), 16, at(2025, 1, 23, 7, 0)),  # two whole days back
        ],
    )
    def test_subtract_working_time(self, start, hours, expected):
        """A negative duration counts backwards (the mirror image)."""
        assert CALENDAR.add_working_time(start, -dt.timedelta(hours=hours)) == expected

    def test_working_time_between_examples(self):
        """Lunch, nights and Tết do not count; the order of the arguments sets the sign."""
        friday, monday = at(2025, 1, 24, 15, 30), at(2025, 2, 3, 9, 0)
        assert CALENDAR.working_time_between(friday, monday) == dt.timedelta(hours=3, minutes=30)
        assert CALENDAR.working_time_between(monday, friday) == -dt.timedelta(hours=3, minutes=30)
        lunch = CALENDAR.working_time_between(at(2025, 1, 24, 11, 0), at(2025, 1, 24, 14, 0))
        assert lunch == dt.timedelta(hours=1)
        assert CALENDAR.working_time_between(
            at(2025, 1, 25, 9), at(2025, 1, 26, 9)
        ) == dt.timedelta(0)

    def test_other_office_hours_change_the_day_length(self):
        """With 6.5-hour days, 6.5 working hours is one working day."""
        calendar = WorkingCalendar(office_hours=OfficeHours.parse("07:30-11:30", "13:30-16:00"))
        due = calendar.add_working_time(at(2025, 1, 23, 16, 0), dt.timedelta(hours=6.5))
        assert due == at(2025, 1, 24, 16, 0)

    @pytest.mark.parametrize(
        "call",
        [
            CALENDAR.is_working_time,
            CALENDAR.next_working_start,
            lambda naive: CALENDAR.add_working_time(naive, dt.timedelta(hours=1)),
            lambda naive: CALENDAR.working_time_between(naive, at(2025, 1, 1)),
            CALENDAR.local_date,
        ],
    )
    def test_naive_datetimes_are_rejected(self, call):
        """Every instant operation refuses a naive datetime."""
        with pytest.raises(CalendarError, match="naive"):
            call(dt.datetime(2025, 1, 24, 15, 30))  # noqa: DTZ001

    def test_delta_must_be_a_timedelta(self):
        """A bare number of hours is ambiguous and refused."""
        with pytest.raises(CalendarError, match="timedelta"):
            CALENDAR.add_working_time(at(2025, 1, 24, 9), 8)  # type: ignore[arg-type]

    def test_other_time_zones(self):
        """A calendar in another zone counts its own local days."""
        calendar = WorkingCalendar(timezone="Asia/Bangkok")
        assert calendar.timezone.key == "Asia/Bangkok"
        assert calendar.close_of_business(D(2025, 2, 7)) == dt.datetime(
            2025, 2, 7, 10, tzinfo=dt.UTC
        )
        assert "Asia/Bangkok" in repr(calendar)


class TestAgainstReference:
    """Cross-checks the per-year tables against a day-by-day loop over `holidays`."""

    @given(dates)
    def test_is_working_day(self, day):
        """The tables agree with holidays' data day by day."""
        assert CALENDAR.is_working_day(day) == ref_is_working(day)

    @given(dates, st.integers(min_value=-400, max_value=400))
    def test_add_working_days(self, day, n):
        """Adding working days agrees with stepping one day at a time."""
        assert CALENDAR.add_working_days(day, n) == ref_add(day, n)

    @given(dates, dates)
    def test_working_days_between(self, a, b):
        """Counting working days agrees with the loop."""
        assert CALENDAR.working_days_between(a, b) == ref_between(a, b)

    @given(
        st.dictionaries(
            st.dates(min_value=D(2024, 11, 1), max_value=D(2026, 2, 28)),
            st.booleans(),
            max_size=20,
        ),
        st.dates(min_value=D(2024, 10, 1), max_value=D(2026, 3, 31)),
        st.integers(min_value=-60, max_value=60),
    )
    def test_with_overrides(self, overrides, day, n):
        """Overrides change the tables exactly as they change the loop."""
        calendar = WorkingCalendar(
            overrides=[CalendarOverride(d, working=w, source="test") for d, w in overrides.items()],
        )
        assert calendar.is_working_day(day) == ref_is_working(day, overrides)
        assert calendar.add_working_days(day, n) == ref_add(day, n, overrides)

    @given(instants, st.integers(min_value=0, max_value=200 * 60))
    def test_add_working_time(self, start, minutes):
        """Adding working time agrees with walking office periods day by day."""
        delta = dt.timedelta(minutes=minutes)
        assert CALENDAR.add_working_time(start, delta) == ref_add_time(start, delta)

    @given(instants, st.integers(min_value=0, max_value=30 * 24 * 60))
    def test_working_time_between(self, start, minutes):
        """Measuring working time agrees with summing period overlaps."""
        end = start + dt.timedelta(minutes=minutes)
        assert CALENDAR.working_time_between(start, end) == ref_between_time(start, end)


class TestProperties:
    @given(dates, st.integers(min_value=1, max_value=400))
    def test_added_days_land_on_working_days(self, day, n):
        """A non-zero count of working days always ends on a working day."""
        assert CALENDAR.is_working_day(CALENDAR.add_working_days(day, n))
        assert CALENDAR.is_working_day(CALENDAR.add_working_days(day, -n))

    @given(dates, st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=300))
    def test_adding_is_additive(self, day, a, b):
        """Adding a then b working days equals adding a + b."""
        assert CALENDAR.add_working_days(CALENDAR.add_working_days(day, a), b) == (
            CALENDAR.add_working_days(day, a + b)
        )

    @given(dates, dates)
    def test_add_and_between_are_inverse(self, a, b):
        """between(a, add(a, n)) == n and add(a, between(a, b)) == b on working days."""
        n = CALENDAR.working_days_between(a, b)
        if CALENDAR.is_working_day(b):
            assert CALENDAR.add_working_days(a, n) == b
        assert CALENDAR.working_days_between(a, CALENDAR.add_working_days(a, n)) == n

    @given(dates, st.integers(min_value=-300, max_value=300))
    def test_between_undoes_add(self, day, n):
        """Counting back the days just added gives the count."""
        assert CALENDAR.working_days_between(day, CALENDAR.add_working_days(day, n)) == n

    @given(instants, st.integers(min_value=1, max_value=400 * 8 * 60))
    def test_working_time_add_and_between_are_inverse(self, start, minutes):
        """Measuring the working time just added gives it back, both ways."""
        delta = dt.timedelta(minutes=minutes)
        forward = CALENDAR.add_working_time(start, delta)
        backward = CALENDAR.add_working_time(start, -delta)
        assert CALENDAR.working_time_between(start, forward) == delta
        assert CALENDAR.working_time_between(backward, start) == delta
        assert in_office_hours(forward)
        assert in_office_hours(backward)

    @given(
        instants,
        st.integers(min_value=0, max_value=40 * 60),
        st.integers(min_value=0, max_value=40 * 60),
    )
    def test_working_time_is_monotone(self, start, a, b):
        """More working time never ends earlier."""
        low, high = sorted((a, b))
        assert CALENDAR.add_working_time(
            start, dt.timedelta(minutes=low)
        ) <= CALENDAR.add_working_time(
            start,
            dt.timedelta(minutes=high),
        )

    @given(instants)
    def test_next_working_start_is_working_time(self, instant):
        """The next working start is working time, and nothing before it is."""
        start = CALENDAR.next_working_start(instant)
        assert start >= instant
        assert CALENDAR.is_working_time(start)
        assert CALENDAR.working_time_between(instant, start) == dt.timedelta(0)
