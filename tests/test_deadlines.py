"""Tests for dvcflow._deadlines: due dates, clock policies, reschedules, reminders."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvcflow._calendar import WorkingCalendar
from dvcflow._deadlines import (
    DEFAULT_RULES,
    DayCounting,
    DeadlineRules,
    DueDateChange,
    Reminder,
    ReminderKind,
    SupplementDeadline,
    Timeliness,
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
from dvcflow._policies import ClockPolicy, PaymentWaitPolicy, SupplementExpiry, SupplementPolicy
from dvcflow._values import Duration
from dvcflow.errors import CalendarError, InvalidValueError, RefusedError

HANOI = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
CALENDAR = WorkingCalendar()
D = dt.date
CLOSE = dt.time(17)


def at(year, month, day, hour=0, minute=0):
    """A Hà Nội wall-clock instant."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=HANOI)


def local(instant):
    return instant.astimezone(HANOI)


instants = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=dt.datetime(2030, 12, 31),  # noqa: DTZ001
    timezones=st.just(HANOI),
).map(lambda value: value.replace(second=0, microsecond=0))
day_counts = st.integers(min_value=0, max_value=400)
units = st.sampled_from(
    [Duration.working_days, Duration.working_hours, Duration.calendar_days],
)


class TestDeadlineRules:
    def test_defaults(self):
        """By default the receipt day is day 0 and there is no cutoff."""
        assert DeadlineRules() == DEFAULT_RULES
        assert DEFAULT_RULES.counting is DayCounting.RECEIPT_DAY_ZERO
        assert DEFAULT_RULES.cutoff is None

    @pytest.mark.parametrize("cutoff", [dt.time(15, tzinfo=dt.UTC), "15:00"])
    def test_cutoff_must_be_a_local_time(self, cutoff):
        """A cutoff is a naive local time of day."""
        with pytest.raises(CalendarError, match="cutoff"):
            DeadlineRules(cutoff=cutoff)

    def test_counting_must_be_a_convention(self):
        """The counting convention is a DayCounting member."""
        with pytest.raises(TypeError):
            DeadlineRules(counting="receipt_day_one")  # type: ignore[arg-type]


class TestStartOfCount:
    @pytest.mark.parametrize(
        ("received", "expected"),
        [
            (at(2025, 1, 24, 15, 30), at(2025, 1, 24, 15, 30)),  # in hours: the receipt
            (at(2025, 1, 24, 6, 45), at(2025, 1, 24, 7, 0)),  # before opening
            (at(2025, 1, 24, 12, 15), at(2025, 1, 24, 13, 30)),  # lunch
            (at(2026, 2, 13, 17, 30), at(2026, 2, 23, 7, 0)),  # after hours, then Tết
            (at(2025, 1, 25, 10, 0), at(2025, 2, 3, 7, 0)),  # Saturday, then Tết
            (at(2025, 5, 2, 9, 0), at(2025, 5, 5, 7, 0)),  # the swapped day off
        ],
    )
    def test_without_cutoff(self, received, expected):
        """A receipt outside working time counts from the next working start."""
        assert start_of_count(CALENDAR, received) == expected

    @pytest.mark.parametrize(
        ("received", "expected"),
        [
            (at(2025, 1, 24, 14, 59), at(2025, 1, 24, 14, 59)),
            (at(2025, 1, 24, 15, 0), at(2025, 2, 3, 7, 0)),  # at the cutoff: next working day
            (at(2025, 1, 24, 16, 30), at(2025, 2, 3, 7, 0)),
            (at(2025, 4, 25, 15, 30), at(2025, 4, 26, 7, 0)),  # the make-up Saturday
            (at(2025, 1, 24, 18, 0), at(2025, 2, 3, 7, 0)),  # after hours is unaffected
        ],
    )
    def test_cutoff_moves_the_start_to_the_next_working_day(self, received, expected):
        """With a 15:00 cutoff, a receipt at or after 15:00 counts from the next working day."""
        rules = DeadlineRules(cutoff=dt.time(15))
        assert start_of_count(CALENDAR, received, rules) == expected

    def test_naive_receipt_is_rejected(self):
        """The receipt instant must carry its time zone."""
        with pytest.raises(CalendarError, match="received_at"):
            start_of_count(CALENDAR, dt.datetime(2025, 1, 24, 15, 30))  # noqa: DTZ001


class TestDueAt:
    def test_domain_example_tet_is_skipped(self):
        """Received Fri 24/01/2025 15:30, +5 working days -> Fri 07/02/2025 (Tết skipped)."""
        due = due_at(CALENDAR, at(2025, 1, 24, 15, 30), Duration.working_days(5))
        assert due == at(2025, 2, 7, 17, 0)
        assert due is not None
        assert due.tzinfo is dt.UTC

    def test_domain_example_make_up_saturday_counts(self):
        """Received Fri 25/04/2025, +2 working days -> Mon 28/04/2025 (Saturday 26/04 worked)."""
        due = due_at(CALENDAR, at(2025, 4, 25, 9, 0), Duration.working_days(2))
        assert due == at(2025, 4, 28, 17, 0)

    def test_domain_example_after_hours_receipt(self):
        """Received Fri 13/02/2026 17:30, +3 working days -> starts Mon 23/02, due Thu 26/02."""
        received = at(2026, 2, 13, 17, 30)
        assert start_of_count(CALENDAR, received) == at(2026, 2, 23, 7, 0)
        assert due_at(CALENDAR, received, Duration.working_days(3)) == at(2026, 2, 26, 17, 0)

    def test_receipt_day_counts_as_day_one(self):
        """Under the alternative convention, 5 days from Fri 24/01/2025 end Thu 06/02."""
        rules = DeadlineRules(counting=DayCounting.RECEIPT_DAY_ONE)
        due = due_at(CALENDAR, at(2025, 1, 24, 15, 30), Duration.working_days(5), rules)
        assert due == at(2025, 2, 6, 17, 0)

    def test_zero_working_days_is_the_close_of_day_zero(self):
        """0 working days are due when the receipt day closes."""
        due = due_at(CALENDAR, at(2025, 1, 24, 9, 0), Duration.working_days(0))
        assert due == at(2025, 1, 24, 17, 0)

    def test_non_working_day_receipt(self):
        """A receipt on a holiday makes the next working day day 0."""
        due = due_at(CALENDAR, at(2025, 9, 2, 10, 0), Duration.working_days(1))
        assert due == at(2025, 9, 4, 17, 0)

    def test_cutoff_applies_to_working_days(self):
        """A 15:30 receipt with a 15:00 cutoff counts from Mon 03/02/2025."""
        rules = DeadlineRules(cutoff=dt.time(15))
        due = due_at(CALENDAR, at(2025, 1, 24, 15, 30), Duration.working_days(5), rules)
        assert due == at(2025, 2, 10, 17, 0)

    @pytest.mark.parametrize(
        ("received", "hours", "expected"),
        [
            (at(2025, 1, 24, 10, 0), 4, at(2025, 1, 24, 16, 0)),  # across lunch
            (at(2025, 1, 24, 7, 30), 4, at(2025, 1, 24, 11, 30)),  # ends at lunch, not 13:30
            (at(2025, 1, 24, 15, 30), 8, at(2025, 2, 3, 15, 30)),  # across the night and Tết
            (at(2025, 1, 24, 19, 0), 2, at(2025, 2, 3, 9, 0)),  # after hours
            (at(2025, 3, 3, 7, 0), 16, at(2025, 3, 4, 17, 0)),  # 16 h = 2 days of 8 h
            (at(2025, 3, 3, 12, 0), 0, at(2025, 3, 3, 13, 30)),  # 0 h: the start of the count
        ],
    )
    def test_working_hours(self, received, hours, expected):
        """Hours count inside office hours, from the receipt instant."""
        assert due_at(CALENDAR, received, Duration.working_hours(hours)) == expected

    def test_calendar_days_move_off_non_working_days(self):
        """10 calendar days from Mon 20/01/2025 land in Tết and move to Mon 03/02."""
        due = due_at(CALENDAR, at(2025, 1, 20, 9, 0), Duration.calendar_days(10))
        assert due == at(2025, 2, 3, 17, 0)

    def test_calendar_days_on_a_working_day(self):
        """4 calendar days from Mon 03/02/2025 end Fri 07/02."""
        due = due_at(CALENDAR, at(2025, 2, 3, 9, 0), Duration.calendar_days(4))
        assert due == at(2025, 2, 7, 17, 0)

    @pytest.mark.parametrize(
        ("received", "expected"),
        [
            (at(2025, 1, 24, 9, 0), at(2025, 1, 24, 17, 0)),
            (at(2025, 1, 24, 18, 0), at(2025, 2, 3, 17, 0)),
        ],
    )
    def test_same_day(self, received, expected):
        """Same day is due at the close of the day counting starts."""
        assert due_at(CALENDAR, received, Duration.same_day()) == expected

    def test_none_has_no_due_date(self):
        """A procedure without a processing time has no due date."""
        assert due_at(CALENDAR, at(2025, 1, 24, 9, 0), Duration.none()) is None

    def test_naive_receipt_is_rejected_for_every_unit(self):
        """Even with no due date, a naive receipt instant is refused."""
        with pytest.raises(CalendarError, match="naive"):
            due_at(CALENDAR, dt.datetime(2025, 1, 24, 9), Duration.none())  # noqa: DTZ001

    def test_not_a_duration(self):
        """A bare number is not a duration."""
        with pytest.raises(CalendarError, match="must be a Duration"):
            due_at(CALENDAR, at(2025, 1, 24, 9), 5)  # type: ignore[arg-type]

    def test_negative_duration_is_a_typed_error(self):
        """Negative durations cannot be built, and are refused if forced through."""
        with pytest.raises(InvalidValueError, match=">= 0"):
            Duration.working_days(-1)
        forced = Duration.working_days(1)
        object.__setattr__(forced, "amount", -1)
        with pytest.raises(CalendarError, match="negative"):
            due_at(CALENDAR, at(2025, 1, 24, 9), forced)

    def test_unknown_unit_is_a_typed_error(self):
        """A unit that is not a DurationUnit is refused."""
        forced = Duration.working_days(1)
        object.__setattr__(forced, "unit", "fortnights")
        with pytest.raises(CalendarError, match="unknown unit"):
            due_at(CALENDAR, at(2025, 1, 24, 9), forced)


DUE = at(2025, 2, 7, 17, 0)  # 5 working days from Fri 24/01/2025 15:30


class TestSupplement:
    def test_restart_counts_afresh_from_the_complete_dossier(self):
        """restart: the full duration again from the moment the complete dossier is accepted."""
        change = apply_supplement(
            CALENDAR,
            DUE,
            policy=SupplementPolicy.RESTART,
            duration=Duration.working_days(5),
            requested_at=at(2025, 2, 4, 9, 0),
            completed_at=at(2025, 2, 10, 10, 0),
        )
        assert change == DueDateChange(
            DUE,
            at(2025, 2, 17, 17, 0),
            "supplement.restart",
            "supplement received",
        )

    def test_pause_moves_by_the_working_time_waited(self):
        """pause: two working days waited move the due date two working days."""
        change = apply_supplement(
            CALENDAR,
            DUE,
            policy=SupplementPolicy.PAUSE,
            duration=Duration.working_days(5),
            requested_at=at(2025, 2, 4, 9, 0),
            completed_at=at(2025, 2, 6, 9, 0),
            reason="birth certificate copy supplied",
        )
        assert change.new == at(2025, 2, 11, 17, 0)
        assert change.policy == "supplement.pause"
        assert change.reason == "birth certificate copy supplied"
        assert change.changed

    def test_pause_over_a_weekend_counts_only_working_time(self):
        """A wait from Friday 16:00 to Monday 08:00 is two working hours."""
        change = apply_supplement(
            CALENDAR,
            DUE,
            policy=SupplementPolicy.PAUSE,
            duration=Duration.working_days(5),
            requested_at=at(2025, 2, 7, 16, 0),
            completed_at=at(2025, 2, 10, 8, 0),
        )
        assert change.new == at(2025, 2, 10, 9, 0)

    def test_continue_keeps_the_due_date(self):
        """continue: the due date does not move."""
        change = apply_supplement(
            CALENDAR,
            DUE,
            policy=SupplementPolicy.CONTINUE,
            duration=Duration.working_days(5),
            requested_at=at(2025, 2, 4, 9, 0),
            completed_at=at(2025, 2, 6, 9, 0),
        )
        assert change.new == change.old == DUE
        assert not change.changed

    def test_no_due_date_stays_none_unless_restarted(self):
        """A dossier without a due date keeps none when paused."""
        change = apply_supplement(
            CALENDAR,
            None,
            policy=SupplementPolicy.PAUSE,
            duration=Duration.none(),
            requested_at=at(2025, 2, 4, 9, 0),
            completed_at=at(2025, 2, 6, 9, 0),
        )
        assert (change.old, change.new) == (None, None)

    def test_completion_before_request_is_rejected(self):
        """The wait cannot end before it began."""
        with pytest.raises(CalendarError, match="before the wait began"):
            apply_supplement(
                CALENDAR,
                DUE,
                policy=SupplementPolicy.PAUSE,
                duration=Duration.working_days(5),
                requested_at=at(2025, 2, 6, 9, 0),
                completed_at=at(2025, 2, 4, 9, 0),
            )


class TestPaymentWait:
    def test_pause(self):
        """pause: half a working day waiting for the fee moves the due date half a day."""
        change = apply_payment_wait(
            CALENDAR,
            DUE,
            policy=PaymentWaitPolicy.PAUSE,
            requested_at=at(2025, 2, 5, 13, 30),
            paid_at=at(2025, 2, 5, 17, 30),
        )
        assert change.new == at(2025, 2, 10, 10, 30)
        assert change.policy == "payment_wait.pause"
        assert change.reason == "payment received"

    def test_continue(self):
        """continue: waiting for payment does not move the due date."""
        change = apply_payment_wait(
            CALENDAR,
            DUE,
            policy=PaymentWaitPolicy.CONTINUE,
            requested_at=at(2025, 2, 5, 13, 30),
            paid_at=at(2025, 2, 6, 9, 0),
        )
        assert change == DueDateChange(DUE, DUE, "payment_wait.continue", "payment received")

    def test_naive_instants_are_rejected(self):
        """The wait's instants must be aware."""
        with pytest.raises(CalendarError, match="paid_at"):
            apply_payment_wait(
                CALENDAR,
                DUE,
                policy=PaymentWaitPolicy.PAUSE,
                requested_at=at(2025, 2, 5, 13, 30),
                paid_at=dt.datetime(2025, 2, 6, 9),  # noqa: DTZ001
            )


class TestPauseDue:
    def test_whole_working_days_across_tet(self):
        """Wed 22/01 09:00 to Tue 04/02 09:00 is four working days; the due date moves four."""
        new = pause_due(CALENDAR, DUE, at(2025, 1, 22, 9, 0), at(2025, 2, 4, 9, 0))
        assert new == at(2025, 2, 13, 17, 0)

    def test_no_due_date(self):
        """Pausing a dossier without a due date leaves it without one."""
        assert pause_due(CALENDAR, None, at(2025, 1, 22, 9, 0), at(2025, 2, 4, 9, 0)) is None


class TestSupplementDeadline:
    def test_default_thirty_calendar_days_then_stop(self):
        """The default gives 30 calendar days, after which processing stops."""
        deadline = supplement_deadline(CALENDAR, at(2025, 3, 3, 10, 0), ClockPolicy())
        assert deadline == SupplementDeadline(at(2025, 4, 2, 17, 0), SupplementExpiry.STOP)
        assert not deadline.expired(at(2025, 4, 2, 17, 0))
        assert deadline.expired(at(2025, 4, 2, 17, 1))

    def test_withdraw_and_working_days(self):
        """A rule pack may count working days and treat expiry as withdrawal."""
        policy = ClockPolicy(
            supplement_deadline=Duration.working_days(10),
            supplement_expiry=SupplementExpiry.WITHDRAW,
        )
        deadline = supplement_deadline(CALENDAR, at(2025, 1, 24, 10, 0), policy)
        assert deadline.at == at(2025, 2, 14, 17, 0)
        assert deadline.on_expiry is SupplementExpiry.WITHDRAW

    def test_no_deadline_never_expires(self):
        """Without a supplement deadline there is nothing to expire."""
        policy = ClockPolicy(supplement_deadline=Duration.none())
        deadline = supplement_deadline(CALENDAR, at(2025, 1, 24, 10, 0), policy)
        assert deadline.at is None
        assert not deadline.expired(at(2030, 1, 1))


class TestReschedule:
    def test_allowed_before_the_lead_time(self):
        """A first reschedule, two days ahead, to a later working day, is recorded."""
        change = reschedule(
            CALENDAR,
            DUE,
            at(2025, 2, 14, 17, 0),
            now=at(2025, 2, 5, 10, 0),
            policy=ClockPolicy(),
            times_rescheduled=0,
            reason="site inspection needed",
        )
        assert change == DueDateChange(
            DUE,
            at(2025, 2, 14, 17, 0),
            "reschedule",
            "site inspection needed",
        )

    @pytest.mark.parametrize("now", [at(2025, 2, 6, 16, 59), at(2025, 2, 6, 17, 0)])
    def test_allowed_up_to_one_working_day_before(self, now):
        """By default a reschedule may come until one working day before the due date."""
        change = reschedule(
            CALENDAR,
            DUE,
            at(2025, 2, 14, 17, 0),
            now=now,
            policy=ClockPolicy(),
            times_rescheduled=0,
            reason="late opinion from another agency",
        )
        assert change.new == at(2025, 2, 14, 17, 0)

    @pytest.mark.parametrize("now", [at(2025, 2, 6, 17, 1), at(2025, 2, 7, 9, 0)])
    def test_refused_inside_the_lead_time(self, now):
        """Less than one working day before the due date, a reschedule is refused."""
        with pytest.raises(RefusedError, match=r"by 2025-02-06T17:00:00\+07:00") as info:
            reschedule(
                CALENDAR,
                DUE,
                at(2025, 2, 14, 17, 0),
                now=now,
                policy=ClockPolicy(),
                times_rescheduled=0,
                reason="late opinion from another agency",
            )
        assert info.value.reasons == ("not_before_due",)
        assert info.value.trigger == "reschedule"

    def test_lead_time_in_working_hours(self):
        """A four-hour lead time allows a reschedule on the due date's morning."""
        policy = ClockPolicy(reschedule_lead_time=Duration.working_hours(4))
        change = reschedule(
            CALENDAR,
            DUE,
            at(2025, 2, 10, 17, 0),
            now=at(2025, 2, 7, 11, 0),
            policy=policy,
            times_rescheduled=0,
            reason="r",
        )
        assert change.new == at(2025, 2, 10, 17, 0)
        with pytest.raises(RefusedError, match=r"by 2025-02-07T11:00:00\+07:00"):
            reschedule(
                CALENDAR,
                DUE,
                at(2025, 2, 10, 17, 0),
                now=at(2025, 2, 7, 14, 0),
                policy=policy,
                times_rescheduled=0,
                reason="r",
            )

    @pytest.mark.parametrize("now", [DUE, at(2025, 2, 8, 9, 0)])
    def test_not_at_or_after_the_due_date(self, now):
        """Once the due date is reached, the dossier is overdue and cannot be rescheduled."""
        policy = ClockPolicy(reschedule_lead_time=Duration.none())
        with pytest.raises(RefusedError, match="has passed") as info:
            reschedule(
                CALENDAR,
                DUE,
                at(2025, 2, 14, 17, 0),
                now=now,
                policy=policy,
                times_rescheduled=0,
                reason="r",
            )
        assert info.value.reasons == ("not_before_due",)

    def test_limit_reached(self):
        """The default limit is one reschedule; a second is refused."""
        with pytest.raises(RefusedError) as info:
            reschedule(
                CALENDAR,
                DUE,
                at(2025, 2, 14, 17, 0),
                now=at(2025, 2, 3, 9, 0),
                policy=ClockPolicy(),
                times_rescheduled=1,
                reason="r",
            )
        assert info.value.reasons == ("reschedule_limit_reached",)

    def test_a_higher_limit_allows_more(self):
        """A rule pack allowing two reschedules accepts the second."""
        change = reschedule(
            CALENDAR,
            DUE,
            at(2025, 2, 14, 17, 0),
            now=at(2025, 2, 3, 9, 0),
            policy=ClockPolicy(reschedule_limit=2),
            times_rescheduled=1,
            reason="r",
        )
        assert change.new == at(2025, 2, 14, 17, 0)

    @pytest.mark.parametrize(
        ("new_due", "message"),
        [
            (DUE, "is not after"),
            (at(2025, 2, 6, 17, 0), "is not after"),
            (at(2025, 4, 30, 17, 0), "is not a working day"),
        ],
    )
    def test_new_due_date_must_be_later_and_on_a_working_day(self, new_due, message):
        """An earlier, equal or holiday due date is refused as invalid_due_date."""
        with pytest.raises(RefusedError, match=message) as info:
            reschedule(
                CALENDAR,
                DUE,
                new_due,
                now=at(2025, 2, 3, 9, 0),
                policy=ClockPolicy(),
                times_rescheduled=0,
                reason="r",
            )
        assert info.value.reasons == ("invalid_due_date",)

    def test_every_reason_is_reported(self):
        """A request wrong in three ways names all three."""
        with pytest.raises(RefusedError) as info:
            reschedule(
                CALENDAR,
                DUE,
                at(2025, 2, 1, 17, 0),
                now=at(2025, 2, 7, 16, 0),
                policy=ClockPolicy(),
                times_rescheduled=3,
                reason="r",
            )
        assert info.value.reasons == (
            "not_before_due",
            "invalid_due_date",
            "reschedule_limit_reached",
        )

    def test_no_due_date(self):
        """A dossier without a due date has nothing to reschedule."""
        with pytest.raises(RefusedError) as info:
            reschedule(
                CALENDAR,
                None,
                at(2025, 2, 14, 17, 0),
                now=at(2025, 2, 3, 9, 0),
                policy=ClockPolicy(),
                times_rescheduled=0,
                reason="r",
            )
        assert info.value.reasons == ("no_due_date",)

    @pytest.mark.parametrize(
        ("reason", "times"),
        [("", 0), ("  ", 0), ("r", -1), ("r", True)],
    )
    def test_bad_arguments(self, reason, times):
        """An empty reason or a nonsense count is a value error, not a refusal."""
        with pytest.raises(InvalidValueError):
            reschedule(
                CALENDAR,
                DUE,
                at(2025, 2, 14, 17, 0),
                now=at(2025, 2, 3, 9, 0),
                policy=ClockPolicy(),
                times_rescheduled=times,
                reason=reason,
            )

    def test_naive_new_due_is_rejected(self):
        """The new due date must be aware like every instant."""
        with pytest.raises(CalendarError, match="new_due"):
            reschedule(
                CALENDAR,
                DUE,
                dt.datetime(2025, 2, 14, 17),  # noqa: DTZ001
                now=at(2025, 2, 3, 9, 0),
                policy=ClockPolicy(),
                times_rescheduled=0,
                reason="r",
            )


class TestIsOverdue:
    @pytest.mark.parametrize(
        ("now", "resolved_at", "overdue"),
        [
            (at(2025, 2, 7, 16, 0), None, False),
            (DUE, None, False),  # due means "by then"
            (at(2025, 2, 7, 17, 1), None, True),
            (at(2025, 3, 1), at(2025, 2, 7, 10, 0), False),  # resolved in time: never overdue
            (at(2025, 3, 1), at(2025, 2, 10, 10, 0), True),  # resolved late: stays overdue
            (at(2025, 2, 6), at(2025, 2, 10, 10, 0), False),  # looking back before the due date
        ],
    )
    def test_derived_from_due_now_and_resolution(self, now, resolved_at, overdue):
        """Overdue is now (or the resolution, if earlier) past the due date."""
        assert is_overdue(DUE, now, resolved_at) is overdue

    def test_no_due_date_is_never_overdue(self):
        """Without a due date nothing is overdue."""
        assert not is_overdue(None, at(2099, 1, 1))

    def test_naive_now_is_rejected(self):
        """now must be aware."""
        with pytest.raises(CalendarError, match="now"):
            is_overdue(DUE, dt.datetime(2025, 3, 1))  # noqa: DTZ001


class TestReminders:
    def test_default_one_working_day_before_and_an_escalation(self):
        """A reminder one working day before the due date, an escalation at it."""
        assert reminder_times(CALENDAR, DUE, ClockPolicy()) == (
            Reminder(at(2025, 2, 6, 17, 0), ReminderKind.REMINDER),
            Reminder(DUE, ReminderKind.ESCALATION),
        )

    def test_one_working_day_before_skips_tet(self):
        """The working day before Mon 03/02/2025 is Fri 24/01/2025."""
        timers = reminder_times(CALENDAR, at(2025, 2, 3, 17, 0), ClockPolicy())
        assert timers[0].at == at(2025, 1, 24, 17, 0)

    @pytest.mark.parametrize(
        ("lead", "expected"),
        [
            (Duration.working_hours(2), at(2025, 2, 7, 15, 0)),
            (Duration.working_hours(4), at(2025, 2, 7, 11, 0)),
            (Duration.calendar_days(3), at(2025, 2, 4, 17, 0)),
            (Duration.same_day(), at(2025, 2, 7, 7, 0)),
            (Duration.working_days(2), at(2025, 2, 5, 17, 0)),
        ],
    )
    def test_other_lead_times(self, lead, expected):
        """The lead time may be working hours, calendar days or the due date's morning."""
        timers = reminder_times(CALENDAR, DUE, ClockPolicy(reminder_before_due=lead))
        assert timers == (
            Reminder(expected, ReminderKind.REMINDER),
            Reminder(DUE, ReminderKind.ESCALATION),
        )
        assert before_due(CALENDAR, DUE, lead) == expected

    @pytest.mark.parametrize("lead", [Duration.none(), Duration.working_days(0)])
    def test_no_lead_means_only_the_escalation(self, lead):
        """Without a lead time only the escalation is set."""
        timers = reminder_times(CALENDAR, DUE, ClockPolicy(reminder_before_due=lead))
        assert timers == (Reminder(DUE, ReminderKind.ESCALATION),)

    def test_no_due_date_no_timers(self):
        """A dossier without a due date needs no timers."""
        assert reminder_times(CALENDAR, None, ClockPolicy()) == ()


class TestClassifyHandover:
    @pytest.mark.parametrize(
        ("handed_over_at", "expected"),
        [
            (at(2025, 2, 6, 16, 0), Timeliness.EARLY),
            (at(2025, 2, 7, 0, 30), Timeliness.ON_TIME),  # 6 Feb in UTC, 7 Feb locally
            (at(2025, 2, 7, 9, 0), Timeliness.ON_TIME),
            (DUE, Timeliness.ON_TIME),
            (at(2025, 2, 7, 17, 1), Timeliness.LATE),
            (at(2025, 2, 10, 8, 0), Timeliness.LATE),
        ],
    )
    def test_early_on_time_late(self, handed_over_at, expected):
        """On time is the deadline's local day up to the deadline; earlier days are early."""
        assert classify_handover(CALENDAR, DUE, handed_over_at) is expected

    def test_naive_is_rejected(self):
        """The hand-over instant must be aware."""
        with pytest.raises(CalendarError, match="handed_over_at"):
            classify_handover(CALENDAR, DUE, dt.datetime(2025, 2, 7, 9))  # noqa: DTZ001


class TestDueDateChange:
    def test_to_data_for_the_event_log(self):
        """The change becomes plain data with ISO 8601 instants."""
        change = DueDateChange(DUE, None, "reschedule", "because")
        assert change.to_data() == {
            "old": "2025-02-07T17:00:00+07:00",
            "new": None,
            "policy": "reschedule",
            "reason": "because",
        }
        assert change.changed

    def test_recomputations_return_utc(self):
        """Every instant a change carries is UTC, whatever zone came in."""
        change = apply_supplement(
            CALENDAR,
            DUE,
            policy=SupplementPolicy.CONTINUE,
            duration=Duration.working_days(5),
            requested_at=at(2025, 2, 4, 9, 0),
            completed_at=at(2025, 2, 6, 9, 0),
        )
        assert change.old is not None
        assert change.old.tzinfo is dt.UTC
        assert change.to_data()["old"] == "2025-02-07T10:00:00+00:00"


class TestProperties:
    @given(instants, day_counts)
    def test_working_day_due_dates_close_a_working_day(self, received, n):
        """A working-day due date is the close of business of a working day."""
        due = due_at(CALENDAR, received, Duration.working_days(n))
        assert due is not None
        assert CALENDAR.is_working_day(local(due).date())
        assert local(due).time() == CLOSE

    @given(instants, day_counts)
    def test_calendar_day_due_dates_land_on_working_days(self, received, n):
        """A calendar-day due date is moved onto a working day."""
        due = due_at(CALENDAR, received, Duration.calendar_days(n))
        assert due is not None
        assert CALENDAR.is_working_day(local(due).date())

    @given(instants, units, day_counts, day_counts)
    def test_due_dates_are_monotone_in_the_duration(self, received, unit, a, b):
        """A longer duration is never due earlier."""
        low, high = sorted((a, b))
        early, late = due_at(CALENDAR, received, unit(low)), due_at(CALENDAR, received, unit(high))
        assert early is not None
        assert late is not None
        assert early <= late

    @given(instants, day_counts, day_counts)
    def test_day_counts_add_up(self, received, a, b):
        """Due in a days, then b more working days, equals due in a + b days."""
        first = due_at(CALENDAR, received, Duration.working_days(a))
        total = due_at(CALENDAR, received, Duration.working_days(a + b))
        assert first is not None
        day = CALENDAR.add_working_days(local(first).date(), b)
        assert CALENDAR.close_of_business(day) == total

    @given(instants, st.integers(min_value=1, max_value=40 * 8))
    def test_hour_due_instants_lie_inside_office_hours(self, received, hours):
        """A working-hours due instant is inside office hours (a period's end included)."""
        due = due_at(CALENDAR, received, Duration.working_hours(hours))
        assert due is not None
        value = local(due)
        assert CALENDAR.is_working_day(value.date())
        assert any(start <= value.time() <= end for start, end in CALENDAR.office_hours.periods)
        start = start_of_count(CALENDAR, received)
        assert CALENDAR.working_time_between(start, due) == dt.timedelta(hours=hours)

    @given(
        instants,
        day_counts,
        st.integers(min_value=0, max_value=60),
        st.integers(min_value=0, max_value=60),
        st.integers(min_value=7 * 60, max_value=17 * 60 - 1),
    )
    def test_a_pause_of_k_working_days_moves_the_due_date_k_days(
        self,
        received,
        n,
        offset,
        k,
        minute,
    ):
        """Waiting k whole working days moves a due date by exactly k working days."""
        due = due_at(CALENDAR, received, Duration.working_days(n))
        assert due is not None
        first = CALENDAR.add_working_days(local(received).date(), offset + 1)
        last = CALENDAR.add_working_days(first, k)
        wall = dt.time(minute // 60, minute % 60)
        paused = dt.datetime.combine(first, wall, HANOI)
        resumed = dt.datetime.combine(last, wall, HANOI)
        change = apply_supplement(
            CALENDAR,
            due,
            policy=SupplementPolicy.PAUSE,
            duration=Duration.working_days(n),
            requested_at=paused,
            completed_at=resumed,
        )
        assert change.new is not None
        assert local(change.new).time() == CLOSE
        assert CALENDAR.working_days_between(local(due).date(), local(change.new).date()) == k

    @given(instants, units, day_counts, st.integers(min_value=0, max_value=90 * 24 * 60))
    def test_restart_equals_a_fresh_computation(self, requested, unit, n, waited):
        """A restart gives exactly the due date of a dossier received when it became complete."""
        completed = requested + dt.timedelta(minutes=waited)
        duration = unit(n)
        change = apply_supplement(
            CALENDAR,
            due_at(CALENDAR, requested, duration),
            policy=SupplementPolicy.RESTART,
            duration=duration,
            requested_at=requested,
            completed_at=completed,
        )
        assert change.new == due_at(CALENDAR, completed, duration)

    @given(instants, st.integers(min_value=0, max_value=90 * 24 * 60))
    def test_continue_never_moves_and_pause_never_shortens(self, requested, waited):
        """continue keeps the due date; pause never moves it earlier."""
        due = due_at(CALENDAR, requested, Duration.working_days(15))
        completed = requested + dt.timedelta(minutes=waited)
        kept = apply_payment_wait(
            CALENDAR,
            due,
            policy=PaymentWaitPolicy.CONTINUE,
            requested_at=requested,
            paid_at=completed,
        )
        paused = apply_payment_wait(
            CALENDAR,
            due,
            policy=PaymentWaitPolicy.PAUSE,
            requested_at=requested,
            paid_at=completed,
        )
        assert kept.new == due
        assert due is not None
        assert paused.new is not None
        assert paused.new >= due

    @given(instants, st.times(min_value=dt.time(8), max_value=dt.time(16, 59)))
    def test_cutoff_never_starts_earlier(self, received, cutoff):
        """A cutoff only ever delays the start of the count, to before the cutoff."""
        plain = start_of_count(CALENDAR, received)
        cut = start_of_count(CALENDAR, received, DeadlineRules(cutoff=cutoff))
        assert cut >= plain
        assert local(cut).time() < cutoff

    @given(instants, instants)
    def test_late_hand_over_means_overdue(self, due, handed):
        """A hand-over is late exactly when the step would be overdue at that moment."""
        late = classify_handover(CALENDAR, due, handed) is Timeliness.LATE
        assert late == is_overdue(due, handed)
