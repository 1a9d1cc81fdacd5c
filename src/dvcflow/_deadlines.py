"""Due dates: counting durations, applying the clock policies, reminders and timeliness."""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from dvcflow._calendar import WorkingCalendar
from dvcflow._clock import require_aware, to_utc
from dvcflow._policies import ClockPolicy, PaymentWaitPolicy, SupplementExpiry, SupplementPolicy
from dvcflow._values import Duration, DurationUnit
from dvcflow.errors import CalendarError, InvalidValueError, RefusedError

__all__ = [
    "DEFAULT_RULES",
    "DayCounting",
    "DeadlineRules",
    "DueDateChange",
    "Reminder",
    "ReminderKind",
    "SupplementDeadline",
    "Timeliness",
    "apply_payment_wait",
    "apply_supplement",
    "before_due",
    "classify_handover",
    "due_at",
    "is_overdue",
    "pause_due",
    "reminder_times",
    "reschedule",
    "start_of_count",
    "supplement_deadline",
]


class DayCounting(enum.Enum):
    """Which working day a day-based duration starts counting from."""

    RECEIPT_DAY_ZERO = "receipt_day_zero"
    """The day counting starts is day 0; N days are due at the close of the Nth day after it."""
    RECEIPT_DAY_ONE = "receipt_day_one"
    """The day counting starts is day 1; N days are due at the close of the (N-1)th day after."""


def _cutoff(
    _instance: object,
    _attribute: attrs.Attribute[dt.time | None],
    value: dt.time | None,
) -> None:
    if value is not None and (not isinstance(value, dt.time) or value.tzinfo is not None):
        raise CalendarError("cutoff", f"must be a local time of day without tzinfo, got {value!r}")


@attrs.frozen
class DeadlineRules:
    """How a procedure counts its durations (configurable per procedure or rule pack).

    Args:
        counting: the counting convention; by default the receipt day is day 0.
        cutoff: a local time of day; a dossier received at or after it on a working day counts
            from the next working day (e.g. ``dt.time(15)`` for "received after 15:00").
    """

    counting: DayCounting = attrs.field(
        default=DayCounting.RECEIPT_DAY_ZERO,
        validator=attrs.validators.instance_of(DayCounting),
    )
    cutoff: dt.time | None = attrs.field(default=None, validator=_cutoff)


DEFAULT_RULES = DeadlineRules()
"""Receipt day is day 0, no intra-day cutoff."""


def _check_duration(duration: object) -> Duration:
    if not isinstance(duration, Duration):
        raise CalendarError("duration", f"must be a Duration, got {duration!r}")
    if not isinstance(duration.unit, DurationUnit):
        raise CalendarError("duration", f"unknown unit {duration.unit!r}")
    if duration.amount < 0:
        raise CalendarError("duration", f"must not be negative, got {duration.amount}")
    return duration


def start_of_count(
    calendar: WorkingCalendar,
    received_at: dt.datetime,
    rules: DeadlineRules = DEFAULT_RULES,
) -> dt.datetime:
    """The instant a duration starts counting from, in UTC.

    It is the receipt instant when that falls in office hours on a working day, otherwise the
    next working start; with a ``cutoff``, a start at or after the cutoff moves to the opening
    of the next working day. The local date of the result is day 0.

    Raises:
        CalendarError: when ``received_at`` is naive.
    """
    start = calendar.next_working_start(require_aware(received_at, "received_at"))
    if rules.cutoff is not None:
        local = calendar.to_local(start)
        if local.time() >= rules.cutoff:
            start = calendar.start_of_business(calendar.add_working_days(local.date(), 1))
    return start


def due_at(
    calendar: WorkingCalendar,
    received_at: dt.datetime,
    duration: Duration,
    rules: DeadlineRules = DEFAULT_RULES,
) -> dt.datetime | None:
    """The due date (hạn giải quyết) of ``duration`` counted from ``received_at``, in UTC.

    - working days: the close of business of the Nth working day after day 0;
    - working hours: N hours of office time added to the start of the count;
    - calendar days: the close of business N days after day 0, moved to the next working day
      when that day is not one;
    - same day: the close of business of day 0;
    - none: ``None``.

    Raises:
        CalendarError: for a naive ``received_at`` or an unusable duration.
    """
    duration = _check_duration(duration)
    unit = duration.unit
    if unit is DurationUnit.NONE:
        require_aware(received_at, "received_at")
        return None
    start = start_of_count(calendar, received_at, rules)
    if unit is DurationUnit.WORKING_HOURS:
        return calendar.add_working_time(start, dt.timedelta(hours=duration.amount))
    day_zero = calendar.local_date(start)
    days = duration.amount
    if rules.counting is DayCounting.RECEIPT_DAY_ONE:
        days = max(days - 1, 0)
    if unit is DurationUnit.WORKING_DAYS:
        last = calendar.add_working_days(day_zero, days)
    elif unit is DurationUnit.CALENDAR_DAYS:
        last = day_zero + dt.timedelta(days=days)
        if not calendar.is_working_day(last):
            last = calendar.add_working_days(last, 1)
    elif unit is DurationUnit.SAME_DAY:
        last = day_zero
    else:  # pragma: no cover - every DurationUnit is handled above
        raise CalendarError("duration", f"unknown unit {unit!r}")
    return calendar.close_of_business(last)


@attrs.frozen
class DueDateChange:
    """A recomputed due date, for the engine to record as an event.

    Args:
        old: the due date before, in UTC (``None``: there was none).
        new: the due date after, in UTC (``None``: there is none).
        policy: what moved it, e.g. ``"supplement.restart"``, ``"payment_wait.pause"``,
            ``"reschedule"``.
        reason: why, in words the audit trail keeps.
    """

    old: dt.datetime | None
    new: dt.datetime | None
    policy: str
    reason: str

    @property
    def changed(self) -> bool:
        """Whether the due date moved."""
        return self.old != self.new

    def to_data(self) -> dict[str, str | None]:
        """The change as plain data (ISO 8601 instants) for an event payload."""
        return {
            "old": None if self.old is None else self.old.isoformat(),
            "new": None if self.new is None else self.new.isoformat(),
            "policy": self.policy,
            "reason": self.reason,
        }


def _wait(
    started: dt.datetime,
    ended: dt.datetime,
    names: tuple[str, str] = ("paused_at", "resumed_at"),
) -> None:
    require_aware(started, names[0])
    require_aware(ended, names[1])
    if ended < started:
        raise CalendarError(
            names[1],
            f"{ended.isoformat()} is before the wait began ({started.isoformat()})",
        )


def pause_due(
    calendar: WorkingCalendar,
    due: dt.datetime | None,
    paused_at: dt.datetime,
    resumed_at: dt.datetime,
) -> dt.datetime | None:
    """``due`` moved later by the working time between ``paused_at`` and ``resumed_at``.

    A wait of k whole working days moves a due date at the close of business by k working
    days; a wait of part of a day moves it into the next day by that much office time.

    Raises:
        CalendarError: for naive instants, or ``resumed_at`` before ``paused_at``.
    """
    _wait(paused_at, resumed_at)
    if due is None:
        return None
    waited = calendar.working_time_between(paused_at, resumed_at)
    return calendar.add_working_time(require_aware(due, "due"), waited)


def apply_supplement(  # noqa: PLR0913 - every argument is a fact of the supplement
    calendar: WorkingCalendar,
    due: dt.datetime | None,
    *,
    policy: SupplementPolicy,
    duration: Duration,
    requested_at: dt.datetime,
    completed_at: dt.datetime,
    rules: DeadlineRules = DEFAULT_RULES,
    reason: str = "supplement received",
) -> DueDateChange:
    """The due date after a supplement (yêu cầu bổ sung) requested during processing.

    ``restart`` counts ``duration`` afresh from ``completed_at``, when the complete dossier
    was accepted; ``pause`` moves the due date by the working time spent waiting; ``continue``
    keeps it.

    Raises:
        CalendarError: for naive instants, or ``completed_at`` before ``requested_at``.
    """
    _wait(requested_at, completed_at, ("requested_at", "completed_at"))
    if policy is SupplementPolicy.RESTART:
        new = due_at(calendar, completed_at, duration, rules)
    elif policy is SupplementPolicy.PAUSE:
        new = pause_due(calendar, due, requested_at, completed_at)
    elif policy is SupplementPolicy.CONTINUE:
        new = due
    else:
        raise CalendarError("policy", f"unknown supplement policy {policy!r}")
    return DueDateChange(_utc_or_none(due), _utc_or_none(new), f"supplement.{policy.value}", reason)


def apply_payment_wait(  # noqa: PLR0913 - every argument is a fact of the wait
    calendar: WorkingCalendar,
    due: dt.datetime | None,
    *,
    policy: PaymentWaitPolicy,
    requested_at: dt.datetime,
    paid_at: dt.datetime,
    reason: str = "payment received",
) -> DueDateChange:
    """The due date after waiting for a fee payment: ``pause`` moves it, ``continue`` keeps it.

    Raises:
        CalendarError: for naive instants, or ``paid_at`` before ``requested_at``.
    """
    _wait(requested_at, paid_at, ("requested_at", "paid_at"))
    if policy is PaymentWaitPolicy.PAUSE:
        new = pause_due(calendar, due, requested_at, paid_at)
    elif policy is PaymentWaitPolicy.CONTINUE:
        new = due
    else:
        raise CalendarError("policy", f"unknown payment wait policy {policy!r}")
    return DueDateChange(
        _utc_or_none(due),
        _utc_or_none(new),
        f"payment_wait.{policy.value}",
        reason,
    )


def _utc_or_none(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else to_utc(value, "due")


@attrs.frozen
class SupplementDeadline:
    """When the applicant must have supplemented, and what happens if they have not."""

    at: dt.datetime | None
    """The deadline in UTC; ``None`` when the policy sets none."""
    on_expiry: SupplementExpiry

    def expired(self, now: dt.datetime) -> bool:
        """Whether the deadline has passed at ``now``."""
        return self.at is not None and require_aware(now, "now") > self.at


def supplement_deadline(
    calendar: WorkingCalendar,
    requested_at: dt.datetime,
    policy: ClockPolicy,
    rules: DeadlineRules = DEFAULT_RULES,
) -> SupplementDeadline:
    """The supplement deadline: ``policy.supplement_deadline`` counted from the request.

    Raises:
        CalendarError: when ``requested_at`` is naive.
    """
    at = due_at(calendar, requested_at, policy.supplement_deadline, rules)
    return SupplementDeadline(at, policy.supplement_expiry)


def before_due(calendar: WorkingCalendar, due: dt.datetime, lead: Duration) -> dt.datetime:
    """The instant ``lead`` before ``due``, in UTC.

    Working days keep the local time of day (one working day before 17:00 on Thursday is
    17:00 on Wednesday); working hours count office time backwards; calendar days keep the
    local time of day; same day is the opening of the due date; none is ``due`` itself.

    Raises:
        CalendarError: for a naive ``due`` or an unusable ``lead``.
    """
    lead = _check_duration(lead)
    local = calendar.to_local(due, "due")
    if lead.unit is DurationUnit.WORKING_DAYS:
        day = calendar.add_working_days(local.date(), -lead.amount)
        return dt.datetime.combine(day, local.timetz()).astimezone(dt.UTC)
    if lead.unit is DurationUnit.WORKING_HOURS:
        return calendar.add_working_time(due, -dt.timedelta(hours=lead.amount))
    if lead.unit is DurationUnit.CALENDAR_DAYS:
        day = local.date() - dt.timedelta(days=lead.amount)
        return dt.datetime.combine(day, local.timetz()).astimezone(dt.UTC)
    if lead.unit is DurationUnit.SAME_DAY:
        return calendar.start_of_business(local.date())
    return due.astimezone(dt.UTC)


def reschedule(  # noqa: PLR0913 - every argument is a fact of the request
    calendar: WorkingCalendar,
    due: dt.datetime | None,
    new_due: dt.datetime,
    *,
    now: dt.datetime,
    policy: ClockPolicy,
    times_rescheduled: int,
    reason: str,
) -> DueDateChange:
    """Move the due date to ``new_due`` (gia hạn, with the apology letter, Form 04).

    Allowed only strictly before ``due`` and no later than ``policy.reschedule_lead_time``
    before it, at most ``policy.reschedule_limit`` times, to a later due date on a working day.

    Raises:
        RefusedError: on trigger ``reschedule`` with every reason that applies:
            ``no_due_date``, ``not_before_due``, ``invalid_due_date``,
            ``reschedule_limit_reached``.
        CalendarError: for naive instants.
        InvalidValueError: for an empty reason or a negative count.
    """
    now = to_utc(now, "now")
    new_due = to_utc(new_due, "new_due")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidValueError("reason", "a reschedule needs a reason for the apology letter")
    if isinstance(times_rescheduled, bool) or not isinstance(times_rescheduled, int):
        raise InvalidValueError(
            "times_rescheduled", f"must be an integer, got {times_rescheduled!r}"
        )
    if times_rescheduled < 0:
        raise InvalidValueError("times_rescheduled", f"must be >= 0, got {times_rescheduled}")
    due = _utc_or_none(due)
    problems = _reschedule_problems(calendar, due, new_due, now, policy.reschedule_lead_time)
    if times_rescheduled >= policy.reschedule_limit:
        problems["reschedule_limit_reached"] = (
            f"already rescheduled {times_rescheduled} time(s); "
            f"the limit is {policy.reschedule_limit}"
        )
    if problems:
        raise RefusedError("reschedule", tuple(problems), message="; ".join(problems.values()))
    return DueDateChange(due, new_due, "reschedule", reason)


def _reschedule_problems(
    calendar: WorkingCalendar,
    due: dt.datetime | None,
    new_due: dt.datetime,
    now: dt.datetime,
    lead: Duration,
) -> dict[str, str]:
    """Reason codes (with messages) against moving ``due`` to ``new_due`` at ``now``."""
    problems: dict[str, str] = {}

    def shown(instant: dt.datetime) -> str:
        # Staff read these messages: local wall time, with its offset.
        return calendar.to_local(instant).isoformat()

    if due is None:
        problems["no_due_date"] = "the dossier has no due date to move"
    else:
        latest = before_due(calendar, due, lead)
        if now >= due:
            problems["not_before_due"] = f"the due date {shown(due)} has passed"
        elif now > latest:
            problems["not_before_due"] = (
                f"a reschedule must come {lead} before the due date, by {shown(latest)}"
            )
        if new_due <= due:
            problems["invalid_due_date"] = (
                f"the new due date {shown(new_due)} is not after {shown(due)}"
            )
    if "invalid_due_date" not in problems and not calendar.is_working_day(
        calendar.local_date(new_due)
    ):
        problems["invalid_due_date"] = f"the new due date {shown(new_due)} is not a working day"
    return problems


def is_overdue(
    due: dt.datetime | None,
    now: dt.datetime,
    resolved_at: dt.datetime | None = None,
) -> bool:
    """Whether a dossier is past its due date (quá hạn); derived, never stored as a state.

    The clock stops at resolution: a dossier resolved by its due date never becomes overdue,
    one resolved after it stays overdue. Being overdue never blocks returning the result.

    Raises:
        CalendarError: for naive instants.
    """
    checked = require_aware(now, "now")
    if resolved_at is not None:
        checked = min(checked, require_aware(resolved_at, "resolved_at"))
    return due is not None and checked > require_aware(due, "due")


class ReminderKind(enum.Enum):
    """What a timer does when it fires."""

    REMINDER = "reminder"
    """Warn the officer holding the dossier that the due date is near."""
    ESCALATION = "escalation"
    """Tell the head of the unit the due date has been reached."""


@attrs.frozen(order=True)
class Reminder:
    """A timer to set: when, and what kind."""

    at: dt.datetime
    kind: ReminderKind = attrs.field(order=False)


def reminder_times(
    calendar: WorkingCalendar,
    due: dt.datetime | None,
    policy: ClockPolicy,
) -> tuple[Reminder, ...]:
    """The timers for a due date, earliest first; none without a due date.

    A reminder ``policy.reminder_before_due`` before the due date (see `before_due`) and an
    escalation at the due date itself. Timers already past are the caller's to drop or fire.

    Raises:
        CalendarError: when ``due`` is naive.
    """
    if due is None:
        return ()
    at_due = to_utc(due, "due")
    timers = [Reminder(at_due, ReminderKind.ESCALATION)]
    if policy.reminder_before_due.unit is not DurationUnit.NONE:
        reminder = before_due(calendar, at_due, policy.reminder_before_due)
        if reminder < at_due:
            timers.insert(0, Reminder(reminder, ReminderKind.REMINDER))
    return tuple(timers)


class Timeliness(enum.Enum):
    """How a step's hand-over compares with the step's deadline."""

    EARLY = "early"
    """On a working day before the deadline's."""
    ON_TIME = "on_time"
    """On the deadline's local day, not after the deadline."""
    LATE = "late"
    """After the deadline."""


def classify_handover(
    calendar: WorkingCalendar,
    step_due: dt.datetime,
    handed_over_at: dt.datetime,
) -> Timeliness:
    """Classify a hand-over of a processing step (bàn giao) against its deadline.

    Raises:
        CalendarError: for naive instants.
    """
    due = require_aware(step_due, "step_due")
    handed = require_aware(handed_over_at, "handed_over_at")
    if handed > due:
        return Timeliness.LATE
    if calendar.local_date(handed) == calendar.local_date(due):
        return Timeliness.ON_TIME
    return Timeliness.EARLY
