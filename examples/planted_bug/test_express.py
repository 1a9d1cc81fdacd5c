"""The generated machine finds the express counter's shortcut and shrinks it to a few steps.

Run with ``pytest examples/planted_bug`` (dvcflow installed with its ``testing`` extra).
"""

from __future__ import annotations

import re
from pathlib import Path

from express import express_counter
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from dvcflow.testing import machine_for

HERE = Path(__file__).resolve().parent
CopyOfExtract = machine_for(HERE / "ban-sao-trich-luc.toml")
"""The agency's procedure as a state machine: a real engine, the fakes, a frozen clock."""

SEARCH = settings(
    max_examples=200,
    stateful_step_count=10,  # long enough to reach a result; short enough to shrink fast
    deadline=None,
    derandomize=True,  # the same search on every run, so CI cannot be lucky or unlucky
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)


def find_the_shortcut() -> tuple[str, list[str]]:
    """Run the machine with the shortcut installed: the failure, and the shrunk trace's steps.

    Hypothesis attaches the shrunk example to the failure as notes, one ``state.<rule>(...)``
    line per step (the invariants checked after each step have lines of their own).
    """
    rules = "|".join(CopyOfExtract.rule_names())
    with express_counter():
        try:
            run_state_machine_as_test(CopyOfExtract, settings=SEARCH)
        except AssertionError as failure:
            notes = getattr(failure, "__notes__", [])
            steps = [line for line in notes if re.match(rf"state\.({rules})\(", line)]
            return str(failure), steps
    msg = "the machine did not find the express shortcut"
    raise AssertionError(msg)


def test_the_machine_finds_the_shortcut() -> None:
    """An express result returned unpaid is found; the shrunk trace has at most 6 steps."""
    failure, steps = find_the_shortcut()
    assert re.search(r"the result was returned with charge .* unpaid", failure), failure
    assert 1 <= len(steps) <= 6, steps


def test_without_the_shortcut_the_machine_passes() -> None:
    """The same search finds nothing wrong with the procedure itself."""
    run_state_machine_as_test(
        CopyOfExtract, settings=settings(SEARCH, max_examples=25, stateful_step_count=25)
    )
