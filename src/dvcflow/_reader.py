"""Reading definition files: TOML/JSON documents walked with field paths and collected problems."""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from dvcflow.errors import InvalidDefinitionError, InvalidValueError, Problem

__all__ = ["Node", "Report", "read_document"]

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "a table",
    list: "an array",
    dt.date: "a date (YYYY-MM-DD)",
}


class Report:
    """The problems found in one source (a file, or a Python value named by the caller)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        """Record that the value at ``path`` is wrong."""
        self.problems.append(Problem(self.source, path, message))

    def raise_if_any(self, error: type[InvalidDefinitionError] = InvalidDefinitionError) -> None:
        """Raise every recorded problem at once."""
        if self.problems:
            raise error(self.problems)


def _parse(path: Path, raw: bytes) -> object:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return tomllib.loads(raw.decode("utf-8"))
    if suffix == ".json":
        return json.loads(raw)
    msg = f"unsupported file type {suffix!r}; use .toml or .json"
    raise ValueError(msg)


def read_document(path: Path, report: Report) -> dict[str, Any] | None:
    """Parse a ``.toml`` or ``.json`` file into a table, or record why it cannot be read."""
    data: object = None
    try:
        data = _parse(path, path.read_bytes())
    except OSError as exc:
        report.add("", f"cannot read: {exc.strerror or exc}")
    except UnicodeDecodeError:
        report.add("", "not UTF-8 text")
    except tomllib.TOMLDecodeError as exc:
        report.add("", f"not valid TOML: {exc}")
    except json.JSONDecodeError as exc:
        report.add("", f"not valid JSON: {exc}")
    except ValueError as exc:
        report.add("", str(exc))
    except RecursionError:
        report.add("", "nested too deeply to be a definition")
    else:
        if isinstance(data, dict):
            return data
        report.add("", "the document must be a table (a JSON object)")
    return None


_MISSING: Any = object()


class Node:
    """A value inside a document, with its path; accessors record problems instead of raising.

    Every accessor returns ``None`` when the value is absent or wrong (after recording why), so
    a loader reads a whole file and reports every problem in one pass.
    """

    def __init__(self, value: object, path: str, report: Report) -> None:
        self.value = value
        self.path = path
        self.report = report

    def child_path(self, key: str | int) -> str:
        """The path of a key or index below this node."""
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", key):
            key = json.dumps(key, ensure_ascii=False)
        return f"{self.path}.{key}" if self.path else key

    def problem(self, message: str, key: str | int | None = None) -> None:
        """Record a problem at this node, or at ``key`` below it."""
        self.report.add(self.path if key is None else self.child_path(key), message)

    def table(self, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> bool:
        """Check this node is a table with no unknown and no missing keys."""
        if not isinstance(self.value, dict):
            self.problem(f"must be a table, got {_describe(self.value)}")
            return False
        known = set(required) | set(optional)
        for key in self.value:
            if key not in known:
                hint = _closest(str(key), known)
                self.problem("unknown key" + (f" (did you mean {hint!r}?)" if hint else ""), key)
        for key in required:
            if key not in self.value:
                self.problem("is required", key)
        return True

    def has(self, key: str) -> bool:
        """Whether the table has ``key``."""
        return isinstance(self.value, dict) and key in self.value

    def get(self, key: str) -> Node | None:
        """The child at ``key``, or ``None`` when absent."""
        if not isinstance(self.value, dict) or key not in self.value:
            return None
        return Node(self.value[key], self.child_path(key), self.report)

    def items(self) -> Iterator[tuple[str, Node]]:
        """The children of a table (checked by `table` first)."""
        if isinstance(self.value, dict):
            for key, value in self.value.items():
                yield str(key), Node(value, self.child_path(str(key)), self.report)

    def typed(self, key: str, kind: type[T], default: T | None = _MISSING) -> T | None:
        """The value at ``key`` if it has type ``kind``; ``default`` when absent."""
        node = self.get(key)
        if node is None:
            return None if default is _MISSING else default
        return node.as_type(kind)

    def as_type(self, kind: type[T]) -> T | None:
        """This node's value if it has type ``kind`` (bool is never an int here)."""
        value = self.value
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is dt.date and isinstance(value, dt.datetime):
            ok = False
        if not ok and kind is dt.date and isinstance(value, str):
            # JSON has no date type; accept ISO dates written as strings.
            try:
                return dt.date.fromisoformat(value)  # type: ignore[return-value]
            except ValueError:
                pass
        if not ok:
            self.problem(f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {_describe(value)}")
            return None
        return value  # type: ignore[return-value]

    def string(
        self, key: str, default: str | None = _MISSING, *, pattern: str | None = None
    ) -> str | None:
        """A non-empty string at ``key``, optionally matching ``pattern`` in full."""
        value = self.typed(key, str, default)
        if value is None or value is default:
            return value
        if not value.strip():
            self.problem("must not be empty", key)
            return None
        if pattern is not None and not re.fullmatch(pattern, value):
            self.problem(f"{value!r} does not match the expected format", key)
            return None
        return value

    def integer(
        self, key: str, default: int | None = _MISSING, *, minimum: int | None = None
    ) -> int | None:
        """An integer at ``key``, at least ``minimum``."""
        value = self.typed(key, int, default)
        if value is not None and value is not default and minimum is not None and value < minimum:
            self.problem(f"must be >= {minimum}", key)
            return None
        return value

    def boolean(self, key: str, default: bool | None = _MISSING) -> bool | None:  # noqa: FBT001
        """A boolean at ``key``."""
        return self.typed(key, bool, default)

    def date(self, key: str, default: dt.date | None = _MISSING) -> dt.date | None:
        """A date at ``key`` (a TOML date, or an ISO string in JSON)."""
        return self.typed(key, dt.date, default)

    def time(self, key: str, default: dt.time | None = _MISSING) -> dt.time | None:
        """A local time of day at ``key`` (TOML ``15:00:00`` or the string ``"15:00"``)."""
        node = self.get(key)
        if node is None:
            return None if default is _MISSING else default
        return node.as_time()

    def as_time(self) -> dt.time | None:
        """This node as a time of day."""
        if isinstance(self.value, dt.time) and (self.value.microsecond or self.value.tzinfo):
            self.problem("must be a local time of day without fractions of a second or offset")
            return None
        if isinstance(self.value, dt.time):
            return self.value
        if isinstance(self.value, str) and re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", self.value):
            try:
                return dt.time.fromisoformat(self.value)
            except ValueError:
                pass
        self.problem(f'must be a time of day like "15:00", got {_describe(self.value)}')
        return None

    def choice(self, key: str, kind: type[E], default: E | None = _MISSING) -> E | None:
        """An enum member at ``key``, given by its value."""
        node = self.get(key)
        if node is None:
            return None if default is _MISSING else default
        return node.as_choice(kind)

    def as_choice(self, kind: type[E]) -> E | None:
        """This node as a member of ``kind``, given by its value."""
        for member in kind:
            if member.value == self.value:
                return member
        choices = ", ".join(repr(m.value) for m in kind)
        self.problem(f"must be one of {choices}, got {_describe(self.value)}")
        return None

    def array(self, key: str, *, required: bool = False) -> list[Node]:
        """The elements of the array at ``key`` (empty when absent and not required)."""
        node = self.get(key)
        if node is None:
            if required:
                self.problem("is required", key)
            return []
        return node.array_items()

    def array_items(self) -> list[Node]:
        """The elements of this node, which must be an array."""
        if not isinstance(self.value, list):
            self.problem(f"must be an array, got {_describe(self.value)}")
            return []
        return [Node(item, self.child_path(i), self.report) for i, item in enumerate(self.value)]

    def build(self, factory: Callable[..., T], /, **kwargs: Any) -> T | None:  # noqa: ANN401
        """Call a value constructor, recording its `InvalidValueError` at the field it names."""
        try:
            return factory(**kwargs)
        except InvalidValueError as exc:
            self.problem(exc.message, exc.field if exc.field in kwargs else None)
            return None


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            shown = repr(value) if isinstance(value, str | int) else name
            return shown if len(shown) <= 40 else shown[:37] + "..."
    return type(value).__name__


def _closest(key: str, known: set[str]) -> str | None:
    """A known key one or two edits away from ``key``, to name a likely typo."""
    import difflib  # noqa: PLC0415 - only needed when a file is wrong

    matches = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return matches[0] if matches else None
