"""Dossier codes (mã hồ sơ): the format they are written in and when their sequence restarts."""

from __future__ import annotations

import datetime as dt
import enum
import string
from collections.abc import Iterator

import attrs

from dvcflow.errors import InvalidValueError

__all__ = ["DEFAULT_CODE_FORMAT", "CodeFormat", "CodePeriod"]

DEFAULT_CODE_FORMAT = "{agency}-{date:%Y%m%d}-{seq:07d}"
"""``G09.20-20260302-0000001``: agency, local reception date, 7-digit sequence."""

_PLACEHOLDERS = ("agency", "date", "seq")
# Codes rendered for every pair of these must differ whenever the sequence could repeat
# (different periods, or different sequence numbers): neighbouring days, months and years,
# and sequence numbers past the default seven digits.
_SAMPLE_DAYS = (
    dt.date(2026, 3, 2),
    dt.date(2026, 3, 3),
    dt.date(2026, 4, 2),
    dt.date(2027, 3, 2),
    dt.date(2036, 3, 2),
)
_SAMPLE_SEQS = (1, 2, 9_999_999, 10_000_000, 10_000_001)
_SAMPLE_AGENCY = "G09.20"


class CodePeriod(enum.Enum):
    """How often the sequence number in dossier codes starts again at 1."""

    DAY = "day"
    MONTH = "month"
    YEAR = "year"


_PERIOD_HINTS = {
    CodePeriod.DAY: ("date", "{date:%Y%m%d}"),
    CodePeriod.MONTH: ("year and month", "{date:%Y%m}"),
    CodePeriod.YEAR: ("year", "{date:%Y}"),
}


def _check_date(value: object, field: str) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        # A datetime is a date subclass; its date would silently be the UTC day.
        raise InvalidValueError(field, f"must be a date (not a datetime), got {value!r}")
    return value


def _period_key(period: CodePeriod, day: dt.date) -> str:
    text = f"{day.year:04d}"
    if period is not CodePeriod.YEAR:
        text += f"{day.month:02d}"
    if period is CodePeriod.DAY:
        text += f"{day.day:02d}"
    return text


def _field_names(text: str) -> Iterator[str]:
    """Every placeholder of a format string, those nested in format specs included."""
    for _literal, name, spec, _conversion in string.Formatter().parse(text):
        if name is not None:
            yield name
            if spec:
                yield from _field_names(spec)


def _format_problem(text: str, period: CodePeriod) -> str | None:
    """Why ``text`` cannot give unique dossier codes under ``period``, or ``None``."""
    try:
        names = list(_field_names(text))
    except ValueError as exc:
        return f"not a valid format string: {exc}"
    unknown = [name for name in dict.fromkeys(names) if name not in _PLACEHOLDERS]
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        return f"unknown placeholder {shown}; use only {{agency}}, {{date}} and {{seq}}"
    for needed in ("agency", "seq"):
        if needed not in names:
            return f"must contain {{{needed}}}"
    return _repeat_problem(text, period)


def _repeat_problem(text: str, period: CodePeriod) -> str | None:
    """Why codes rendered from ``text`` could repeat (or fail to render), or ``None``."""
    seen: dict[str, tuple[dt.date, int]] = {}
    for day in _SAMPLE_DAYS:
        for seq in _SAMPLE_SEQS:
            try:
                code = text.format(agency=_SAMPLE_AGENCY, date=day, seq=seq)
            except (ValueError, TypeError) as exc:
                return f"cannot render a code: {exc}"
            other_day, other_seq = seen.setdefault(code, (day, seq))
            if other_seq != seq:
                return f"gives {code!r} for sequence numbers {other_seq} and {seq}"
            if _period_key(period, other_day) != _period_key(period, day):
                what, example = _PERIOD_HINTS[period]
                return (
                    f"gives {code!r} on {other_day} and on {day}, but the sequence starts "
                    f"again every {period.value}; put the {what} in the code, e.g. {example}"
                )
    return None


def _check_code_format(instance: CodeFormat, _attribute: object, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidValueError("format", f"must be a string, got {value!r}")
    if isinstance(instance.period, CodePeriod):
        problem = _format_problem(value, instance.period)
        if problem is not None:
            raise InvalidValueError("format", problem)


def _check_period(_instance: object, _attribute: object, value: object) -> None:
    if not isinstance(value, CodePeriod):
        raise InvalidValueError("period", f"must be a CodePeriod, got {value!r}")


@attrs.frozen
class CodeFormat:
    """How dossier codes (mã hồ sơ) are written, and when their sequence number restarts.

    The format is a `str.format` template with three placeholders: ``{agency}`` (the receiving
    agency's code), ``{date}`` (the local reception date, a `datetime.date`, so ``{date:%Y%m}``
    works) and ``{seq}`` (the sequence number, an int). It is checked when built: only those
    placeholders, ``{agency}`` and ``{seq}`` present, a sample renders, and codes cannot repeat
    (a format that drops the day while the sequence restarts daily is refused).

    Args:
        format: the template; ``"{agency}-{date:%Y%m%d}-{seq:07d}"`` by default.
        period: when the sequence starts again at 1 (`CodePeriod.DAY` by default).

    Raises:
        InvalidValueError: naming ``format`` (or ``period``) and what is wrong.
    """

    format: str = attrs.field(default=DEFAULT_CODE_FORMAT, validator=_check_code_format)
    # attrs runs validators once every field is set, so the format's may read the period.
    period: CodePeriod = attrs.field(default=CodePeriod.DAY, validator=_check_period)

    def render(self, agency: str, day: dt.date, seq: int) -> str:
        """The code of the ``seq``-th dossier received by ``agency`` in the period of ``day``.

        Args:
            agency: the receiving agency's code, e.g. ``"G09.20"``.
            day: the local reception date.
            seq: the sequence number within the period, from 1.

        Returns:
            The code, e.g. ``"G09.20-20260302-0000001"``.

        Raises:
            InvalidValueError: for an empty agency, a datetime, or a sequence number below 1.
        """
        if not isinstance(agency, str) or not agency.strip():
            raise InvalidValueError("agency", "must be a non-empty string")
        _check_date(day, "day")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise InvalidValueError("seq", f"must be an integer >= 1, got {seq!r}")
        return self.format.format(agency=agency, date=day, seq=seq)

    def period_key(self, day: dt.date) -> str:
        """The period ``day`` falls in: ``"20260302"``, ``"202603"`` or ``"2026"``.

        Sequence numbers are counted per agency and period key.

        Raises:
            InvalidValueError: when ``day`` is a datetime or not a date.
        """
        return _period_key(self.period, _check_date(day, "day"))
