"""Invalid definitions: one mistake made in a valid one, with the problem it must be reported as."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import strategies as st

from dvcflow.errors import InvalidDefinitionError
from dvcflow.levels import Level
from dvcflow.testing._procedures import check_definition

__all__ = ["MUTATIONS", "InvalidDefinition", "Mutation"]


@attrs.frozen
class InvalidDefinition:
    """A procedure definition with one mistake, and the problem loading it must report.

    ``path`` is the field path the `InvalidDefinitionError` must name exactly, ``message`` a
    part of what it must say there; ``mistake`` names the kind of mistake made.
    """

    data: dict[str, Any]
    path: str
    message: str
    mistake: str

    def check(self) -> InvalidDefinitionError:
        """Load the definition and check that it is refused with the expected problem.

        Returns:
            The error raised.

        Raises:
            AssertionError: when the definition loads, or no problem names the path and message.
        """
        try:
            check_definition(self.data, source="<drawn>")
        except InvalidDefinitionError as error:
            found = [(p.path, p.message) for p in error.problems]
            if not any(path == self.path and self.message in text for path, text in found):
                msg = f"{self.mistake}: expected {self.path}: ...{self.message}..., got {found}"
                raise AssertionError(msg) from error
            return error
        msg = f"{self.mistake}: the definition loaded, expected {self.path}: {self.message}"
        raise AssertionError(msg)


Apply = Callable[[st.DrawFn, dict[str, Any]], tuple[str, str]]


@attrs.frozen
class Mutation:
    """One kind of mistake: the levels it applies at and how to make it."""

    name: str
    levels: tuple[Level, ...]
    apply: Apply


def _default(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    key = data.get("default_case", "default")
    case: dict[str, Any] = data["cases"][key]
    return key, case


def _misspelt_key(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    data["levle"] = 3
    return "levle", "unknown key (did you mean 'level'?)"


def _misspelt_capability(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    data["capabilities"]["online_paymnet"] = True
    return "capabilities.online_paymnet", "unknown key (did you mean 'online_payment'?)"


def _bad_code(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    code = draw(st.sampled_from(["1.23", "3.000001", "1-001193", "1.001193.toolong9", ""]))
    data["code"] = code
    return "code", "does not match the expected format" if code else "must not be empty"


def _negative_fee(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    key, case = _default(data)
    fee = {"kind": "fee", "name": "Phí", "amount": -draw(st.integers(1, 10**6))}
    case["fees"] = [fee, *case.get("fees", [])[1:]]
    return f"cases.{key}.fees[0].amount", "must be >= 0"


def _counter_fee_timing(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    key, case = _default(data)
    level = Level(check_definition(data).level)
    if level is Level.ONLINE_SUBMISSION:
        timing = draw(st.sampled_from(["before_reception", "at_supplement"]))
        message = "at level 3 counter fees are collected with the result"
    else:
        timing, message = "at_supplement", "at levels 1-2 a counter fee is collected"
    case["fees"] = [{"kind": "charge", "name": "Lệ phí", "amount": 50_000, "timing": timing}]
    return f"cases.{key}.fees[0].timing", message


def _declared_level(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    derived = check_definition(data).level.value
    declared = draw(st.sampled_from([n for n in (1, 2, 3, 4) if n != derived]))
    data["level"] = declared
    return "level", f"declared level {declared} but the capabilities give level {derived}"


def _postal_without_forms(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    capabilities = data["capabilities"]
    capabilities["channels"] = sorted({*capabilities["channels"], "postal"})
    capabilities.pop("forms", None)
    for case in data["cases"].values():
        if "durations" in case:
            case["durations"]["postal"] = {"amount": 3, "unit": "working_days"}
    return "capabilities.forms", "postal intake (level 2 and up) needs downloadable forms"


def _online_payment_offline(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    data["capabilities"]["online_payment"] = True
    return "capabilities.online_payment", "online payment needs online submission"


def _remote_return_offline(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    method = draw(st.sampled_from(["electronic", "postal"]))
    capabilities = data["capabilities"]
    capabilities["return_methods"] = sorted({*capabilities["return_methods"], method})
    return "capabilities.return_methods", "a result goes out by post or electronically only"


def _appended(data: dict[str, Any], key: str, item: dict[str, Any]) -> int:
    items: list[dict[str, Any]] = data.setdefault(key, [])
    items.append(item)
    return len(items) - 1


def _builtin_step(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    name = draw(st.sampled_from(["processing", "received", "result_ready", "submit", "resolve"]))
    index = _appended(data, "steps", {"name": name, "kind": "appraisal", "roles": ["specialist"]})
    return f"steps[{index}].name", f"{name!r} is a built-in name"


def _unknown_step_role(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    step = {"name": "extra_check", "kind": "appraisal", "roles": ["wizard"]}
    return f"steps[{_appended(data, 'steps', step)}].roles[0]", "unknown role 'wizard'"


def _consultation_without_agency(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    step = {"name": "extra_check", "kind": "consultation", "roles": ["specialist"]}
    index = _appended(data, "steps", step)
    return f"steps[{index}].agency", "a consultation names the agency it addresses"


def _widened_permission(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    trigger, role = draw(
        st.sampled_from([("start", "citizen"), ("resolve", "clerk"), ("stop", "specialist")])
    )
    data.setdefault("permissions", {})[trigger] = [role]
    return f"permissions.{trigger}", f"may only narrow the default roles; {role!r} is not one"


def _unknown_trigger_permission(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    data.setdefault("permissions", {})["fly"] = ["leader"]
    return "permissions.fly", "lifecycle has no trigger 'fly'"


def _emptied_edge(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    # At reception a supplement is requested by the receiving officer, in processing by the
    # specialist: narrowing the trigger to the specialist leaves the reception edge to nobody.
    data.setdefault("permissions", {})["request_supplement"] = ["specialist"]
    return "transitions.request_supplement[submitted]", "names no role that may fire it"


def _duplicate_component(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    key, case = _default(data)
    components = case.setdefault("components", [])
    if not components:
        components.append({"key": "application", "name": "Đơn"})
    components.append(dict(components[0]))
    name = components[0]["key"]
    return f"cases.{key}.components[{len(components) - 1}]", f"duplicate component name {name!r}"


def _missing_duration(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    key, case = _default(data)
    channels = sorted(data["capabilities"]["channels"])
    left_out = draw(st.sampled_from(channels))
    case.pop("duration", None)
    case["durations"] = {
        c: {"amount": 5, "unit": "working_days"} for c in channels if c != left_out
    }
    return f"cases.{key}.durations", f"no duration for the offered {left_out} channel"


def _choice_without_choices(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    index = _appended(data, "form_fields", {"name": "extra_choice", "type": "choice"})
    return f"form_fields[{index}].choices", "a choice field lists its choices"


def _bad_field_name(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    name = draw(st.sampled_from(["Full Name", "2nd", "họ_tên", "a-b"]))
    index = _appended(data, "form_fields", {"name": name, "type": "string"})
    return f"form_fields[{index}].name", "does not match the expected format"


def _inverted_limits(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    low = draw(st.integers(2, 50))
    field = {"name": "extra_text", "type": "string", "min_length": low, "max_length": low - 1}
    index = _appended(data, "form_fields", field)
    return f"form_fields[{index}].max_length", f"must be >= min_length ({low})"


def _unknown_default_case(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    data["default_case"] = "nope"
    return "default_case", "no case named 'nope'"


def _unknown_presence_step(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    data["capabilities"]["presence_steps"] = ["dance"]
    return "capabilities.presence_steps", "'dance' is neither a presence trigger nor a step"


def _unknown_duration_unit(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    key, case = _default(data)
    case.pop("durations", None)
    case["duration"] = {"amount": 3, "unit": "fortnights"}
    return f"cases.{key}.duration.unit", "must be one of 'working_days'"


def _duplicate_applicant_type(draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    kind = draw(st.sampled_from(["citizen", "business"]))
    data["applicant_types"] = [kind, kind]
    return "applicant_types[1]", f"{kind!r} is listed twice"


def _level4_without_online_payment(_draw: st.DrawFn, data: dict[str, Any]) -> tuple[str, str]:
    _key, case = _default(data)
    case["fees"] = [{"kind": "charge", "name": "Lệ phí", "amount": 30_000}]
    data["capabilities"]["online_payment"] = False
    data["level"] = 4
    return "level", "missing capabilities.online_payment: level 4 needs online payment"


_ALL = tuple(Level)
MUTATIONS = (
    Mutation("misspelt key", _ALL, _misspelt_key),
    Mutation("misspelt capability", _ALL, _misspelt_capability),
    Mutation("bad procedure code", _ALL, _bad_code),
    Mutation("negative fee", _ALL, _negative_fee),
    Mutation(
        "counter fee collected too early",
        (Level.INFORMATION, Level.FORMS, Level.ONLINE_SUBMISSION),
        _counter_fee_timing,
    ),
    Mutation("declared level contradicted", _ALL, _declared_level),
    Mutation("postal intake without forms", (Level.INFORMATION,), _postal_without_forms),
    Mutation(
        "online payment without online submission",
        (Level.INFORMATION, Level.FORMS),
        _online_payment_offline,
    ),
    Mutation(
        "remote return below level 4", (Level.INFORMATION, Level.FORMS), _remote_return_offline
    ),
    Mutation("step named like a built-in", _ALL, _builtin_step),
    Mutation("unknown role in a step", _ALL, _unknown_step_role),
    Mutation("consultation without an agency", _ALL, _consultation_without_agency),
    Mutation("widened permission", _ALL, _widened_permission),
    Mutation("permission for an unknown trigger", _ALL, _unknown_trigger_permission),
    Mutation(
        "narrowing that leaves an edge to nobody",
        (Level.ONLINE_SUBMISSION, Level.ONLINE_PAYMENT),
        _emptied_edge,
    ),
    Mutation("duplicate component", _ALL, _duplicate_component),
    Mutation("channel without a duration", _ALL, _missing_duration),
    Mutation("choice field without choices", _ALL, _choice_without_choices),
    Mutation("form field name not snake_case", _ALL, _bad_field_name),
    Mutation("inverted length limits", _ALL, _inverted_limits),
    Mutation("unknown default case", _ALL, _unknown_default_case),
    Mutation("unknown presence step", _ALL, _unknown_presence_step),
    Mutation("unknown duration unit", _ALL, _unknown_duration_unit),
    Mutation("applicant type listed twice", _ALL, _duplicate_applicant_type),
    Mutation(
        "level 4 with fees but no online payment",
        (Level.ONLINE_PAYMENT,),
        _level4_without_online_payment,
    ),
)
"""Every kind of mistake `invalid_definitions` makes."""
