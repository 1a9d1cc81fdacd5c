"""Tests for dvcflow._clock: clocks and the aware-UTC rule."""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo

import pytest

from dvcflow._clock import Clock, FrozenClock, SystemClock, require_aware, to_utc
from dvcflow.errors import CalendarError

HANOI = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


class TestRequireAware:
    def test_aware_value_is_returned_unchanged(self):
        """An aware datetime passes through as the same object."""
        value = dt.datetime(2025, 1, 24, 15, 30, tzinfo=HANOI)
        assert require_aware(value, "received_at") is value

    def test_naive_value_is_rejected_naming_the_field(self):
        """A naive datetime raises CalendarError carrying the field name."""
        with pytest.raises(CalendarError, match="naive datetime") as info:
            require_aware(dt.datetime(2025, 1, 24, 15, 30), "received_at")  # noqa: DTZ001
        assert info.value.field == "received_at"
        assert str(info.value).startswith("received_at: ")

    def test_non_datetime_is_rejected(self):
        """A date (or anything not a datetime) is not an instant."""
        with pytest.raises(CalendarError, match="must be a datetime"):
            require_aware(dt.date(2025, 1, 24), "at")  # type: ignore[arg-type]

    def test_tzinfo_without_offset_counts_as_naive(self):
        """A tzinfo whose utcoffset is None does not make a datetime aware."""

        class NoOffset(dt.tzinfo):
            def utcoffset(self, _value):
                return None

        with pytest.raises(CalendarError):
            require_aware(dt.datetime(2025, 1, 1, tzinfo=NoOffset()), "at")


class TestToUtc:
    def test_converts_to_utc_keeping_the_instant(self):
        """15:30 in Hà Nội is 08:30 UTC."""
        value = to_utc(dt.datetime(2025, 1, 24, 15, 30, tzinfo=HANOI))
        assert value == dt.datetime(2025, 1, 24, 8, 30, tzinfo=dt.UTC)
        assert value.tzinfo is dt.UTC

    def test_naive_value_is_rejected(self):
        """to_utc refuses to guess the zone of a naive datetime."""
        with pytest.raises(CalendarError, match="naive"):
            to_utc(dt.datetime(2025, 1, 24), "when")  # noqa: DTZ001


class TestSystemClock:
    def test_now_is_aware_utc_and_current(self):
        """The system clock reads the real time, in UTC."""
        before = dt.datetime.now(dt.UTC)
        now = SystemClock().now()
        after = dt.datetime.now(dt.UTC)
        assert now.tzinfo is dt.UTC
        assert before <= now <= after

    def test_satisfies_the_protocol(self):
        """SystemClock is a Clock."""
        assert isinstance(SystemClock(), Clock)
        assert repr(SystemClock()) == "SystemClock()"


class TestFrozenClock:
    def test_stands_still(self):
        """Reading the clock twice gives the same instant."""
        clock = FrozenClock(dt.datetime(2025, 1, 24, 15, 30, tzinfo=HANOI))
        assert clock.now() == clock.now() == dt.datetime(2025, 1, 24, 8, 30, tzinfo=dt.UTC)
        assert clock.now().tzinfo is dt.UTC

    def test_advance_moves_forward_and_returns_the_new_instant(self):
        """advance adds the delta and reports where the clock now stands."""
        clock = FrozenClock(dt.datetime(2025, 1, 24, 8, 30, tzinfo=dt.UTC))
        moved = clock.advance(dt.timedelta(days=1, minutes=5))
        assert moved == clock.now() == dt.datetime(2025, 1, 25, 8, 35, tzinfo=dt.UTC)

    def test_advance_rejects_a_negative_delta(self):
        """Going back in time goes through set, not advance."""
        clock = FrozenClock(dt.datetime(2025, 1, 24, tzinfo=dt.UTC))
        with pytest.raises(CalendarError, match="negative"):
            clock.advance(dt.timedelta(seconds=-1))
        assert clock.now() == dt.datetime(2025, 1, 24, tzinfo=dt.UTC)

    def test_advance_rejects_a_non_timedelta(self):
        """advance needs a timedelta, not a number of seconds."""
        clock = FrozenClock(dt.datetime(2025, 1, 24, tzinfo=dt.UTC))
        with pytest.raises(CalendarError, match="timedelta"):
            clock.advance(60)  # type: ignore[arg-type]

    def test_set_moves_anywhere_and_normalises_to_utc(self):
        """set shows a new instant, converted to UTC."""
        clock = FrozenClock(dt.datetime(2025, 1, 24, tzinfo=dt.UTC))
        clock.set(dt.datetime(2024, 12, 31, 7, 0, tzinfo=HANOI))
        assert clock.now() == dt.datetime(2024, 12, 31, 0, 0, tzinfo=dt.UTC)
        assert clock.now().tzinfo is dt.UTC

    def test_constructor_rejects_a_naive_datetime(self):
        """A frozen clock cannot start at a naive datetime."""
        with pytest.raises(CalendarError, match="naive") as info:
            FrozenClock(dt.datetime(2025, 1, 24, 8, 30))  # noqa: DTZ001
        assert info.value.field == "at"

    def test_set_rejects_a_naive_datetime_and_keeps_the_time(self):
        """set refuses a naive datetime and leaves the clock where it was."""
        clock = FrozenClock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        with pytest.raises(CalendarError, match="naive"):
            clock.set(dt.datetime(2025, 1, 24, 8, 30))  # noqa: DTZ001
        assert clock.now() == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def test_concurrent_advances_are_not_lost(self):
        """Advances from many threads all land (the clock is shared by an engine's threads)."""
        clock = FrozenClock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))

        def tick() -> None:
            for _ in range(500):
                clock.advance(dt.timedelta(seconds=1))

        threads = [threading.Thread(target=tick) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert clock.now() == dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=4000)

    def test_repr_shows_the_instant(self):
        """The repr names the instant shown."""
        clock = FrozenClock(dt.datetime(2025, 1, 24, 8, 30, tzinfo=dt.UTC))
        assert repr(clock) == "FrozenClock('2025-01-24T08:30:00+00:00')"

    def test_satisfies_the_protocol(self):
        """FrozenClock is a Clock."""
        assert isinstance(FrozenClock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)), Clock)
