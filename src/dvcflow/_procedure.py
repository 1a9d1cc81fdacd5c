"""Procedure definitions as frozen values: capabilities, cases, fees, components, fields, steps."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from dvcflow._values import (
    ApplicantType,
    Channel,
    CopyType,
    DeliveryMethod,
    Duration,
    DurationUnit,
    FeeKind,
    FeeTiming,
    Money,
)
from dvcflow.errors import InvalidValueError

if TYPE_CHECKING:
    from dvcflow.levels import Derivation, Level, OnlineClass

__all__ = [
    "PROCEDURE_CODE",
    "CapabilitiesSpec",
    "CaseSpec",
    "ComponentSpec",
    "DocumentKind",
    "ExemptionSpec",
    "FeeSpec",
    "FieldType",
    "FormDocumentSpec",
    "FormFieldSpec",
    "ProcedureSpec",
    "ResultSpec",
    "StepKind",
    "StepSpec",
    "Text",
]

PROCEDURE_CODE = r"[12]\.[0-9]{6}(?:\.[A-Z0-9]{1,8})?"
"""National procedure codes: ``1.001193``, ``2.000635``, a local variant ``1.000948.H38``."""

IDENTIFIER = r"[a-z][a-z0-9_]*"
"""snake_case names for cases, steps, components, fields and exemptions."""


def _identifier(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not re.fullmatch(IDENTIFIER, value):
        raise InvalidValueError(attribute.name, f"must be a snake_case identifier, got {value!r}")


def _text(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(attribute.name, "must be a non-empty string")


def _frozen_map(
    value: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
) -> tuple[tuple[Any, Any], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted(pairs, key=lambda pair: str(pair[0].value)))


@attrs.frozen
class Text:
    """A name in Vietnamese with an optional English translation."""

    vi: str = attrs.field(validator=_text)
    en: str | None = None

    def __str__(self) -> str:
        return self.vi

    def in_locale(self, locale: str) -> str:
        """The text in ``locale`` (``"vi"`` or ``"en"``), falling back to Vietnamese."""
        return self.en if locale == "en" and self.en else self.vi


@attrs.frozen
class FormDocumentSpec:
    """A downloadable form (mẫu đơn, tờ khai) and the document that holds it."""

    name: str = attrs.field(validator=_text)
    document: str = attrs.field(validator=_text)


@attrs.frozen
class CapabilitiesSpec:
    """What the online service offers; the service level is derived from it.

    ``presence_steps`` names the triggers or agency steps that need the applicant in person.
    """

    channels: frozenset[Channel] = attrs.field(converter=frozenset)
    return_methods: frozenset[DeliveryMethod] = attrs.field(converter=frozenset)
    information_published: bool = True
    forms: tuple[FormDocumentSpec, ...] = attrs.field(default=(), converter=tuple)
    online_payment: bool = False
    presence_steps: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)

    @channels.validator
    def _check_channels(
        self, _attribute: attrs.Attribute[frozenset[Channel]], value: frozenset[Channel]
    ) -> None:
        if not value:
            raise InvalidValueError("channels", "offer at least one submission channel")

    @return_methods.validator
    def _check_returns(
        self,
        _attribute: attrs.Attribute[frozenset[DeliveryMethod]],
        value: frozenset[DeliveryMethod],
    ) -> None:
        if not value:
            raise InvalidValueError("return_methods", "offer at least one way to return the result")


class FieldType(enum.Enum):
    """The type of a submission form field."""

    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    CHOICE = "choice"


@attrs.frozen
class FormFieldSpec:
    """A field of the submission form, checked against what the applicant sends."""

    name: str = attrs.field(validator=_identifier)
    type: FieldType
    label: str | None = None
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def __attrs_post_init__(self) -> None:
        string_only = {
            "min_length": self.min_length,
            "max_length": self.max_length,
            "pattern": self.pattern,
        }
        integer_only = {"minimum": self.minimum, "maximum": self.maximum}
        wrong = [
            name
            for name, value in (string_only | integer_only).items()
            if value is not None
            and not (name in string_only and self.type is FieldType.STRING)
            and not (name in integer_only and self.type is FieldType.INTEGER)
        ]
        if wrong:
            raise InvalidValueError(wrong[0], f"does not apply to a {self.type.value} field")
        if self.type is FieldType.CHOICE and not self.choices:
            raise InvalidValueError("choices", "a choice field lists its choices")
        if self.choices and self.type is not FieldType.CHOICE:
            raise InvalidValueError("choices", f"does not apply to a {self.type.value} field")
        for low, high in (("min_length", "max_length"), ("minimum", "maximum")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise InvalidValueError(high, f"must be >= {low} ({lo})")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                raise InvalidValueError("pattern", f"not a regular expression: {exc}") from None


@attrs.frozen
class ComponentSpec:
    """A document in the dossier (thành phần hồ sơ): which, in what form, how many."""

    key: str = attrs.field(validator=_identifier)
    name: str = attrs.field(validator=_text)
    copy_type: CopyType = CopyType.COPY
    quantity: int = attrs.field(default=1)
    mandatory: bool = True

    @quantity.validator
    def _check_quantity(self, _attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValueError("quantity", f"must be an integer >= 1, got {value!r}")


@attrs.frozen
class ExemptionSpec:
    """Who does not pay a fee (miễn phí, lệ phí), and why."""

    code: str = attrs.field(validator=_identifier)
    description: str = attrs.field(validator=_text)


@attrs.frozen
class FeeSpec:
    """One fee of a case: phí or lệ phí, its amount per channel, and when it is collected.

    A channel missing from ``amounts`` does not charge this fee.
    """

    kind: FeeKind
    name: str = attrs.field(validator=_text)
    amounts: tuple[tuple[Channel, Money], ...] = attrs.field(converter=_frozen_map)
    timing: FeeTiming = FeeTiming.BEFORE_RETURN
    exemptions: tuple[ExemptionSpec, ...] = attrs.field(default=(), converter=tuple)

    def amount_for(self, channel: Channel) -> Money:
        """What this fee costs for a dossier submitted through ``channel``."""
        return dict(self.amounts).get(channel, Money.zero())

    @property
    def charges(self) -> bool:
        """Whether any channel pays a non-zero amount."""
        return any(money for _, money in self.amounts)


@attrs.frozen
class CaseSpec:
    """A case of a procedure (trường hợp), with its own durations, fees and components."""

    key: str = attrs.field(validator=_identifier)
    name: Text
    durations: tuple[tuple[Channel, Duration], ...] = attrs.field(converter=_frozen_map)
    fees: tuple[FeeSpec, ...] = attrs.field(default=(), converter=tuple)
    components: tuple[ComponentSpec, ...] = attrs.field(default=(), converter=tuple)

    def duration_for(self, channel: Channel) -> Duration:
        """The processing time for a dossier submitted through ``channel``."""
        for offered, duration in self.durations:
            if offered is channel:
                return duration
        raise InvalidValueError("channel", f"case {self.key!r} has no duration for {channel.value}")

    def fees_for(self, channel: Channel) -> tuple[tuple[FeeSpec, Money], ...]:
        """The fees a dossier submitted through ``channel`` owes, with their amounts."""
        return tuple((fee, fee.amount_for(channel)) for fee in self.fees if fee.amount_for(channel))


class StepKind(enum.Enum):
    """The kinds of processing step an agency adds to a lifecycle."""

    APPRAISAL = "appraisal"
    """Thẩm định: a specialist examines the dossier."""
    APPROVAL = "approval"
    """Phê duyệt: a leader approves and signs."""
    CONSULTATION = "consultation"
    """Liên thông: a leg answered by another agency."""
    INSPECTION = "inspection"
    """Kiểm tra thực địa: an on-site check; it usually needs presence."""


@attrs.frozen
class StepSpec:
    """An extra processing step, with who performs it and its own deadline."""

    name: str = attrs.field(validator=_identifier)
    kind: StepKind
    roles: frozenset[str] = attrs.field(converter=frozenset)
    duration: Duration = Duration(1, DurationUnit.WORKING_DAYS)
    title: Text | None = None
    requires_presence: bool = False
    agency: str | None = None
    """For a consultation: the external agency addressed."""

    def __attrs_post_init__(self) -> None:
        if not self.roles:
            raise InvalidValueError("roles", "a step names the roles that perform it")
        if self.kind is StepKind.CONSULTATION and not self.agency:
            raise InvalidValueError("agency", "a consultation names the agency it addresses")
        if self.kind is not StepKind.CONSULTATION and self.agency is not None:
            raise InvalidValueError("agency", "only a consultation addresses another agency")


class DocumentKind(enum.Enum):
    """Outgoing documents that may need a leader's sign-off before they are issued."""

    RESULT = "result"
    SUPPLEMENT_REQUEST = "supplement_request"
    APOLOGY = "apology"


@attrs.frozen
class ResultSpec:
    """What the procedure produces (a certificate, a licence, ...) and whether it is e-signed."""

    type: str = attrs.field(validator=_text)
    signed: bool = False


def _permission_pairs(
    value: Mapping[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]],
) -> tuple[tuple[str, frozenset[str]], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((trigger, frozenset(roles)) for trigger, roles in pairs))


@attrs.frozen
class ProcedureSpec:
    """An administrative procedure (thủ tục hành chính) as data.

    Build it with `dvcflow.Catalog` from TOML or JSON files, or with `ProcedureSpec.from_data`
    from Python values: both check every field and the level rules. The level and the 2022
    class are derived from the capabilities (`level`, `online_class`).
    """

    code: str = attrs.field()
    name: Text
    agency: str = attrs.field(validator=_text)
    capabilities: CapabilitiesSpec
    cases: tuple[CaseSpec, ...] = attrs.field(converter=tuple)
    result: ResultSpec
    applicant_types: frozenset[ApplicantType] = attrs.field(
        default=frozenset({ApplicantType.CITIZEN}),
        converter=frozenset,
    )
    form_fields: tuple[FormFieldSpec, ...] = attrs.field(default=(), converter=tuple)
    steps: tuple[StepSpec, ...] = attrs.field(default=(), converter=tuple)
    sign_off: frozenset[DocumentKind] = attrs.field(default=frozenset(), converter=frozenset)
    default_case: str = "default"
    declared_level: int | None = None
    rule_pack: str | None = None
    intake_cutoff: dt.time | None = None
    """Receipts after this local time count from the next working day (e.g. 15:00)."""
    permissions: tuple[tuple[str, frozenset[str]], ...] = attrs.field(
        default=(),
        converter=_permission_pairs,
    )
    """Triggers whose default roles this procedure narrows, e.g. ``resolve`` to one role."""

    @code.validator
    def _check_code(self, _attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not re.fullmatch(PROCEDURE_CODE, value):
            raise InvalidValueError(
                "code", f"not a national procedure code like 1.001193: {value!r}"
            )

    def case(self, key: str | None = None) -> CaseSpec:
        """The case named ``key``, or the default case.

        Raises:
            InvalidValueError: when there is no such case.
        """
        wanted = self.default_case if key is None else key
        for case in self.cases:
            if case.key == wanted:
                return case
        known = ", ".join(case.key for case in self.cases)
        raise InvalidValueError(
            "case", f"procedure {self.code} has no case {wanted!r} (cases: {known})"
        )

    @property
    def charges_fees(self) -> bool:
        """Whether any case charges anything through any channel."""
        return any(fee.charges for case in self.cases for fee in case.fees)

    @functools.cached_property
    def derivation(self) -> Derivation:
        """The service level and 2022 class derived from the capabilities, with any problems."""
        from dvcflow.levels import derive  # noqa: PLC0415 - levels depends on this module

        return derive(self)

    @property
    def level(self) -> Level:
        """The service level 1-4 derived from the capabilities."""
        return self.derivation.level

    @property
    def online_class(self) -> OnlineClass | None:
        """The 2022 class (`full` or `partial`), or ``None`` for levels 1 and 2."""
        return self.derivation.online_class

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, source: str = "<data>") -> ProcedureSpec:
        """Build and validate a procedure from plain data (the shape of the TOML files).

        Raises:
            InvalidDefinitionError: listing every problem with its field path.
        """
        from dvcflow._loading import load_procedure  # noqa: PLC0415 - the loader imports this module

        return load_procedure(dict(data), source=source)

    def to_data(self) -> dict[str, Any]:
        """The canonical plain-data form; `from_data` of it gives an equal procedure."""
        from dvcflow._loading import procedure_to_data  # noqa: PLC0415 - the loader imports this module

        return procedure_to_data(self)
