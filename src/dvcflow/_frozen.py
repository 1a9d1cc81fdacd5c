"""Fast positional constructors for the frozen attrs values a decision creates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

__all__ = ["builder", "check_buildable"]

T = TypeVar("T", bound=attrs.AttrsInstance)


def builder(cls: type[T]) -> Callable[..., T]:
    """A function making a ``cls`` from every field's value, positionally, as ``cls(*values)``.

    A frozen attrs class's ``__init__`` sets each slot through ``object.__setattr__``, which
    looks the name up again on every call; the builder sets each slot through its own
    descriptor, one line per field, as attrs writes its ``__init__``. It skips ``__init__``,
    so ``cls`` must be slotted, with no validator, converter or init hook (`check_buildable`
    refuses one that has; every argument is required).
    """
    check_buildable(cls)
    names = [field.name for field in attrs.fields(cls)]
    setters = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    lines = [f"    _set_{name}(self, {name})" for name in names]
    source = "\n".join(
        [f"def build({', '.join(names)}):", "    self = _new(_cls)", *lines, "    return self"]
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec(compile(source, f"<dvcflow builder of {cls.__qualname__}>", "exec"), namespace)  # noqa: S102 - our text
    return cast("Callable[..., T]", namespace["build"])


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
