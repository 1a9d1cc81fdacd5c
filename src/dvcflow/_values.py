"""Value types: money, applicants, actors, channels and the other small words of the domain."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Any, Self

import attrs

from dvcflow.errors import InvalidValueError

__all__ = [
    "ROLES",
    "Actor",
    "ActorKind",
    "Applicant",
    "ApplicantType",
    "Channel",
    "CopyType",
    "DeliveryMethod",
    "Duration",
    "DurationUnit",
    "FeeKind",
    "FeeTiming",
    "Money",
]


class Channel(enum.Enum):
    """How a dossier reaches the agency (kênh thực hiện)."""

    IN_PERSON = "in_person"
    ONLINE = "online"
    POSTAL = "postal"

    @property
    def national_code(self) -> int:
        """The national portal's KenhThucHien code: 1 in person, 2 online, 3 public post."""
        return _CHANNEL_CODES[self]


_CHANNEL_CODES = {Channel.IN_PERSON: 1, Channel.ONLINE: 2, Channel.POSTAL: 3}


class DeliveryMethod(enum.Enum):
    """How the result goes back to the applicant (hình thức trả kết quả)."""

    IN_PERSON = "in_person"
    POSTAL = "postal"
    ELECTRONIC = "electronic"

    @property
    def national_code(self) -> int | None:
        """The national return-method code: 0 in person, 1 public post; electronic has none."""
        return _DELIVERY_CODES[self]


_DELIVERY_CODES = {
    DeliveryMethod.IN_PERSON: 0,
    DeliveryMethod.POSTAL: 1,
    DeliveryMethod.ELECTRONIC: None,
}


class ApplicantType(enum.Enum):
    """Who applies (đối tượng thực hiện)."""

    CITIZEN = "citizen"
    BUSINESS = "business"
    HOUSEHOLD_BUSINESS = "household_business"

    @property
    def national_code(self) -> int:
        """The national code: 0 citizen, 1 business, 2 household business (hộ kinh doanh)."""
        return _APPLICANT_CODES[self]


_APPLICANT_CODES = {
    ApplicantType.CITIZEN: 0,
    ApplicantType.BUSINESS: 1,
    ApplicantType.HOUSEHOLD_BUSINESS: 2,
}


class CopyType(enum.Enum):
    """The form a component is handed in as (loại bản)."""

    ORIGINAL = "original"
    COPY = "copy"
    ELECTRONIC = "electronic"

    @property
    def national_code(self) -> int:
        """The national code: 0 original (bản chính), 1 copy (bản sao), 2 electronic."""
        return _COPY_CODES[self]


_COPY_CODES = {CopyType.ORIGINAL: 0, CopyType.COPY: 1, CopyType.ELECTRONIC: 2}


class FeeKind(enum.Enum):
    """The two kinds of payment a procedure may charge; each gets its own e-receipt."""

    FEE = "fee"
    """Phí: a service fee covering the agency's cost."""
    CHARGE = "charge"
    """Lệ phí: a state charge for the administrative service itself."""


class FeeTiming(enum.Enum):
    """When a fee is collected (thời điểm thu phí)."""

    BEFORE_RECEPTION = "before_reception"
    AT_SUPPLEMENT = "at_supplement"
    BEFORE_RETURN = "before_return"

    @property
    def national_code(self) -> int:
        """The national code: 1 at reception, 2 at supplement, 4 at return."""
        return _TIMING_CODES[self]


_TIMING_CODES = {
    FeeTiming.BEFORE_RECEPTION: 1,
    FeeTiming.AT_SUPPLEMENT: 2,
    FeeTiming.BEFORE_RETURN: 4,
}


class DurationUnit(enum.Enum):
    """How a processing time (thời hạn giải quyết) is counted."""

    WORKING_DAYS = "working_days"
    WORKING_HOURS = "working_hours"
    CALENDAR_DAYS = "calendar_days"
    SAME_DAY = "same_day"
    NONE = "none"


def _instance_of(kind: type) -> Any:  # noqa: ANN401 - an attrs validator
    """Like ``attrs.validators.instance_of``, raising `InvalidValueError` naming the field."""

    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            name = getattr(kind, "__name__", str(kind))
            raise InvalidValueError(attribute.name, f"must be a {name}, got {value!r}")

    return check


def _non_negative_int(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    # bool is an int subclass; True VND is a bug, not one dong.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidValueError(attribute.name, f"must be an integer, got {value!r}")
    if value < 0:
        raise InvalidValueError(attribute.name, f"must be >= 0, got {value}")


@attrs.frozen(order=True)
class Money:
    """An amount of Vietnamese đồng; always an integer, never negative.

    >>> Money(50_000) + Money(8_000)
    Money(amount=58000)
    >>> str(Money(1_250_000))
    '1.250.000 ₫'
    """

    amount: int = attrs.field(validator=_non_negative_int)

    @classmethod
    def zero(cls) -> Money:
        """No money at all."""
        return cls(0)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.amount + other.amount)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.amount - other.amount)

    def __bool__(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:
        return f"{self.amount:,} ₫".replace(",", ".")


@attrs.frozen
class Duration:
    """A processing time: an amount and how it is counted.

    ``Duration(15, DurationUnit.WORKING_DAYS)`` is fifteen working days; ``SAME_DAY`` and ``NONE``
    take amount 0.
    """

    amount: int = attrs.field(validator=_non_negative_int)
    unit: DurationUnit = attrs.field(validator=_instance_of(DurationUnit))

    def __attrs_post_init__(self) -> None:
        if self.unit in {DurationUnit.SAME_DAY, DurationUnit.NONE} and self.amount != 0:
            raise InvalidValueError("amount", f"must be 0 for unit {self.unit.value}")

    @classmethod
    def working_days(cls, amount: int) -> Duration:
        """``amount`` working days."""
        return cls(amount, DurationUnit.WORKING_DAYS)

    @classmethod
    def working_hours(cls, amount: int) -> Duration:
        """``amount`` working hours, counted inside office hours."""
        return cls(amount, DurationUnit.WORKING_HOURS)

    @classmethod
    def calendar_days(cls, amount: int) -> Duration:
        """``amount`` calendar days; a due date on a non-working day moves to the next one."""
        return cls(amount, DurationUnit.CALENDAR_DAYS)

    @classmethod
    def same_day(cls) -> Duration:
        """Resolved on the day of receipt."""
        return cls(0, DurationUnit.SAME_DAY)

    @classmethod
    def none(cls) -> Duration:
        """No due date at all."""
        return cls(0, DurationUnit.NONE)

    def __str__(self) -> str:
        if self.unit is DurationUnit.SAME_DAY:
            return "same day"
        if self.unit is DurationUnit.NONE:
            return "no due date"
        return f"{self.amount} {self.unit.value.replace('_', ' ')}"


_CITIZEN_ID = re.compile(r"[0-9]{12}")
_TAX_CODE = re.compile(r"[0-9]{10}(?:[0-9]{3})?")
_BRANCH_TAX_CODE = re.compile(r"[0-9]{10}-[0-9]{3}")
# Vietnamese mobile prefixes after the 2018 renumbering: 03x, 05x, 07x, 08x, 09x.
_MOBILE = re.compile(r"0(?:3[2-9]|5[25689]|7[06-9]|8[1-9]|9[0-9])[0-9]{7}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def normalise_mobile(value: str) -> str:
    """Return a Vietnamese mobile number as ``0xxxxxxxxx``, accepting ``+84`` and spaces.

    Raises:
        InvalidValueError: when it is not a Vietnamese mobile number.
    """
    if not isinstance(value, str):
        raise InvalidValueError("phone", f"must be a string, got {value!r}")
    digits = re.sub(r"[\s.\-()]", "", value)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise InvalidValueError("phone", f"not a Vietnamese mobile number: {value!r}")
    return digits


def _check_citizen_id(value: str) -> str | None:
    if not _CITIZEN_ID.fullmatch(value):
        return "a citizen id (CCCD) has 12 digits"
    # The first three digits are the province of birth registration, 001-096.
    if not 1 <= int(value[:3]) <= 96:
        return f"a citizen id starts with a province code 001-096, not {value[:3]}"
    return None


def _check_tax_code(value: str) -> str | None:
    if not _TAX_CODE.fullmatch(value):
        return "a tax code (mã số thuế) has 10 or 13 digits"
    return None


def _optional_email(
    _instance: object, attribute: attrs.Attribute[str | None], value: object
) -> None:
    if value is not None and (not isinstance(value, str) or not _EMAIL.fullmatch(value)):
        raise InvalidValueError(attribute.name, f"not an email address: {value!r}")


def _optional_mobile(value: str | None) -> str | None:
    return None if value is None else normalise_mobile(value)


def _non_empty_str(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(attribute.name, "must be a non-empty string")


def _strip_dash(value: str) -> str:
    # A branch's tax code is written 0101234567-001; no other dash is part of an identifier.
    if isinstance(value, str) and _BRANCH_TAX_CODE.fullmatch(value):
        return value.replace("-", "")
    return value


@attrs.frozen
class Applicant:
    """The person or organisation a dossier is for (người nộp hồ sơ).

    ``identifier`` is a 12-digit citizen id for a citizen, a 10- or 13-digit tax code for a
    business, and either for a household business. ``employees`` lists the citizen ids a
    business may act for. Personal data: dvcflow keeps it out of the history chain.
    """

    kind: ApplicantType = attrs.field(validator=_instance_of(ApplicantType))
    identifier: str = attrs.field(converter=_strip_dash)
    name: str = attrs.field(validator=_non_empty_str)
    phone: str | None = attrs.field(default=None, converter=_optional_mobile)
    email: str | None = attrs.field(default=None, validator=_optional_email)
    vneid_verified: bool = attrs.field(default=False, validator=_instance_of(bool))
    employees: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)

    @identifier.validator
    def _check_identifier(self, _attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str):
            raise InvalidValueError("identifier", f"must be a string, got {value!r}")
        if self.kind is ApplicantType.CITIZEN:
            problem = _check_citizen_id(value)
        elif self.kind is ApplicantType.BUSINESS:
            problem = _check_tax_code(value)
        else:
            citizen, tax = _check_citizen_id(value), _check_tax_code(value)
            problem = None if citizen is None or tax is None else f"{citizen}; or {tax}"
        if problem is not None:
            raise InvalidValueError("identifier", f"{problem}, got {value!r}")

    @employees.validator
    def _check_employees(
        self, _attribute: attrs.Attribute[frozenset[str]], value: frozenset[str]
    ) -> None:
        if value and self.kind is ApplicantType.CITIZEN:
            raise InvalidValueError("employees", "only a business acts for employees")
        for employee in value:
            problem = _check_citizen_id(employee)
            if problem is not None:
                raise InvalidValueError("employees", f"{problem}, got {employee!r}")

    @property
    def has_contact(self) -> bool:
        """Whether a mobile number and an email are both registered."""
        return self.phone is not None and self.email is not None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Self:
        """Build an applicant from plain data, as a form or a JSON body gives it.

        Raises:
            InvalidValueError: naming the first field that is wrong.
        """
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidValueError(unknown[0], "unknown field")
        for name in ("kind", "identifier", "name"):
            if name not in data:
                raise InvalidValueError(name, "is required")
        values = dict(data)
        try:
            values["kind"] = ApplicantType(values["kind"])
        except ValueError:
            choices = ", ".join(t.value for t in ApplicantType)
            raise InvalidValueError("kind", f"must be one of {choices}") from None
        if "employees" in values and (
            isinstance(values["employees"], str)
            or not isinstance(values["employees"], list | tuple | set | frozenset)
        ):
            raise InvalidValueError("employees", "must be a list of citizen ids")
        return cls(**values)


ROLES = frozenset(
    {
        "admin",
        "business",
        "cashier",
        "citizen",
        "clerk",
        "department_head",
        "external_agency",
        "leader",
        "postal_worker",
        "receiving_officer",
        "representative",
        "specialist",
        "system",
    },
)
"""Every role dvcflow knows; authorization is deny-by-default over these."""

APPLICANT_ROLES = frozenset({"citizen", "business", "representative"})
STAFF_ROLES = ROLES - APPLICANT_ROLES - {"system"}


class ActorKind(enum.Enum):
    """Which side of the counter an actor is on."""

    APPLICANT = "applicant"
    STAFF = "staff"
    SYSTEM = "system"


def _roles(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        # A bare string would become a set of letters.
        raise InvalidValueError("roles", f"must be a collection of role names, got {value!r}")
    return frozenset(value)


@attrs.frozen
class Actor:
    """Who fires a command: an account id (opaque, never a citizen id), roles and scope.

    Build one with `Actor.citizen`, `Actor.business`, `Actor.representative`, `Actor.staff` or
    `Actor.system`.
    """

    id: str = attrs.field(validator=_non_empty_str)
    kind: ActorKind = attrs.field(validator=_instance_of(ActorKind))
    roles: frozenset[str] = attrs.field(converter=_roles)
    agency: str | None = attrs.field(default=None)
    acting_for: str | None = None
    """For a business or representative: the account id of the person acted for."""

    @roles.validator
    def _check_roles(
        self, _attribute: attrs.Attribute[frozenset[str]], value: frozenset[str]
    ) -> None:
        if not value:
            raise InvalidValueError("roles", "an actor needs at least one role")
        unknown = sorted(value - ROLES)
        if unknown:
            raise InvalidValueError("roles", f"unknown role {unknown[0]!r}")
        allowed = {
            ActorKind.APPLICANT: APPLICANT_ROLES,
            ActorKind.STAFF: STAFF_ROLES,
            ActorKind.SYSTEM: frozenset({"system"}),
        }[self.kind]
        misplaced = sorted(value - allowed)
        if misplaced:
            raise InvalidValueError("roles", f"{misplaced[0]!r} is not a {self.kind.value} role")

    @agency.validator
    def _check_agency(self, _attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if self.kind is ActorKind.STAFF and not value:
            raise InvalidValueError("agency", "staff act for an agency; give its id")
        if self.kind is not ActorKind.STAFF and value is not None:
            raise InvalidValueError("agency", "only staff belong to an agency")

    @classmethod
    def citizen(cls, account_id: str, *, roles: Iterable[str] = ("citizen",)) -> Actor:
        """A citizen acting for themself."""
        return cls(account_id, ActorKind.APPLICANT, frozenset(roles))

    @classmethod
    def business(cls, account_id: str, *, acting_for: str | None = None) -> Actor:
        """A business account, optionally acting for one of its employees."""
        return cls(account_id, ActorKind.APPLICANT, frozenset({"business"}), acting_for=acting_for)

    @classmethod
    def representative(cls, account_id: str, *, acting_for: str) -> Actor:
        """Someone authorised to act for another applicant (người được ủy quyền)."""
        return cls(
            account_id,
            ActorKind.APPLICANT,
            frozenset({"representative"}),
            acting_for=acting_for,
        )

    @classmethod
    def staff(cls, account_id: str, *, roles: Iterable[str], agency: str) -> Actor:
        """An officer of ``agency`` holding ``roles`` (receiving_officer, specialist, ...)."""
        return cls(account_id, ActorKind.STAFF, frozenset(roles), agency=agency)

    @classmethod
    def system(cls, account_id: str = "system") -> Actor:
        """The library itself: timers and verified back-end callbacks."""
        return cls(account_id, ActorKind.SYSTEM, frozenset({"system"}))
