"""Random procedure definitions as plain data, valid by construction at a chosen level and class."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypothesis import strategies as st

from dvcflow._procedure import ProcedureSpec
from dvcflow.levels import PRESENCE_TRIGGERS, Level, OnlineClass, lifecycle_for

__all__ = ["STEP_NAMES", "check_definition", "procedure_data"]

_AGENCIES = ("UBND-XA.001", "UBND-HUYEN.003", "STP.01", "SGTVT.79", "G09.20")
EXTERNAL_AGENCIES = ("CA-TINH.01", "CT-TINH.02", "TNMT.05")
"""Agencies a consultation step may address (never a procedure's own agency above)."""
STEP_NAMES = ("appraisal", "site_inspection", "police_check", "tax_check", "review", "approval")
"""The names generated steps take: none of them is a built-in state or trigger."""
_STEP_ROLES = ("specialist", "leader", "department_head")
_UNITS = ("working_days", "working_hours", "calendar_days", "same_day", "none")
_PACKS = ("levels-2009", "online-2022", "vneid-2024")
_NARROWINGS = (
    ("reassign", ("department_head",)),
    ("reassign", ("admin",)),
    ("request_payment", ("specialist",)),
    ("request_payment", ("cashier",)),
    ("resolve", ("leader",)),
)
"""Narrowed permissions that exist at every level and leave every edge a role."""
_FIELD_NAMES = ("full_name", "birth_date", "purpose", "copies", "floor_area_m2", "sex", "agree")
_PATTERNS = ("[0-9]{1,6}", "[A-Z][0-9]{2,4}", "[a-z]{2,8}")


def check_definition(data: dict[str, Any], *, source: str = "<data>") -> ProcedureSpec:
    """Load ``data`` as the real loader does, then build its lifecycle as `Engine.open` does.

    `ProcedureSpec.from_data` checks every field and the level rules; the lifecycle (step
    names, permissions, reachability, the full-process rule) is checked when the lifecycle is
    built. A definition is valid when both pass.

    Raises:
        InvalidDefinitionError: listing every problem with its path.
    """
    procedure = ProcedureSpec.from_data(data, source=source)
    lifecycle_for(procedure, source=source)
    return procedure


def _duration(draw: st.DrawFn) -> dict[str, Any]:
    unit = draw(st.sampled_from(_UNITS))
    if unit in {"same_day", "none"}:
        return {"unit": unit}
    top = {"working_days": 20, "working_hours": 16, "calendar_days": 30}[unit]
    return {"amount": draw(st.integers(1, top)), "unit": unit}


def _channels(draw: st.DrawFn, level: Level) -> tuple[list[str], bool]:
    """The submission channels of ``level``, and whether downloadable forms are needed."""
    if level is Level.INFORMATION:
        return ["in_person"], False
    if level is Level.FORMS:
        offered = draw(st.sets(st.sampled_from(["in_person", "postal"]), min_size=1))
        return sorted(offered), True
    extra = draw(st.sets(st.sampled_from(["in_person", "postal"])))
    return sorted({"online", *extra}), "postal" in extra


def _returns(draw: st.DrawFn, level: Level, klass: OnlineClass | None) -> list[str]:
    if level < Level.ONLINE_PAYMENT:
        return ["in_person"]
    remote = draw(st.sets(st.sampled_from(["electronic", "postal"]), min_size=1))
    if klass is OnlineClass.FULL:
        return sorted(remote)
    return sorted(remote | draw(st.sampled_from([{"in_person"}, set()])))


def _timings(level: Level) -> list[str]:
    if level <= Level.FORMS:
        return ["before_reception", "before_return"]
    if level is Level.ONLINE_SUBMISSION:
        return ["before_return"]
    return ["before_reception", "at_supplement", "before_return"]


def _vnd(steps: int) -> int:
    return steps * 5_000


_AMOUNTS = st.integers(1, 40).map(_vnd)


def _fee(draw: st.DrawFn, level: Level, channels: list[str], number: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["fee", "charge"]))
    fee: dict[str, Any] = {
        "kind": kind,
        "name": f"{'Phí' if kind == 'fee' else 'Lệ phí'} {number + 1}",
        "timing": draw(st.sampled_from(_timings(level))),
    }
    amounts = _AMOUNTS
    if draw(st.booleans()):
        fee["amount"] = draw(amounts)
    else:
        # A channel left out of `amounts` does not charge the fee; at least one is charged.
        charged = draw(st.sets(st.sampled_from(channels), min_size=1))
        fee["amounts"] = {channel: draw(amounts) for channel in sorted(charged)}
    if draw(st.integers(0, 3)) == 0:
        fee["exemptions"] = [{"code": "poor_household", "description": "Hộ nghèo"}]
    return fee


def _case(
    draw: st.DrawFn, level: Level, channels: list[str], *, fees: bool, key: str
) -> dict[str, Any]:
    case: dict[str, Any] = {"name": {"vi": f"Trường hợp {key}", "en": key.replace("_", " ")}}
    if draw(st.booleans()):
        case["duration"] = _duration(draw)
    else:
        case["durations"] = {channel: _duration(draw) for channel in channels}
    if fees:
        count = draw(st.integers(1, 2))
        case["fees"] = [_fee(draw, level, channels, number) for number in range(count)]
    keys = draw(
        st.lists(
            st.sampled_from(["application", "identity", "drawings", "proof"]),
            max_size=3,
            unique=True,
        )
    )
    components = []
    for index, component in enumerate(keys):
        entry: dict[str, Any] = {"key": component, "name": f"Giấy tờ {component}"}
        if index > 0:
            entry["mandatory"] = draw(st.booleans())
        if draw(st.booleans()):
            entry["copy_type"] = draw(st.sampled_from(["original", "copy", "electronic"]))
            entry["quantity"] = draw(st.integers(1, 3))
        components.append(entry)
    if components:
        case["components"] = components
    return case


def _field(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "integer", "boolean", "date", "choice"]))
    field: dict[str, Any] = {"name": name, "type": kind, "required": draw(st.booleans())}
    if draw(st.booleans()):
        field["label"] = f"Trường {name}"
    if kind == "string":
        shape = draw(st.sampled_from(["free", "length", "pattern"]))
        if shape == "length":
            low = draw(st.integers(0, 5))
            field |= {"min_length": low, "max_length": low + draw(st.integers(0, 60))}
        elif shape == "pattern":
            field["pattern"] = draw(st.sampled_from(_PATTERNS))
    elif kind == "integer" and draw(st.booleans()):
        low = draw(st.integers(-5, 10))
        field |= {"minimum": low, "maximum": low + draw(st.integers(0, 1000))}
    elif kind == "choice":
        field["choices"] = draw(
            st.lists(st.sampled_from(["nam", "nu", "khac", "cha", "me"]), min_size=1, unique=True)
        )
    return field


def _step(draw: st.DrawFn, name: str, *, presence: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(["appraisal", "approval", "consultation", "inspection"]))
    step: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "roles": sorted(draw(st.sets(st.sampled_from(_STEP_ROLES), min_size=1))),
        "duration": _duration(draw),
    }
    if kind == "consultation":
        step["agency"] = draw(st.sampled_from(EXTERNAL_AGENCIES))
    if kind == "inspection" and presence:
        step["requires_presence"] = draw(st.booleans())
    if draw(st.booleans()):
        step["title"] = {"vi": f"Bước {name}", "en": name.replace("_", " ")}
    return step


@st.composite
def _procedure_data(  # noqa: C901, PLR0912, PLR0915 - one branch per optional part
    draw: st.DrawFn,
    levels: tuple[Level, ...],
    classes: tuple[OnlineClass | None, ...],
) -> dict[str, Any]:
    level = draw(st.sampled_from(levels))
    if level < Level.ONLINE_SUBMISSION:
        klass = None
    elif level is Level.ONLINE_SUBMISSION:
        klass = OnlineClass.PARTIAL
    else:
        klass = draw(st.sampled_from([c for c in classes if c is not None] or [OnlineClass.FULL]))
    channels, forms_needed = _channels(draw, level)
    returns = _returns(draw, level, klass)
    fees = draw(st.booleans())
    capabilities: dict[str, Any] = {"channels": channels, "return_methods": returns}
    if forms_needed or level is Level.FORMS or (draw(st.booleans()) and level > Level.FORMS):
        capabilities["forms"] = [{"name": "Tờ khai", "document": "to-khai.docx"}]
    if level is Level.ONLINE_PAYMENT:
        capabilities["online_payment"] = fees or draw(st.booleans())
    steps = [
        _step(draw, name, presence=klass is not OnlineClass.FULL)
        for name in draw(st.lists(st.sampled_from(STEP_NAMES), max_size=3, unique=True))
    ]
    if klass is not OnlineClass.FULL and draw(st.integers(0, 3)) == 0:
        known = sorted(PRESENCE_TRIGGERS | {step["name"] for step in steps})
        capabilities["presence_steps"] = sorted(draw(st.sets(st.sampled_from(known), min_size=1)))
    presence = bool(capabilities.get("presence_steps")) or any(
        step.get("requires_presence") for step in steps
    )
    if level is Level.ONLINE_PAYMENT and klass is OnlineClass.PARTIAL and not presence:
        # Partial without a presence step: an in-person return makes it so.
        capabilities["return_methods"] = sorted({*returns, "in_person"})
    second = draw(st.sampled_from([None, "reduced", "expedited"]))
    default = draw(st.sampled_from(["default", "standard"]))
    cases = {default: _case(draw, level, channels, fees=fees, key=default)}
    if second is not None:
        cases[second] = _case(draw, level, channels, fees=fees and draw(st.booleans()), key=second)
    number = draw(st.integers(0, 999_999))
    suffix = draw(st.sampled_from(["", "", "", ".H38", ".T79"]))
    data: dict[str, Any] = {
        "code": f"{draw(st.sampled_from('12'))}.{number:06d}{suffix}",
        "name": draw(
            st.sampled_from(
                [
                    "Thủ tục thử nghiệm",
                    {"vi": "Đăng ký thử nghiệm", "en": "Test registration"},
                ]
            )
        ),
        "agency": draw(st.sampled_from(_AGENCIES)),
        "capabilities": capabilities,
        "result": {"type": "Giấy chứng nhận", "signed": draw(st.booleans())},
        "cases": cases,
    }
    if default != "default":
        data["default_case"] = default
    if draw(st.booleans()):
        data["level"] = level.value
    types = draw(st.sets(st.sampled_from(["citizen", "business", "household_business"])))
    if types:
        data["applicant_types"] = sorted(types)
    if steps:
        data["steps"] = steps
    fields = draw(st.lists(st.sampled_from(_FIELD_NAMES), max_size=3, unique=True))
    if fields:
        data["form_fields"] = [_field(draw, name) for name in fields]
    sign_off = draw(st.sets(st.sampled_from(["result", "supplement_request", "apology"])))
    if sign_off:
        data["sign_off"] = sorted(sign_off)
    narrowed = draw(st.lists(st.sampled_from(_NARROWINGS), max_size=2, unique_by=lambda n: n[0]))
    if narrowed:
        data["permissions"] = {trigger: list(roles) for trigger, roles in narrowed}
    if draw(st.integers(0, 4)) == 0:
        data["rule_pack"] = draw(st.sampled_from(_PACKS))
    if draw(st.integers(0, 3)) == 0:
        data["intake_cutoff"] = draw(st.sampled_from(["15:00", "16:30"]))
    return data


def procedure_data(
    levels: Iterable[Level | int] = tuple(Level),
    classes: Iterable[OnlineClass | None] = (OnlineClass.FULL, OnlineClass.PARTIAL),
) -> st.SearchStrategy[dict[str, Any]]:
    """Plain data of valid procedures at ``levels`` (level 4 in ``classes``), as a file holds it.

    Raises:
        ValueError: no level, an unknown one, or level 4 asked for with no class.
    """
    chosen = tuple(sorted({Level(level) for level in levels}))
    kinds = tuple(OnlineClass(kind) for kind in classes if kind is not None)
    if not chosen:
        msg = "procedure_data() needs at least one level"
        raise ValueError(msg)
    if Level.ONLINE_PAYMENT in chosen and not kinds:
        msg = "procedure_data() at level 4 needs at least one online class"
        raise ValueError(msg)
    return _procedure_data(chosen, kinds)
