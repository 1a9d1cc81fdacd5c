"""Dossier codes: rendering, period keys, and formats refused because codes could repeat."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvcflow import InvalidValueError
from dvcflow._codes import CodeFormat, CodePeriod

D = dt.date
VN = dt.timezone(dt.timedelta(hours=7))


class TestCodeFormat:
    def test_default_render(self) -> None:
        """The default is agency, local date and a 7-digit daily sequence."""
        assert CodeFormat().render("G09.20", D(2026, 3, 2), 1) == "G09.20-20260302-0000001"
        assert CodeFormat().render("G09.20", D(2026, 3, 2), 12_345_678) == (
            "G09.20-20260302-12345678"
        )

    @pytest.mark.parametrize(
        ("period", "key"),
        [(CodePeriod.DAY, "20260302"), (CodePeriod.MONTH, "202603"), (CodePeriod.YEAR, "2026")],
    )
    def test_period_keys(self, period: CodePeriod, key: str) -> None:
        """The period key is the day, the month or the year of the date."""
        assert CodeFormat(period=period).period_key(D(2026, 3, 2)) == key

    def test_monthly_format(self) -> None:
        """A monthly format renders its own way."""
        codes = CodeFormat("{date:%Y}/{agency}/{date:%m}-{seq:05d}", CodePeriod.MONTH)
        assert codes.render("000.00.17.H09", D(2026, 12, 31), 42) == "2026/000.00.17.H09/12-00042"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("{agency}-{date:%Y%m%d}", "must contain {seq}"),
            ("{date:%Y%m%d}-{seq}", "must contain {agency}"),
            (
                "{agency}-{date.year}-{seq}-{x}",
                "unknown placeholder {date.year}, {x}; use only {agency}, {date} and {seq}",
            ),
            ("{}-{agency}-{seq}", "unknown placeholder {}; use only {agency}, {date} and {seq}"),
            (
                "{agency}-{date:%Y%m%d}-{seq:0{width}d}",
                "unknown placeholder {width}; use only {agency}, {date} and {seq}",
            ),
            (
                "{agency}-{date:%Y%m%d}-{seq}}",
                "not a valid format string: Single '}' encountered in format string",
            ),
            (
                "{agency:d}-{date:%Y%m%d}-{seq}",
                "cannot render a code: Unknown format code 'd' for object of type 'str'",
            ),
            (
                "{agency}-{date:%Y%m%d}-{seq:.2e}",
                "gives 'G09.20-20260302-1.00e+07' for sequence numbers 9999999 and 10000000",
            ),
            (
                "{agency}-{date:%Y%m}-{seq}",
                (
                    "gives 'G09.20-202603-1' on 2026-03-02 and on 2026-03-03, but the sequence "
                    "starts again every day; put the date in the code, e.g. {date:%Y%m%d}"
                ),
            ),
        ],
    )
    def test_bad_formats(self, text: str, message: str) -> None:
        """A format that is unreadable or could repeat codes is refused at ``format``."""
        with pytest.raises(InvalidValueError) as caught:
            CodeFormat(text)
        assert (caught.value.field, caught.value.message) == ("format", message)

    def test_month_period_needs_only_the_month(self) -> None:
        """A monthly sequence needs the year and month, not the day."""
        with pytest.raises(InvalidValueError, match=r"put the year and month in the code"):
            CodeFormat("{agency}-{date:%Y}-{seq}", CodePeriod.MONTH)
        assert CodeFormat("{agency}-{date:%Y%m}-{seq}", CodePeriod.MONTH).period_key(
            D(2026, 3, 2)
        ) == ("202603")

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (("", D(2026, 3, 2), 1), "agency"),
            (("G09.20", dt.datetime(2026, 3, 2, tzinfo=VN), 1), "day"),
            (("G09.20", "2026-03-02", 1), "day"),
            (("G09.20", D(2026, 3, 2), 0), "seq"),
            (("G09.20", D(2026, 3, 2), True), "seq"),
        ],
    )
    def test_render_checks_its_arguments(self, args: tuple[object, ...], field: str) -> None:
        """Rendering refuses an empty agency, a datetime and a sequence number below 1."""
        with pytest.raises(InvalidValueError) as caught:
            CodeFormat().render(*args)  # type: ignore[arg-type]
        assert caught.value.field == field

    def test_constructor_types(self) -> None:
        """A period given as a string, or a format that is not one, is refused."""
        with pytest.raises(InvalidValueError, match="period: must be a CodePeriod"):
            CodeFormat(period="day")  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="format: must be a string"):
            CodeFormat(7)  # type: ignore[arg-type]

    @given(
        st.from_regex(r"[A-Z0-9][A-Z0-9.]{0,15}", fullmatch=True),
        st.dates(D(1901, 1, 1), D(2100, 12, 31)),
        st.integers(1, 10**9),
    )
    def test_default_codes(self, agency: str, day: dt.date, seq: int) -> None:
        """Every default code is agency, ``yyyymmdd`` and at least seven digits, in that order."""
        codes = CodeFormat()
        code = codes.render(agency, day, seq)
        assert code == f"{agency}-{codes.period_key(day)}-{seq:07d}"
        assert code.split("-")[1] == day.isoformat().replace("-", "")
        assert codes.period_key(day)[:4] == f"{day.year:04d}"
