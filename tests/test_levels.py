"""Level derivation (DOMAIN.md §1): levels 1-4, the 2022 classes, and the level rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dvcflow import Catalog, InvalidDefinitionError, Level, OnlineClass, ProcedureSpec


def procedure(  # noqa: PLR0913 - one keyword per capability keeps the tables readable
    *,
    channels: tuple[str, ...] = ("in_person",),
    returns: tuple[str, ...] = ("in_person",),
    forms: bool = False,
    online_payment: bool = False,
    fee: int = 0,
    timing: str = "before_return",
    presence: tuple[str, ...] = (),
    steps: tuple[dict[str, Any], ...] = (),
    level: int | None = None,
) -> dict[str, Any]:
    """A minimal procedure document with the given capabilities."""
    caps: dict[str, Any] = {
        "channels": list(channels),
        "return_methods": list(returns),
        "online_payment": online_payment,
        "presence_steps": list(presence),
    }
    if forms:
        caps["forms"] = [{"name": "Tờ khai", "document": "to-khai.docx"}]
    case: dict[str, Any] = {"duration": {"amount": 5, "unit": "working_days"}}
    if fee:
        case["fees"] = [{"kind": "charge", "name": "Lệ phí", "amount": fee, "timing": timing}]
    data: dict[str, Any] = {
        "code": "1.000001",
        "name": "Thủ tục thử",
        "agency": "G01",
        "capabilities": caps,
        "result": {"type": "Giấy chứng nhận"},
        "cases": {"default": case},
        "steps": list(steps),
    }
    if level is not None:
        data["level"] = level
    return data


def problems(data: dict[str, Any]) -> list[str]:
    """The problems loading ``data`` reports, as ``path: message`` strings."""
    with pytest.raises(InvalidDefinitionError) as caught:
        ProcedureSpec.from_data(data, source="test")
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


ALL = ("in_person", "postal", "online")


class TestDerivation:
    @pytest.mark.parametrize(
        ("kwargs", "level", "klass"),
        [
            ({}, Level.INFORMATION, None),
            ({"forms": True}, Level.FORMS, None),
            ({"forms": True, "channels": ("in_person", "postal")}, Level.FORMS, None),
            ({"forms": True, "channels": ALL}, Level.ONLINE_SUBMISSION, OnlineClass.PARTIAL),
            (
                {"channels": ("online",), "fee": 50_000},
                Level.ONLINE_SUBMISSION,
                OnlineClass.PARTIAL,
            ),
            (
                {"channels": ("online",), "returns": ("electronic",)},
                Level.ONLINE_PAYMENT,
                OnlineClass.FULL,
            ),
            (
                {
                    "channels": ("online",),
                    "returns": ("electronic", "postal"),
                    "fee": 50_000,
                    "online_payment": True,
                    "timing": "before_reception",
                },
                Level.ONLINE_PAYMENT,
                OnlineClass.FULL,
            ),
            (
                {"channels": ("online",), "returns": ("electronic", "in_person")},
                Level.ONLINE_PAYMENT,
                OnlineClass.PARTIAL,
            ),
            (
                {"channels": ("online",), "returns": ("postal",), "presence": ("receive",)},
                Level.ONLINE_PAYMENT,
                OnlineClass.PARTIAL,
            ),
            (
                {
                    "channels": ("online",),
                    "returns": ("postal",),
                    "steps": (
                        {
                            "name": "site_check",
                            "kind": "inspection",
                            "roles": ["specialist"],
                            "requires_presence": True,
                        },
                    ),
                },
                Level.ONLINE_PAYMENT,
                OnlineClass.PARTIAL,
            ),
        ],
    )
    def test_table(self, kwargs: dict[str, Any], level: Level, klass: OnlineClass | None) -> None:
        """Capabilities map to the level and 2022 class of DOMAIN.md §1."""
        spec = ProcedureSpec.from_data(procedure(**kwargs))
        assert (spec.level, spec.online_class) == (level, klass)

    def test_no_fee_electronic_return_is_level_4(self) -> None:
        """Without fees the online-payment condition of level 4 holds vacuously."""
        spec = ProcedureSpec.from_data(procedure(channels=("online",), returns=("electronic",)))
        assert spec.level is Level.ONLINE_PAYMENT
        assert not spec.capabilities.online_payment

    def test_declared_level_matching_is_accepted(self) -> None:
        """A declared level equal to the derived one loads."""
        spec = ProcedureSpec.from_data(procedure(forms=True, level=2))
        assert spec.declared_level == 2
        assert spec.level is Level.FORMS


class TestLevelRules:
    def test_declared_level_4_names_missing_online_payment(self) -> None:
        """Declaring level 4 without online payment names the missing capability."""
        found = problems(
            procedure(channels=("online",), returns=("in_person",), fee=10_000, level=4),
        )
        assert found == [
            (
                "level: declared level 4 but the capabilities give level 3; missing "
                "capabilities.online_payment: level 4 needs online payment, as the procedure "
                "charges fees; capabilities.return_methods: level 4 needs an electronic or postal "
                "return"
            ),
        ]

    def test_declared_level_3_without_online_channel(self) -> None:
        """Declaring level 3 without online submission names the channel."""
        found = problems(procedure(forms=True, level=3))
        assert found == [
            (
                "level: declared level 3 but the capabilities give level 2; missing "
                "capabilities.channels: no online submission"
            ),
        ]

    def test_declared_level_2_without_forms(self) -> None:
        """Declaring level 2 without downloadable forms names the forms."""
        assert problems(procedure(level=2)) == [
            (
                "level: declared level 2 but the capabilities give level 1; missing "
                "capabilities.forms: no downloadable forms"
            ),
        ]

    def test_declared_lower_than_capabilities(self) -> None:
        """A declared level below what the capabilities give is a contradiction too."""
        found = problems(procedure(forms=True, channels=ALL, level=2))
        assert found == [
            (
                "level: declared level 2 but the capabilities give level 3; "
                "capabilities.channels offers online submission"
            ),
        ]

    def test_level_3_counter_fee_before_reception_is_an_error(self) -> None:
        """An L3 procedure may not collect a counter fee before reception (an extra visit)."""
        found = problems(procedure(channels=ALL, forms=True, fee=20_000, timing="before_reception"))
        assert found == [
            (
                "cases.default.fees[0].timing: at level 3 counter fees are collected with the "
                "result ('before_return'); collecting earlier adds a visit"
            ),
        ]

    @pytest.mark.parametrize("timing", ["before_reception", "before_return"])
    def test_level_2_counter_fee_at_reception_or_return(self, timing: str) -> None:
        """L1-L2 counter fees may be collected at reception or at return."""
        spec = ProcedureSpec.from_data(procedure(forms=True, fee=20_000, timing=timing))
        assert spec.level is Level.FORMS

    def test_level_2_fee_at_supplement_is_an_error(self) -> None:
        """L1-L2 counter fees are not collected at a supplement."""
        found = problems(procedure(forms=True, fee=20_000, timing="at_supplement"))
        assert found == [
            (
                "cases.default.fees[0].timing: at levels 1-2 a counter fee is collected at "
                "reception or at return"
            ),
        ]

    @pytest.mark.parametrize("timing", ["before_reception", "at_supplement", "before_return"])
    def test_level_4_fee_any_timing(self, timing: str) -> None:
        """L4 fees are paid online at whichever timing the procedure states."""
        spec = ProcedureSpec.from_data(
            procedure(
                channels=("online",),
                returns=("electronic",),
                online_payment=True,
                fee=20_000,
                timing=timing,
            ),
        )
        assert spec.level is Level.ONLINE_PAYMENT

    def test_postal_intake_needs_forms(self) -> None:
        """Postal intake is a level 2 capability and needs downloadable forms."""
        assert problems(procedure(channels=("in_person", "postal"))) == [
            "capabilities.forms: postal intake (level 2 and up) needs downloadable forms",
        ]

    def test_online_payment_needs_online_channel(self) -> None:
        """Online payment without online submission is inconsistent."""
        assert problems(procedure(forms=True, online_payment=True)) == [
            (
                "capabilities.online_payment: online payment needs online submission "
                "('online' channel)"
            ),
        ]

    def test_postal_return_below_level_4(self) -> None:
        """A result goes out by post only at level 4."""
        found = problems(procedure(forms=True, returns=("in_person", "postal")))
        assert found == [
            (
                "capabilities.return_methods: a result goes out by post or electronically only at "
                "level 4 (level 4 needs online submission)"
            ),
        ]

    def test_unknown_presence_step(self) -> None:
        """A presence step must be a presence trigger or a step of the procedure."""
        assert problems(procedure(presence=("dance",))) == [
            (
                "capabilities.presence_steps: 'dance' is neither a presence trigger nor a step of "
                "this procedure"
            ),
        ]

    def test_information_must_be_published(self) -> None:
        """Every level publishes the procedure's information."""
        data = procedure()
        data["capabilities"]["information_published"] = False
        assert problems(data) == [
            "capabilities.information_published: every level publishes the procedure's information",
        ]


class TestExamples:
    @pytest.mark.parametrize(
        ("code", "level", "klass"),
        [
            ("2.000815", 1, None),
            ("2.000575", 2, None),
            ("1.000894", 3, "partial"),
            ("1.009994", 3, "partial"),
            ("2.000488", 4, "partial"),
            ("1.002804", 4, "partial"),
            ("1.001193", 4, "full"),
        ],
    )
    def test_example_levels(
        self, examples_dir: Path, code: str, level: int, klass: str | None
    ) -> None:
        """The example catalogue covers all four levels and both 2022 classes."""
        spec = Catalog.from_path(examples_dir).get(code)
        assert spec.level == level
        assert (spec.online_class.value if spec.online_class else None) == klass
