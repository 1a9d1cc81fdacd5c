"""Fast positional constructors for frozen attrs values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from dvcflow import Channel, DeliveryMethod, NationalStatus
from dvcflow._dossier import Dossier, Wait
from dvcflow._frozen import builder, check_buildable, copier, loader
from dvcflow._kernel import Decision, Effect, EffectKind, Event

AT = dt.datetime(2025, 3, 3, 2, tzinfo=dt.UTC)
DOSSIER = Dossier(
    "d-1", "1.009994", "v1", "vneid-2024", "default", Channel.ONLINE, DeliveryMethod.POSTAL, "A"
)
EFFECT = Effect(EffectKind.NOTIFY, {"event": "assigned"}, "d-1:1:0")
EVENT = Event(
    "d-1", 1, "start", "received", "processing", AT, "cb-1", ("leader",), None, "A", {}, {}, True
)
DECISION = Decision(DOSSIER, EVENT, (EFFECT,), {}, NationalStatus.NEW)
VALUES = [DOSSIER, Wait("awaiting_payment", "result_ready", AT), EFFECT, EVENT, DECISION]


def values_of(value: Any) -> list[Any]:
    return [getattr(value, field.name) for field in attrs.fields(type(value))]


class TestBuilder:
    @pytest.mark.parametrize("value", VALUES, ids=lambda value: type(value).__name__)
    def test_builds_what_the_constructor_builds(self, value: Any) -> None:
        """The builder gives what ``cls(*values)`` gives: the same class, equal, frozen."""
        cls = type(value)
        built = builder(cls)(*values_of(value))
        assert type(built) is cls
        assert built == cls(*values_of(value)) == value
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            built.version = 2

    @pytest.mark.parametrize("cls", [type(value) for value in VALUES], ids=lambda cls: cls.__name__)
    def test_the_built_classes_only_store_their_arguments(self, cls: type) -> None:
        """Every class the kernel builds this way has nothing its ``__init__`` would add."""
        check_buildable(cls)

    def test_every_argument_is_required(self) -> None:
        """Defaults are not filled in: every field is passed."""
        with pytest.raises(TypeError):
            builder(Effect)(EffectKind.NOTIFY, {})


class TestCopier:
    def test_copies_with_the_changes(self) -> None:
        """A copy with changes is `attrs.evolve`'s, and the original is left as it was."""
        copy = copier(Event)
        changed = copy(EVENT, {"version": 2, "visit": False})
        assert changed == attrs.evolve(EVENT, version=2, visit=False)
        assert type(changed) is Event
        assert EVENT.version == 1
        assert copy(EVENT, {}) == EVENT

    def test_unknown_name_is_a_key_error(self) -> None:
        """A change that names no field raises instead of being dropped."""
        with pytest.raises(KeyError, match="colour"):
            copier(Event)(EVENT, {"colour": "blue"})


class TestLoader:
    def test_decodes_the_named_fields_but_none(self) -> None:
        """Named fields go through their decoder, ``None`` stays, extra names are not read."""
        load = loader(Event, {"version": int, "acting_for": str.upper, "agency": str.upper})
        data = {field.name: getattr(EVENT, field.name) for field in attrs.fields(Event)}
        data |= {"version": "7", "agency": "a", "colour": "blue"}
        assert load(data) == attrs.evolve(EVENT, version=7, agency="A")

    def test_missing_name_is_a_key_error(self) -> None:
        """A field missing from the mapping raises `KeyError` with its name."""
        with pytest.raises(KeyError, match="key"):
            loader(Effect, {})({"kind": EffectKind.NOTIFY, "data": {}})


@attrs.frozen
class Validated:
    amount: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen
class Converted:
    name: str = attrs.field(converter=str)


@attrs.frozen
class Hooked:
    name: str

    def __attrs_post_init__(self) -> None:
        pass


@attrs.frozen(slots=False)
class Unslotted:
    name: str


class Plain:
    __slots__ = ("name",)


class TestCheckBuildable:
    @pytest.mark.parametrize("cls", [Validated, Converted, Hooked, Unslotted, Plain])
    def test_refuses_what_init_would_do_more(self, cls: type) -> None:
        """A validator, a converter, an init hook, no slots, or no attrs: refused."""
        with pytest.raises(TypeError):
            builder(cls)
