"""The configuration file: defaults, a full file, every bad input, paths, keys, codes, calendars."""

from __future__ import annotations

import base64
import datetime as dt
import textwrap
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dvcflow import ConfigurationError, InvalidDefinitionError, InvalidValueError, OfficeHours
from dvcflow._config import DEFAULT_CODE_FORMAT, CodeFormat, CodePeriod, Config
from dvcflow._policies import SupplementPolicy
from dvcflow._rulepacks import RulePacks

D = dt.date
VN = dt.timezone(dt.timedelta(hours=7))
KEY = bytes(range(32))

FULL = """
[database]
busy_timeout_ms = 2500
statement_timeout_ms = 30000
pool_size = 8

[history]
key_env = "DVCFLOW_HISTORY_KEY"
seal_interval_ms = 25

[calendar]
office_hours = ["07:00-11:30", "13:30-17:00"]
overrides = ["calendar/2027.toml"]

[calendar.agencies."G09.20"]
office_hours = ["07:30-11:30", "13:30-16:00"]
overrides = ["calendar/g09-20.toml"]

[rule_packs]
file = "rulepacks.toml"

[codes]
format = "{agency}/{date:%Y%m}/{seq:05d}"
period = "month"
"""

PROVINCE_CLOSURE = """
[[closures]]
date = 2027-03-05
source = "Quyết định 12/QĐ-UBND"

[[working_days]]
date = 2027-03-06
source = "Quyết định 12/QĐ-UBND"
note = "make-up Saturday"
"""

AGENCY_CLOSURE = """
[[closures]]
date = 2027-03-03
source = "Thông báo 7/TB-STP"
"""

REPLACED_VNEID = """
[[packs]]
name = "vneid-2024"
title = "VNeID, until the local regime"
effective_from = 2024-07-01
effective_until = 2029-12-31
model = "classes"
contact = "vneid"

[packs.clock]
supplement = "pause"
"""

LOCAL_2030 = """
[[packs]]
name = "local-2030"
title = "Local regime"
effective_from = 2030-01-01
model = "classes"
contact = "vneid"
"""


def write(path: Path, text: str) -> Path:
    """Write ``text`` (dedented) to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """The problems `Config.load` reports for ``path``, as ``file: path: message`` lines."""
    with pytest.raises(ConfigurationError) as caught:
        Config.load(path)
    return [str(problem) for problem in caught.value.problems]


def data_problems(data: dict[str, object]) -> list[str]:
    """The problems `Config.from_data` reports for ``data`` under the source ``x.toml``."""
    with pytest.raises(ConfigurationError) as caught:
        Config.from_data(data, source="x.toml")
    return [str(problem) for problem in caught.value.problems]


@pytest.fixture
def full(tmp_path: Path) -> Path:
    """A complete configuration with its override and rule-pack files."""
    write(tmp_path / "conf" / "calendar" / "2027.toml", PROVINCE_CLOSURE)
    write(tmp_path / "conf" / "calendar" / "g09-20.toml", AGENCY_CLOSURE)
    write(tmp_path / "conf" / "rulepacks.toml", REPLACED_VNEID + LOCAL_2030)
    return write(tmp_path / "conf" / "dvcflow.toml", FULL)


class TestDefaults:
    def test_default_values(self) -> None:
        """Without a file: 5 s busy timeout, no key, default calendar, built-in packs."""
        config = Config.default()
        assert config.source is None
        assert config.busy_timeout_ms == 5000
        assert config.statement_timeout_ms is None
        assert config.pool_size is None
        assert config.history_key_env is None
        assert config.seal_interval_ms == 50
        assert config.history_key({"DVCFLOW_HISTORY_KEY": KEY.hex()}) is None
        assert config.calendar.office_hours == OfficeHours()
        assert config.calendar.overrides == ()
        assert dict(config.agency_calendars) == {}
        assert [pack.name for pack in config.rule_packs] == [
            "levels-2009",
            "online-2022",
            "vneid-2024",
        ]
        assert config.codes == CodeFormat(DEFAULT_CODE_FORMAT, CodePeriod.DAY)

    def test_empty_file_is_the_default(self, tmp_path: Path) -> None:
        """An empty file gives the default settings and remembers where it came from."""
        path = write(tmp_path / "dvcflow.toml", "")
        config = Config.load(path)
        assert config == Config.default()
        assert config.source == str(path)

    def test_empty_sections_are_the_default(self) -> None:
        """Sections present but empty change nothing."""
        data: dict[str, object] = {
            name: {} for name in ("calendar", "codes", "database", "history", "rule_packs")
        }
        assert Config.from_data(data) == Config.default()

    def test_equality_is_by_content(self) -> None:
        """Two configurations with the same settings are equal and hash alike."""
        one = Config.from_data({"database": {"pool_size": 3}}, source="a.toml")
        two = Config.from_data({"database": {"pool_size": 3}}, source="b.toml")
        assert one == two
        assert hash(one) == hash(two)
        assert one != Config.default()

    def test_agency_calendars_are_read_only(self) -> None:
        """The per-agency mapping cannot be changed after loading."""
        config = Config(agency_calendars={"G09.20": Config.default().calendar})
        with pytest.raises(TypeError):
            config.agency_calendars["X"] = config.calendar  # type: ignore[index]

    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({"busy_timeout_ms": -1}, "busy_timeout_ms: must be >= 0, got -1"),
            ({"busy_timeout_ms": True}, "busy_timeout_ms: must be an integer, got True"),
            ({"pool_size": 0}, "pool_size: must be >= 1, got 0"),
            ({"statement_timeout_ms": -5}, "statement_timeout_ms: must be >= 0, got -5"),
            ({"seal_interval_ms": -1}, "seal_interval_ms: must be >= 0, got -1"),
            ({"history_key_env": "lower case"}, "history_key_env: must be the name of an"),
            ({"calendar": "default"}, "calendar: must be a WorkingCalendar"),
            ({"history_key_env": 5}, "history_key_env: must be a string, got int"),
            ({"agency_calendars": {"": None}}, "agency_calendars: bad agency code ''"),
            ({"agency_calendars": {"A": None}}, "agency_calendars: A: must be a WorkingCalendar"),
        ],
    )
    def test_direct_construction_is_checked(self, kwargs: dict[str, object], expected: str) -> None:
        """Building a `Config` in Python applies the same limits as the file."""
        with pytest.raises(InvalidValueError) as caught:
            Config(**kwargs)  # type: ignore[arg-type]
        assert str(caught.value).startswith(expected)


class TestFullFile:
    def test_every_setting_is_read(self, full: Path) -> None:
        """A file using every key gives the settings it states."""
        config = Config.load(full)
        assert config.source == str(full)
        assert config.busy_timeout_ms == 2500
        assert config.statement_timeout_ms == 30000
        assert config.pool_size == 8
        assert config.history_key_env == "DVCFLOW_HISTORY_KEY"
        assert config.seal_interval_ms == 25
        assert config.codes == CodeFormat("{agency}/{date:%Y%m}/{seq:05d}", CodePeriod.MONTH)
        assert list(config.agency_calendars) == ["G09.20"]

    def test_default_calendar_takes_its_overrides(self, full: Path) -> None:
        """The default calendar closes 05/03/2027 and works Saturday 06/03/2027."""
        calendar = Config.load(full).calendar
        assert not calendar.is_working_day(D(2027, 3, 5))
        assert calendar.is_working_day(D(2027, 3, 6))
        assert calendar.is_working_day(D(2027, 3, 3))

    def test_rule_packs_replaced_and_added(self, full: Path) -> None:
        """The file's ``vneid-2024`` replaces the built-in one and ``local-2030`` joins it."""
        packs = Config.load(full).rule_packs
        assert [pack.name for pack in packs] == [
            "levels-2009",
            "online-2022",
            "vneid-2024",
            "local-2030",
        ]
        assert packs.get("vneid-2024").clock.supplement is SupplementPolicy.PAUSE
        assert packs.get("vneid-2024").effective_until == D(2029, 12, 31)
        assert packs.in_force(dt.datetime(2031, 1, 1, tzinfo=VN)).name == "local-2030"
        assert RulePacks.builtin().get("vneid-2024").effective_until is None

    def test_json_like_data_gives_the_same_config(self, full: Path) -> None:
        """`from_data` with the same tables and base folder equals `load`."""
        data = {
            "database": {"busy_timeout_ms": 2500, "statement_timeout_ms": 30000, "pool_size": 8},
            "history": {"key_env": "DVCFLOW_HISTORY_KEY", "seal_interval_ms": 25},
            "calendar": {
                "office_hours": ["07:00-11:30", "13:30-17:00"],
                "overrides": ["calendar/2027.toml"],
                "agencies": {
                    "G09.20": {
                        "office_hours": ["07:30-11:30", "13:30-16:00"],
                        "overrides": ["calendar/g09-20.toml"],
                    },
                },
            },
            "rule_packs": {"file": "rulepacks.toml"},
            "codes": {"format": "{agency}/{date:%Y%m}/{seq:05d}", "period": "month"},
        }
        assert Config.from_data(data, base=full.parent) == Config.load(full)


class TestAgencyCalendars:
    def test_office_hours_differ(self, full: Path) -> None:
        """G09.20 keeps 07:30-16:00 with 6.5 hours a day; other agencies keep 07:00-17:00."""
        config = Config.load(full)
        own = config.calendar_for("G09.20").office_hours
        assert own == OfficeHours.parse("07:30-11:30", "13:30-16:00")
        assert own.hours_per_day == 6.5
        assert config.calendar_for("G01.01").office_hours == OfficeHours()
        assert config.calendar_for("G01.01") is config.calendar

    def test_agency_closure_applies_to_that_agency_only(self, full: Path) -> None:
        """G09.20's closure on 03/03/2027 leaves that Wednesday a working day elsewhere."""
        config = Config.load(full)
        assert not config.calendar_for("G09.20").is_working_day(D(2027, 3, 3))
        assert config.calendar_for("G01.01").is_working_day(D(2027, 3, 3))

    def test_given_overrides_replace_the_default_ones(self, full: Path) -> None:
        """An agency listing its own override files does not take the default calendar's."""
        agency = Config.load(full).calendar_for("G09.20")
        assert agency.is_working_day(D(2027, 3, 5))
        assert not agency.is_working_day(D(2027, 3, 6))

    def test_keys_left_out_are_inherited(self, tmp_path: Path) -> None:
        """An agency table without a key takes that key's value from ``[calendar]``."""
        write(tmp_path / "2027.toml", PROVINCE_CLOSURE)
        path = write(
            tmp_path / "dvcflow.toml",
            """
            [calendar]
            office_hours = ["08:00-12:00", "13:00-17:00"]
            overrides = ["2027.toml"]
            [calendar.agencies.A]
            office_hours = ["07:30-11:30", "13:30-16:00"]
            [calendar.agencies.B]
            overrides = []
            """,
        )
        config = Config.load(path)
        a, b = config.calendar_for("A"), config.calendar_for("B")
        assert a.office_hours == OfficeHours.parse("07:30-11:30", "13:30-16:00")
        assert not a.is_working_day(D(2027, 3, 5))
        assert b.office_hours == OfficeHours.parse("08:00-12:00", "13:00-17:00")
        assert b.is_working_day(D(2027, 3, 5))
        assert not config.calendar.is_working_day(D(2027, 3, 5))


def config_in(tmp_path: Path, text: str) -> Path:
    """A configuration file ``dvcflow.toml`` holding ``text``."""
    return write(tmp_path / "dvcflow.toml", text)


BAD_FILES = [
    pytest.param(
        "[database\n",
        [
            (
                "CONFIG: not valid TOML: Expected ']' at the end of a table declaration "
                "(at line 1, column 10)"
            )
        ],
        id="not-toml",
    ),
    pytest.param(
        "[databse]\n",
        ["CONFIG: databse: unknown key (did you mean 'database'?)"],
        id="unknown-section",
    ),
    pytest.param(
        "[database]\nbusy_timeout = 10\n",
        ["CONFIG: database.busy_timeout: unknown key (did you mean 'busy_timeout_ms'?)"],
        id="unknown-key-with-hint",
    ),
    pytest.param(
        "[frobnicate]\n",
        ["CONFIG: frobnicate: unknown key"],
        id="unknown-key-without-hint",
    ),
    pytest.param(
        '[calendar.agencies."G09.20"]\nclosures = []\n',
        ['CONFIG: calendar.agencies."G09.20".closures: unknown key'],
        id="unknown-agency-key",
    ),
    pytest.param(
        "database = 5\n",
        ["CONFIG: database: must be a table, got 5"],
        id="section-not-a-table",
    ),
    pytest.param(
        '[database]\nbusy_timeout_ms = "5000"\n',
        ["CONFIG: database.busy_timeout_ms: must be an integer, got '5000'"],
        id="wrong-type",
    ),
    pytest.param(
        "[database]\npool_size = true\n",
        ["CONFIG: database.pool_size: must be an integer, got true"],
        id="bool-is-not-an-integer",
    ),
    pytest.param(
        "[database]\nbusy_timeout_ms = 2.5\n",
        ["CONFIG: database.busy_timeout_ms: must be an integer, got float"],
        id="float",
    ),
    pytest.param(
        "[database]\nbusy_timeout_ms = -1\nstatement_timeout_ms = -30\npool_size = 0\n",
        [
            "CONFIG: database.busy_timeout_ms: must be >= 0",
            "CONFIG: database.statement_timeout_ms: must be >= 0",
            "CONFIG: database.pool_size: must be >= 1",
        ],
        id="negative-timeouts",
    ),
    pytest.param(
        "[history]\nseal_interval_ms = -10\n",
        ["CONFIG: history.seal_interval_ms: must be >= 0"],
        id="negative-seal-interval",
    ),
    pytest.param(
        '[calendar]\noffice_hours = ["07:00-11:30", "17:00-13:30"]\n',
        ["CONFIG: calendar.office_hours[1]: starts at 17:00:00 but ends at 13:30:00"],
        id="time-range-backwards",
    ),
    pytest.param(
        '[calendar]\noffice_hours = ["7h-11h"]\n',
        ["CONFIG: calendar.office_hours[0]: must look like \"07:30-11:30\", got '7h-11h'"],
        id="time-range-unreadable",
    ),
    pytest.param(
        '[calendar]\noffice_hours = ["07:00-12:00", "11:30-17:00"]\n',
        [
            (
                "CONFIG: calendar.office_hours[1]: starts at 11:30:00, before the previous period "
                "ends (12:00:00); give periods in order without overlaps"
            )
        ],
        id="time-ranges-overlap",
    ),
    pytest.param(
        "[calendar]\noffice_hours = []\n",
        ["CONFIG: calendar.office_hours: office hours need at least one (start, end) period"],
        id="no-office-hours",
    ),
    pytest.param(
        '[calendar]\noffice_hours = "07:00-11:30"\n',
        ["CONFIG: calendar.office_hours: must be an array, got '07:00-11:30'"],
        id="office-hours-not-an-array",
    ),
    pytest.param(
        "[calendar]\noffice_hours = [7]\n",
        ["CONFIG: calendar.office_hours[0]: must be a string, got 7"],
        id="office-hours-not-strings",
    ),
    pytest.param(
        '[calendar.agencies."G09.20"]\noffice_hours = ["16:00-07:30"]\n',
        [
            (
                'CONFIG: calendar.agencies."G09.20".office_hours[0]: '
                "starts at 16:00:00 but ends at 07:30:00"
            )
        ],
        id="agency-time-range",
    ),
    pytest.param(
        "[calendar]\nagencies = []\n",
        ["CONFIG: calendar.agencies: must be a table, got an array"],
        id="agencies-not-a-table",
    ),
    pytest.param(
        "[calendar.agencies]\nG09 = 5\n",
        ["CONFIG: calendar.agencies.G09: must be a table, got 5"],
        id="agency-not-a-table",
    ),
    pytest.param(
        '[calendar]\noverrides = "2027.toml"\n',
        ["CONFIG: calendar.overrides: must be an array, got '2027.toml'"],
        id="overrides-not-an-array",
    ),
    pytest.param(
        '[calendar.agencies.""]\n',
        ['CONFIG: calendar.agencies."": an agency code must not be empty'],
        id="empty-agency-code",
    ),
    pytest.param(
        '[calendar]\noverrides = ["calendar/2027.toml", ""]\n',
        [
            "CONFIG: calendar.overrides[0]: file not found: DIR/calendar/2027.toml",
            "CONFIG: calendar.overrides[1]: must not be empty",
        ],
        id="override-file-missing",
    ),
    pytest.param(
        '[calendar]\noverrides = ["."]\n',
        ["CONFIG: calendar.overrides[0]: not a file: DIR"],
        id="override-is-a-folder",
    ),
    pytest.param(
        '[rule_packs]\nfile = "packs.toml"\n',
        ["CONFIG: rule_packs.file: file not found: DIR/packs.toml"],
        id="rule-pack-file-missing",
    ),
    pytest.param(
        "[rule_packs]\nfile = 1\n",
        ["CONFIG: rule_packs.file: must be a string, got 1"],
        id="rule-pack-file-not-a-string",
    ),
    pytest.param(
        '[history]\nkey_env = "history key"\n',
        [
            (
                "CONFIG: history.key_env: must be the name of an environment variable "
                "(A-Z, 0-9 and _, not starting with a digit), never the key itself"
            )
        ],
        id="key-env-not-a-name",
    ),
    pytest.param(
        f'[history]\nkey_env = "{KEY.hex()}"\n',
        [
            (
                "CONFIG: history.key_env: must be the name of an environment variable "
                "(A-Z, 0-9 and _, not starting with a digit), never the key itself"
            )
        ],
        id="key-env-holds-a-key",
    ),
    pytest.param(
        f'[history]\nkey_env = "{KEY.hex().upper()}"\n',
        [
            (
                "CONFIG: history.key_env: must be the name of an environment variable "
                "(A-Z, 0-9 and _, not starting with a digit), never the key itself"
            )
        ],
        id="key-env-holds-an-uppercase-hex-key",
    ),
    pytest.param(
        '[codes]\nformat = "{agency}-{seq}"\n',
        [
            (
                "CONFIG: codes.format: gives 'G09.20-1' on 2026-03-02 and on 2026-03-03, but the "
                "sequence starts again every day; put the date in the code, e.g. {date:%Y%m%d}"
            )
        ],
        id="codes-repeat-daily",
    ),
    pytest.param(
        '[codes]\nformat = "{agency}-{date:%m}-{seq}"\nperiod = "year"\n',
        [
            (
                "CONFIG: codes.format: gives 'G09.20-03-1' on 2026-03-02 and on 2027-03-02, but "
                "the sequence starts again every year; put the year in the code, e.g. {date:%Y}"
            )
        ],
        id="codes-repeat-yearly",
    ),
    pytest.param(
        '[codes]\nformat = "{agency}-{date:%Y%m%d}-{seq}"\nperiod = "week"\n',
        ["CONFIG: codes.period: must be one of 'day', 'month', 'year', got 'week'"],
        id="codes-period",
    ),
    pytest.param(
        '[codes]\nformat = "{agency}-{date:%Y}-{seq}"\nperiod = "week"\n',
        [
            "CONFIG: codes.period: must be one of 'day', 'month', 'year', got 'week'",
            (
                "CONFIG: codes.format: gives 'G09.20-2026-1' on 2026-03-02 and on 2026-03-03, "
                "but the sequence starts again every day; put the date in the code, "
                "e.g. {date:%Y%m%d}"
            ),
        ],
        id="codes-format-checked-despite-bad-period",
    ),
    pytest.param(
        '[codes]\nformat = ""\n',
        ["CONFIG: codes.format: must not be empty"],
        id="codes-format-empty",
    ),
]


class TestBadInput:
    @pytest.mark.parametrize(("text", "expected"), BAD_FILES)
    def test_problem_names_file_and_path(
        self, tmp_path: Path, text: str, expected: list[str]
    ) -> None:
        """Each bad input is one `ConfigurationError` with exact ``file: path: message`` lines."""
        path = config_in(tmp_path, text)
        lines = [
            line.replace("CONFIG", str(path)).replace("DIR", str(tmp_path)) for line in expected
        ]
        assert problems_of(path) == lines

    def test_missing_file(self, tmp_path: Path) -> None:
        """A configuration file that does not exist is named."""
        path = tmp_path / "dvcflow.toml"
        assert problems_of(path) == [f"{path}: cannot read: No such file or directory"]

    def test_not_utf8(self, tmp_path: Path) -> None:
        """A file in another encoding is refused, not guessed."""
        path = tmp_path / "dvcflow.toml"
        path.write_bytes("[calendar]\n# Sở Tư pháp\n".encode("utf-16"))
        assert problems_of(path) == [f"{path}: not UTF-8 text"]

    def test_error_is_an_invalid_definition(self, tmp_path: Path) -> None:
        """`ConfigurationError` is caught by ``except InvalidDefinitionError``."""
        path = config_in(tmp_path, "[database]\npool_size = 0\n")
        with pytest.raises(InvalidDefinitionError, match=r"database\.pool_size: must be >= 1"):
            Config.load(path)

    def test_data_that_is_not_a_table(self) -> None:
        """`from_data` given a list names the source."""
        assert data_problems([1, 2]) == ["x.toml: must be a table, got an array"]  # type: ignore[arg-type]

    def test_key_itself_is_never_echoed(self, tmp_path: Path) -> None:
        """A key pasted where its variable's name belongs does not appear in the error."""
        secret = base64.b64encode(KEY).decode()
        path = config_in(tmp_path, f'[history]\nkey_env = "{secret}"\n')
        with pytest.raises(ConfigurationError) as caught:
            Config.load(path)
        assert secret not in str(caught.value)
        assert [p.path for p in caught.value.problems] == ["history.key_env"]

    def test_every_problem_at_once(self, tmp_path: Path) -> None:
        """One error lists the file's own problems and those of the files it names, in order."""
        overrides = write(
            tmp_path / "bad-overrides.toml",
            "[[closures]]\ndate = 2027-03-05\n",
        )
        packs = write(tmp_path / "packs.toml", "[[packs]]\nname = 'x'\n")
        path = config_in(
            tmp_path,
            """
            [database]
            busy_timeout_ms = -1
            cache = 1
            [calendar]
            overrides = ["bad-overrides.toml"]
            [calendar.agencies.A]
            overrides = ["bad-overrides.toml"]
            [rule_packs]
            file = "packs.toml"
            [codes]
            format = "{agency}-{seq}-{when}"
            """,
        )
        assert problems_of(path) == [
            f"{path}: database.cache: unknown key",
            f"{path}: database.busy_timeout_ms: must be >= 0",
            f"{overrides}: closures[0].source: is required",
            f"{packs}: packs[0].contact: is required",
            f"{packs}: packs[0].effective_from: is required",
            f"{packs}: packs[0].model: is required",
            f"{packs}: packs[0].title: is required",
            (
                f"{path}: codes.format: unknown placeholder {{when}}; use only {{agency}}, "
                "{date} and {seq}"
            ),
        ]

    def test_override_files_that_disagree(self, tmp_path: Path) -> None:
        """A date closed by one override file and worked by another is named with both files."""
        closed = write(tmp_path / "a.toml", "[[closures]]\ndate = 2027-03-06\nsource = 'QĐ 1'\n")
        worked = write(tmp_path / "b.toml", PROVINCE_CLOSURE)
        path = config_in(tmp_path, '[calendar]\noverrides = ["a.toml", "b.toml"]\n')
        assert problems_of(path) == [
            (
                f"{path}: calendar.overrides[1]: 2027-03-06 is a closure in {closed} "
                f"and a working day in {worked}"
            ),
        ]

    def test_same_date_twice_in_two_files(self, tmp_path: Path) -> None:
        """Two override files closing the same day agree, and the day is closed."""
        write(tmp_path / "a.toml", "[[closures]]\ndate = 2027-03-05\nsource = 'QĐ 1'\n")
        write(tmp_path / "b.toml", PROVINCE_CLOSURE)
        path = config_in(tmp_path, '[calendar]\noverrides = ["a.toml", "b.toml"]\n')
        calendar = Config.load(path).calendar
        assert [o.source for o in calendar.overrides] == ["QĐ 1", "Quyết định 12/QĐ-UBND"]
        assert not calendar.is_working_day(D(2027, 3, 5))

    def test_added_pack_overlapping_a_builtin(self, tmp_path: Path) -> None:
        """A new pack that starts while the open-ended built-in one runs is refused."""
        packs = write(tmp_path / "packs.toml", LOCAL_2030)
        path = config_in(tmp_path, '[rule_packs]\nfile = "packs.toml"\n')
        assert problems_of(path) == [
            f"{packs}: local-2030.effective_from: overlaps rule pack 'vneid-2024'",
        ]


SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "": ("calendar", "codes", "database", "history", "rule_packs"),
    "database": ("busy_timeout_ms", "pool_size", "statement_timeout_ms"),
    "history": ("key_env", "seal_interval_ms"),
    "calendar": ("agencies", "office_hours", "overrides"),
    'calendar.agencies."G09.20"': ("office_hours", "overrides"),
    "rule_packs": ("file",),
    "codes": ("format", "period"),
}
TABLE_PARTS = {
    "": (),
    'calendar.agencies."G09.20"': ("calendar", "agencies", "G09.20"),
}

unknown_keys = st.lists(
    st.tuples(
        st.sampled_from(sorted(SECTION_KEYS)),
        st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True),
    ),
    min_size=1,
    max_size=5,
    unique=True,
)


class TestUnknownKeys:
    @given(unknown_keys)
    def test_every_unknown_key_is_reported(self, placed: list[tuple[str, str]]) -> None:
        """Unknown keys anywhere are each reported at their path, and nothing else is."""
        assume(all(key not in SECTION_KEYS[section] for section, key in placed))
        data: dict[str, object] = {}
        expected = set()
        for section, key in placed:
            table = data
            for part in TABLE_PARTS.get(section, (section,)):
                table = table.setdefault(part, {})  # type: ignore[assignment]
            table[key] = 1
            path = f"{section}.{key}" if section else key
            expected.add(path)
        with pytest.raises(ConfigurationError) as caught:
            Config.from_data(data, source="x.toml")
        found = caught.value.problems
        assert {problem.path for problem in found} == expected
        assert len(found) == len(expected)
        assert all(problem.message.startswith("unknown key") for problem in found)


class TestPaths:
    def test_relative_to_the_config_folder(
        self, full: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Relative paths in the file are found from its folder, whatever the working directory."""
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        config = Config.load(full)
        assert not config.calendar_for("G09.20").is_working_day(D(2027, 3, 3))
        assert "local-2030" in config.rule_packs

    def test_relative_config_path(self, full: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A relative path to the configuration itself works from its parent."""
        monkeypatch.chdir(full.parent.parent)
        assert Config.load(Path("conf") / "dvcflow.toml") == Config.load(full)

    def test_absolute_paths_are_kept(self, tmp_path: Path) -> None:
        """An absolute override path is used as given."""
        overrides = write(tmp_path / "shared" / "2027.toml", PROVINCE_CLOSURE)
        path = write(
            tmp_path / "conf" / "dvcflow.toml", f"[calendar]\noverrides = ['{overrides}']\n"
        )
        assert not Config.load(path).calendar.is_working_day(D(2027, 3, 5))

    def test_from_data_resolves_against_base(self, tmp_path: Path) -> None:
        """`from_data` resolves relative paths against ``base``."""
        write(tmp_path / "2027.toml", PROVINCE_CLOSURE)
        config = Config.from_data({"calendar": {"overrides": ["2027.toml"]}}, base=tmp_path)
        assert not config.calendar.is_working_day(D(2027, 3, 5))

    def test_from_data_defaults_to_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without ``base``, `from_data` resolves relative paths against the working directory."""
        write(tmp_path / "2027.toml", PROVINCE_CLOSURE)
        monkeypatch.chdir(tmp_path)
        config = Config.from_data({"calendar": {"overrides": ["2027.toml"]}})
        assert not config.calendar.is_working_day(D(2027, 3, 5))

    def test_missing_file_is_named_resolved(self, tmp_path: Path) -> None:
        """A missing file is reported with the path it was looked for at."""
        assert data_problems({"rule_packs": {"file": "packs.toml"}}) == [
            "x.toml: rule_packs.file: file not found: packs.toml"
        ]
        with pytest.raises(ConfigurationError) as caught:
            Config.from_data({"rule_packs": {"file": "packs.toml"}}, base=tmp_path)
        assert caught.value.problems[0].message == f"file not found: {tmp_path / 'packs.toml'}"


KEYED = Config.from_data({"history": {"key_env": "DVCFLOW_HISTORY_KEY"}}, source="dvcflow.toml")


class TestHistoryKey:
    @pytest.mark.parametrize(
        "value",
        [
            KEY.hex(),
            KEY.hex().upper(),
            base64.b64encode(KEY).decode(),
            base64.urlsafe_b64encode(KEY).decode().rstrip("="),
            f"  {KEY.hex()}\n",
        ],
        ids=["hex", "HEX", "base64", "base64url-unpadded", "whitespace"],
    )
    def test_encodings(self, value: str) -> None:
        """The key may be given in hex or base64; surrounding whitespace is ignored."""
        assert KEYED.history_key({"DVCFLOW_HISTORY_KEY": value}) == KEY

    def test_longer_keys_are_kept_whole(self) -> None:
        """A 64-byte key is returned in full."""
        key = bytes(range(64))
        assert KEYED.history_key({"DVCFLOW_HISTORY_KEY": key.hex()}) == key

    def test_reads_os_environ_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ``environ`` the process environment is read."""
        monkeypatch.setenv("DVCFLOW_HISTORY_KEY", KEY.hex())
        assert KEYED.history_key() == KEY

    def test_not_configured(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ``history.key_env`` there is no key, whatever the environment holds."""
        monkeypatch.setenv("DVCFLOW_HISTORY_KEY", KEY.hex())
        assert Config.default().history_key() is None

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (None, "environment variable DVCFLOW_HISTORY_KEY is not set"),
            ("   ", "environment variable DVCFLOW_HISTORY_KEY is empty"),
            (
                KEY[:31].hex(),
                (
                    "environment variable DVCFLOW_HISTORY_KEY holds a key shorter than 32 bytes; "
                    "give 64 hex digits or the base64 of 32 random bytes"
                ),
            ),
            (
                base64.b64encode(b"s" * 31).decode(),
                (
                    "environment variable DVCFLOW_HISTORY_KEY holds a key shorter than 32 bytes; "
                    "give 64 hex digits or the base64 of 32 random bytes"
                ),
            ),
            (
                "correct horse battery staple!",
                "environment variable DVCFLOW_HISTORY_KEY does not hold a key in hex or base64",
            ),
            (
                KEY.hex()[:-1],
                (
                    "environment variable DVCFLOW_HISTORY_KEY does not hold a key in hex or base64 "
                    "(odd number of hex digits)"
                ),
            ),
        ],
        ids=["missing", "blank", "short-hex", "short-base64", "not-a-key", "odd-hex"],
    )
    def test_unusable_values(self, value: str | None, message: str) -> None:
        """A missing or unusable key names the variable and never shows the value."""
        environ = {} if value is None else {"DVCFLOW_HISTORY_KEY": value}
        with pytest.raises(ConfigurationError) as caught:
            KEYED.history_key(environ)
        assert [str(p) for p in caught.value.problems] == [
            f"dvcflow.toml: history.key_env: {message}"
        ]
        if value and value.strip():
            assert value.strip() not in str(caught.value)

    @given(
        st.binary(min_size=32, max_size=96),
        st.sampled_from(["hex", "base64", "urlsafe", "unpadded"]),
    )
    def test_any_key_round_trips(self, key: bytes, encoding: str) -> None:
        """Any key of 32 bytes or more, encoded either way, is read back exactly."""
        text = {
            "hex": key.hex(),
            "base64": base64.b64encode(key).decode(),
            "urlsafe": base64.urlsafe_b64encode(key).decode(),
            "unpadded": base64.b64encode(key).decode().rstrip("="),
        }[encoding]
        # Documented: a value made only of hex digits is hex (not a risk for random keys).
        assume(encoding == "hex" or not all(c in "0123456789abcdefABCDEF" for c in text))
        assert KEYED.history_key({"DVCFLOW_HISTORY_KEY": text}) == key
