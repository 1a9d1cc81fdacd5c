"""Clocks: where "now" comes from, and the rule that every instant is timezone-aware UTC."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol, runtime_checkable

from dvcflow.errors import CalendarError

__all__ = ["Clock", "FrozenClock", "SystemClock", "require_aware", "to_utc"]


def require_aware(value: dt.datetime, field: str) -> dt.datetime:
    """Return ``value`` unchanged if it is a timezone-aware datetime.

    Args:
        value: the datetime to check.
        field: the name reported in the error, e.g. ``"received_at"``.

    Raises:
        CalendarError: when ``value`` is not a datetime, or is naive (no ``tzinfo``, or a
            ``tzinfo`` that gives no offset).
    """
    if not isinstance(value, dt.datetime):
        raise CalendarError(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise CalendarError(
            field,
            f"naive datetime {value.isoformat()}; give a timezone-aware one (e.g. tzinfo=UTC)",
        )
    return value


def to_utc(value: dt.datetime, field: str = "datetime") -> dt.datetime:
    """Return the same instant as an aware UTC datetime.

    Raises:
        CalendarError: when ``value`` is naive.
    """
    return require_aware(value, field).astimezone(dt.UTC)


@runtime_checkable
class Clock(Protocol):
    """Where dvcflow reads the current time; inject a `FrozenClock` in tests."""

    def now(self) -> dt.datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock of the machine."""

    __slots__ = ()

    def now(self) -> dt.datetime:
        """The current instant in UTC."""
        return dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FrozenClock:
    """A clock that stands still until told to move; safe to share between threads.

    >>> clock = FrozenClock(dt.datetime(2025, 1, 24, 8, 30, tzinfo=dt.UTC))
    >>> clock.advance(dt.timedelta(hours=2)).isoformat()
    '2025-01-24T10:30:00+00:00'
    """

    __slots__ = ("_at", "_lock")

    def __init__(self, at: dt.datetime) -> None:
        self._at = to_utc(at, "at")
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """The instant the clock shows, in UTC."""
        with self._lock:
            return self._at

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move the clock forward by ``delta`` and return the new instant.

        Raises:
            CalendarError: when ``delta`` is negative (use `set` to go back in time).
        """
        if not isinstance(delta, dt.timedelta):
            raise CalendarError("delta", f"must be a timedelta, got {type(delta).__name__}")
        if delta < dt.timedelta(0):
            raise CalendarError("delta", f"must not be negative, got {delta}; use set()")
        with self._lock:
            self._at += delta
            return self._at

    def set(self, at: dt.datetime) -> None:
        """Show ``at`` from now on.

        Raises:
            CalendarError: when ``at`` is naive.
        """
        value = to_utc(at, "at")
        with self._lock:
            self._at = value

    def __repr__(self) -> str:
        return f"FrozenClock({self.now().isoformat()!r})"
