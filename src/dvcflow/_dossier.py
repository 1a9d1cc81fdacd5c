"""The kernel's dossier: an immutable value with its fee obligations, waits and plain-data codec."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from dvcflow._frozen import copier, loader
from dvcflow._lifecycle import INITIAL
from dvcflow._procedure import DocumentKind
from dvcflow._values import Channel, DeliveryMethod, FeeKind, FeeTiming, Money

__all__ = [
    "Dossier",
    "FeeObligation",
    "Wait",
    "decode_changes",
    "encode_changes",
    "load_dossier",
    "replace",
    "replay",
]


@attrs.frozen
class FeeObligation:
    """What a dossier owes of one fee kind (phí or lệ phí): due, paid and refunded."""

    kind: FeeKind
    timing: FeeTiming
    due: Money
    paid: Money = Money(0)
    refunded: Money = Money(0)

    @property
    def outstanding(self) -> Money:
        """What is still to pay."""
        return Money(max(self.due.amount - self.paid.amount, 0))

    @property
    def settled(self) -> bool:
        """Whether nothing is left to pay."""
        return self.paid.amount >= self.due.amount


@attrs.frozen
class Wait:
    """A waiting state entered from ``resume``; leaving it by return goes back there."""

    state: str
    resume: str
    since: dt.datetime


@attrs.frozen
class Dossier:
    """A dossier as the kernel sees it: everything a decision needs, nothing personal.

    The applicant's identity, form and documents live in the engine's erasable store; the
    dossier refers to its owner by an opaque account id.
    """

    id: str
    procedure: str
    procedure_version: str
    rule_pack: str
    case: str
    channel: Channel
    delivery: DeliveryMethod
    agency: str
    state: str = INITIAL
    version: int = 0
    owner: str | None = None
    filed_by: str | None = None
    code: str | None = None
    created_at: dt.datetime | None = None
    received_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    fees: tuple[FeeObligation, ...] = ()
    waits: tuple[Wait, ...] = ()
    assignee: str | None = None
    step_due: dt.datetime | None = None
    steps_done: bool = False
    reschedules: int = 0
    guidance_given: bool = False
    supplement_received: bool = False
    supplement_due: dt.datetime | None = None
    approvals: frozenset[DocumentKind] = frozenset()
    result_ref: str | None = None
    result_signed: bool = False
    result_number: str | None = None
    resolved_at: dt.datetime | None = None
    returned_at: dt.datetime | None = None

    @property
    def fees_settled(self) -> bool:
        """Whether every fee due has been paid."""
        return all(fee.settled for fee in self.fees)

    def fee(self, kind: FeeKind) -> FeeObligation | None:
        """The obligation of ``kind``, if the dossier owes that kind at all."""
        for fee in self.fees:
            if fee.kind is kind:
                return fee
        return None

    @property
    def resume_state(self) -> str | None:
        """Where the innermost wait returns to."""
        return self.waits[-1].resume if self.waits else None


def _instant(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


_ZERO = Money(0)
_NO_APPROVALS: frozenset[DocumentKind] = frozenset()
_FEE_KINDS = {kind.value: kind for kind in FeeKind}
_TIMINGS = {timing.value: timing for timing in FeeTiming}
_CHANNELS = {channel.value: channel for channel in Channel}
_DELIVERIES = {method.value: method for method in DeliveryMethod}
_DOCUMENTS = {kind.value: kind for kind in DocumentKind}


def _money(amount: int) -> Money:
    # Most paid and refunded amounts are zero: share one value instead of 3 objects per fee.
    return _ZERO if amount == 0 else Money(amount)


def _encode_fee(fee: FeeObligation) -> dict[str, Any]:
    return {
        "kind": fee.kind._value_,
        "timing": fee.timing._value_,
        "due": fee.due.amount,
        "paid": fee.paid.amount,
        "refunded": fee.refunded.amount,
    }


def _decode_fee(data: Mapping[str, Any]) -> FeeObligation:
    return FeeObligation(
        _FEE_KINDS[data["kind"]],
        _TIMINGS[data["timing"]],
        _money(data["due"]),
        _money(data["paid"]),
        _money(data["refunded"]),
    )


_SHARED_FEES: dict[tuple[tuple[Any, ...], ...], tuple[FeeObligation, ...]] = {}
_SHARED_FEES_LIMIT = 4096


def _decode_fees(data: list[Mapping[str, Any]]) -> tuple[FeeObligation, ...]:
    """A dossier's obligations, one shared value per distinct list (as strings are interned).

    The dossiers of a procedure version owe the same few amounts, each unpaid, paid or
    refunded: sharing their immutable values saves three objects per fee and most of the
    decoding. Only integer amounts are looked up (``True == 1``, and must still be refused).
    """
    entries = []
    for fee in data:
        due, paid, refunded = fee["due"], fee["paid"], fee["refunded"]
        if not (type(due) is type(paid) is type(refunded) is int):
            return tuple(map(_decode_fee, data))
        entries.append((fee["kind"], fee["timing"], due, paid, refunded))
    key = tuple(entries)
    fees = _SHARED_FEES.get(key)
    if fees is None:
        fees = tuple(map(_decode_fee, data))
        if len(_SHARED_FEES) >= _SHARED_FEES_LIMIT:
            _SHARED_FEES.clear()
        _SHARED_FEES[key] = fees
    return fees


def _encode_wait(wait: Wait) -> dict[str, Any]:
    return {"state": wait.state, "resume": wait.resume, "since": wait.since.isoformat()}


def _decode_wait(data: Mapping[str, Any]) -> Wait:
    return Wait(data["state"], data["resume"], dt.datetime.fromisoformat(data["since"]))


def _decode_approvals(data: list[str]) -> frozenset[DocumentKind]:
    return frozenset(_DOCUMENTS[value] for value in data) if data else _NO_APPROVALS


def _encode_approvals(kinds: frozenset[DocumentKind]) -> list[str]:
    return sorted([kind._value_ for kind in kinds])


# Enum members' `_value_` is what their `value` property returns, without the property call.
_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "channel": lambda value: value._value_,
    "delivery": lambda value: value._value_,
    "fees": lambda fees: [_encode_fee(f) for f in fees],
    "waits": lambda waits: [_encode_wait(w) for w in waits],
    "approvals": _encode_approvals,
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "channel": _CHANNELS.__getitem__,
    "delivery": _DELIVERIES.__getitem__,
    "fees": _decode_fees,
    "waits": lambda data: tuple(map(_decode_wait, data)),
    "approvals": _decode_approvals,
}
for _field in attrs.fields(Dossier):
    if _field.type in {"dt.datetime | None", dt.datetime}:
        _ENCODERS[_field.name] = _instant
        _DECODERS[_field.name] = dt.datetime.fromisoformat  # None is never decoded
for _name in ("procedure", "procedure_version", "rule_pack", "case", "agency", "state"):
    # The same few strings recur in every dossier of a procedure version: keep one copy each.
    _DECODERS[_name] = sys.intern
_NAMES = {field.name: field.name for field in attrs.fields(Dossier)}
"""Field names as the class holds them: keyword arguments match these by identity, fast."""
_FIELDS = frozenset(_NAMES)
_COUNT = len(_NAMES)
_copy = copier(Dossier)
_load = loader(Dossier, _DECODERS)
"""``Dossier(**decode_changes(data))`` for data holding every field, faster."""


def encode_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Dossier field values as JSON-ready data, for an event's ``changes``."""
    encoders = _ENCODERS
    return {
        name: encoders[name](value) if name in encoders else value
        for name, value in changes.items()
    }


def decode_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `encode_changes`.

    Raises:
        KeyError: for a name that is not a dossier field (a corrupt event).
    """
    decoders, names = _DECODERS, _NAMES
    try:
        return {
            names[name]: decoders[name](value) if name in decoders and value is not None else value
            for name, value in data.items()
        }
    except KeyError as exc:
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise KeyError(unknown[0]) from None
        raise KeyError(str(exc)) from None


def load_dossier(data: Mapping[str, Any]) -> Dossier:
    """A dossier from its stored form: every field, as `encode_changes` wrote them.

    The same result as ``Dossier(**decode_changes(data))``, which it falls back on for data
    that does not hold exactly the dossier's fields, so errors are reported alike; without
    building a dict of keyword arguments, and decoding only the fields that need it (instants,
    enums, fees, interned names).

    Raises:
        KeyError: for a name that is not a dossier field (a corrupt row).
        TypeError: when a field without a default is missing.
    """
    if len(data) != _COUNT:
        return Dossier(**decode_changes(data))
    try:
        return _load(data)
    except KeyError:
        return Dossier(**decode_changes(data))


def replace(dossier: Dossier, changes: Mapping[str, Any]) -> Dossier:
    """``dossier`` with ``changes`` applied (a faster `attrs.evolve` for the hot path).

    Raises:
        KeyError: for a name that is not a dossier field.
    """
    return _copy(dossier, changes)


def replay(changes: Iterable[Mapping[str, Any]]) -> Dossier:
    """Fold the ``changes`` of a dossier's events, oldest first, back into the dossier.

    The first event carries every field (it created the dossier); each later one the fields
    its command changed.

    Raises:
        ValueError: when there is no event, or the first does not create the dossier.
        KeyError: for a field that is not a dossier field (a corrupt event).
    """
    fields: dict[str, Any] = {}
    for number, data in enumerate(changes):
        decoded = decode_changes(data)
        if number == 0 and not set(decoded) >= _FIELDS:
            msg = "the first event does not create the dossier"
            raise ValueError(msg)
        fields.update(decoded)
    if not fields:
        msg = "no events to replay"
        raise ValueError(msg)
    return Dossier(**fields)
