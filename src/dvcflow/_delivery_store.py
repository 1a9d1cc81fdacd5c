"""The store's statements for messages and their receipts, deliveries and their reports, files."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from dvcflow._schema import (
    deliveries,
    delivery_reports,
    files,
    message_receipts,
    messages,
    payloads,
)

__all__ = ["DeliveryStore"]


class DeliveryStore:
    """Statements of the notification, delivery and file services."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    # -- messages -------------------------------------------------------------------------------

    def message(
        self, connection: Connection, *, key: str | None = None, reference: str | None = None
    ) -> Row[Any] | None:
        """The message with an idempotency key or a reference."""
        where = messages.c.key == key if key is not None else messages.c.reference == reference
        return connection.execute(sa.select(messages).where(where)).first()

    def messages_by_key(self, connection: Connection, keys: Collection[str]) -> dict[str, Row[Any]]:
        """The recorded messages among ``keys``, by key."""
        if not keys:
            return {}
        rows = connection.execute(sa.select(messages).where(messages.c.key.in_(sorted(keys))))
        return {row.key: row for row in rows}

    def upsert_messages(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """Record messages: new ones inserted, known ones (by key) brought up to date."""
        if not rows:
            return
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        statement = dialect.insert(messages)
        changing = ("provider", "provider_ref", "status", "detail", "updated_at")
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[messages.c.key],
                set_={name: statement.excluded[name] for name in changing},
            ),
            rows,
        )

    def update_message(
        self,
        connection: Connection,
        message_id: str,
        **values: Any,  # noqa: ANN401
    ) -> None:
        """Record what became of a message."""
        connection.execute(messages.update().where(messages.c.id == message_id).values(**values))

    def messages_of(self, connection: Connection, dossier_id: str) -> list[Row[Any]]:
        """A dossier's messages, oldest first."""
        query = (
            sa.select(messages)
            .where(messages.c.dossier_id == dossier_id)
            .order_by(messages.c.created_at, messages.c.key)
        )
        return list(connection.execute(query))

    def receipt(self, connection: Connection, provider: str, event_id: str) -> Row[Any] | None:
        """A delivery receipt seen before."""
        return connection.execute(
            sa.select(message_receipts).where(
                message_receipts.c.provider == provider, message_receipts.c.event_id == event_id
            )
        ).first()

    def record_receipt(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Keep a verified delivery receipt, raw, with what it did."""
        connection.execute(message_receipts.insert().values(**row))

    # -- deliveries -----------------------------------------------------------------------------

    def delivery(
        self, connection: Connection, *, key: str | None = None, reference: str | None = None
    ) -> Row[Any] | None:
        """The delivery an effect created, or the one with a reference."""
        where = deliveries.c.key == key if key is not None else deliveries.c.reference == reference
        return connection.execute(sa.select(deliveries).where(where)).first()

    def insert_delivery(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Record a delivery."""
        connection.execute(deliveries.insert().values(**row))

    def update_delivery(
        self,
        connection: Connection,
        delivery_id: str,
        states: Collection[str] | None = None,
        **values: Any,  # noqa: ANN401
    ) -> bool:
        """Update a delivery (still in one of ``states``, if given); whether it was."""
        query = deliveries.update().where(deliveries.c.id == delivery_id)
        if states is not None:
            query = query.where(deliveries.c.status.in_(list(states)))
        return connection.execute(query.values(**values)).rowcount == 1

    def deliveries_of(self, connection: Connection, dossier_id: str) -> list[Row[Any]]:
        """A dossier's deliveries, oldest first."""
        query = (
            sa.select(deliveries)
            .where(deliveries.c.dossier_id == dossier_id)
            .order_by(deliveries.c.created_at, deliveries.c.reference)
        )
        return list(connection.execute(query))

    def report(self, connection: Connection, provider: str, event_id: str) -> Row[Any] | None:
        """A courier report seen before."""
        return connection.execute(
            sa.select(delivery_reports).where(
                delivery_reports.c.provider == provider, delivery_reports.c.event_id == event_id
            )
        ).first()

    def record_report(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Keep a verified courier report, raw, with what it did."""
        connection.execute(delivery_reports.insert().values(**row))

    # -- files ----------------------------------------------------------------------------------

    def add_file(self, connection: Connection, **row: Any) -> None:  # noqa: ANN401
        """Record a dossier's stored file."""
        connection.execute(files.insert().values(**row))

    def file(
        self, connection: Connection, dossier_id: str, digest: str, role: str = "result"
    ) -> Row[Any] | None:
        """A dossier's stored file by digest and role."""
        return connection.execute(
            sa.select(files).where(
                files.c.dossier_id == dossier_id, files.c.digest == digest, files.c.role == role
            )
        ).first()

    def set_signature(
        self, connection: Connection, file_id: int, signature: dict[str, Any]
    ) -> None:
        """Keep a file's signature with it."""
        connection.execute(files.update().where(files.c.id == file_id).values(signature=signature))

    def files_of(self, connection: Connection, dossier_id: str) -> list[Row[Any]]:
        """A dossier's stored files, oldest first."""
        query = sa.select(files).where(files.c.dossier_id == dossier_id).order_by(files.c.id)
        return list(connection.execute(query))

    # -- personal data the services need ----------------------------------------------------------

    def personal_kind(self, connection: Connection, dossier_id: str, kind: str) -> Any:  # noqa: ANN401
        """A personal payload of one kind recorded at intake (``preferences``), unless erased."""
        return connection.execute(
            sa.select(payloads.c.data)
            .where(payloads.c.dossier_id == dossier_id, payloads.c.kind == kind)
            .limit(1)
        ).scalar()
