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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "applicants",
    "chain_head",
    "code_sequences",
    "commands",
    "dossiers",
    "events",
    "metadata",
    "outbox",
    "payloads",
    "procedure_versions",
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
    Column("status", String(20), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Instant, nullable=False),
    Index(None, "status", "next_attempt_at"),
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
