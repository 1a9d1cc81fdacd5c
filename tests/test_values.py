"""Tests of the value types: money, durations, applicants, actors and the national codes."""

from __future__ import annotations

import decimal
import re
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvcflow import (
    ROLES,
    Actor,
    ActorKind,
    Applicant,
    ApplicantType,
    Channel,
    CopyType,
    DeliveryMethod,
    Duration,
    DurationUnit,
    DvcflowError,
    FeeKind,
    FeeTiming,
    InvalidValueError,
    Money,
)
from dvcflow._values import APPLICANT_ROLES, STAFF_ROLES, normalise_mobile

ASCII_DIGITS = "0123456789"
VALID_CITIZEN_ID = "001203004567"
VALID_TAX_CODE = "0101234567"

# Prefixes of Vietnamese mobile numbers after the 2018 renumbering.
MOBILE_PREFIXES = (
    *(f"03{d}" for d in "23456789"),
    *(f"05{d}" for d in "25689"),
    *(f"07{d}" for d in "06789"),
    *(f"08{d}" for d in "123456789"),
    *(f"09{d}" for d in ASCII_DIGITS),
)


def digits(size: int) -> st.SearchStrategy[str]:
    """Strings of exactly ``size`` ASCII digits."""
    return st.text(alphabet=ASCII_DIGITS, min_size=size, max_size=size)


def non_ascii_decimal_digits(size: int) -> st.SearchStrategy[str]:
    """Strings of ``size`` Unicode decimal digits (category Nd), at least one of them not ASCII."""
    return st.text(alphabet=st.characters(categories=["Nd"]), min_size=size, max_size=size).filter(
        lambda text: not text.isascii()
    )


citizen_ids = st.builds(
    lambda province, rest: f"{province:03d}{rest}",
    st.integers(min_value=1, max_value=96),
    digits(9),
)
tax_codes = st.one_of(digits(10), digits(13))
mobiles = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(MOBILE_PREFIXES), digits(7))


def raises_invalid(field: str) -> Any:
    """Expect an `InvalidValueError` naming ``field``."""
    return pytest.raises(InvalidValueError, match=rf"^{re.escape(field)}: ")


def citizen(identifier: str = VALID_CITIZEN_ID, **kwargs: Any) -> Applicant:
    """A citizen applicant with sensible defaults."""
    return Applicant(ApplicantType.CITIZEN, identifier, "Nguyễn Văn A", **kwargs)


class TestInvalidValueError:
    def test_is_a_dvcflow_error_and_a_value_error(self):
        """InvalidValueError is caught by `except DvcflowError` and by `except ValueError`."""
        error = InvalidValueError("phone", "not a number")
        assert isinstance(error, DvcflowError)
        assert isinstance(error, ValueError)
        assert (error.field, error.message, str(error)) == (
            "phone",
            "not a number",
            "phone: not a number",
        )


class TestMoney:
    @given(st.integers(min_value=0))
    def test_accepts_any_non_negative_integer(self, amount):
        """Any integer >= 0 is an amount of đồng, kept exactly."""
        assert Money(amount).amount == amount

    @given(st.integers(max_value=-1))
    def test_rejects_negative_amounts(self, amount):
        """A negative amount is refused, naming the amount field."""
        with raises_invalid("amount") as caught:
            Money(amount)
        assert "must be >= 0" in caught.value.message

    @pytest.mark.parametrize("amount", [True, False, 1.0, 1.5, "1000", None, decimal.Decimal(1000)])
    def test_rejects_anything_but_an_int(self, amount):
        """Booleans, floats, strings, None and decimals are not amounts of đồng."""
        with raises_invalid("amount") as caught:
            Money(amount)
        assert "must be an integer" in caught.value.message

    @given(st.integers(min_value=0), st.integers(min_value=0))
    def test_addition_adds_amounts(self, first, second):
        """Adding two amounts gives the sum."""
        assert Money(first) + Money(second) == Money(first + second)

    @given(st.integers(min_value=0), st.integers(min_value=0))
    def test_subtraction_within_the_amount(self, first, second):
        """Subtracting a smaller or equal amount gives the difference."""
        high, low = max(first, second), min(first, second)
        assert Money(high) - Money(low) == Money(high - low)

    @given(st.integers(min_value=0), st.integers(min_value=1))
    def test_subtraction_below_zero_is_refused(self, amount, excess):
        """Subtracting more than there is raises instead of giving a negative amount."""
        with raises_invalid("amount"):
            Money(amount) - Money(amount + excess)

    @pytest.mark.parametrize("other", [5, 5.0, "5", None])
    def test_arithmetic_with_plain_numbers_is_a_type_error(self, other):
        """Money only adds to and subtracts from Money; mixing in a plain number is refused."""
        with pytest.raises(TypeError):
            Money(5) + other
        with pytest.raises(TypeError):
            Money(5) - other

    @pytest.mark.parametrize(
        ("amount", "text"),
        [
            (0, "0 ₫"),
            (999, "999 ₫"),
            (1_000, "1.000 ₫"),
            (75_000, "75.000 ₫"),
            (1_250_000, "1.250.000 ₫"),
            (1_000_000_000, "1.000.000.000 ₫"),
        ],
    )
    def test_str_uses_dots_between_thousands_and_the_dong_sign(self, amount, text):
        """Amounts print the Vietnamese way, e.g. '1.250.000 ₫'."""
        assert str(Money(amount)) == text

    def test_zero_is_falsy_and_other_amounts_truthy(self):
        """Money.zero() is falsy, so `if fee:` reads as 'if there is anything to pay'."""
        assert Money.zero() == Money(0)
        assert not Money.zero()
        assert Money(1)

    def test_amounts_are_ordered(self):
        """Amounts compare by value."""
        assert Money(1) < Money(2) <= Money(2)
        assert max(Money(3), Money(10), Money(7)) == Money(10)

    def test_is_frozen(self):
        """A Money value cannot be changed after creation."""
        money = Money(5)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            money.amount = 6  # type: ignore[misc]


class TestDuration:
    @pytest.mark.parametrize(
        ("duration", "unit", "amount", "text"),
        [
            (Duration.working_days(15), DurationUnit.WORKING_DAYS, 15, "15 working days"),
            (Duration.working_hours(8), DurationUnit.WORKING_HOURS, 8, "8 working hours"),
            (Duration.calendar_days(30), DurationUnit.CALENDAR_DAYS, 30, "30 calendar days"),
            (Duration.same_day(), DurationUnit.SAME_DAY, 0, "same day"),
            (Duration.none(), DurationUnit.NONE, 0, "no due date"),
        ],
    )
    def test_factories(self, duration, unit, amount, text):
        """Each factory builds the unit it names, and the duration prints readably."""
        assert (duration.unit, duration.amount, str(duration)) == (unit, amount, text)

    @given(
        st.sampled_from(
            [DurationUnit.WORKING_DAYS, DurationUnit.WORKING_HOURS, DurationUnit.CALENDAR_DAYS]
        ),
        st.integers(min_value=0, max_value=10_000),
    )
    def test_counted_units_take_any_non_negative_amount(self, unit, amount):
        """Working days, working hours and calendar days take any amount >= 0."""
        assert Duration(amount, unit).amount == amount

    @given(st.sampled_from(list(DurationUnit)), st.integers(max_value=-1))
    def test_negative_amounts_are_refused(self, unit, amount):
        """No unit takes a negative amount."""
        with raises_invalid("amount"):
            Duration(amount, unit)

    @given(st.sampled_from([DurationUnit.SAME_DAY, DurationUnit.NONE]), st.integers(min_value=1))
    def test_same_day_and_none_take_only_zero(self, unit, amount):
        """'Same day' and 'no due date' have no amount to count."""
        with raises_invalid("amount") as caught:
            Duration(amount, unit)
        assert caught.value.message == f"must be 0 for unit {unit.value}"

    @pytest.mark.parametrize("amount", [True, 1.5, "3", None])
    def test_amount_must_be_an_int(self, amount):
        """A duration counts whole units."""
        with raises_invalid("amount"):
            Duration(amount, DurationUnit.WORKING_DAYS)


class TestNationalCodes:
    @pytest.mark.parametrize(
        ("member", "code"),
        [
            (Channel.IN_PERSON, 1),
            (Channel.ONLINE, 2),
            (Channel.POSTAL, 3),
            (ApplicantType.CITIZEN, 0),
            (ApplicantType.BUSINESS, 1),
            (ApplicantType.HOUSEHOLD_BUSINESS, 2),
            (CopyType.ORIGINAL, 0),
            (CopyType.COPY, 1),
            (CopyType.ELECTRONIC, 2),
            (FeeTiming.BEFORE_RECEPTION, 1),
            (FeeTiming.AT_SUPPLEMENT, 2),
            (FeeTiming.BEFORE_RETURN, 4),
            (DeliveryMethod.IN_PERSON, 0),
            (DeliveryMethod.POSTAL, 1),
            (DeliveryMethod.ELECTRONIC, None),
        ],
    )
    def test_national_code(self, member, code):
        """Each member carries the national portal's code of DOMAIN.md §2."""
        assert member.national_code == code

    @pytest.mark.parametrize("kind", [Channel, ApplicantType, CopyType, FeeTiming, DeliveryMethod])
    def test_codes_are_distinct(self, kind):
        """No two members of an enumeration share a national code."""
        codes = [member.national_code for member in kind]
        assert len(set(codes)) == len(codes)

    @pytest.mark.parametrize(
        ("kind", "values"),
        [
            (Channel, {"in_person", "online", "postal"}),
            (DeliveryMethod, {"in_person", "postal", "electronic"}),
            (ApplicantType, {"citizen", "business", "household_business"}),
            (CopyType, {"original", "copy", "electronic"}),
            (FeeKind, {"fee", "charge"}),
            (FeeTiming, {"before_reception", "at_supplement", "before_return"}),
            (
                DurationUnit,
                {"working_days", "working_hours", "calendar_days", "same_day", "none"},
            ),
        ],
    )
    def test_values_are_the_definition_file_spellings(self, kind, values):
        """The enumeration values are the words a procedure file uses."""
        assert {member.value for member in kind} == values


class TestCitizenId:
    @given(citizen_ids)
    def test_any_twelve_digits_with_a_valid_province_are_accepted(self, identifier):
        """Twelve ASCII digits starting with a province code 001-096 make a citizen id."""
        assert citizen(identifier).identifier == identifier

    @given(st.integers(min_value=97, max_value=999) | st.just(0), digits(9))
    def test_an_invalid_province_code_is_refused(self, province, rest):
        """Province codes 000 and 097-999 do not exist."""
        with raises_invalid("identifier") as caught:
            citizen(f"{province:03d}{rest}")
        assert "province code 001-096" in caught.value.message

    @given(st.integers(min_value=0, max_value=30).filter(lambda n: n != 12).flatmap(digits))
    def test_a_wrong_number_of_digits_is_refused(self, identifier):
        """A citizen id has exactly 12 digits."""
        with raises_invalid("identifier") as caught:
            citizen(identifier)
        assert "12 digits" in caught.value.message

    @given(
        st.text(min_size=1).filter(
            # Dashes are covered by test_a_dash_is_refused.
            lambda text: "-" not in text and any(char not in ASCII_DIGITS for char in text)
        )
    )
    def test_any_string_with_a_non_digit_is_refused(self, identifier):
        """Any string holding something other than a digit is not a citizen id."""
        with raises_invalid("identifier"):
            citizen(identifier)

    @given(non_ascii_decimal_digits(12))
    def test_non_ascii_digits_are_refused(self, identifier):
        """Digits of other scripts (Arabic-Indic, Devanagari, ...) are not a citizen id."""
        with raises_invalid("identifier"):
            citizen(identifier)

    @pytest.mark.parametrize("identifier", ["001-203004567", "-001203004567"])
    def test_a_dash_is_refused(self, identifier):
        """Only a branch tax code has a dash; a citizen id never does."""
        with raises_invalid("identifier"):
            citizen(identifier)

    @pytest.mark.parametrize("identifier", [1203004567, None, b"001203004567"])
    def test_a_non_string_is_refused(self, identifier):
        """An identifier is a string; a number would lose its leading zeros."""
        with raises_invalid("identifier"):
            citizen(identifier)


class TestTaxCode:
    @given(tax_codes)
    def test_ten_or_thirteen_digits_are_a_business_tax_code(self, identifier):
        """A business is identified by a 10- or 13-digit tax code."""
        applicant = Applicant(ApplicantType.BUSINESS, identifier, "Công ty TNHH A")
        assert applicant.identifier == identifier

    @given(digits(10), digits(3))
    def test_branch_form_with_a_dash_is_accepted_and_normalised(self, head, branch):
        """A branch tax code written '0101234567-001' is stored without its dash."""
        applicant = Applicant(ApplicantType.BUSINESS, f"{head}-{branch}", "Chi nhánh A")
        assert applicant.identifier == head + branch

    @pytest.mark.parametrize("identifier", ["010-1234567001", "0101-234567"])
    def test_a_misplaced_dash_is_refused(self, identifier):
        """The dash of a branch tax code sits between the 10-digit code and the branch number."""
        with raises_invalid("identifier"):
            Applicant(ApplicantType.BUSINESS, identifier, "Công ty TNHH A")

    @given(
        st.integers(min_value=0, max_value=30).filter(lambda n: n not in {10, 13}).flatmap(digits)
    )
    def test_other_lengths_are_refused(self, identifier):
        """A tax code has 10 or 13 digits, nothing else."""
        with raises_invalid("identifier") as caught:
            Applicant(ApplicantType.BUSINESS, identifier, "Công ty TNHH A")
        assert "10 or 13 digits" in caught.value.message

    @given(citizen_ids)
    def test_a_citizen_id_is_not_a_business_identifier(self, identifier):
        """A business cannot be identified by a 12-digit citizen id."""
        with raises_invalid("identifier"):
            Applicant(ApplicantType.BUSINESS, identifier, "Công ty TNHH A")

    @given(non_ascii_decimal_digits(10))
    def test_non_ascii_digits_are_refused(self, identifier):
        """Digits of other scripts do not make a tax code."""
        with raises_invalid("identifier"):
            Applicant(ApplicantType.BUSINESS, identifier, "Công ty TNHH A")


class TestHouseholdBusiness:
    @given(citizen_ids | tax_codes)
    def test_takes_a_citizen_id_or_a_tax_code(self, identifier):
        """A household business (hộ kinh doanh) is identified by its owner's id or a tax code."""
        applicant = Applicant(ApplicantType.HOUSEHOLD_BUSINESS, identifier, "Hộ kinh doanh A")
        assert applicant.identifier == identifier

    @pytest.mark.parametrize("identifier", ["12345", "999203004567", "01012345678"])
    def test_refuses_what_is_neither(self, identifier):
        """What is neither a citizen id nor a tax code is refused, giving both reasons."""
        with raises_invalid("identifier") as caught:
            Applicant(ApplicantType.HOUSEHOLD_BUSINESS, identifier, "Hộ kinh doanh A")
        assert "citizen id" in caught.value.message
        assert "tax code" in caught.value.message


class TestMobile:
    @given(mobiles)
    def test_any_number_with_a_mobile_prefix_is_accepted(self, number):
        """Ten digits starting with a mobile prefix (03x, 05x, 07x, 08x, 09x) are accepted."""
        assert normalise_mobile(number) == number
        assert citizen(phone=number).phone == number

    @given(mobiles)
    def test_international_forms_are_normalised(self, number):
        """'+84 9xx...' and '84 9xx...' become '09xx...'."""
        assert normalise_mobile("+84" + number[1:]) == number
        assert normalise_mobile("84" + number[1:]) == number
        assert citizen(phone="+84 " + number[1:]).phone == number

    @pytest.mark.parametrize(
        "text",
        ["091 234 5678", "091.234.5678", "091-234-5678", "(091) 234 5678", "+84 91 234 56 78"],
    )
    def test_separators_are_ignored(self, text):
        """Spaces, dots, dashes and brackets are the way people write numbers; they are dropped."""
        assert normalise_mobile(text) == "0912345678"

    @pytest.mark.parametrize(
        "number",
        [
            "0212345678",  # landline area code
            "0242345678",  # Hà Nội landline
            "0312345678",  # 031 is not a mobile prefix
            "0502345678",
            "0572345678",
            "0712345678",
            "0752345678",
            "0802345678",
            "0112345678",
            "01234567890",  # an 11-digit number from before the 2018 renumbering
            "091234567",  # too short
            "09123456789",  # too long
            "+840912345678",  # +84 followed by the national 0
            "0084912345678",
            "912345678",
            "",
            "0912abc678",
        ],
    )
    def test_invalid_numbers_are_refused(self, number):
        """Landlines, unallocated prefixes, wrong lengths and letters are refused as 'phone'."""
        with raises_invalid("phone"):
            normalise_mobile(number)
        with raises_invalid("phone"):
            citizen(phone=number)

    @given(st.text().filter(lambda text: not any(char in ASCII_DIGITS for char in text)))
    def test_text_without_digits_is_refused(self, text):
        """A string without a single digit is never a mobile number."""
        with raises_invalid("phone"):
            normalise_mobile(text)

    @given(st.sampled_from(MOBILE_PREFIXES), non_ascii_decimal_digits(7))
    def test_non_ascii_digits_are_refused(self, prefix, rest):
        """Digits of other scripts are not dialable and must not be stored as a phone number."""
        with raises_invalid("phone"):
            normalise_mobile(prefix + rest)


class TestApplicant:
    def test_a_complete_citizen(self):
        """A citizen with a phone and email has contact details; the flag defaults to False."""
        applicant = citizen(phone="+84912345678", email="a.nguyen@example.vn")
        assert applicant.phone == "0912345678"
        assert applicant.has_contact
        assert applicant.vneid_verified is False
        assert applicant.employees == frozenset()

    @pytest.mark.parametrize(
        ("phone", "email"), [(None, None), ("0912345678", None), (None, "a@example.vn")]
    )
    def test_contact_needs_both_phone_and_email(self, phone, email):
        """The contact rule of the rule packs needs a mobile number and an email."""
        assert not citizen(phone=phone, email=email).has_contact

    @pytest.mark.parametrize("email", ["a@example.vn", "nguyen.van.a+dvc@mail.gov.vn", "x@y.co"])
    def test_valid_emails(self, email):
        """Ordinary addresses are accepted as given."""
        assert citizen(email=email).email == email

    @pytest.mark.parametrize(
        "email",
        ["a.example.vn", "a@example", "a b@example.vn", "a@@example.vn", "@example.vn", "", 42],
    )
    def test_invalid_emails_are_refused(self, email):
        """Something that is not an address (or not a string) is refused, naming 'email'."""
        with raises_invalid("email"):
            citizen(email=email)

    @pytest.mark.parametrize("name", ["", "   ", None, 5])
    def test_a_name_is_required(self, name):
        """An applicant has a non-blank name."""
        with raises_invalid("name"):
            Applicant(ApplicantType.CITIZEN, VALID_CITIZEN_ID, name)

    @given(st.lists(citizen_ids, max_size=5))
    def test_a_business_may_act_for_employees(self, employees):
        """A business lists the citizen ids of the employees it acts for."""
        business = Applicant(
            ApplicantType.BUSINESS, VALID_TAX_CODE, "Công ty TNHH A", employees=employees
        )
        assert business.employees == frozenset(employees)

    def test_a_citizen_has_no_employees(self):
        """Only a business acts for employees."""
        with raises_invalid("employees"):
            citizen(employees=[VALID_CITIZEN_ID])

    @pytest.mark.parametrize("employee", ["12345", "999203004567", VALID_TAX_CODE])
    def test_employees_are_citizen_ids(self, employee):
        """An employee is named by a valid citizen id."""
        with raises_invalid("employees"):
            Applicant(
                ApplicantType.BUSINESS, VALID_TAX_CODE, "Công ty TNHH A", employees=[employee]
            )

    def test_is_frozen(self):
        """An applicant cannot be changed after creation."""
        applicant = citizen()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            applicant.name = "B"  # type: ignore[misc]


class TestWrongTypes:
    @pytest.mark.parametrize(
        ("build", "field"),
        [
            (lambda: Applicant("citizen", VALID_CITIZEN_ID, "A"), "kind"),  # type: ignore[arg-type]
            (lambda: citizen(vneid_verified="yes"), "vneid_verified"),
            (lambda: citizen(phone=912345678), "phone"),
            (lambda: Duration(1, "working_days"), "unit"),  # type: ignore[arg-type]
            (lambda: Actor("a-1", "staff", {"specialist"}, agency="X"), "kind"),  # type: ignore[arg-type]
        ],
        ids=["applicant-kind", "applicant-vneid", "applicant-phone", "duration-unit", "actor-kind"],
    )
    def test_wrongly_typed_fields_raise_invalid_value_error(self, build, field):
        """A value of the wrong type is a rejection like any other: InvalidValueError naming it."""
        with raises_invalid(field):
            build()


class TestApplicantFromData:
    def test_builds_from_plain_data(self):
        """A JSON body with the field names builds the applicant, normalising the phone."""
        applicant = Applicant.from_data(
            {
                "kind": "business",
                "identifier": "0101234567-001",
                "name": "Chi nhánh Công ty A",
                "phone": "+84 912 345 678",
                "email": "ketoan@example.vn",
                "employees": [VALID_CITIZEN_ID],
            }
        )
        assert applicant == Applicant(
            ApplicantType.BUSINESS,
            "0101234567001",
            "Chi nhánh Công ty A",
            phone="0912345678",
            email="ketoan@example.vn",
            employees=frozenset({VALID_CITIZEN_ID}),
        )

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"kind": "citizen", "identifier": VALID_CITIZEN_ID, "name": "A", "fon": "x"}, "fon"),
            ({"kind": "person", "identifier": VALID_CITIZEN_ID, "name": "A"}, "kind"),
            ({"identifier": VALID_CITIZEN_ID, "name": "A"}, "kind"),
            ({"kind": "citizen", "identifier": "0012", "name": "A"}, "identifier"),
            ({"kind": "citizen", "identifier": VALID_CITIZEN_ID, "name": ""}, "name"),
            (
                {"kind": "citizen", "identifier": VALID_CITIZEN_ID, "name": "A", "phone": "0212"},
                "phone",
            ),
            (
                {"kind": "citizen", "identifier": VALID_CITIZEN_ID, "name": "A", "email": "a@"},
                "email",
            ),
        ],
        ids=["unknown", "bad-kind", "no-kind", "identifier", "name", "phone", "email"],
    )
    def test_names_the_wrong_field(self, data, field):
        """Each kind of bad input is refused with the field it concerns."""
        with raises_invalid(field):
            Applicant.from_data(data)

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"kind": "citizen", "name": "A"}, "identifier"),
            ({"kind": "citizen", "identifier": VALID_CITIZEN_ID}, "name"),
            (
                {
                    "kind": "citizen",
                    "identifier": VALID_CITIZEN_ID,
                    "name": "A",
                    "phone": 912345678,
                },
                "phone",
            ),
            (
                {
                    "kind": "citizen",
                    "identifier": VALID_CITIZEN_ID,
                    "name": "A",
                    "vneid_verified": "yes",
                },
                "vneid_verified",
            ),
        ],
        ids=["missing-identifier", "missing-name", "phone-number-type", "vneid-string"],
    )
    def test_missing_or_wrongly_typed_fields_are_named(self, data, field):
        """A JSON body missing a field, or giving it the wrong type, names that field."""
        with raises_invalid(field):
            Applicant.from_data(data)


class TestActor:
    def test_citizen(self):
        """Actor.citizen is an applicant holding the citizen role and no agency."""
        actor = Actor.citizen("acc-1")
        assert (actor.id, actor.kind, actor.roles, actor.agency, actor.acting_for) == (
            "acc-1",
            ActorKind.APPLICANT,
            frozenset({"citizen"}),
            None,
            None,
        )

    def test_business_acting_for_an_employee(self):
        """A business account may act for one of its employees."""
        actor = Actor.business("biz-1", acting_for="acc-7")
        assert (actor.kind, actor.roles, actor.acting_for) == (
            ActorKind.APPLICANT,
            frozenset({"business"}),
            "acc-7",
        )

    def test_representative(self):
        """A representative acts for the applicant who authorised them."""
        actor = Actor.representative("rep-1", acting_for="acc-1")
        assert actor.roles == frozenset({"representative"})
        assert actor.acting_for == "acc-1"

    def test_staff(self):
        """Staff hold staff roles in one agency."""
        actor = Actor.staff("off-1", roles=["receiving_officer", "cashier"], agency="UBND-XA.001")
        assert actor.kind is ActorKind.STAFF
        assert actor.roles == frozenset({"receiving_officer", "cashier"})
        assert actor.agency == "UBND-XA.001"

    def test_system(self):
        """Actor.system is the library itself, with only the system role."""
        actor = Actor.system()
        assert (actor.id, actor.kind, actor.roles, actor.agency) == (
            "system",
            ActorKind.SYSTEM,
            frozenset({"system"}),
            None,
        )
        assert Actor.system("timer").id == "timer"

    def test_role_groups_partition_the_known_roles(self):
        """Every role is an applicant role, a staff role or the system role, exactly once."""
        assert APPLICANT_ROLES | STAFF_ROLES | {"system"} == ROLES
        assert not APPLICANT_ROLES & STAFF_ROLES
        assert "system" not in APPLICANT_ROLES | STAFF_ROLES

    @given(st.sets(st.sampled_from(sorted(STAFF_ROLES)), min_size=1))
    def test_any_set_of_staff_roles_is_accepted_for_staff(self, roles):
        """Staff may hold any combination of staff roles."""
        assert Actor.staff("off-1", roles=roles, agency="A").roles == roles

    @given(
        st.sets(st.sampled_from(sorted(STAFF_ROLES)), max_size=3),
        st.sampled_from(sorted(APPLICANT_ROLES | {"system"})),
    )
    def test_staff_cannot_hold_applicant_or_system_roles(self, roles, misplaced):
        """A role from the other side of the counter is refused for staff."""
        with raises_invalid("roles") as caught:
            Actor.staff("off-1", roles=roles | {misplaced}, agency="A")
        assert caught.value.message == f"{misplaced!r} is not a staff role"

    @given(st.sampled_from(sorted(STAFF_ROLES | {"system"})))
    def test_applicants_cannot_hold_staff_or_system_roles(self, role):
        """A citizen account cannot claim a staff or system role."""
        with raises_invalid("roles"):
            Actor.citizen("acc-1", roles=("citizen", role))

    @given(st.text().filter(lambda text: text not in ROLES))
    def test_unknown_roles_are_refused(self, role):
        """Authorization is deny-by-default over known roles; anything else is refused."""
        with raises_invalid("roles") as caught:
            Actor.staff("off-1", roles=["specialist", role], agency="A")
        assert caught.value.message == f"unknown role {role!r}"

    def test_at_least_one_role(self):
        """An actor without roles could do nothing; it is refused."""
        with raises_invalid("roles"):
            Actor.staff("off-1", roles=[], agency="A")

    def test_a_bare_string_is_not_a_role_collection(self):
        """roles='specialist' would be a set of letters; it is refused."""
        with raises_invalid("roles"):
            Actor.staff("off-1", roles="specialist", agency="A")

    @pytest.mark.parametrize("agency", ["", None])
    def test_staff_need_an_agency(self, agency):
        """Staff always act for an agency."""
        with raises_invalid("agency"):
            Actor(id="off-1", kind=ActorKind.STAFF, roles={"specialist"}, agency=agency)

    @pytest.mark.parametrize(
        ("kind", "roles"),
        [(ActorKind.APPLICANT, {"citizen"}), (ActorKind.SYSTEM, {"system"})],
    )
    def test_only_staff_belong_to_an_agency(self, kind, roles):
        """Applicants and the system have no agency."""
        with raises_invalid("agency"):
            Actor(id="x", kind=kind, roles=roles, agency="UBND-XA.001")

    @pytest.mark.parametrize("account_id", ["", "  ", None])
    def test_an_account_id_is_required(self, account_id):
        """An actor is identified by a non-blank account id."""
        with raises_invalid("id"):
            Actor.citizen(account_id)  # type: ignore[arg-type]
