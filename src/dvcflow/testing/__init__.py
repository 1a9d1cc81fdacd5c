"""Property-test workflows: strategies, a state machine per procedure, a pytest plugin.

`machine_for` turns a procedure into a hypothesis `RuleBasedStateMachine` driving a real
`dvcflow.Engine` on a throwaway database, with the fake back ends and a frozen clock, checking
the library's invariants after every step::

    from dvcflow.testing import machine_for

    TestBirthRegistration = machine_for("procedures/khai-sinh.toml").TestCase

`dvcflow.testing.strategies` draws applicants, actors, procedures, invalid definitions and
commands. The pytest plugin (`dvcflow.testing.pytest_plugin`, loaded automatically where
dvcflow is installed) gives fixtures for an engine on a temporary database, the fakes and a
frozen clock. Needs ``hypothesis`` (``pip install "dvcflow[testing]"``); pytest only for the
plugin. The names are imported on first use, so the plugin loads without hypothesis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dvcflow.testing import strategies
    from dvcflow.testing._invalid import InvalidDefinition
    from dvcflow.testing._machine import BUILTIN_INVARIANTS, DossierMachine, machine_for
    from dvcflow.testing._payloads import OWNER, Command
    from dvcflow.testing._procedures import check_definition
    from dvcflow.testing._rigs import close_engines

__all__ = [
    "BUILTIN_INVARIANTS",
    "OWNER",
    "Command",
    "DossierMachine",
    "InvalidDefinition",
    "check_definition",
    "close_engines",
    "machine_for",
    "strategies",
]

_WHERE = {
    "BUILTIN_INVARIANTS": "dvcflow.testing._machine",
    "DossierMachine": "dvcflow.testing._machine",
    "machine_for": "dvcflow.testing._machine",
    "OWNER": "dvcflow.testing._payloads",
    "Command": "dvcflow.testing._payloads",
    "InvalidDefinition": "dvcflow.testing._invalid",
    "check_definition": "dvcflow.testing._procedures",
    "close_engines": "dvcflow.testing._rigs",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whichever public name is asked for
    if name == "strategies":
        return importlib.import_module("dvcflow.testing.strategies")
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    msg = f"module 'dvcflow.testing' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
