"""Clock policies a rule pack carries: supplements, payment waits, expiry, reschedules."""

from __future__ import annotations

import enum

import attrs

from dvcflow._values import Duration, DurationUnit
from dvcflow.errors import InvalidValueError

__all__ = ["ClockPolicy", "PaymentWaitPolicy", "SupplementExpiry", "SupplementPolicy"]


class SupplementPolicy(enum.Enum):
    """What a supplement requested during processing does to the due date."""

    RESTART = "restart"
    """The full duration counts again from the moment the complete dossier is accepted."""
    PAUSE = "pause"
    """The due date moves by the working time spent waiting for the applicant."""
    CONTINUE = "continue"
    """The due date stays where it was."""


class PaymentWaitPolicy(enum.Enum):
    """What waiting for a fee payment does to the due date."""

    PAUSE = "pause"
    CONTINUE = "continue"


class SupplementExpiry(enum.Enum):
    """What happens when the applicant does not supplement in time."""

    STOP = "stop"
    """Processing stops (dừng xử lý)."""
    WITHDRAW = "withdraw"
    """The dossier is treated as withdrawn."""


def _positive_limit(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError("reschedule_limit", f"must be an integer >= 0, got {value!r}")


@attrs.frozen
class ClockPolicy:
    """The deadline rules of a rule pack (or a procedure's override of them).

    Defaults follow the production systems DOMAIN.md describes: a supplement in processing
    restarts the clock, a payment wait pauses it, the applicant has 30 calendar days
    (illustrative, configurable) to supplement before processing stops, and a dossier may be
    rescheduled once, at least one working day (configurable) before its due date.
    """

    supplement: SupplementPolicy = SupplementPolicy.RESTART
    payment_wait: PaymentWaitPolicy = PaymentWaitPolicy.PAUSE
    supplement_deadline: Duration = Duration(30, DurationUnit.CALENDAR_DAYS)
    supplement_expiry: SupplementExpiry = SupplementExpiry.STOP
    reschedule_limit: int = attrs.field(default=1, validator=_positive_limit)
    reschedule_lead_time: Duration = Duration(1, DurationUnit.WORKING_DAYS)
    reminder_before_due: Duration = Duration(1, DurationUnit.WORKING_DAYS)
