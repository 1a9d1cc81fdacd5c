"""Fast positional constructors for the frozen attrs values a decision creates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import attrs

__all__ = ["builder", "check_buildable", "copier", "loader"]

T = TypeVar("T", bound=attrs.AttrsInstance)


def builder(cls: type[T]) -> Callable[..., T]:
    """A function making a ``cls`` from every field's value, positionally, as ``cls(*values)``.

    A frozen attrs class's ``__init__`` sets each slot through ``object.__setattr__``, which
    looks the name up again on every call; the builder sets each slot through its own
    descriptor, one line per field, as attrs writes its ``__init__``. It skips ``__init__``,
    so ``cls`` must be slotted, with no validator, converter or init hook (`check_buildable`
    refuses one that has; every argument is required).
    """
    names = _names(cls)
    lines = [f"    _set_{name}(self, {name})" for name in names]
    return _compile(cls, f"build({', '.join(names)})", lines, {})


def loader(cls: type[T], decoders: Mapping[str, Callable[[Any], Any]]) -> Callable[[Any], T]:
    """A function making a ``cls`` from a mapping that holds every field under its name.

    A value is passed through the decoder named after its field, unless it is ``None``. As
    `builder` does, it sets the slots directly. A missing name raises `KeyError`; names
    beyond the fields are not looked at.
    """
    lines = []
    for name in _names(cls):
        if name in decoders:
            lines.append(f"    value = data[{name!r}]")
            lines.append(f"    _set_{name}(self, None if value is None else _decode_{name}(value))")
        else:
            lines.append(f"    _set_{name}(self, data[{name!r}])")
    return _compile(cls, "load(data)", lines, {f"_decode_{n}": f for n, f in decoders.items()})


def copier(cls: type[T]) -> Callable[[T, Mapping[str, Any]], T]:
    """A function copying a ``cls`` value with some fields replaced: ``copy(value, changes)``.

    `attrs.evolve` for a mapping of changes, without its keyword arguments: every slot is
    copied, then each changed one set again, before the copy is returned. A name that is
    not a field raises `KeyError`.
    """
    names = _names(cls)
    lines = [f"    _set_{name}(self, value.{name})" for name in names]
    lines += ["    for name, changed in changes.items():", "        _setters[name](self, changed)"]
    setters = {name: getattr(cls, name).__set__ for name in names}
    return _compile(cls, "copy(value, changes)", lines, {"_setters": setters})


def _names(cls: type) -> list[str]:
    check_buildable(cls)
    return [field.name for field in attrs.fields(cls)]


def _compile(
    cls: type[T], signature: str, lines: list[str], namespace: dict[str, Any]
) -> Callable[..., T]:
    namespace |= {"_new": object.__new__, "_cls": cls}
    namespace |= {f"_set_{name}": getattr(cls, name).__set__ for name in _names(cls)}
    source = "\n".join([f"def {signature}:", "    self = _new(_cls)", *lines, "    return self"])
    filename = f"<dvcflow {signature.partition('(')[0]} of {cls.__qualname__}>"
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own text
    return cast("Callable[..., T]", namespace[signature.partition("(")[0]])


def check_buildable(cls: type) -> None:
    """Raise `TypeError` unless ``__init__`` of ``cls`` only stores its arguments in slots."""
    if not attrs.has(cls) or "__slots__" not in vars(cls):
        msg = f"{cls.__qualname__} is not a slotted attrs class"
        raise TypeError(msg)
    for hook in ("__attrs_pre_init__", "__attrs_post_init__"):
        if hasattr(cls, hook):
            msg = f"{cls.__qualname__} has {hook}"
            raise TypeError(msg)
    for field in attrs.fields(cls):
        if not field.init or field.validator is not None or field.converter is not None:
            msg = f"{cls.__qualname__}.{field.name} is not a plain field"
            raise TypeError(msg)
