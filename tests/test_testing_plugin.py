"""The pytest plugin, as a project meets it: loaded by its entry point, fixtures, profiles.

Each test writes a small project with `pytester` (a strict configuration, as this project's
own: ``--strict-config``, warnings as errors) and runs pytest on it in a subprocess, so that
the plugin is loaded as an installed one is and the hypothesis profiles it loads stay in
that process.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
from pathlib import Path

import pytest

from dvcflow.testing import pytest_plugin

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
PROCEDURES = ROOT / "examples" / "procedures"
BIRTH = "khai-sinh.toml"
"""The level-4 full-process birth registration (1.001193), the three-line test's procedure."""
JUDICIAL = "ly-lich-tu-phap.toml"
"""The judicial record certificate (2.000488): a fee paid online before reception."""
STRICT = """\
addopts = ["--strict-config", "--strict-markers", "-p", "no:cacheprovider"]
filterwarnings = ["error"]
"""
"""Options every generated project runs with, after its own ``[tool.pytest.ini_options]``."""


@pytest.fixture(autouse=True)
def _no_profile_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated projects ask for a profile only where a test says so."""
    monkeypatch.delenv("DVCFLOW_HYPOTHESIS_PROFILE", raising=False)


def project(pytester: pytest.Pytester, ini: str = "", *procedures: str) -> None:
    """A project with ``ini`` (lines of ``[tool.pytest.ini_options]``) and example procedures."""
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\n{ini}{STRICT}")
    folder = pytester.mkdir("procedures")
    for name in procedures:
        shutil.copy(PROCEDURES / name, folder / name)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in a subprocess, on the project."""
    return pytester.runpytest_subprocess(*args)


def python_blocks(page: str) -> list[str]:
    """The ``python`` code blocks of a Markdown page, in order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def toml_blocks(page: str) -> list[str]:
    """The ``toml`` code blocks of a Markdown page, in order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)


# -- loading ------------------------------------------------------------------------------------


class TestLoading:
    def test_the_entry_point_names_the_plugin_module(self) -> None:
        """dvcflow's distribution declares the plugin under ``pytest11`` as ``dvcflow``."""
        (entry,) = [
            e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "dvcflow"
        ]
        assert entry.value == "dvcflow.testing.pytest_plugin"
        assert entry.dist is not None
        assert entry.dist.name == "dvcflow"
        assert entry.load() is pytest_plugin

    def test_pytest_registers_it_from_the_entry_point(self, pytester: pytest.Pytester) -> None:
        """``--trace-config`` lists it as a third-party plugin, active as ``dvcflow``."""
        project(pytester)
        result = run(pytester, "--trace-config")
        result.stdout.fnmatch_lines(
            [
                "registered third-party plugins:",
                "  dvcflow-* at *dvcflow*testing*pytest_plugin.py",
                "active plugins:",
                "    dvcflow * : *dvcflow*testing*pytest_plugin.py",
                "plugins: *dvcflow-*",
            ]
        )
        assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED

    def test_its_options_are_in_the_help(self, pytester: pytest.Pytester) -> None:
        """``--help`` shows the dvcflow option group and both ini options."""
        project(pytester)
        result = run(pytester, "--help")
        result.stdout.fnmatch_lines(
            [
                "dvcflow:",
                "*--dvcflow-profile*",
                "*dvcflow_hypothesis_profile (string):*",
                "*dvcflow_catalog (string):*",
            ]
        )

    def test_disabled_by_its_name_its_fixtures_are_gone(self, pytester: pytest.Pytester) -> None:
        """``-p no:dvcflow`` unloads it: a test asking for a dvcflow fixture errors."""
        project(pytester)
        pytester.makepyfile("def test_clock(dvcflow_clock):\n    pass\n")
        result = run(pytester, "-p", "no:dvcflow")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*fixture 'dvcflow_clock' not found*"])


# -- fixtures -----------------------------------------------------------------------------------

FIXTURES = """
import datetime as dt

from dvcflow import Actor, Applicant, ApplicantType, DeliveryMethod, FrozenClock
from dvcflow.plugins import FakeBackend
from dvcflow.testing.pytest_plugin import START

AN = Applicant(
    ApplicantType.CITIZEN,
    "001099012345",
    "Nguyễn Văn An",
    phone="0912345678",
    email="an@example.vn",
    vneid_verified=True,
)
CHILD = {
    "child_full_name": "Nguyễn Văn Bình",
    "child_birth_date": "2025-02-20",
    "child_sex": "nam",
    "relationship": "cha",
}


def staff(role, agency="UBND-XA.001"):
    return Actor.staff(f"{role}-1", roles={role}, agency=agency)


def birth(engine, delivery=DeliveryMethod.ELECTRONIC, **more):
    return engine.submit(
        "1.001193",
        applicant=AN,
        actor=Actor.citizen("acc-1"),
        form=CHILD,
        documents=["declaration", "birth_notice"],
        delivery=delivery,
        **more,
    )


def test_the_catalog_is_the_ini_option_s(dvcflow_catalog):
    assert sorted(p.code for p in dvcflow_catalog) == ["1.001193", "2.000488"]


def test_the_engine_is_on_a_sqlite_file_in_tmp_path(dvcflow_engine, dvcflow_clock, tmp_path):
    assert dvcflow_engine.store.database_path == tmp_path / "dvcflow.db"
    assert (tmp_path / "dvcflow.db").exists()
    assert dvcflow_engine.clock is dvcflow_clock
    assert dvcflow_engine.find().items == ()
    d = birth(dvcflow_engine)
    assert d.state == "submitted"
    assert dvcflow_engine.get(d.id) == d
    assert dvcflow_engine.verify_history(d.id) == 1


def test_each_test_has_its_own_database(dvcflow_engine):
    assert dvcflow_engine.find().items == ()


def test_the_fakes_capture_what_the_outbox_delivers(
    dvcflow_engine, dvcflow_fakes, dvcflow_payments, dvcflow_messages, dvcflow_deliveries
):
    assert isinstance(dvcflow_fakes, FakeBackend)
    assert dvcflow_payments is dvcflow_fakes.payments
    assert dvcflow_messages is dvcflow_fakes.messages
    assert dvcflow_deliveries is dvcflow_fakes.deliveries
    d = dvcflow_engine.submit(
        "2.000488",
        applicant=AN,
        actor=Actor.citizen("acc-1"),
        form={"purpose": "xin việc", "copies": 1},
        documents=["request_form", "identity_document"],
        delivery=DeliveryMethod.ELECTRONIC,
    )
    assert dvcflow_payments == {} and dvcflow_messages == []
    report = dvcflow_engine.outbox.worker().drain()
    assert (report.done, report.incidents) == (2, 0)
    (reference,) = dvcflow_payments
    assert dvcflow_payments[reference].request.amount.amount == 200_000
    assert [m.event for m in dvcflow_messages] == ["submitted"]
    dvcflow_engine.payments.callback("fake", *dvcflow_fakes.pay(reference))
    assert dvcflow_engine.get(d.id).dossier.fees_settled
    assert [p.state for p in dvcflow_engine.payments.of(d.id)] == ["paid"]


def test_a_postal_result_reaches_the_fake_courier(dvcflow_engine, dvcflow_deliveries):
    d = birth(dvcflow_engine, DeliveryMethod.POSTAL, address={"address": "Số 1 Tràng Tiền"})
    d = dvcflow_engine.fire(d.id, "receive", actor=staff("receiving_officer"))
    d = dvcflow_engine.fire(
        d.id, "start", actor=staff("department_head"), payload={"specialist": "specialist-1"}
    )
    record = dvcflow_engine.results.attach(
        d.id, b"giay khai sinh", media_type="text/plain", name="giay-khai-sinh.txt"
    )
    dvcflow_engine.results.sign(d.id, record.digest)
    d = dvcflow_engine.fire(
        d.id, "resolve", actor=staff("leader"), payload={"result": record.digest, "signed": True}
    )
    assert d.state == "result_ready"
    assert dvcflow_deliveries == []
    dvcflow_engine.outbox.worker().drain()
    (parcel,) = dvcflow_deliveries
    assert (parcel.dossier_id, parcel.method) == (d.id, DeliveryMethod.POSTAL)


def test_the_clock_is_frozen_and_steerable(dvcflow_engine, dvcflow_clock):
    assert isinstance(dvcflow_clock, FrozenClock)
    assert dvcflow_clock.now() == START == dt.datetime.fromisoformat("2025-03-03T08:00+07:00")
    d = dvcflow_engine.fire(birth(dvcflow_engine).id, "receive", actor=staff("receiving_officer"))
    assert d.dossier.received_at == START
    assert d.dossier.due_at == START.replace(hour=17)  # same day, by the end of office hours
    assert "due_escalation" not in {name for _, name, _ in dvcflow_engine.tick()}
    dvcflow_clock.advance(dt.timedelta(days=1))
    assert "due_escalation" in {name for _, name, _ in dvcflow_engine.tick()}
"""

OWN_CATALOG = """
from pathlib import Path

import pytest

from dvcflow import Catalog


@pytest.fixture
def dvcflow_catalog():
    return Catalog.from_path(Path(__file__).parent / "procedures" / "khai-sinh.toml")


def test_an_overridden_catalog_is_published(dvcflow_engine):
    assert dvcflow_engine.current_version("1.001193")
"""

NO_CATALOG = """
import pytest

from dvcflow import NotFoundError


def test_without_the_option_nothing_is_published(dvcflow_catalog, dvcflow_engine):
    assert dvcflow_catalog is None
    with pytest.raises(NotFoundError):
        dvcflow_engine.current_version("1.001193")
"""


class TestFixtures:
    def test_the_fixtures_work_together(self, pytester: pytest.Pytester) -> None:
        """An engine on a SQLite file with the ini option's catalogue, the fakes, the clock."""
        project(pytester, 'dvcflow_catalog = "procedures"\n', BIRTH, JUDICIAL)
        pytester.makepyfile(test_fixtures=FIXTURES)
        result = run(pytester, "-v")
        result.assert_outcomes(passed=6)

    def test_without_the_ini_option_there_is_no_catalog(self, pytester: pytest.Pytester) -> None:
        """``dvcflow_catalog`` is ``None`` without the option; a test module may override it."""
        project(pytester, "", BIRTH)
        pytester.makepyfile(test_no_catalog=NO_CATALOG, test_own_catalog=OWN_CATALOG)
        result = run(pytester, "-v")
        result.assert_outcomes(passed=2)


# -- hypothesis profiles ------------------------------------------------------------------------

PROBE = """
from hypothesis import Verbosity, settings


def test_the_profile():
    assert settings.get_profile("dvcflow-dev").max_examples == 50
    assert settings.get_profile("dvcflow-ci").derandomize
    name = settings.get_current_profile_name()
    expected = {expected!r}
    if expected is None:
        assert name not in {{"dvcflow-dev", "dvcflow-ci"}}, name
    else:
        assert name == expected
    for setting, value in {values!r}.items():
        assert getattr(settings.default, setting) == value, setting
"""


def probe(pytester: pytest.Pytester, expected: str | None, **values: object) -> None:
    """A test asserting which hypothesis profile is in force, and some of its settings."""
    pytester.makepyfile(test_probe=PROBE.format(expected=expected, values=values))


SETTINGS = {
    "dvcflow-dev": {"max_examples": 50, "stateful_step_count": 40, "deadline": None},
    "dvcflow-ci": {
        "max_examples": 20,
        "stateful_step_count": 20,
        "report_multiple_bugs": False,
        "deadline": None,
        "derandomize": True,
        "print_blob": True,
    },
}
"""Some settings of each profile (no deadline: an example is a real engine)."""
UNKNOWN = "nightly"
CHOICES = "dvcflow-dev, dvcflow-ci"


class TestProfiles:
    def test_registered_but_not_loaded(self, pytester: pytest.Pytester) -> None:
        """Both profiles exist, neither is in force, the header says nothing of them."""
        project(pytester)
        probe(pytester, None)
        result = run(pytester)
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("dvcflow: *")

    @pytest.mark.parametrize(
        ("args", "ini", "env", "expected"),
        [
            (["--dvcflow-profile=dvcflow-ci"], "", "", "dvcflow-ci"),
            ([], "dvcflow-dev", "", "dvcflow-dev"),
            ([], "", "dvcflow-ci", "dvcflow-ci"),
            (["--dvcflow-profile=dvcflow-dev"], "dvcflow-ci", "dvcflow-ci", "dvcflow-dev"),
            ([], "dvcflow-ci", "dvcflow-dev", "dvcflow-ci"),
        ],
        ids=["option", "ini", "env", "option-over-ini-and-env", "ini-over-env"],
    )
    def test_loaded_when_asked(  # noqa: PLR0913 - the parametrised ways of asking
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        *,
        args: list[str],
        ini: str,
        env: str,
        expected: str,
    ) -> None:
        """The option, then the ini option, then the environment variable names the profile."""
        project(pytester, f'dvcflow_hypothesis_profile = "{ini}"\n' if ini else "")
        if env:
            monkeypatch.setenv("DVCFLOW_HYPOTHESIS_PROFILE", env)
        probe(pytester, expected, **SETTINGS[expected])
        result = run(pytester, *args)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"dvcflow: hypothesis profile {expected}"])

    def test_a_projects_own_profile_stays_in_force(self, pytester: pytest.Pytester) -> None:
        """A profile a conftest loads (here built on dvcflow-dev) is the one the tests run with."""
        project(pytester)
        pytester.makeconftest(
            """
            from hypothesis import settings

            settings.register_profile("ours", settings.get_profile("dvcflow-dev"), max_examples=7)
            settings.load_profile("ours")
            """
        )
        probe(pytester, "ours", max_examples=7, stateful_step_count=40)
        result = run(pytester)
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("dvcflow: *")

    def test_they_do_not_inherit_the_projects_profile(self, pytester: pytest.Pytester) -> None:
        """Asked for over a project's loaded profile, dvcflow-ci is itself: nothing carried over."""
        project(pytester)
        pytester.makeconftest(
            """
            from hypothesis import settings

            settings.register_profile("ours", print_blob=False, max_examples=7)
            settings.load_profile("ours")
            """
        )
        probe(pytester, "dvcflow-ci", **SETTINGS["dvcflow-ci"])
        run(pytester, "--dvcflow-profile=dvcflow-ci").assert_outcomes(passed=1)

    def test_hypothesis_own_option_can_name_them(self, pytester: pytest.Pytester) -> None:
        """``--hypothesis-profile dvcflow-ci`` finds the profile, and wins over the ini option."""
        project(pytester, 'dvcflow_hypothesis_profile = "dvcflow-dev"\n')
        probe(pytester, "dvcflow-ci", max_examples=20)
        run(pytester, "--hypothesis-profile=dvcflow-ci").assert_outcomes(passed=1)

    def test_hypothesis_verbosity_builds_on_the_loaded_profile(
        self, pytester: pytest.Pytester
    ) -> None:
        """``--hypothesis-verbosity`` applies to the dvcflow profile, not instead of it."""
        project(pytester)
        pytester.makepyfile(
            test_probe="""
            from hypothesis import Verbosity, settings


            def test_the_profile():
                assert settings.default.verbosity is Verbosity.verbose
                assert settings.default.max_examples == 20
            """
        )
        result = run(pytester, "--dvcflow-profile=dvcflow-ci", "--hypothesis-verbosity=verbose")
        result.assert_outcomes(passed=1)

    @pytest.mark.parametrize("where", ["ini", "env"])
    def test_an_unknown_name_is_a_usage_error(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str
    ) -> None:
        """A profile the plugin does not have, from the ini or the environment: exit code 4."""
        project(pytester, f'dvcflow_hypothesis_profile = "{UNKNOWN}"\n' if where == "ini" else "")
        if where == "env":
            monkeypatch.setenv("DVCFLOW_HYPOTHESIS_PROFILE", UNKNOWN)
        probe(pytester, None)
        result = run(pytester)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        message = f"unknown dvcflow hypothesis profile '{UNKNOWN}'; choose one of {CHOICES}"
        result.stderr.fnmatch_lines([f"ERROR: {message}"])
        assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()

    def test_an_unknown_option_value_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """``--dvcflow-profile`` takes only the plugin's profile names."""
        project(pytester)
        result = run(pytester, f"--dvcflow-profile={UNKNOWN}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*--dvcflow-profile: invalid choice: '{UNKNOWN}'*"])


# -- the three-line test, as docs/testing.md gives it ---------------------------------------------

DOC = "docs/testing.md"

BROKEN = """
import pytest
from hypothesis import Phase, settings

from dvcflow._kernel import Kernel

# The project's bug: nobody checks who may fire a trigger. The search stops at the first
# failing example (shrinking it is examples/planted_bug's business, and takes minutes).
settings.register_profile(
    "find-only",
    settings.get_profile("dvcflow-ci"),
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    database=None,
)
settings.load_profile("find-only")


@pytest.fixture(autouse=True)
def anyone_may_do_anything(monkeypatch):
    monkeypatch.setattr(Kernel, "_authorize", lambda *_args: [])
"""


class TestThreeLineTest:
    def test_the_page_starts_with_it(self) -> None:
        """The page's first example is the three lines, naming the birth registration file."""
        first = python_blocks(DOC)[0]
        assert first.strip().splitlines() == [
            "from dvcflow.testing import machine_for",
            "",
            'TestBirthRegistration = machine_for("procedures/khai-sinh.toml").TestCase',
        ]

    def test_every_example_of_the_page_passes(self, pytester: pytest.Pytester) -> None:
        """Each ``python`` block of docs/testing.md, a test file of its own, passes under the
        page's ``toml`` configuration (the dvcflow-ci profile)."""
        (config,) = toml_blocks(DOC)
        assert config.startswith("[tool.pytest.ini_options]\n")
        pytester.makepyprojecttoml(config + STRICT)
        pytester.mkdir("procedures")
        shutil.copy(PROCEDURES / BIRTH, pytester.path / "procedures" / BIRTH)
        blocks = python_blocks(DOC)
        for number, block in enumerate(blocks, 1):
            pytester.makepyfile(**{f"test_doc_{number}": block})
        result = run(pytester, "-v")
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["dvcflow: hypothesis profile dvcflow-ci"])
        for number in range(1, len(blocks) + 1):
            result.stdout.fnmatch_lines([f"test_doc_{number}.py::* PASSED*"])
        result.stdout.fnmatch_lines(["test_doc_1.py::TestBirthRegistration::runTest PASSED*"])

    def test_a_broken_workflow_fails_it(self, pytester: pytest.Pytester) -> None:
        """The same three lines fail, naming an unauthorized command, when the role check is
        gone."""
        project(pytester, "", BIRTH)
        pytester.makeconftest(BROKEN)
        pytester.makepyfile(test_birth=python_blocks(DOC)[0])
        result = run(pytester)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*state.commands_were_authorized()*",
            ]
        )
        unauthorized = r"needs one of|not the owner's dossier|staff of .*, dossier of|not addressed"
        assert re.search(rf"AssertionError: event \d+: .*({unauthorized})", result.stdout.str())
