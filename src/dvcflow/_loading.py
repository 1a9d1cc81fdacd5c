"""Turning plain data (parsed TOML / JSON) into procedure specs and back, with per-field errors."""

from __future__ import annotations

import re
from typing import Any

from dvcflow._procedure import (
    IDENTIFIER,
    PROCEDURE_CODE,
    CapabilitiesSpec,
    CaseSpec,
    ComponentSpec,
    DocumentKind,
    ExemptionSpec,
    FeeSpec,
    FieldType,
    FormDocumentSpec,
    FormFieldSpec,
    ProcedureSpec,
    ResultSpec,
    StepKind,
    StepSpec,
    Text,
)
from dvcflow._reader import Node, Report
from dvcflow._values import (
    ROLES,
    ApplicantType,
    Channel,
    CopyType,
    DeliveryMethod,
    Duration,
    DurationUnit,
    FeeKind,
    FeeTiming,
    Money,
)

__all__ = ["load_procedure", "procedure_to_data", "read_duration", "read_procedure"]

_PROCEDURE_KEYS = (
    "applicant_types",
    "default_case",
    "form_fields",
    "intake_cutoff",
    "level",
    "permissions",
    "rule_pack",
    "sign_off",
    "steps",
)


def load_procedure(data: dict[str, Any], *, source: str) -> ProcedureSpec:
    """Validate ``data`` and build the procedure, or raise every problem found.

    Raises:
        InvalidDefinitionError: with one `Problem` per bad field, each with its path.
    """
    report = Report(source)
    procedure = read_procedure(Node(data, "", report))
    report.raise_if_any()
    assert procedure is not None  # noqa: S101 - no problems means the reader built it
    return procedure


def read_procedure(node: Node) -> ProcedureSpec | None:
    """Read a procedure at ``node``, recording problems in its report."""
    report = node.report
    before = len(report.problems)
    if not node.table(
        required=("agency", "capabilities", "cases", "code", "name", "result"),
        optional=_PROCEDURE_KEYS,
    ):
        return None
    code = node.string("code", pattern=PROCEDURE_CODE)
    name = _text(node, "name")
    agency = node.string("agency")
    steps = tuple(step for item in node.array("steps") if (step := _step(item)) is not None)
    capabilities = _capabilities(node.get("capabilities"))
    channels = capabilities.channels if capabilities else frozenset(Channel)
    cases = _cases(node.get("cases"), channels)
    result = _result(node.get("result"))
    applicant_types = _set_of(
        node, "applicant_types", ApplicantType, default=frozenset({ApplicantType.CITIZEN})
    )
    if node.has("applicant_types") and not node.array("applicant_types"):
        node.problem("list at least one applicant type", "applicant_types")
    form_fields = tuple(
        field for item in node.array("form_fields") if (field := _form_field(item)) is not None
    )
    _unique(node, "form_fields", [field.name for field in form_fields], "field")
    _unique(node, "steps", [step.name for step in steps], "step")
    sign_off = _set_of(node, "sign_off", DocumentKind, default=frozenset())
    default_case = node.string("default_case", "default")
    declared = node.integer("level", None)
    rule_pack = node.string("rule_pack", None)
    cutoff = node.time("intake_cutoff", None)
    permissions = _permissions(node.get("permissions"))
    raw_cases = node.get("cases")
    case_keys = (
        raw_cases.value if raw_cases is not None and isinstance(raw_cases.value, dict) else {}
    )
    if case_keys and default_case and default_case not in case_keys:
        node.problem(
            f"no case named {default_case!r}",
            "default_case" if node.has("default_case") else "cases",
        )
    if len(report.problems) > before:
        return None
    procedure = node.build(
        ProcedureSpec,
        code=code,
        name=name,
        agency=agency,
        capabilities=capabilities,
        cases=cases,
        result=result,
        applicant_types=applicant_types,
        form_fields=form_fields,
        steps=steps,
        sign_off=sign_off,
        default_case=default_case,
        declared_level=declared,
        rule_pack=rule_pack,
        intake_cutoff=cutoff,
        permissions=permissions,
    )
    if procedure is not None:
        for path, message in procedure.derivation.problems:
            report.add(path, message)
    return procedure if len(report.problems) == before else None


def _text(node: Node, key: str, default: Text | None = None) -> Text | None:
    child = node.get(key)
    if child is None:
        # A missing required key is reported once, by the table check.
        return default
    if isinstance(child.value, str):
        return child.build(Text, vi=child.value)
    if not child.table(required=("vi",), optional=("en",)):
        return None
    vi, en = child.string("vi"), child.string("en", None)
    return None if vi is None else child.build(Text, vi=vi, en=en)


def _set_of(node: Node, key: str, kind: type[Any], *, default: frozenset[Any]) -> frozenset[Any]:
    if not node.has(key):
        return default
    items = node.array(key)
    members = [item.as_choice(kind) for item in items]
    seen: set[Any] = set()
    for item, member in zip(items, members, strict=True):
        if member is not None and member in seen:
            item.problem(f"{member.value!r} is listed twice")
        seen.add(member)
    return frozenset(member for member in members if member is not None)


def _unique(node: Node, key: str, names: list[str], what: str) -> None:
    array = Node(None, node.child_path(key), node.report)
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            array.problem(f"duplicate {what} name {name!r}", index)
        seen.add(name)


def _capabilities(node: Node | None) -> CapabilitiesSpec | None:
    if node is None or not node.table(
        required=("channels", "return_methods"),
        optional=("forms", "information_published", "online_payment", "presence_steps"),
    ):
        return None
    forms = []
    for item in node.array("forms"):
        if item.table(required=("name", "document")):
            built = item.build(
                FormDocumentSpec, name=item.string("name"), document=item.string("document")
            )
            if built is not None:
                forms.append(built)
    presence = frozenset(
        name for item in node.array("presence_steps") if (name := item.as_type(str)) is not None
    )
    return node.build(
        CapabilitiesSpec,
        channels=_set_of(node, "channels", Channel, default=frozenset()),
        return_methods=_set_of(node, "return_methods", DeliveryMethod, default=frozenset()),
        information_published=node.boolean("information_published", default=True),
        forms=tuple(forms),
        online_payment=node.boolean("online_payment", default=False),
        presence_steps=presence,
    )


def read_duration(node: Node | None) -> Duration | None:
    if node is None or not node.table(required=("unit",), optional=("amount",)):
        return None
    unit = node.choice("unit", DurationUnit)
    amount = node.integer("amount", 0, minimum=0)
    if unit is None or amount is None:
        return None
    return node.build(Duration, amount=amount, unit=unit)


def _per_channel(
    node: Node,
    single: str,
    many: str,
    channels: frozenset[Channel],
    read: Any,  # noqa: ANN401 - a reader for one value: Node -> value | None
) -> dict[Channel, Any] | None:
    """Read ``single`` (the same for every channel) or ``many`` (a table keyed by channel)."""
    if node.has(single) and node.has(many):
        node.problem(f"give either {single!r} or {many!r}, not both", many)
        return None
    if node.has(single):
        value = read(node.get(single))
        return None if value is None else dict.fromkeys(channels, value)
    table = node.get(many)
    if table is None:
        node.problem(f"is required (or {many!r} per channel)", single)
        return None
    if not table.table(optional=tuple(channel.value for channel in Channel)):
        return None
    result = {}
    for key, child in table.items():
        channel = Channel(key) if key in {c.value for c in Channel} else None
        value = read(child)
        if channel is not None and channel not in channels:
            child.problem(f"the procedure does not offer the {key} channel")
        elif channel is not None and value is not None:
            result[channel] = value
    return result


def _money(node: Node | None) -> Money | None:
    if node is None:
        return None
    amount = node.as_type(int)
    if amount is None:
        return None
    if amount < 0:
        node.problem("must be >= 0")
        return None
    return Money(amount)


def _cases(node: Node | None, channels: frozenset[Channel]) -> tuple[CaseSpec, ...]:
    if node is None:
        return ()
    if not isinstance(node.value, dict):
        node.problem("must be a table of cases keyed by name")
        return ()
    if not node.value:
        node.problem("at least one case is required")
    cases = []
    for key, child in node.items():
        if not _is_identifier(key):
            child.problem("a case key is a snake_case identifier")
            continue
        case = _case(key, child, channels)
        if case is not None:
            cases.append(case)
    return tuple(cases)


def _case(key: str, node: Node, channels: frozenset[Channel]) -> CaseSpec | None:
    if not node.table(optional=("components", "duration", "durations", "fees", "name")):
        return None
    before = len(node.report.problems)
    name = _text(node, "name", Text(key.replace("_", " ")))
    durations = _per_channel(node, "duration", "durations", channels, read_duration)
    if durations is not None:
        for channel in sorted(channels - set(durations), key=lambda c: c.value):
            node.problem(f"no duration for the offered {channel.value} channel", "durations")
    fees = tuple(fee for item in node.array("fees") if (fee := _fee(item, channels)) is not None)
    components = tuple(
        c for item in node.array("components") if (c := _component(item)) is not None
    )
    _unique(node, "components", [component.key for component in components], "component")
    if len(node.report.problems) > before or durations is None:
        return None
    return node.build(
        CaseSpec, key=key, name=name, durations=durations, fees=fees, components=components
    )


def _fee(node: Node, channels: frozenset[Channel]) -> FeeSpec | None:
    if not node.table(
        required=("kind", "name"), optional=("amount", "amounts", "exemptions", "timing")
    ):
        return None
    amounts = _per_channel(node, "amount", "amounts", channels, _money)
    exemptions = []
    for item in node.array("exemptions"):
        if item.table(required=("code", "description")):
            code = item.string("code", pattern=IDENTIFIER)
            built = item.build(ExemptionSpec, code=code, description=item.string("description"))
            if built is not None:
                exemptions.append(built)
    kind, name = node.choice("kind", FeeKind), node.string("name")
    timing = node.choice("timing", FeeTiming, FeeTiming.BEFORE_RETURN)
    if None in (kind, name, timing, amounts):
        return None
    return node.build(
        FeeSpec, kind=kind, name=name, amounts=amounts, timing=timing, exemptions=exemptions
    )


def _component(node: Node) -> ComponentSpec | None:
    if not node.table(required=("key", "name"), optional=("copy_type", "mandatory", "quantity")):
        return None
    key = node.string("key", pattern=IDENTIFIER)
    name = node.string("name")
    copy_type = node.choice("copy_type", CopyType, CopyType.COPY)
    quantity = node.integer("quantity", 1, minimum=1)
    mandatory = node.boolean("mandatory", default=True)
    if None in (key, name, copy_type, quantity, mandatory):
        return None
    return node.build(
        ComponentSpec,
        key=key,
        name=name,
        copy_type=copy_type,
        quantity=quantity,
        mandatory=mandatory,
    )


_FIELD_OPTIONS = (
    "choices",
    "label",
    "max_length",
    "maximum",
    "min_length",
    "minimum",
    "pattern",
    "required",
)


def _form_field(node: Node) -> FormFieldSpec | None:
    # Counted before the table check: a missing required key is one of this field's problems.
    before = len(node.report.problems)
    if not node.table(required=("name", "type"), optional=_FIELD_OPTIONS):
        return None
    values: dict[str, Any] = {
        "name": node.string("name", pattern=IDENTIFIER),
        "type": node.choice("type", FieldType),
        "label": node.string("label", None),
        "required": node.boolean("required", default=False),
        "pattern": node.string("pattern", None),
        "choices": tuple(
            c for item in node.array("choices") if (c := item.as_type(str)) is not None
        ),
    }
    for key in ("min_length", "max_length"):
        values[key] = node.integer(key, None, minimum=0)
    for key in ("minimum", "maximum"):
        values[key] = node.integer(key, None)
    if len(node.report.problems) > before:
        return None
    return node.build(FormFieldSpec, **values)


def _step(node: Node) -> StepSpec | None:
    before = len(node.report.problems)
    if not node.table(
        required=("kind", "name", "roles"),
        optional=("agency", "duration", "requires_presence", "title"),
    ):
        return None
    roles = set()
    for item in node.array("roles"):
        role = item.as_type(str)
        if role is not None and role not in ROLES:
            item.problem(f"unknown role {role!r}")
        elif role is not None:
            roles.add(role)
    duration_node = node.get("duration")
    duration = Duration.working_days(1) if duration_node is None else read_duration(duration_node)
    values = {
        "name": node.string("name", pattern=IDENTIFIER),
        "kind": node.choice("kind", StepKind),
        "roles": roles,
        "duration": duration,
        "title": _text(node, "title", None) if node.has("title") else None,
        "requires_presence": node.boolean("requires_presence", default=False),
        "agency": node.string("agency", None),
    }
    if len(node.report.problems) > before:
        return None
    return node.build(StepSpec, **values)


def _permissions(node: Node | None) -> dict[str, frozenset[str]]:
    if node is None or not isinstance(node.value, dict):
        if node is not None:
            node.problem("must be a table of trigger = [roles]")
        return {}
    found = {}
    for trigger, child in node.items():
        roles = [item.as_type(str) for item in child.array_items()]
        for index, role in enumerate(roles):
            if role is not None and role not in ROLES:
                child.problem(f"unknown role {role!r}", index)
        if not roles:
            child.problem("list at least one role (narrowing to none would disable the trigger)")
        found[trigger] = frozenset(role for role in roles if role is not None)
    return found


def _result(node: Node | None) -> ResultSpec | None:
    if node is None or not node.table(required=("type",), optional=("signed",)):
        return None
    kind, signed = node.string("type"), node.boolean("signed", default=False)
    return None if kind is None else node.build(ResultSpec, type=kind, signed=signed)


def _is_identifier(key: str) -> bool:
    return re.fullmatch(IDENTIFIER, key) is not None


# -- back to data -----------------------------------------------------------------------------


def _text_data(text: Text) -> dict[str, str]:
    return {"vi": text.vi} | ({"en": text.en} if text.en else {})


def _duration_data(duration: Duration) -> dict[str, Any]:
    return {"amount": duration.amount, "unit": duration.unit.value}


def _optional(**values: Any) -> dict[str, Any]:  # noqa: ANN401
    return {key: value for key, value in values.items() if value is not None}


def procedure_to_data(procedure: ProcedureSpec) -> dict[str, Any]:
    """The canonical plain-data form of ``procedure`` (sorted sets, explicit per-channel maps)."""
    caps = procedure.capabilities
    data: dict[str, Any] = {
        "code": procedure.code,
        "name": _text_data(procedure.name),
        "agency": procedure.agency,
        "applicant_types": sorted(kind.value for kind in procedure.applicant_types),
        "default_case": procedure.default_case,
        "capabilities": {
            "information_published": caps.information_published,
            "forms": [{"name": form.name, "document": form.document} for form in caps.forms],
            "channels": sorted(channel.value for channel in caps.channels),
            "online_payment": caps.online_payment,
            "return_methods": sorted(method.value for method in caps.return_methods),
            "presence_steps": sorted(caps.presence_steps),
        },
        "result": {"type": procedure.result.type, "signed": procedure.result.signed},
        "cases": {case.key: _case_data(case) for case in procedure.cases},
        "form_fields": [_field_data(field) for field in procedure.form_fields],
        "steps": [_step_data(step) for step in procedure.steps],
        "sign_off": sorted(kind.value for kind in procedure.sign_off),
    }
    data |= _optional(level=procedure.declared_level, rule_pack=procedure.rule_pack)
    if procedure.permissions:
        data["permissions"] = {trigger: sorted(roles) for trigger, roles in procedure.permissions}
    if procedure.intake_cutoff is not None:
        cutoff = procedure.intake_cutoff
        data["intake_cutoff"] = cutoff.isoformat(timespec="seconds" if cutoff.second else "minutes")
    return data


def _case_data(case: CaseSpec) -> dict[str, Any]:
    return {
        "name": _text_data(case.name),
        "durations": {
            channel.value: _duration_data(duration) for channel, duration in case.durations
        },
        "fees": [
            {
                "kind": fee.kind.value,
                "name": fee.name,
                "amounts": {channel.value: money.amount for channel, money in fee.amounts},
                "timing": fee.timing.value,
                "exemptions": [
                    {"code": e.code, "description": e.description} for e in fee.exemptions
                ],
            }
            for fee in case.fees
        ],
        "components": [
            {
                "key": component.key,
                "name": component.name,
                "copy_type": component.copy_type.value,
                "quantity": component.quantity,
                "mandatory": component.mandatory,
            }
            for component in case.components
        ],
    }


def _field_data(field: FormFieldSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": field.name,
        "type": field.type.value,
        "required": field.required,
    }
    data |= _optional(
        label=field.label,
        min_length=field.min_length,
        max_length=field.max_length,
        pattern=field.pattern,
        minimum=field.minimum,
        maximum=field.maximum,
    )
    if field.choices:
        data["choices"] = list(field.choices)
    return data


def _step_data(step: StepSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": step.name,
        "kind": step.kind.value,
        "roles": sorted(step.roles),
        "duration": _duration_data(step.duration),
        "requires_presence": step.requires_presence,
    }
    if step.title is not None:
        data["title"] = _text_data(step.title)
    return data | _optional(agency=step.agency)
