"""Rule packs: the built-in regimes, their non-overlapping ranges, and loading packs from files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dvcflow import (
    CalendarError,
    ContactRule,
    InvalidDefinitionError,
    NotFoundError,
    RulePacks,
    ServiceModel,
    SupplementPolicy,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(*args: int) -> dt.datetime:
    """An instant given in Vietnamese local time."""
    return dt.datetime(*args, tzinfo=VN)  # type: ignore[misc]


class TestBuiltin:
    def test_names_and_order(self) -> None:
        """The three built-in packs of DOMAIN.md §1, oldest first."""
        assert [pack.name for pack in RulePacks.builtin()] == [
            "levels-2009",
            "online-2022",
            "vneid-2024",
        ]

    @pytest.mark.parametrize(
        ("at", "name"),
        [
            (local(2015, 6, 1, 12), "levels-2009"),
            (local(2022, 8, 14, 23, 59), "levels-2009"),
            (local(2022, 8, 15, 0, 0), "online-2022"),
            (local(2024, 6, 30, 23, 59), "online-2022"),
            (local(2024, 7, 1, 0, 0), "vneid-2024"),
            (local(2026, 11, 29, 9), "vneid-2024"),
        ],
    )
    def test_in_force(self, at: dt.datetime, name: str) -> None:
        """The pack in force is judged on the local date, boundaries included."""
        assert RulePacks.builtin().in_force(at).name == name

    def test_boundary_judged_in_vietnam(self) -> None:
        """18:00 UTC on 30/06/2024 is already 01/07/2024 in Vietnam."""
        at = dt.datetime(2024, 6, 30, 18, 0, tzinfo=dt.UTC)
        assert RulePacks.builtin().in_force(at).name == "vneid-2024"

    def test_contact_rules(self) -> None:
        """VNeID replaces the phone-and-email rule from 2024."""
        packs = RulePacks.builtin()
        assert packs.get("online-2022").contact is ContactRule.PHONE_AND_EMAIL
        assert packs.get("vneid-2024").contact is ContactRule.VNEID
        assert packs.get("levels-2009").model is ServiceModel.LEVELS
        assert packs.get("online-2022").model is ServiceModel.CLASSES

    def test_clock_policy_defaults(self) -> None:
        """Each pack carries the production clock defaults: restart, one reschedule."""
        pack = RulePacks.builtin().get("vneid-2024")
        assert pack.clock.supplement is SupplementPolicy.RESTART
        assert pack.clock.reschedule_limit == 1

    def test_naive_datetime_rejected(self) -> None:
        """A naive datetime is ambiguous and refused."""
        with pytest.raises(CalendarError, match="naive"):
            RulePacks.builtin().in_force(dt.datetime(2025, 1, 1))  # noqa: DTZ001

    def test_before_any_pack(self) -> None:
        """No pack covers dates before the first one."""
        with pytest.raises(NotFoundError, match="2001-01-01"):
            RulePacks.builtin().in_force(local(2001, 1, 1, 12))

    def test_unknown_name(self) -> None:
        """Asking for an unknown pack names the known ones."""
        with pytest.raises(NotFoundError, match="levels-2009, online-2022, vneid-2024"):
            RulePacks.builtin().get("levels-2030")


PACK = """
[[packs]]
name = "{name}"
title = "Thử nghiệm"
effective_from = {start}
{until}
model = "classes"
contact = "vneid"
"""


def write(tmp_path: Path, *packs: tuple[str, str, str | None], extra: str = "") -> Path:
    """A rule-pack file with ``packs`` given as (name, from, until)."""
    text = "".join(
        PACK.format(name=name, start=start, until=f"effective_until = {until}" if until else "")
        for name, start, until in packs
    )
    path = tmp_path / "packs.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


class TestFromPath:
    def test_loads_with_clock_override(self, tmp_path: Path) -> None:
        """A pack file may override clock policies."""
        path = write(
            tmp_path,
            ("local-2027", "2027-01-01", None),
            extra='[packs.clock]\nsupplement = "pause"\nreschedule_limit = 2\n',
        )
        pack = RulePacks.from_path(path).get("local-2027")
        assert pack.clock.supplement is SupplementPolicy.PAUSE
        assert pack.clock.reschedule_limit == 2

    def test_overlap_is_an_error(self, tmp_path: Path) -> None:
        """Two packs in force on the same day are refused."""
        path = write(tmp_path, ("a", "2027-01-01", "2027-12-31"), ("b", "2027-06-01", None))
        with pytest.raises(
            InvalidDefinitionError, match=r"b\.effective_from: overlaps rule pack 'a'"
        ):
            RulePacks.from_path(path)

    def test_open_ended_pack_followed_by_another(self, tmp_path: Path) -> None:
        """A pack without an end date overlaps any later pack."""
        path = write(tmp_path, ("a", "2027-01-01", None), ("b", "2028-01-01", None))
        with pytest.raises(InvalidDefinitionError, match="overlaps"):
            RulePacks.from_path(path)

    def test_field_errors_name_the_entry(self, tmp_path: Path) -> None:
        """A bad field names the file and the pack entry."""
        path = write(
            tmp_path, ("a", "2027-01-01", None), extra='[packs.clock]\nsupplement = "stop"\n'
        )
        with pytest.raises(InvalidDefinitionError) as caught:
            RulePacks.from_path(path)
        assert [str(p) for p in caught.value.problems] == [
            (
                f"{path}: packs[0].clock.supplement: must be one of 'restart', 'pause', "
                "'continue', got 'stop'"
            ),
        ]

    def test_end_before_start(self, tmp_path: Path) -> None:
        """An effective range that ends before it starts is refused."""
        path = write(tmp_path, ("a", "2027-01-01", "2026-01-01"))
        with pytest.raises(InvalidDefinitionError, match=r"a\.effective_until: is before"):
            RulePacks.from_path(path)
