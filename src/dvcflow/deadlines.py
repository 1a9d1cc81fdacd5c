"""Deadlines on the working-day calendar: pure functions the kernel and agencies both use.

Everything here is pure: a `dvcflow.WorkingCalendar`, instants (timezone-aware) and policies in,
due dates and `dvcflow.DueDateChange` values out. See docs/deadlines.md.
"""

from dvcflow._deadlines import (
    DEFAULT_RULES,
    Reminder,
    ReminderKind,
    SupplementDeadline,
    apply_payment_wait,
    apply_supplement,
    before_due,
    classify_handover,
    due_at,
    is_overdue,
    pause_due,
    reminder_times,
    reschedule,
    start_of_count,
    supplement_deadline,
)

__all__ = [
    "DEFAULT_RULES",
    "Reminder",
    "ReminderKind",
    "SupplementDeadline",
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
