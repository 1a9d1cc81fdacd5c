"""The kernel's dossier value and its stored form."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
import pytest

from dvcflow import Channel, DeliveryMethod, FeeKind, FeeTiming, InvalidValueError, Money
from dvcflow._dossier import (
    Dossier,
    FeeObligation,
    Wait,
    decode_changes,
    encode_changes,
    load_dossier,
    replace,
)
from dvcflow._procedure import DocumentKind

AT = dt.datetime(2025, 3, 3, 2, tzinfo=dt.UTC)

NEW = Dossier(
    id="d-1",
    procedure="1.009994",
    procedure_version="v1",
    rule_pack="vneid-2024",
    case="default",
    channel=Channel.ONLINE,
    delivery=DeliveryMethod.POSTAL,
    agency="UBND-HUYEN.003",
)
BUSY = attrs.evolve(
    NEW,
    state="awaiting_payment",
    version=7,
    owner="account-1",
    filed_by="account-2",
    code="000.00.00.H00-250303-0001",
    created_at=AT,
    received_at=AT + dt.timedelta(hours=1),
    due_at=AT + dt.timedelta(days=20),
    fees=(
        FeeObligation(FeeKind.CHARGE, FeeTiming.BEFORE_RETURN, Money(75_000)),
        FeeObligation(FeeKind.FEE, FeeTiming.BEFORE_RECEPTION, Money(10_000), Money(10_000)),
    ),
    waits=(Wait("awaiting_payment", "result_ready", AT + dt.timedelta(days=3)),),
    assignee="specialist-1",
    steps_done=True,
    reschedules=1,
    approvals=frozenset({DocumentKind.RESULT}),
    result_ref="GPXD-1",
    result_signed=True,
    resolved_at=AT + dt.timedelta(days=2),
)


def stored(dossier: Dossier) -> dict[str, Any]:
    """The dossier's row data as a database driver hands it over: parsed JSON."""
    fields = {field.name: getattr(dossier, field.name) for field in attrs.fields(Dossier)}
    data: dict[str, Any] = json.loads(json.dumps(encode_changes(fields)))
    return data


class TestLoadDossier:
    @pytest.mark.parametrize("dossier", [NEW, BUSY])
    def test_round_trip(self, dossier: Dossier) -> None:
        """A stored dossier loads back equal, as the generic decoder loads it."""
        data = stored(dossier)
        assert load_dossier(data) == dossier == Dossier(**decode_changes(data))

    def test_missing_field_takes_its_default(self) -> None:
        """A row without a defaulted field (an older row) loads with the default."""
        data = stored(BUSY)
        del data["returned_at"]
        assert load_dossier(data) == BUSY

    def test_unknown_field_is_a_key_error(self) -> None:
        """A name that is no dossier field is reported by name, whatever else the row holds."""
        data = stored(BUSY) | {"colour": "blue"}
        with pytest.raises(KeyError, match="colour"):
            load_dossier(data)
        del data["returned_at"]
        with pytest.raises(KeyError, match="colour"):
            load_dossier(data)

    def test_missing_required_field_is_refused(self) -> None:
        """A row without a field that has no default does not load."""
        data = stored(BUSY)
        del data["agency"]
        with pytest.raises(TypeError, match="agency"):
            load_dossier(data)

    def test_fee_obligations_are_shared(self) -> None:
        """Two rows owing the same fees share one immutable value, as names are interned."""
        first, second = load_dossier(stored(BUSY)), load_dossier(stored(BUSY))
        assert first.fees == BUSY.fees
        assert first.fees is second.fees
        assert first.procedure_version is second.procedure_version

    def test_shared_fees_keep_validation(self) -> None:
        """A stored amount that is not an integer is refused even when an equal one is shared."""
        data = stored(BUSY)
        data["fees"][0]["paid"] = 1
        assert load_dossier(data).fees[0].paid == Money(1)
        data["fees"][0]["paid"] = True
        with pytest.raises(InvalidValueError):
            load_dossier(data)
        with pytest.raises(InvalidValueError):
            load_dossier(data)


class TestReplace:
    def test_changes_only_the_named_fields(self) -> None:
        """`replace` is `attrs.evolve` with a mapping."""
        changes = {"state": "result_ready", "version": 8, "waits": ()}
        assert replace(BUSY, changes) == attrs.evolve(BUSY, **changes)
        assert replace(BUSY, {}) == BUSY

    def test_unknown_field_is_refused(self) -> None:
        """A name that is no dossier field raises instead of being dropped."""
        with pytest.raises(KeyError, match="colour"):
            replace(BUSY, {"colour": "blue"})
