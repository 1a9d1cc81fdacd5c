"""check_form: a submission's form against the procedure's form fields."""

from __future__ import annotations

import datetime as dt

import pytest

from dvcflow import FieldType, FormFieldSpec
from dvcflow._forms import check_form

FIELDS = (
    FormFieldSpec("full_name", FieldType.STRING, required=True, min_length=2, max_length=10),
    FormFieldSpec("plot", FieldType.STRING, pattern="[0-9]{1,6}"),
    FormFieldSpec("floors", FieldType.INTEGER, required=True, minimum=1, maximum=50),
    FormFieldSpec("married", FieldType.BOOLEAN),
    FormFieldSpec("born", FieldType.DATE),
    FormFieldSpec("sex", FieldType.CHOICE, choices=("nam", "nu")),
)

VALID = {
    "full_name": "Lê Văn An",
    "plot": "123",
    "floors": 3,
    "married": False,
    "born": "2001-02-03",
    "sex": "nu",
}


class TestCheckForm:
    def test_valid_form(self) -> None:
        """A form matching every field has no problems."""
        assert check_form(FIELDS, VALID) == []

    def test_only_required_fields(self) -> None:
        """Optional fields may be left out."""
        assert check_form(FIELDS, {"full_name": "An An", "floors": 1}) == []

    def test_no_fields_accepts_an_empty_form(self) -> None:
        """A procedure without form fields takes an empty form."""
        assert check_form((), {}) == []

    def test_unknown_field(self) -> None:
        """A field the procedure does not define is reported by name."""
        assert check_form(FIELDS, VALID | {"colour": "red"}) == [("colour", "unknown field")]

    def test_unknown_non_string_key_is_named(self) -> None:
        """A key that is not a string is still reported, as text."""
        assert check_form(FIELDS, VALID | {7: "x"}) == [("7", "unknown field")]

    @pytest.mark.parametrize("missing", [{}, {"floors": None}])
    def test_missing_required(self, missing: dict[str, object]) -> None:
        """A required field left out, or given as None, is reported."""
        form = {"full_name": "An An"} | missing
        assert check_form(FIELDS, form) == [("floors", "is required")]

    def test_optional_none_is_allowed(self) -> None:
        """An optional field given as None counts as left out."""
        assert check_form(FIELDS, VALID | {"born": None}) == []

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            ("A", "must have at least 2 characters"),
            ("A" * 11, "must have at most 10 characters"),
            (42, "must be a string"),
        ],
    )
    def test_string_limits(self, value: object, problem: str) -> None:
        """Strings are checked for type and length."""
        assert check_form(FIELDS, VALID | {"full_name": value}) == [("full_name", problem)]

    @pytest.mark.parametrize("value", ["12a", "1234567", " 12", ""])
    def test_pattern_must_match_whole_value(self, value: str) -> None:
        """A pattern must match the whole value, not a part of it."""
        assert check_form(FIELDS, VALID | {"plot": value}) == [
            ("plot", "does not have the expected format")
        ]

    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            (0, "must be >= 1"),
            (51, "must be <= 50"),
            (True, "must be an integer"),
            (2.0, "must be an integer"),
            ("3", "must be an integer"),
        ],
    )
    def test_integer_limits(self, value: object, problem: str) -> None:
        """Integers are checked for type (bool is not one) and limits."""
        assert check_form(FIELDS, VALID | {"floors": value}) == [("floors", problem)]

    @pytest.mark.parametrize("value", [1, 50])
    def test_integer_bounds_are_inclusive(self, value: int) -> None:
        """The minimum and maximum themselves are accepted."""
        assert check_form(FIELDS, VALID | {"floors": value}) == []

    @pytest.mark.parametrize("value", [0, "true", None])
    def test_boolean(self, value: object) -> None:
        """A boolean field takes only True or False (None counts as left out)."""
        expected = [] if value is None else [("married", "must be true or false")]
        assert check_form(FIELDS, VALID | {"married": value}) == expected

    @pytest.mark.parametrize("value", ["2001-02-03", dt.date(2001, 2, 3)])
    def test_date_accepts_iso_text_and_dates(self, value: object) -> None:
        """A date field takes an ISO date string or a date."""
        assert check_form(FIELDS, VALID | {"born": value}) == []

    @pytest.mark.parametrize(
        "value", ["03/02/2001", "2001-02-30", dt.datetime(2001, 2, 3, tzinfo=dt.UTC), 20010203]
    )
    def test_date_refuses_other_values(self, value: object) -> None:
        """Other formats, impossible dates, datetimes and numbers are not dates."""
        assert check_form(FIELDS, VALID | {"born": value}) == [
            ("born", "must be a date (YYYY-MM-DD)")
        ]

    @pytest.mark.parametrize("value", ["NAM", "khac", 1, ["nam"]])
    def test_choice(self, value: object) -> None:
        """A choice field takes exactly one of its choices."""
        assert check_form(FIELDS, VALID | {"sex": value}) == [("sex", "must be one of nam, nu")]

    def test_every_problem_is_reported(self) -> None:
        """Unknown fields come first, then each field's problem in definition order."""
        form = {"extra": 1, "full_name": "", "floors": "many", "sex": "x"}
        assert check_form(FIELDS, form) == [
            ("extra", "unknown field"),
            ("full_name", "must have at least 2 characters"),
            ("floors", "must be an integer"),
            ("sex", "must be one of nam, nu"),
        ]
