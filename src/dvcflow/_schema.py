"""The database tables, as SQLAlchemy Core metadata (Alembic migrations create and upgrade them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "applicants",
    "callbacks",
    "chain_head",
    "code_sequences",
    "commands",
    "deliveries",
    "delivery_reports",
    "dossiers",
    "events",
    "files",
    "incidents",
    "message_receipts",
    "messages",
    "metadata",
    "outbox",
    "payloads",
    "payment_attempts",
    "payments",
    "procedure_versions",
    "refunds",
    "security_log",
    "timers",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    },
)

Instant = DateTime(timezone=True)
SEQUENCE = BigInteger().with_variant(Integer, "sqlite")
"""Chain numbers: 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit already."""

procedure_versions = Table(
    "procedure_versions",
    metadata,
    Column("id", String(64), primary_key=True, comment="SHA-256 of the canonical definition"),
    Column("code", String(40), nullable=False),
    Column("agency", String(80), nullable=False),
    Column("published_at", Instant, nullable=False),
    Column("definition", Text, nullable=False, comment="canonical JSON, never updated"),
    Index(None, "code", "published_at"),
)

applicants = Table(
    "applicants",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("digest", String(64), nullable=False, comment="SHA-256 of the data, kept after erasure"),
    Column("kind", Integer, nullable=False, comment="national applicant type code 0/1/2"),
    Column("identifier_digest", String(64), nullable=False, comment="keyed hash, for look-ups"),
    Column("data", JSON, nullable=True, comment="personal data; NULL once erased"),
    Column("erased_at", Instant, nullable=True),
    Index(None, "identifier_digest"),
)

dossiers = Table(
    "dossiers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code", String(80), nullable=True, unique=True),
    Column("procedure_code", String(40), nullable=False),
    Column("procedure_version", String(64), ForeignKey("procedure_versions.id"), nullable=False),
    Column("agency", String(80), nullable=False),
    Column("owner", String(120), nullable=True),
    Column("applicant_id", String(36), ForeignKey("applicants.id"), nullable=True),
    Column("state", String(60), nullable=False),
    Column("national_status", Integer, nullable=False),
    Column("due_at", Instant, nullable=True),
    Column("resolved_at", Instant, nullable=True),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", JSON, nullable=False, comment="the kernel's dossier value"),
    Column("last_mac", String(64), nullable=False, comment="MAC of the newest event"),
    Index(None, "national_status", "id"),
    Index(None, "agency", "id"),
    Index(None, "procedure_code", "id"),
    Index(None, "owner", "id"),
    Index(None, "applicant_id", "id"),
    Index(None, "due_at", "id"),
)

payloads = Table(
    "payloads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("kind", String(40), nullable=False, comment="form, documents, receiver, ..."),
    Column("digest", String(64), nullable=False),
    Column("data", JSON, nullable=True, comment="personal data; NULL once erased"),
    Column("erased_at", Instant, nullable=True),
    Index(None, "dossier_id"),
)

events = Table(
    "events",
    metadata,
    # Identity without a cache: ids grow in insertion order across sessions, which the sealer
    # relies on (a dossier's later event never gets an id below an earlier one's).
    Column("id", SEQUENCE, Identity(), primary_key=True),
    Column("seq", SEQUENCE, nullable=True, comment="database-wide chain number; NULL: unsealed"),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("trigger", String(60), nullable=False),
    Column("at", Instant, nullable=False),
    Column("body", Text, nullable=False, comment="canonical JSON the MACs cover"),
    Column("mac", String(64), nullable=False, comment="HMAC(body, the dossier's previous mac)"),
    Column("chain_mac", String(64), nullable=True, comment="HMAC(seq, mac, previous chain_mac)"),
    UniqueConstraint("dossier_id", "version"),
    Index("ix_events_seq", "seq", unique=True),
    # What the sealer reads: only the unsealed events, oldest first.
    Index(
        "ix_events_unsealed",
        "id",
        postgresql_where=text("seq IS NULL"),
        sqlite_where=text("seq IS NULL"),
    ),
)

chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", SEQUENCE, nullable=False),
    Column("mac", String(64), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

commands = Table(
    "commands",
    metadata,
    Column("id", String(120), primary_key=True, comment="the caller's command_id"),
    Column("dossier_id", String(36), nullable=False),
    Column("fingerprint", String(64), nullable=False, comment="SHA-256 of trigger, actor, payload"),
    Column("version", Integer, nullable=False, comment="the dossier version the command produced"),
    Column("outcome", JSON, nullable=False, comment="the snapshot returned, returned again"),
    Column("created_at", Instant, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(160), nullable=False, unique=True, comment="idempotency key"),
    Column("dossier_id", String(36), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column(
        "status", String(20), nullable=False, default="pending", comment="pending/done/incident"
    ),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Instant, nullable=False, comment="also the end of a claim's lease"),
    Column("claimed_by", String(80), nullable=True, comment="the worker of the latest attempt"),
    Column("last_error", Text, nullable=True),
    Column("done_at", Instant, nullable=True),
    # Only what is still to deliver, in claim order: a claim reads what it takes, however
    # many delivered rows the table keeps.
    Index(
        "ix_outbox_due",
        "next_attempt_at",
        "id",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index(None, "dossier_id"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, ForeignKey("outbox.id"), nullable=False),
    Column("dossier_id", String(36), nullable=False),
    Column("kind", String(40), nullable=False, comment="the effect's kind"),
    Column("opened_at", Instant, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("status", String(12), nullable=False, comment="open/retried/skipped"),
    Column("resolved_at", Instant, nullable=True),
    Column("resolved_by", String(120), nullable=True),
    Column("note", Text, nullable=True),
    Index(None, "status", "id"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(40), nullable=False, unique=True, comment="sent to the provider"),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("fee_kind", String(12), nullable=False),
    Column("amount", BigInteger, nullable=False, comment="whole VND"),
    Column("method", String(12), nullable=False, comment="online/counter"),
    Column("state", String(12), nullable=False, comment="pending/awaiting/paid/cancelled/refunded"),
    Column("outbox_key", String(160), nullable=True, unique=True, comment="the request's effect"),
    Column("provider", String(60), nullable=True),
    Column("provider_ref", String(120), nullable=True),
    Column("url", Text, nullable=True),
    Column("expires_at", Instant, nullable=True),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("paid_at", Instant, nullable=True),
    Column("paid_amount", BigInteger, nullable=True),
    Column("receipt", String(120), nullable=True, comment="e-receipt reference"),
    Column("refunded_amount", BigInteger, nullable=False, default=0),
    Column("cancel_reason", String(60), nullable=True),
    Column("cancel_key", String(160), nullable=True, comment="the cancelling effect"),
    Index(None, "dossier_id"),
    Index(None, "state", "updated_at"),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payment_id", String(36), ForeignKey("payments.id"), nullable=False),
    Column("call", String(12), nullable=False, comment="create/query/cancel/refund"),
    Column("idempotency_key", String(160), nullable=False),
    Column("state", String(12), nullable=False, comment="created/started/succeeded/failed/error"),
    Column("finished", Boolean, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("error", Text, nullable=True),
    Index(None, "payment_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(40), nullable=False, unique=True),
    Column("payment_id", String(36), ForeignKey("payments.id"), nullable=True),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("fee_kind", String(12), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("state", String(12), nullable=False, comment="requested/succeeded/failed/counter"),
    Column("outbox_key", String(160), nullable=False, unique=True),
    Column("reason", String(60), nullable=False),
    Column("provider_ref", String(120), nullable=True),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index(None, "dossier_id"),
)

callbacks = Table(
    "callbacks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(60), nullable=False),
    Column("event_id", String(120), nullable=False, comment="the provider's id: deduplication"),
    Column("payment_id", String(36), ForeignKey("payments.id"), nullable=True),
    Column("outcome", String(12), nullable=False),
    Column("result", String(20), nullable=False, comment="applied/duplicate/stale/unowed"),
    Column("received_at", Instant, nullable=False),
    Column("raw", LargeBinary, nullable=False, comment="the body as received"),
    UniqueConstraint("provider", "event_id"),
    Index(None, "payment_id"),
)

security_log = Table(
    "security_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Instant, nullable=False),
    Column("source", String(80), nullable=False, comment="e.g. callback:<provider>"),
    Column("kind", String(40), nullable=False, comment="bad_signature, oversize, ..."),
    Column("detail", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("digest", String(64), nullable=False, comment="SHA-256 of the raw body"),
    Column("excerpt", Text, nullable=False, comment="the first bytes, escaped"),
)

timers = Table(
    "timers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("name", String(60), nullable=False),
    Column("trigger", String(60), nullable=True, comment="NULL: a notification only"),
    Column("due_at", Instant, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("fired_at", Instant, nullable=True),
    Index(None, "active", "due_at"),
    Index(None, "dossier_id", "name"),
)

code_sequences = Table(
    "code_sequences",
    metadata,
    Column("agency", String(80), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("last", Integer, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(40), nullable=False, unique=True, comment="given to the provider"),
    Column("key", String(200), nullable=False, unique=True, comment="<effect key>:<channel>"),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("event", String(60), nullable=False),
    Column("recipient", String(20), nullable=False, comment="applicant/officer/external_agency"),
    Column("channel", String(12), nullable=False),
    Column("locale", String(5), nullable=False),
    Column("template_version", String(120), nullable=False),
    Column("provider", String(60), nullable=True),
    Column("provider_ref", String(120), nullable=True),
    Column("status", String(20), nullable=False, comment="created/sending/delivered/...-failure"),
    Column("detail", Text, nullable=True, comment="why it failed; never the address or text"),
    Column("address_digest", String(64), nullable=False, comment="keyed hash of the address"),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index(None, "dossier_id"),
)

message_receipts = Table(
    "message_receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(60), nullable=False),
    Column("event_id", String(120), nullable=False),
    Column("message_id", String(36), ForeignKey("messages.id"), nullable=True),
    Column("status", String(20), nullable=False),
    Column("result", String(20), nullable=False, comment="applied/duplicate/stale"),
    Column("received_at", Instant, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    UniqueConstraint("provider", "event_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(40), nullable=False, unique=True, comment="given to the courier"),
    Column("key", String(160), nullable=False, unique=True, comment="the effect's key"),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("method", String(12), nullable=False, comment="postal/electronic/in_person"),
    Column("direction", String(10), nullable=False, comment="outbound/inbound"),
    Column("provider", String(60), nullable=True),
    Column("provider_ref", String(120), nullable=True, comment="the waybill"),
    Column("status", String(20), nullable=False),
    Column("detail", Text, nullable=True),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index(None, "dossier_id"),
)

delivery_reports = Table(
    "delivery_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(60), nullable=False),
    Column("event_id", String(120), nullable=False),
    Column("delivery_id", String(36), ForeignKey("deliveries.id"), nullable=True),
    Column("status", String(20), nullable=False),
    Column("result", String(20), nullable=False, comment="applied/duplicate/stale"),
    Column("received_at", Instant, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    UniqueConstraint("provider", "event_id"),
)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dossier_id", String(36), ForeignKey("dossiers.id"), nullable=False),
    Column("digest", String(71), nullable=False, comment="sha256:<hex>"),
    Column("role", String(20), nullable=False, comment="result/attachment"),
    Column("media_type", String(120), nullable=False),
    Column("name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("provider", String(60), nullable=False, comment="the storage provider"),
    Column("signature", JSON, nullable=True, comment="algorithm, key_id, value, signed_at"),
    Column("created_at", Instant, nullable=False),
    UniqueConstraint("dossier_id", "digest", "role"),
)
