"""dvcflow: the lifecycle of administrative dossiers for Vietnam's online public services."""

from importlib.metadata import version as _version

from dvcflow._calendar import CalendarOverride, OfficeHours, WorkingCalendar, load_overrides
from dvcflow._catalog import Catalog
from dvcflow._clock import Clock, FrozenClock, SystemClock
from dvcflow._codes import CodeFormat, CodePeriod
from dvcflow._config import Config
from dvcflow._deadlines import DayCounting, DeadlineRules, DueDateChange, Timeliness
from dvcflow._dossier import Dossier, FeeObligation, Wait, replay
from dvcflow._engine import Engine, retry
from dvcflow._history import Checkpoint
from dvcflow._kernel import Action, Decision, Effect, EffectKind, Event, Kernel
from dvcflow._lifecycle import LifecycleSpec, NationalStatus, StateSpec, TransitionSpec
from dvcflow._migration import MigrationItem, MigrationPlan
from dvcflow._policies import ClockPolicy, PaymentWaitPolicy, SupplementExpiry, SupplementPolicy
from dvcflow._procedure import (
    CapabilitiesSpec,
    CaseSpec,
    ComponentSpec,
    DocumentKind,
    ExemptionSpec,
    FeeSpec,
    FieldType,
    FormDocumentSpec,
    FormFieldSpec,
    ProcedureSpec,
    ResultSpec,
    StepKind,
    StepSpec,
    Text,
)
from dvcflow._reasons import REASONS, Reason
from dvcflow._rulepacks import ContactRule, RulePacks, RulePackSpec, ServiceModel
from dvcflow._snapshots import DossierSnapshot, HistoryEvent, Page
from dvcflow._values import (
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
    FeeKind,
    FeeTiming,
    Money,
)
from dvcflow._visits import count_visits
from dvcflow.errors import (
    CalendarError,
    CommandConflictError,
    ConcurrencyError,
    ConfigurationError,
    DvcflowError,
    InvalidDefinitionError,
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    RefusedError,
    SchemaError,
    SignatureError,
    StoreUnavailableError,
    TamperedHistoryError,
)
from dvcflow.levels import Level, OnlineClass

__version__ = _version("dvcflow")

__all__ = [
    "REASONS",
    "ROLES",
    "Action",
    "Actor",
    "ActorKind",
    "Applicant",
    "ApplicantType",
    "CalendarError",
    "CalendarOverride",
    "CapabilitiesSpec",
    "CaseSpec",
    "Catalog",
    "Channel",
    "Checkpoint",
    "Clock",
    "ClockPolicy",
    "CodeFormat",
    "CodePeriod",
    "CommandConflictError",
    "ComponentSpec",
    "ConcurrencyError",
    "Config",
    "ConfigurationError",
    "ContactRule",
    "CopyType",
    "DayCounting",
    "DeadlineRules",
    "Decision",
    "DeliveryMethod",
    "DocumentKind",
    "Dossier",
    "DossierSnapshot",
    "DueDateChange",
    "Duration",
    "DurationUnit",
    "DvcflowError",
    "Effect",
    "EffectKind",
    "Engine",
    "Event",
    "ExemptionSpec",
    "FeeKind",
    "FeeObligation",
    "FeeSpec",
    "FeeTiming",
    "FieldType",
    "FormDocumentSpec",
    "FormFieldSpec",
    "FrozenClock",
    "HistoryEvent",
    "InvalidDefinitionError",
    "InvalidValueError",
    "Kernel",
    "Level",
    "LifecycleSpec",
    "MigrationItem",
    "MigrationPlan",
    "Money",
    "NationalStatus",
    "NotFoundError",
    "OfficeHours",
    "OnlineClass",
    "Page",
    "PaymentWaitPolicy",
    "PermissionDeniedError",
    "Problem",
    "ProcedureSpec",
    "Reason",
    "RefusedError",
    "ResultSpec",
    "RulePackSpec",
    "RulePacks",
    "SchemaError",
    "ServiceModel",
    "SignatureError",
    "StateSpec",
    "StepKind",
    "StepSpec",
    "StoreUnavailableError",
    "SupplementExpiry",
    "SupplementPolicy",
    "SystemClock",
    "TamperedHistoryError",
    "Text",
    "Timeliness",
    "TransitionSpec",
    "Wait",
    "WorkingCalendar",
    "__version__",
    "count_visits",
    "load_overrides",
    "replay",
    "retry",
]
