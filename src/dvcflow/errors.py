"""The error tree: everything dvcflow raises derives from `DvcflowError`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

__all__ = [
    "BackendError",
    "CalendarError",
    "CallbackError",
    "CommandConflictError",
    "ConcurrencyError",
    "ConfigurationError",
    "DvcflowError",
    "InvalidDefinitionError",
    "InvalidValueError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "Problem",
    "RefusedError",
    "SchemaError",
    "SignatureError",
    "StoreUnavailableError",
    "TamperedHistoryError",
]


class DvcflowError(Exception):
    """Base of every error dvcflow raises on purpose."""


class InvalidValueError(DvcflowError, ValueError):
    """A value (an amount, an identifier, a phone number, a datetime) is not acceptable.

    Args:
        field: the name of the offending field, e.g. ``"phone"``.
        message: what is wrong, e.g. ``"must be >= 0"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CalendarError(InvalidValueError):
    """A time value or duration the working-day calendar cannot use (naive datetime, bad unit)."""


@attrs.frozen
class Problem:
    """One thing wrong in a definition file: where it is and what is wrong.

    ``str(problem)`` reads ``file: path: message``, e.g.
    ``procedures/khai-sinh.toml: cases.default.fees[1].amount: must be >= 0``.
    """

    source: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return f"{where}: {self.message}"


class InvalidDefinitionError(DvcflowError):
    """A procedure, catalogue, rule pack or lifecycle definition is invalid.

    Carries every problem found, not only the first, so a file is fixed in one pass.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            msg = "InvalidDefinitionError needs at least one problem"
            raise ValueError(msg)
        lines = [str(problem) for problem in self.problems]
        head = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
        super().__init__(head)


class ConfigurationError(InvalidDefinitionError):
    """The configuration file (providers, calendars, keys) is invalid."""


class NotFoundError(DvcflowError, LookupError):
    """A dossier, procedure, rule pack or other named thing does not exist."""


class RefusedError(DvcflowError):
    """A command was refused; nothing was written.

    Args:
        trigger: the trigger that was refused.
        reasons: machine-readable reason codes, e.g. ``("fees_unpaid",)``.
        allowed: the triggers the actor may fire now instead.
        message: a human-readable explanation.
    """

    def __init__(
        self,
        trigger: str,
        reasons: Sequence[str],
        allowed: Sequence[str] = (),
        message: str = "",
    ) -> None:
        self.trigger = trigger
        self.reasons = tuple(reasons)
        self.allowed = tuple(allowed)
        text = message or ", ".join(self.reasons)
        super().__init__(f"{trigger} refused: {text}")


class PermissionDeniedError(RefusedError):
    """The actor lacks the role or the scope (owner, agency) for the command."""


class ConcurrencyError(DvcflowError):
    """Another command changed the dossier first; nothing was written. Retry the command."""


class CommandConflictError(DvcflowError):
    """A ``command_id`` seen before arrived with a different command (trigger, actor or payload)."""


class StoreUnavailableError(DvcflowError):
    """The database cannot be reached or opened (a connection, file or permission problem)."""


class SchemaError(DvcflowError):
    """The database schema does not match this version of dvcflow (newer, or not dvcflow's)."""


class SignatureError(DvcflowError):
    """A signature or message authentication check failed (back-end callback, download link)."""


class TamperedHistoryError(DvcflowError):
    """A dossier's history no longer verifies: an event was edited, deleted, inserted or moved."""


class PluginError(DvcflowError):
    """A plugin does not fit dvcflow's hook specifications (a misspelt hook, a wrong argument).

    Raised when the plugin is registered, so a typo fails at start-up, not at the first call.
    """


class BackendError(DvcflowError):
    """A back end (payment gateway, courier, message gateway) failed to do what was asked.

    Args:
        message: what went wrong, without secrets or personal data.
        retryable: whether trying again later may succeed (a timeout, a 5xx); ``False`` for an
            answer that will not change (a rejected request, a missing provider), which the
            outbox worker turns into an incident at once.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class CallbackError(DvcflowError):
    """A back-end callback was rejected; it is in the security log and nothing else changed.

    Malformed, oversize, for an unknown reference or with an amount that does not match.

    Args:
        kind: what was wrong, e.g. ``"unknown_reference"``, ``"amount_mismatch"``.
        message: a human-readable explanation.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
