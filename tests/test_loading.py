"""Tests of loading procedure definitions: examples, round trips, malformed input, exact errors."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import string
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dvcflow import (
    ROLES,
    ApplicantType,
    Catalog,
    Channel,
    CopyType,
    DeliveryMethod,
    DocumentKind,
    DurationUnit,
    FeeKind,
    FeeTiming,
    FieldType,
    InvalidDefinitionError,
    Level,
    OnlineClass,
    ProcedureSpec,
    RulePacks,
    StepKind,
)
from dvcflow.levels import PRESENCE_TRIGGERS

EXAMPLES = Path(__file__).parent.parent / "examples" / "procedures"

# -- strategies for valid procedure data ------------------------------------------------------

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)
texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).filter(str.strip)
codes = st.from_regex(r"[12]\.[0-9]{6}(\.[A-Z0-9]{1,8})?", fullmatch=True)
# Triggers a procedure may narrow, with the roles of the default authorization (DOMAIN.md §2).
NARROWINGS = {
    "receive": ["receiving_officer"],
    "resolve": ["leader"],
    "request_payment": ["cashier", "specialist"],
    "approve_document": ["leader"],
}
rule_pack_names = st.sampled_from([pack.name for pack in RulePacks.builtin()])


def unique_values(kind: type[Any], *, min_size: int = 0) -> st.SearchStrategy[list[str]]:
    """Distinct enum values of ``kind``, in any order."""
    return st.lists(st.sampled_from([m.value for m in kind]), unique=True, min_size=min_size)


@st.composite
def names(draw: st.DrawFn) -> str | dict[str, str]:
    """A name written as a plain string, or as a table with ``vi`` and maybe ``en``."""
    form = draw(st.sampled_from(["plain", "vi", "vi_en"]))
    if form == "plain":
        return draw(texts)
    return {"vi": draw(texts)} | ({"en": draw(texts)} if form == "vi_en" else {})


@st.composite
def durations(draw: st.DrawFn) -> dict[str, Any]:
    """A duration table; same_day and none have no amount (or 0)."""
    unit = draw(st.sampled_from(list(DurationUnit)))
    if unit in {DurationUnit.SAME_DAY, DurationUnit.NONE}:
        amount = draw(st.sampled_from([None, 0]))
    else:
        amount = draw(st.none() | st.integers(min_value=0, max_value=365))
    return {"unit": unit.value} | ({} if amount is None else {"amount": amount})


def allowed_timings(level: int, *, charges: bool) -> list[FeeTiming]:
    """The fee timings DOMAIN.md §1 allows at ``level`` for a fee that charges something."""
    if not charges or level == 4:
        return list(FeeTiming)
    if level == 3:
        return [FeeTiming.BEFORE_RETURN]
    return [FeeTiming.BEFORE_RECEPTION, FeeTiming.BEFORE_RETURN]


@st.composite
def fees(draw: st.DrawFn, channels: list[str], level: int, *, payable: bool) -> dict[str, Any]:
    """A fee: one amount for every channel, or amounts for some channels; a timing the level allows.

    ``payable`` is false at level 4 without online payment: then nothing may be charged.
    """
    money = st.integers(min_value=0, max_value=50_000_000) if payable else st.just(0)
    fee: dict[str, Any] = {
        "kind": draw(st.sampled_from([kind.value for kind in FeeKind])),
        "name": draw(texts),
    }
    if draw(st.booleans()):
        fee["amount"] = draw(money)
        charged = [fee["amount"]]
    else:
        offered = draw(st.lists(st.sampled_from(channels), unique=True))
        fee["amounts"] = {channel: draw(money) for channel in offered}
        charged = list(fee["amounts"].values())
    timings = allowed_timings(level, charges=any(charged))
    # Omitted, the timing defaults to before_return, which every level allows.
    timing = draw(st.none() | st.sampled_from(timings))
    if timing is not None:
        fee["timing"] = timing.value
    exemptions = draw(
        st.lists(
            st.fixed_dictionaries({"code": identifiers, "description": texts}),
            max_size=2,
        )
    )
    if exemptions:
        fee["exemptions"] = exemptions
    return fee


@st.composite
def components(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Components of a case with distinct keys and optional copy type, quantity, mandatory."""
    keys = draw(st.lists(identifiers, unique=True, max_size=3))
    result = []
    for key in keys:
        component: dict[str, Any] = {"key": key, "name": draw(texts)}
        optional = {
            "copy_type": st.sampled_from([c.value for c in CopyType]),
            "quantity": st.integers(min_value=1, max_value=10),
            "mandatory": st.booleans(),
        }
        for option, values in optional.items():
            if draw(st.booleans()):
                component[option] = draw(values)
        result.append(component)
    return result


@st.composite
def cases(draw: st.DrawFn, channels: list[str], level: int, *, payable: bool) -> dict[str, Any]:
    """A case: an optional name, one duration or one per offered channel, fees and components."""
    case: dict[str, Any] = {}
    if draw(st.booleans()):
        case["name"] = draw(names())
    if draw(st.booleans()):
        case["duration"] = draw(durations())
    else:
        case["durations"] = {channel: draw(durations()) for channel in channels}
    case_fees = draw(st.lists(fees(channels, level, payable=payable), max_size=2))
    if case_fees:
        case["fees"] = case_fees
    case_components = draw(components())
    if case_components:
        case["components"] = case_components
    return case


@st.composite
def form_fields(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Form fields with distinct names and only the limits their type allows."""
    result = []
    for name in draw(st.lists(identifiers, unique=True, max_size=3)):
        kind = draw(st.sampled_from(list(FieldType)))
        field: dict[str, Any] = {"name": name, "type": kind.value}
        if draw(st.booleans()):
            field["label"] = draw(texts)
        if draw(st.booleans()):
            field["required"] = draw(st.booleans())
        if kind is FieldType.STRING:
            low, high = sorted(draw(st.lists(st.integers(0, 500), min_size=2, max_size=2)))
            field |= draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "min_length": st.just(low),
                        "max_length": st.just(high),
                        "pattern": st.sampled_from(["[0-9]{1,6}", ".*", "[A-Z][a-z]+", "\\w+"]),
                    },
                )
            )
        elif kind is FieldType.INTEGER:
            low, high = sorted(draw(st.lists(st.integers(-(10**6), 10**6), min_size=2, max_size=2)))
            field |= draw(
                st.fixed_dictionaries(
                    {}, optional={"minimum": st.just(low), "maximum": st.just(high)}
                )
            )
        elif kind is FieldType.CHOICE:
            field["choices"] = draw(st.lists(texts, min_size=1, max_size=4))
        result.append(field)
    return result


@st.composite
def steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Processing steps with distinct names; only a consultation names an agency."""
    result = []
    for name in draw(st.lists(identifiers, unique=True, max_size=3)):
        kind = draw(st.sampled_from(list(StepKind)))
        step: dict[str, Any] = {
            "name": name,
            "kind": kind.value,
            "roles": draw(st.lists(st.sampled_from(sorted(ROLES)), unique=True, min_size=1)),
        }
        if kind is StepKind.CONSULTATION:
            step["agency"] = draw(texts)
        step |= draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "duration": durations(),
                    "title": names(),
                    "requires_presence": st.booleans(),
                },
            )
        )
        result.append(step)
    return result


@st.composite
def permissions(draw: st.DrawFn) -> dict[str, list[str]]:
    """Triggers narrowed to some of their default roles."""
    triggers = draw(st.lists(st.sampled_from(sorted(NARROWINGS)), unique=True, min_size=1))
    return {
        trigger: draw(st.lists(st.sampled_from(NARROWINGS[trigger]), unique=True, min_size=1))
        for trigger in triggers
    }


@st.composite
def capabilities(draw: st.DrawFn, level: int) -> dict[str, Any]:
    """Capabilities that give exactly ``level`` under the rules of DOMAIN.md §1."""
    if level == 1:
        channels = ["in_person"]
    elif level == 2:
        channels = draw(st.lists(st.sampled_from(["in_person", "postal"]), unique=True, min_size=1))
    else:
        channels = [
            "online",
            *draw(st.lists(st.sampled_from(["in_person", "postal"]), unique=True)),
        ]
        channels = draw(st.permutations(channels))
    form_list = draw(
        st.lists(
            st.fixed_dictionaries({"name": texts, "document": texts}),
            # Level 2 is defined by downloadable forms; postal intake needs them at any level.
            min_size=1 if level == 2 or "postal" in channels else 0,
            max_size=0 if level == 1 else 2,
        )
    )
    if level == 4:
        returns = draw(
            unique_values(DeliveryMethod, min_size=1).filter(
                lambda methods: bool({"electronic", "postal"} & set(methods))
            )
        )
    else:
        # Electronic or postal return happens only at level 4.
        returns = ["in_person"]
    caps: dict[str, Any] = {"channels": channels, "return_methods": returns}
    if form_list or draw(st.booleans()):
        caps["forms"] = form_list
    # Online payment needs online submission; at level 3 it may be on with an in-person return.
    online_payment = draw(st.booleans()) if level >= 3 else False
    if online_payment or draw(st.booleans()):
        caps["online_payment"] = online_payment
    if draw(st.booleans()):
        caps["information_published"] = True
    return caps


@st.composite
def procedure_data(draw: st.DrawFn) -> dict[str, Any]:
    """Random valid procedure data, in the shape of the TOML files, at a random level."""
    level = draw(st.integers(min_value=1, max_value=4))
    caps = draw(capabilities(level))
    channels = caps["channels"]
    # At level 4 without online payment no fee may charge anything (or the level drops).
    payable = level < 4 or caps.get("online_payment", False)
    case_keys = draw(st.lists(identifiers, unique=True, min_size=1, max_size=3))
    data: dict[str, Any] = {
        "code": draw(codes),
        "name": draw(names()),
        "agency": draw(texts),
        "capabilities": caps,
        "result": {"type": draw(texts)}
        | draw(st.fixed_dictionaries({}, optional={"signed": st.booleans()})),
        "cases": {key: draw(cases(channels, level, payable=payable)) for key in case_keys},
    }
    if "default" not in case_keys or draw(st.booleans()):
        data["default_case"] = draw(st.sampled_from(case_keys))
    procedure_steps = draw(steps())
    if procedure_steps:
        data["steps"] = procedure_steps
    step_names = sorted(PRESENCE_TRIGGERS | {step["name"] for step in procedure_steps})
    presence = draw(st.lists(st.sampled_from(step_names), unique=True, max_size=2))
    if presence:
        caps["presence_steps"] = presence
    data |= draw(
        st.fixed_dictionaries(
            {},
            optional={
                "level": st.just(level),
                "applicant_types": unique_values(ApplicantType, min_size=1),
                "sign_off": unique_values(DocumentKind),
                "form_fields": form_fields(),
                "rule_pack": rule_pack_names,
                "permissions": permissions(),
                "intake_cutoff": st.builds(
                    lambda hour, minute, native: (
                        dt.time(hour, minute) if native else f"{hour:02d}:{minute:02d}"
                    ),
                    st.integers(0, 23),
                    st.integers(0, 59),
                    st.booleans(),
                ),
            },
        )
    )
    return data


# -- strategies for malformed data ------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["", "online", "working_days", "1.001193", "fee", "citizen"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)

# Keys that are close to real ones, so the did-you-mean path is exercised too.
unknown_keys = st.sampled_from(["levle", "chanels", "amonut", "extra", "Code", ""]) | st.text(
    max_size=8
)


def _locations(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a nested document of dicts and lists."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_locations(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_locations(child, (*prefix, index)))
    return found


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@st.composite
def mutated_procedure_data(draw: st.DrawFn) -> dict[str, Any]:
    """Valid procedure data with one to three mutations: wrong values, deletions, unknown keys."""
    data = copy.deepcopy(draw(procedure_data()))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_locations(data)))
        target = _at(data, path)
        mutation = draw(st.sampled_from(["replace", "delete", "add_key", "negative", "bad_text"]))
        if mutation == "add_key" and isinstance(target, dict):
            target[draw(unknown_keys)] = draw(json_values)
            continue
        if not path:
            continue  # the root stays a table; from_data takes a mapping
        parent, key = _at(data, path[:-1]), path[-1]
        if mutation == "delete":
            del parent[key]
        elif mutation == "negative":
            parent[key] = draw(st.integers(max_value=-1))
        elif mutation == "bad_text":
            parent[key] = draw(st.sampled_from(["", " ", "nope", "1.1", "+84", "fax"]) | texts)
        else:
            parent[key] = draw(json_values)
    return data


# -- helpers ----------------------------------------------------------------------------------


def example(name: str) -> dict[str, Any]:
    """The data of one example file, as the loader receives it."""
    path = EXAMPLES / name
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return tomllib.loads(path.read_text(encoding="utf-8"))


def write(directory: Path, name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` as TOML or JSON, by the suffix of ``name``."""
    path = directory / name
    if path.suffix == ".json":
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[str]:
    """The problems loading ``paths`` as a catalogue reports, as 'file: path: message' lines."""
    with pytest.raises(InvalidDefinitionError) as caught:
        Catalog.from_path(*paths)
    return [str(problem) for problem in caught.value.problems]


def check_problems(error: InvalidDefinitionError, source: str, *, whole_file: bool) -> None:
    """Every problem has a message and names the source; only whole-file problems lack a path."""
    assert error.problems
    for problem in error.problems:
        assert problem.message.strip()
        assert problem.source == source
        if not whole_file:
            assert problem.path, problem


# -- tests ------------------------------------------------------------------------------------


# The table of examples/procedures/README.md.
EXAMPLE_TABLE = [
    ("chung-thuc-ban-sao.toml", "2.000815", Level.INFORMATION, None),
    ("ho-kinh-doanh.toml", "2.000575", Level.FORMS, None),
    ("ket-hon.toml", "1.000894", Level.ONLINE_SUBMISSION, OnlineClass.PARTIAL),
    ("giay-phep-xay-dung.toml", "1.009994", Level.ONLINE_SUBMISSION, OnlineClass.PARTIAL),
    ("ly-lich-tu-phap.toml", "2.000488", Level.ONLINE_PAYMENT, OnlineClass.PARTIAL),
    ("doi-giay-phep-lai-xe.json", "1.002804", Level.ONLINE_PAYMENT, OnlineClass.PARTIAL),
    ("khai-sinh.toml", "1.001193", Level.ONLINE_PAYMENT, OnlineClass.FULL),
]
EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in {".toml", ".json"})


class TestExamples:
    @pytest.mark.parametrize(("name", "code", "level", "online_class"), EXAMPLE_TABLE)
    def test_each_example_loads(self, name, code, level, online_class):
        """Each example file loads alone, with the code, level and class its README states."""
        procedure = Catalog.from_path(EXAMPLES / name).get(code)
        assert (procedure.code, procedure.level, procedure.online_class) == (
            code,
            level,
            online_class,
        )
        assert ProcedureSpec.from_data(example(name), source=name) == procedure

    def test_every_example_file_is_in_the_table(self):
        """No example file escapes the test above, and the table names no missing file."""
        assert sorted(row[0] for row in EXAMPLE_TABLE) == EXAMPLE_FILES

    @pytest.mark.parametrize("name", EXAMPLE_FILES)
    def test_examples_round_trip_through_to_data(self, name):
        """The canonical data of an example loads back to an equal procedure."""
        procedure = ProcedureSpec.from_data(example(name))
        assert ProcedureSpec.from_data(procedure.to_data()) == procedure

    def test_details_of_an_example(self):
        """The loader keeps cases, fees, components, steps and fields as written."""
        procedure = ProcedureSpec.from_data(example("ly-lich-tu-phap.toml"))
        reduced = procedure.case("reduced")
        (fee,) = reduced.fees
        assert fee.kind is FeeKind.FEE
        assert fee.timing is FeeTiming.BEFORE_RECEPTION
        assert {channel: money.amount for channel, money in fee.amounts} == dict.fromkeys(
            Channel, 100_000
        )
        assert [c.key for c in reduced.components] == ["request_form", "reduction_proof"]
        assert reduced.components[0].copy_type is CopyType.ORIGINAL
        assert reduced.components[1].copy_type is CopyType.COPY  # the default
        (step,) = procedure.steps
        assert (step.name, step.kind, step.agency) == (
            "police_check",
            StepKind.CONSULTATION,
            "CA-TINH.01",
        )
        assert [f.name for f in procedure.form_fields] == ["purpose", "copies"]
        assert procedure.case() == procedure.case("default")


class TestRoundTrip:
    @given(procedure_data())
    def test_valid_data_loads(self, data):
        """Any data the strategy draws is a valid procedure at the level it was drawn for."""
        procedure = ProcedureSpec.from_data(data)
        if "level" in data:
            assert procedure.level == data["level"]
        assert procedure.derivation.problems == ()

    @settings(suppress_health_check=[HealthCheck.too_slow])
    @given(procedure_data(), st.sampled_from(["toml", "json"]))
    def test_to_data_written_to_a_file_loads_back_equal(self, tmp_path_factory, data, form):
        """to_data() dumped as TOML or JSON and loaded through the catalogue gives an equal spec."""
        procedure = ProcedureSpec.from_data(data)
        path = write(tmp_path_factory.mktemp("round"), f"procedure.{form}", procedure.to_data())
        loaded = Catalog.from_path(path).get(procedure.code)
        assert loaded == procedure
        assert loaded.to_data() == procedure.to_data()

    def test_intake_cutoff_with_seconds_round_trips(self):
        """A cutoff given to the second (15:00:30) survives to_data and loading back."""
        data = example("khai-sinh.toml") | {"intake_cutoff": dt.time(15, 0, 30)}
        procedure = ProcedureSpec.from_data(data)
        assert procedure.intake_cutoff == dt.time(15, 0, 30)
        assert ProcedureSpec.from_data(procedure.to_data()) == procedure


class TestMalformedData:
    @given(mutated_procedure_data())
    def test_mutated_data_raises_only_invalid_definition_error(self, data):
        """Mutated data still loads or raises InvalidDefinitionError with located problems."""
        try:
            ProcedureSpec.from_data(data, source="mutant.toml")
        except InvalidDefinitionError as exc:
            check_problems(exc, "mutant.toml", whole_file=False)

    @settings(suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_procedure_data())
    def test_mutated_json_files_raise_only_invalid_definition_error(self, tmp_path_factory, data):
        """A mutated document written as JSON gives problems naming the file and a field path."""
        path = tmp_path_factory.mktemp("mutant") / "mutant.json"
        path.write_text(json.dumps(data, default=str), encoding="utf-8")
        try:
            Catalog.from_path(path)
        except InvalidDefinitionError as exc:
            check_problems(exc, str(path), whole_file=False)

    @given(json_values)
    def test_random_json_documents(self, tmp_path_factory, value):
        """Any JSON value as a whole file is refused with problems naming the file."""
        path = tmp_path_factory.mktemp("random") / "random.json"
        path.write_text(json.dumps(value), encoding="utf-8")
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(path)
        check_problems(caught.value, str(path), whole_file=not isinstance(value, dict))

    @given(st.binary(max_size=200), st.sampled_from(["toml", "json"]))
    def test_random_bytes(self, tmp_path_factory, raw, suffix):
        """Random bytes in a .toml or .json file are refused with problems naming the file."""
        path = tmp_path_factory.mktemp("bytes") / f"random.{suffix}"
        path.write_bytes(raw)
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(path)
        check_problems(caught.value, str(path), whole_file=True)

    @given(st.text(alphabet=string.printable, max_size=200))
    def test_random_toml_text(self, tmp_path_factory, text):
        """Random printable text in a .toml file is refused with problems naming the file."""
        path = tmp_path_factory.mktemp("text") / "random.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(path)
        check_problems(caught.value, str(path), whole_file=True)

    @pytest.mark.parametrize(
        ("suffix", "text"), [("json", "[" * 100_000), ("toml", "a = " + "[" * 100_000)]
    )
    def test_deeply_nested_documents(self, tmp_path, suffix, text):
        """A pathologically nested file is a problem of that file, not a RecursionError."""
        path = tmp_path / f"deep.{suffix}"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(path)
        check_problems(caught.value, str(path), whole_file=True)

    @pytest.mark.parametrize(
        "pattern", ["a{4294967296}", "(" * 5000 + ")" * 5000], ids=["huge-repeat", "deep-groups"]
    )
    def test_form_field_patterns_that_break_the_regex_compiler(self, pattern):
        """A pattern the regex compiler chokes on is a problem at that field, not a crash."""
        data = example("giay-phep-xay-dung.toml")
        data["form_fields"][0]["pattern"] = pattern
        with pytest.raises(InvalidDefinitionError) as caught:
            ProcedureSpec.from_data(data, source="x.toml")
        assert [p.path for p in caught.value.problems] == ["form_fields[0].pattern"]


# -- specific bad input -----------------------------------------------------------------------


def mutate(name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """The data of example ``name`` after ``change`` edited it in place."""
    data = example(name)
    change(data)
    return data


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """An edit that sets the dotted ``path`` (numbers index arrays) to ``value``."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        target: Any = data
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    """An edit that deletes the dotted ``path``."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        target: Any = data
        for key in parents:
            target = target[key]
        del target[last]

    return change


def _apply(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for one in changes:
            one(data)

    return change


BUILDING = "giay-phep-xay-dung.toml"  # level 3, a fee, components, steps, form fields
RECORD = "ly-lich-tu-phap.toml"  # level 4, two cases, a consultation step
BIRTH = "khai-sinh.toml"  # level 4 full, no fee

BAD_INPUT = [
    pytest.param(
        BIRTH,
        _set("capabilities.online_paymnet", True),
        ["capabilities.online_paymnet: unknown key (did you mean 'online_payment'?)"],
        id="unknown-key-with-hint",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.nmae", "x"),
        ["cases.default.nmae: unknown key (did you mean 'name'?)"],
        id="unknown-key-in-case",
    ),
    pytest.param(
        BUILDING,
        _set("colour", "blue"),
        ["colour: unknown key"],
        id="unknown-key-without-hint",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.fees.0.amount", -75000),
        ["cases.default.fees[0].amount: must be >= 0"],
        id="negative-amount",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.fees.0.amount", 75000.0),
        ["cases.default.fees[0].amount: must be an integer, got float"],
        id="float-amount",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.fees.0.amount", "75.000"),
        ["cases.default.fees[0].amount: must be an integer, got '75.000'"],
        id="string-amount",
    ),
    pytest.param(
        BUILDING,
        _set("code", "1.9994"),
        ["code: '1.9994' does not match the expected format"],
        id="short-code",
    ),
    pytest.param(
        BUILDING,
        _set("code", "3.009994"),
        ["code: '3.009994' does not match the expected format"],
        id="code-series",
    ),
    pytest.param(
        BUILDING,
        _set("code", "1.009994.h38"),
        ["code: '1.009994.h38' does not match the expected format"],
        id="code-lowercase-suffix",
    ),
    pytest.param(
        BUILDING,
        _set("code", "1.\u0660\u0660\u0669\u0669\u0669\u0664"),
        ["code: '1.\u0660\u0660\u0669\u0669\u0669\u0664' does not match the expected format"],
        id="code-non-ascii-digits",
    ),
    pytest.param(
        BUILDING,
        _set("code", 1.009994),
        ["code: must be a string, got float"],
        id="code-number",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.duration", {"amount": 2, "unit": "weeks"}),
        [
            (
                "cases.default.duration.unit: must be one of 'working_days', 'working_hours',"
                " 'calendar_days', 'same_day', 'none', got 'weeks'"
            )
        ],
        id="bad-duration-unit",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.duration", {"amount": 2, "unit": "same_day"}),
        ["cases.default.duration.amount: must be 0 for unit same_day"],
        id="same-day-with-amount",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.components.0.copy_type", "scan"),
        [
            (
                "cases.default.components[0].copy_type: must be one of 'original', 'copy',"
                " 'electronic', got 'scan'"
            )
        ],
        id="bad-copy-type",
    ),
    pytest.param(
        BUILDING,
        _set("capabilities.channels", ["online", "fax"]),
        ["capabilities.channels[1]: must be one of 'in_person', 'online', 'postal', got 'fax'"],
        id="bad-channel",
    ),
    pytest.param(
        BUILDING,
        _set("capabilities.channels", ["online", "online"]),
        ["capabilities.channels[1]: 'online' is listed twice"],
        id="channel-twice",
    ),
    pytest.param(
        BUILDING,
        _set("level", True),
        ["level: must be an integer, got true"],
        id="boolean-level",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.fees.0.timing", "before_reception"),
        [
            (
                "cases.default.fees[0].timing: at level 3 counter fees are collected with the"
                " result ('before_return'); collecting earlier adds a visit"
            )
        ],
        id="level-3-fee-before-reception",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.fees.0.amounts", {"in_person": 75000}),
        ["cases.default.fees[0].amounts: give either 'amount' or 'amounts', not both"],
        id="amount-and-amounts",
    ),
    pytest.param(
        BUILDING,
        _apply(
            _delete("cases.default.fees.0.amount"),
            _set("cases.default.fees.0.amounts", {"in_person": 75000, "postal": 60000}),
        ),
        ["cases.default.fees[0].amounts.postal: the procedure does not offer the postal channel"],
        id="amounts-for-channel-not-offered",
    ),
    pytest.param(
        BUILDING,
        _delete("cases.default.fees.0.amount"),
        ["cases.default.fees[0].amount: is required (or 'amounts' per channel)"],
        id="fee-without-amount",
    ),
    pytest.param(
        BUILDING,
        _apply(
            _delete("cases.default.duration"),
            _set("cases.default.durations", {"in_person": {"amount": 15, "unit": "working_days"}}),
        ),
        ["cases.default.durations: no duration for the offered online channel"],
        id="durations-missing-a-channel",
    ),
    pytest.param(
        BUILDING,
        _set("default_case", "main"),
        ["default_case: no case named 'main'"],
        id="default-case-unknown",
    ),
    pytest.param(
        BUILDING,
        lambda data: data.update(cases={"main": data["cases"]["default"]}),
        ["cases: no case named 'default'"],
        id="default-case-missing",
    ),
    pytest.param(
        BUILDING,
        _set("cases", {}),
        ["cases: at least one case is required"],
        id="no-cases",
    ),
    pytest.param(
        BUILDING,
        _set("cases.default.components.1.key", "application"),
        ["cases.default.components[1]: duplicate component name 'application'"],
        id="duplicate-component-key",
    ),
    pytest.param(
        BUILDING,
        _set("form_fields.1.name", "plot_number"),
        ["form_fields[1]: duplicate field name 'plot_number'"],
        id="duplicate-form-field",
    ),
    pytest.param(
        BUILDING,
        _set("steps.1.name", "appraisal"),
        ["steps[1]: duplicate step name 'appraisal'"],
        id="duplicate-step",
    ),
    pytest.param(
        BUILDING,
        _set("steps.0.roles", ["specialist", "boss"]),
        ["steps[0].roles[1]: unknown role 'boss'"],
        id="step-unknown-role",
    ),
    pytest.param(
        BUILDING,
        _set("steps.0.roles", "specialist"),
        ["steps[0].roles: must be an array, got 'specialist'"],
        id="step-roles-as-string",
    ),
    pytest.param(
        RECORD,
        _delete("steps.0.agency"),
        ["steps[0].agency: a consultation names the agency it addresses"],
        id="consultation-without-agency",
    ),
    pytest.param(
        BUILDING,
        _set("steps.0.agency", "CA-TINH.01"),
        ["steps[0].agency: only a consultation addresses another agency"],
        id="agency-on-a-non-consultation",
    ),
    pytest.param(
        BUILDING,
        _set("form_fields.0.pattern", "[0-9"),
        [
            (
                "form_fields[0].pattern: not a regular expression:"
                " unterminated character set at position 0"
            )
        ],
        id="bad-regex",
    ),
    pytest.param(
        BUILDING,
        _set("form_fields.0.minimum", 1),
        ["form_fields[0].minimum: does not apply to a string field"],
        id="limit-of-another-type",
    ),
    pytest.param(
        BUILDING,
        _delete("result"),
        ["result: is required"],
        id="missing-table",
    ),
    pytest.param(
        BUILDING,
        _delete("name"),
        ["name: is required"],
        id="missing-name-reported-once",
    ),
    pytest.param(
        BUILDING,
        _set("intake_cutoff", "3pm"),
        ["intake_cutoff: must be a time of day like \"15:00\", got '3pm'"],
        id="bad-cutoff",
    ),
    pytest.param(
        BUILDING,
        _set("level", 4),
        [
            (
                "level: declared level 4 but the capabilities give level 3; missing"
                " capabilities.online_payment: level 4 needs online payment, as the procedure"
                " charges fees; capabilities.return_methods: level 4 needs an electronic or"
                " postal return"
            )
        ],
        id="declared-level-too-high",
    ),
]


class TestBadInput:
    @pytest.mark.parametrize(("name", "change", "expected"), BAD_INPUT)
    def test_problem_text(self, tmp_path, name, change, expected):
        """Each kind of bad input gives exactly the expected 'file: path: message' problems."""
        path = write(tmp_path, name, mutate(name, change))
        assert problems_of(path) == [f"{path}: {line}" for line in expected]

    def test_the_same_problems_from_data(self):
        """ProcedureSpec.from_data reports under the given source name."""
        data = mutate(BUILDING, _set("cases.default.fees.0.amount", -1))
        with pytest.raises(InvalidDefinitionError) as caught:
            ProcedureSpec.from_data(data, source="procedures/xay-dung.toml")
        assert str(caught.value) == (
            "procedures/xay-dung.toml: cases.default.fees[0].amount: must be >= 0"
        )

    def test_all_problems_of_a_file_at_once(self, tmp_path):
        """A file with three distinct mistakes reports exactly those three, in one error."""
        data = mutate(
            BUILDING,
            _apply(
                _set("levle", 3),
                _set("cases.default.fees.0.amount", -5),
                _set("cases.default.components.2.quantity", 0),
            ),
        )
        path = write(tmp_path, "three.toml", data)
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(path)
        assert [str(p) for p in caught.value.problems] == [
            f"{path}: levle: unknown key (did you mean 'level'?)",
            f"{path}: cases.default.fees[0].amount: must be >= 0",
            f"{path}: cases.default.components[2].quantity: must be >= 1",
        ]
        assert str(caught.value).startswith("3 problems:\n")

    def test_problems_of_several_files_at_once(self, tmp_path):
        """Each broken file of a catalogue reports its own problems in the same error."""
        first = write(tmp_path, "a.toml", mutate(BUILDING, _set("cases.default.fees.0.amount", -1)))
        second = write(tmp_path, "b.json", mutate(BIRTH, _set("code", "x")))
        assert problems_of(tmp_path) == [
            f"{first}: cases.default.fees[0].amount: must be >= 0",
            f"{second}: code: 'x' does not match the expected format",
        ]

    def test_duplicate_code_across_files(self, tmp_path):
        """Two files defining the same procedure code are an error naming both files."""
        first = write(tmp_path, "a.toml", example(BIRTH))
        second = write(tmp_path, "b.json", example(BIRTH))
        assert problems_of(tmp_path) == [f"{second}: code: 1.001193 is already defined in {first}"]

    def test_unknown_rule_pack(self, tmp_path):
        """A procedure pinned to a rule pack that does not exist is refused, listing known ones."""
        path = write(tmp_path, "p.toml", mutate(BUILDING, _set("rule_pack", "nope")))
        assert problems_of(path) == [
            (
                f"{path}: rule_pack: unknown rule pack 'nope' (known: levels-2009, online-2022,"
                " vneid-2024)"
            )
        ]

    def test_known_rule_pack(self, tmp_path):
        """A procedure pinned to a built-in rule pack loads with the pin."""
        path = write(tmp_path, "p.toml", mutate(BUILDING, _set("rule_pack", "levels-2009")))
        assert Catalog.from_path(path).get("1.009994").rule_pack == "levels-2009"

    def test_a_file_that_is_not_toml(self, tmp_path):
        """A .toml file that does not parse is one whole-file problem naming the file."""
        path = tmp_path / "broken.toml"
        path.write_text('code = "1.001193"\nname = \n', encoding="utf-8")
        (problem,) = problems_of(path)
        assert problem.startswith(f"{path}: not valid TOML: ")

    def test_a_file_that_is_not_json(self, tmp_path):
        """A .json file that does not parse is one whole-file problem naming the file."""
        path = tmp_path / "broken.json"
        path.write_text('{"code": ', encoding="utf-8")
        (problem,) = problems_of(path)
        assert problem.startswith(f"{path}: not valid JSON: ")

    def test_a_json_array(self, tmp_path):
        """A JSON document that is an array, not an object, is refused as a whole."""
        path = tmp_path / "list.json"
        path.write_text(json.dumps([example(BIRTH)]), encoding="utf-8")
        assert problems_of(path) == [f"{path}: the document must be a table (a JSON object)"]

    def test_a_file_that_is_not_utf8(self, tmp_path):
        """Bytes that are not UTF-8 in a .toml file are one problem naming the file."""
        path = tmp_path / "latin1.toml"
        path.write_bytes('name = "Đăng ký"'.encode("utf-16"))
        assert problems_of(path) == [f"{path}: not UTF-8 text"]

    def test_an_unsupported_suffix(self, tmp_path):
        """A file named explicitly but neither .toml nor .json is refused, naming the suffix."""
        path = tmp_path / "procedure.yaml"
        path.write_text("code: 1.001193\n", encoding="utf-8")
        assert problems_of(path) == [f"{path}: unsupported file type '.yaml'; use .toml or .json"]

    def test_nothing_is_evaluated(self, tmp_path):
        """Strings that look like code stay strings; the loader never evaluates them."""
        payload = "__import__('os').system('touch pwned')"
        data = mutate(BUILDING, _set("result.type", payload))
        path = write(tmp_path, "p.toml", data)
        assert Catalog.from_path(path).get("1.009994").result.type == payload
        assert not (tmp_path / "pwned").exists()
        assert not Path("pwned").exists()

    def test_json_dates_and_times_as_strings(self, tmp_path):
        """JSON has no time type: an intake cutoff written "15:00" loads as a time."""
        path = write(tmp_path, "p.json", mutate(BIRTH, _set("intake_cutoff", "15:00")))
        assert Catalog.from_path(path).get("1.001193").intake_cutoff == dt.time(15, 0)

    @given(st.integers(max_value=-1))
    def test_any_negative_amount_is_refused(self, amount):
        """Whatever the negative amount, the problem names the fee's amount."""
        data = mutate(BUILDING, _set("cases.default.fees.0.amount", amount))
        with pytest.raises(InvalidDefinitionError) as caught:
            ProcedureSpec.from_data(data, source="x.toml")
        assert [str(p) for p in caught.value.problems] == [
            "x.toml: cases.default.fees[0].amount: must be >= 0"
        ]

    @given(st.text(max_size=20))
    def test_any_invalid_code_is_refused(self, code):
        """Whatever string is not a national procedure code, the problem names 'code'."""
        assume(not re.fullmatch(r"[12]\.[0-9]{6}(?:\.[A-Z0-9]{1,8})?", code))
        data = mutate(BUILDING, _set("code", code))
        with pytest.raises(InvalidDefinitionError) as caught:
            ProcedureSpec.from_data(data, source="x.toml")
        assert [p.path for p in caught.value.problems] == ["code"]


class TestMissingFieldType:
    def test_a_form_field_without_type_is_a_problem_not_a_crash(self, tmp_path: Path) -> None:
        """A form field missing its type is reported at its path (found by hypothesis)."""
        source = tmp_path / "p.json"
        source.write_text(
            json.dumps(
                {
                    "code": "1.000001",
                    "name": {"vi": "Thủ tục"},
                    "agency": "A.1",
                    "capabilities": {"channels": ["in_person"], "return_methods": ["in_person"]},
                    "result": {"type": "Giấy"},
                    "cases": {"default": {"duration": {"unit": "same_day"}}},
                    "form_fields": [{"name": "a", "pattern": "[0-9]{1,6}"}],
                }
            ),
            encoding="utf-8",
        )
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(source)
        assert [str(p) for p in caught.value.problems] == [
            f"{source}: form_fields[0].type: is required"
        ]
