"""Shared test set-up: hypothesis profiles (dev by default, bounded `ci` under CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The example procedure catalogue of the repository."""
    return EXAMPLES
