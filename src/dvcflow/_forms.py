"""Checking a submission's form against the procedure's form fields."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence

from dvcflow._procedure import FieldType, FormFieldSpec

__all__ = ["check_form"]


def _is_date(value: object) -> bool:
    if isinstance(value, dt.date):
        return not isinstance(value, dt.datetime)
    if not isinstance(value, str):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_integer(field: FormFieldSpec, value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be an integer"
    if field.minimum is not None and value < field.minimum:
        return f"must be >= {field.minimum}"
    if field.maximum is not None and value > field.maximum:
        return f"must be <= {field.maximum}"
    return None


def _check_string(field: FormFieldSpec, value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if field.min_length is not None and len(value) < field.min_length:
        return f"must have at least {field.min_length} characters"
    if field.max_length is not None and len(value) > field.max_length:
        return f"must have at most {field.max_length} characters"
    if field.pattern is not None and not re.fullmatch(field.pattern, value):
        return "does not have the expected format"
    return None


def _check_value(field: FormFieldSpec, value: object) -> str | None:
    kind = field.type
    if kind is FieldType.BOOLEAN:
        return None if isinstance(value, bool) else "must be true or false"
    if kind is FieldType.INTEGER:
        return _check_integer(field, value)
    if kind is FieldType.DATE:
        return None if _is_date(value) else "must be a date (YYYY-MM-DD)"
    if kind is FieldType.CHOICE:
        return None if value in field.choices else f"must be one of {', '.join(field.choices)}"
    return _check_string(field, value)


def check_form(
    fields: Sequence[FormFieldSpec], form: Mapping[str, object]
) -> list[tuple[str, str]]:
    """Every problem of ``form`` against ``fields``, as ``(field name, message)`` pairs.

    Unknown fields, missing required fields, wrong types and values outside the limits are
    all reported; an empty list means the form is valid.
    """
    known = {field.name: field for field in fields}
    problems = [(str(name), "unknown field") for name in form if name not in known]
    for field in fields:
        if field.name not in form or form[field.name] is None:
            if field.required:
                problems.append((field.name, "is required"))
            continue
        problem = _check_value(field, form[field.name])
        if problem is not None:
            problems.append((field.name, problem))
    return problems
