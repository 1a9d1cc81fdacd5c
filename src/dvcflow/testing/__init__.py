"""Property-test workflows: strategies, a state machine per procedure, a pytest plugin.

>>> from dvcflow.testing import machine_for
>>> TestBirthRegistration = machine_for("examples/procedures/khai-sinh.toml").TestCase

`machine_for` turns a procedure into a hypothesis `RuleBasedStateMachine` driving a real
`dvcflow.Engine` on a throwaway database, with the fake back ends and a frozen clock, checking
the library's invariants after every step. `dvcflow.testing.strategies` draws applicants,
actors, procedures, invalid definitions and commands. The pytest plugin
(`dvcflow.testing.pytest_plugin`, loaded automatically where dvcflow is installed) gives
fixtures for an engine on a temporary database, the fakes and a frozen clock. Needs
``hypothesis`` (``pip install "dvcflow[testing]"``); pytest only for the plugin.
"""

from dvcflow.testing import strategies
from dvcflow.testing._invalid import InvalidDefinition
from dvcflow.testing._machine import BUILTIN_INVARIANTS, DossierMachine, machine_for
from dvcflow.testing._payloads import OWNER, Command
from dvcflow.testing._procedures import check_definition

__all__ = [
    "BUILTIN_INVARIANTS",
    "OWNER",
    "Command",
    "DossierMachine",
    "InvalidDefinition",
    "check_definition",
    "machine_for",
    "strategies",
]
