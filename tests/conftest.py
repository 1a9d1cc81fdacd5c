"""Shared test set-up: hypothesis profiles, and the databases the store suites run on.

The ``db`` fixture runs a test on SQLite and on PostgreSQL (a throwaway cluster on loopback,
one per session, a fresh database per test, see ``tests/pg.py``). Without PostgreSQL the
PostgreSQL cases skip, except under ``CI=true``, where they fail: CI always has a server.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from dvcflow import Catalog
from pg import Cluster, Database, missing_reason

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "procedures"
BACKENDS = ["sqlite", "postgresql"]
_NAMES = itertools.count(1)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The example procedure catalogue of the repository."""
    return EXAMPLES


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server for the session, stopped and removed at the end."""
    reason = missing_reason()
    if reason is not None:
        if _in_ci():
            pytest.fail(f"CI=true needs PostgreSQL: {reason}")
        pytest.skip(f"PostgreSQL is not installed here: {reason}")
    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped after it."""
    name = f"test_{os.getpid()}_{next(_NAMES)}"
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The test's database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "dvcflow.db"
        database = Database("sqlite", f"sqlite:///{path}", path)
    else:
        database = Database("postgresql", request.getfixturevalue("pg_url"))
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="session")
def catalog(examples_dir: Path) -> Catalog:
    """The example catalogue (immutable, shared by the whole session)."""
    return Catalog.from_path(examples_dir)
