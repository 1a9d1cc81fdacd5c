"""The pytest plugin: an engine on a temporary database, the fakes, a frozen clock, profiles.

Loaded automatically (entry point ``pytest11``) wherever dvcflow is installed. Its fixtures
are all prefixed ``dvcflow_`` so they never shadow a project's own:

- ``dvcflow_clock``: a `FrozenClock` at Monday 03/03/2025 08:00 (Asia/Ho_Chi_Minh);
- ``dvcflow_fakes``: a fresh `FakeBackend`; ``dvcflow_payments``, ``dvcflow_messages`` and
  ``dvcflow_deliveries`` are what it captured (live: they fill as the outbox is delivered);
- ``dvcflow_catalog``: the procedures to publish, from the ``dvcflow_catalog`` ini option (a
  file or folder), or none; override the fixture to give your own;
- ``dvcflow_engine``: an `Engine` on a SQLite file in the test's ``tmp_path`` with that
  catalogue, clock and fakes (every family routed to the fake, a history key given).

Hypothesis profiles ``dvcflow-dev`` and ``dvcflow-ci`` are registered as the plugin is
loaded (so a conftest or ``--hypothesis-profile`` may name them) and loaded only when asked
for: ``--dvcflow-profile NAME``, the ``dvcflow_hypothesis_profile`` ini option or the
``DVCFLOW_HYPOTHESIS_PROFILE`` environment variable (in that order). Without one, the
project's own profile stays in force.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

if TYPE_CHECKING:
    from dvcflow._backends import DeliveryRequest, Message
    from dvcflow._catalog import Catalog
    from dvcflow._clock import FrozenClock
    from dvcflow._engine import Engine
    from dvcflow.plugins.fake import FakeBackend, FakePayment

# The plugin is loaded into every pytest run where dvcflow is installed: the library (the
# engine, SQLAlchemy) is imported by the fixtures that need it, not by loading the plugin.

__all__ = [
    "PROFILES",
    "START",
    "dvcflow_catalog",
    "dvcflow_clock",
    "dvcflow_deliveries",
    "dvcflow_engine",
    "dvcflow_fakes",
    "dvcflow_messages",
    "dvcflow_payments",
]

START = dt.datetime(2025, 3, 3, 8, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
"""Where ``dvcflow_clock`` starts: a Monday morning, a working day in office hours."""

PROFILES = ("dvcflow-dev", "dvcflow-ci")
"""The hypothesis profiles the plugin registers."""

_ENV = "DVCFLOW_HYPOTHESIS_PROFILE"


def _register_profiles() -> bool:
    """Register the profiles; ``False`` when hypothesis is not installed."""
    try:
        from hypothesis import HealthCheck, settings  # noqa: PLC0415 - hypothesis is optional
    except ImportError:  # pragma: no cover - the testing extra installs it
        return False
    # On hypothesis's defaults, not on whatever profile is in force as this runs (hypothesis's
    # "ci" under CI, a conftest's): the profiles are the same everywhere.
    default = settings.get_profile("default")
    settings.register_profile(
        "dvcflow-dev",
        default,
        max_examples=50,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.register_profile(
        "dvcflow-ci",
        default,
        max_examples=20,
        # Short stories, and the first failure only: shrinking replays stories on a real
        # engine, minutes for 30 steps failing in several ways, about one for 10-20.
        stateful_step_count=20,
        report_multiple_bugs=False,
        deadline=None,
        derandomize=True,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return True


_REGISTERED = _register_profiles()
"""Whether the profiles are registered: on import, which the entry point does before
conftests are loaded and before any plugin's ``pytest_configure``, so that a conftest's
``settings.load_profile("dvcflow-ci")`` and ``--hypothesis-profile dvcflow-ci`` find them."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's command-line and ini options."""
    group = parser.getgroup("dvcflow")
    group.addoption(
        "--dvcflow-profile",
        choices=PROFILES,
        default=None,
        help="load this hypothesis profile (dvcflow-dev, dvcflow-ci) for the run",
    )
    parser.addini(
        "dvcflow_hypothesis_profile",
        "hypothesis profile to load: dvcflow-dev or dvcflow-ci (default: leave the project's)",
        default="",
    )
    parser.addini(
        "dvcflow_catalog",
        "procedure file or folder the dvcflow_engine fixture publishes (relative to rootdir)",
        default="",
    )


def chosen_profile(config: pytest.Config) -> str | None:
    """The profile the run asks for, if any: option, then ini, then environment."""
    option = config.getoption("--dvcflow-profile", default=None)
    ini = str(config.getini("dvcflow_hypothesis_profile") or "")
    name = option or ini or os.environ.get(_ENV, "")
    if not name:
        return None
    if name not in PROFILES:
        msg = f"unknown dvcflow hypothesis profile {name!r}; choose one of {', '.join(PROFILES)}"
        raise pytest.UsageError(msg)
    return str(name)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the profile the run asks for, if any.

    First, so that hypothesis's own options applied after it (``--hypothesis-profile``,
    ``--hypothesis-verbosity``) take precedence over it or build on it, as given.
    """
    if not _REGISTERED:
        return
    name = chosen_profile(config)
    if name is not None:
        from hypothesis import settings  # noqa: PLC0415 - hypothesis is optional

        settings.load_profile(name)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which dvcflow profile is loaded, when one is."""
    name = chosen_profile(config)
    return None if name is None else f"dvcflow: hypothesis profile {name}"


@pytest.fixture
def dvcflow_clock() -> FrozenClock:
    """A frozen clock at `START`; move it with ``advance`` or ``set``."""
    from dvcflow._clock import FrozenClock  # noqa: PLC0415 - see the imports above

    return FrozenClock(START)


@pytest.fixture
def dvcflow_fakes() -> FakeBackend:
    """The in-memory back ends the ``dvcflow_engine`` fixture uses for every family."""
    from dvcflow.plugins.fake import FakeBackend  # noqa: PLC0415 - see the imports above

    return FakeBackend()


@pytest.fixture
def dvcflow_payments(dvcflow_fakes: FakeBackend) -> dict[str, FakePayment]:
    """Payments the fake gateway was asked for, by reference (pay one with ``fakes.pay``)."""
    return dvcflow_fakes.payments


@pytest.fixture
def dvcflow_messages(dvcflow_fakes: FakeBackend) -> list[Message]:
    """Messages the fake channels sent, once each, in order."""
    return dvcflow_fakes.messages


@pytest.fixture
def dvcflow_deliveries(dvcflow_fakes: FakeBackend) -> list[DeliveryRequest]:
    """Deliveries the fake courier was asked to make, in order."""
    return dvcflow_fakes.deliveries


@pytest.fixture
def dvcflow_catalog(pytestconfig: pytest.Config) -> Catalog | None:
    """The procedures ``dvcflow_engine`` publishes: the ``dvcflow_catalog`` ini option's."""
    where = str(pytestconfig.getini("dvcflow_catalog") or "")
    if not where:
        return None
    from dvcflow._catalog import Catalog  # noqa: PLC0415 - see the imports above

    return Catalog.from_path(Path(pytestconfig.rootpath) / where)


@pytest.fixture
def dvcflow_engine(
    tmp_path: Path,
    dvcflow_clock: FrozenClock,
    dvcflow_fakes: FakeBackend,
    dvcflow_catalog: Catalog | None,
) -> Iterator[Engine]:
    """An engine on a SQLite file in ``tmp_path``, with the fakes, the clock, the catalogue."""
    from dvcflow._engine import Engine  # noqa: PLC0415 - see the imports above
    from dvcflow.testing._rigs import KEY_ENV, fake_config  # noqa: PLC0415

    engine = Engine.open(
        f"sqlite:///{tmp_path / 'dvcflow.db'}",
        catalog=dvcflow_catalog,
        config=fake_config(),
        clock=dvcflow_clock,
        environ={KEY_ENV: "5a" * 32},
        plugins=[dvcflow_fakes],
        entry_points=False,
    )
    try:
        yield engine
    finally:
        engine.close()
