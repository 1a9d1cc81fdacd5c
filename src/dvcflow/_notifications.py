"""Notifications: a template per event and locale, a chain of channels, receipts applied once.

The outbox worker hands each ``notify`` effect (and each form sent to the applicant) here. The
applicant is reached on the first channel of ``[notifications] chain`` that they opted into,
that they have an address for and that the event's template has a text for; an address the
channel refuses (not a Zalo follower, a mailbox that does not exist), a message over its limit
or a permanent-failure receipt moves the message on to the next channel. Officers and other
agencies are reached on the ``webhook`` channel (the portal's own inbox). Each message sent is
a ``messages`` row with the template version it was rendered from; neither its key nor its
reference carries personal data, and the address is kept only as a keyed hash.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy.engine import Connection, Row

from dvcflow._backends import (
    CallbackReply,
    Family,
    Message,
    MessageChannel,
    MessageStatus,
    Provider,
)
from dvcflow._clock import to_utc
from dvcflow._kernel import EffectKind
from dvcflow._ledger import payment_reference
from dvcflow._outbox_store import queued
from dvcflow._snapshots import aware
from dvcflow._templates import Rendered, Template
from dvcflow._values import FeeKind, Money
from dvcflow.errors import (
    BackendError,
    ConcurrencyError,
    NotFoundError,
)

if TYPE_CHECKING:
    from dvcflow._engine import Engine

__all__ = ["Journal", "MessageRecord", "Notifications"]

logger = logging.getLogger("dvcflow")
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
_FEE_NAMES = {
    "vi": {FeeKind.FEE.value: "phí", FeeKind.CHARGE.value: "lệ phí"},
    "en": {FeeKind.FEE.value: "fee", FeeKind.CHARGE.value: "charge"},
}
_SENT = {MessageStatus.SENDING.value, MessageStatus.DELIVERED.value}


@attrs.frozen
class MessageRecord:
    """A message sent (or tried) about a dossier, without its address or text."""

    reference: str
    event: str
    recipient: str
    channel: MessageChannel
    locale: str
    template_version: str
    provider: str | None
    provider_ref: str | None
    status: MessageStatus
    detail: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _record(row: Row[Any]) -> MessageRecord:
    return MessageRecord(
        row.reference,
        row.event,
        row.recipient,
        MessageChannel(row.channel),
        row.locale,
        row.template_version,
        row.provider,
        row.provider_ref,
        MessageStatus(row.status),
        row.detail,
        aware(row.created_at),
        aware(row.updated_at),
    )


@attrs.define
class Journal:
    """The messages of one batch of the outbox worker: those known before it, those to write.

    Messages are written in the transaction that marks the batch done, not one by one: a
    crash before it sends them again (the provider deduplicates by key), as the outbox does.
    """

    known: dict[str, Mapping[str, Any]]
    """Messages already recorded, by key."""
    rows: dict[str, dict[str, Any]] = attrs.Factory(dict)
    """Messages to record (insert or update), by key."""

    def get(self, key: str) -> Mapping[str, Any] | None:
        """The latest known state of the message with ``key``."""
        return self.rows.get(key) or self.known.get(key)


@attrs.frozen
class _Target:
    channel: MessageChannel
    address: str


@attrs.frozen
class _Draft:
    """A notification on its way to a channel: what to render, for whom."""

    key: str
    dossier: Row[Any]
    event: str
    recipient: str
    template: Template
    locale: str
    values: Mapping[str, str]
    data: Mapping[str, Any]


class Notifications:
    """The engine's notifications: ``engine.notifications``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._store = engine.store
        self._rows = engine.store.deliveries
        self._settings = engine.config.notifications

    # -- reading -------------------------------------------------------------------------------

    def of(self, dossier: str) -> list[MessageRecord]:
        """A dossier's messages, oldest first."""
        with self._store.connect() as connection:
            row = self._store.dossier(connection, dossier)
            if row is None:
                raise NotFoundError(f"no dossier {dossier!r}")
            return [_record(m) for m in self._rows.messages_of(connection, row.id)]

    # -- sending (the outbox worker's side) --------------------------------------------------------

    def journal(self, rows: Collection[Row[Any]]) -> Journal:
        """A journal for a batch of effects, with the messages already recorded for them."""
        keys = {
            f"{row.key.rsplit(':after:', 1)[0]}:{channel.value}"
            for row in rows
            for channel in MessageChannel
        }
        with self._store.connect() as connection:
            known = self._rows.messages_by_key(connection, keys)
        # Row._mapping is SQLAlchemy's public mapping view, despite its name.
        return Journal({key: dict(row._mapping) for key, row in known.items()})  # noqa: SLF001

    def write(self, connection: Connection, journal: Journal) -> None:
        """Record a batch's messages (in the worker's closing transaction)."""
        self._rows.upsert_messages(connection, list(journal.rows.values()))

    def dispatch(
        self, row: Row[Any], dossier: Row[Any], now: dt.datetime, journal: Journal
    ) -> None:
        """Send a ``notify`` or ``issue_document`` effect on the first channel that takes it.

        Raises:
            BackendError: retryable, when a channel failed for now (the worker retries, from
                that channel); not retryable, when the event has no template.
        """
        data = dict(row.data)
        kind = EffectKind(row.kind)
        event = str(data.pop("event")) if kind is EffectKind.NOTIFY else f"form_{data.pop('form')}"
        recipient = str(data.pop("to", "applicant"))
        after = data.pop("after", None)
        try:
            template = self._settings.templates.get(event)
        except NotFoundError as exc:
            raise BackendError(str(exc), retryable=False) from None
        locale, targets = self._targets(dossier, recipient, data, template)
        if after is not None:
            channels = [t.channel.value for t in targets]
            targets = targets[channels.index(after) + 1 :] if after in channels else []
        if not targets:
            logger.info(
                "dvcflow notification has no channel",
                extra={"effect": row.key, "event": event, "recipient": recipient},
            )
            return
        draft = _Draft(
            key=row.key if after is None else row.key.rsplit(":after:", 1)[0],
            dossier=dossier,
            event=event,
            recipient=recipient,
            template=template,
            locale=locale,
            values=self._values(dossier, data, locale) | {"event": event},
            data=data,
        )
        failures = []
        for target in targets:
            failure = self._send(draft, target, now, journal)
            if failure is None:
                return
            failures.append(f"{target.channel.value}: {failure}")
        # Every channel refused it for good: an operator must look.
        raise BackendError(
            f"no channel took the {event} message: {'; '.join(failures)}", retryable=False
        )

    def _targets(
        self,
        dossier: Row[Any],
        recipient: str,
        data: Mapping[str, Any],
        template: Template,
    ) -> tuple[str, list[_Target]]:
        """The locale and the channels to try, in order, with their addresses."""
        if recipient != "applicant":
            address = str(data.get("account") or data.get("agency") or recipient)
            return self._settings.locale, [_Target(MessageChannel.WEBHOOK, address)]
        with self._store.connect() as connection:
            personal = self._store.personal(connection, dossier.id)
            preferences = self._rows.personal_kind(connection, dossier.id, "preferences") or {}
        applicant = personal.get("applicant") or {}
        locale = preferences.get("locale", self._settings.locale)
        addresses = {
            MessageChannel.EMAIL: applicant.get("email"),
            MessageChannel.SMS: applicant.get("phone"),
            MessageChannel.ZALO: applicant.get("phone"),
        }
        # Without a choice, every channel with an address but Zalo (which needs the applicant
        # to follow the agency's account, so is only used when chosen).
        chosen = set(preferences.get("channels", ("email", "sms")))
        targets = [
            _Target(channel, str(addresses[channel]))
            for channel in self._settings.chain
            if channel.value in chosen
            and addresses.get(channel)
            and template.has("subject" if channel is MessageChannel.EMAIL else "short")
        ]
        return locale, targets

    def _values(self, dossier: Row[Any], data: Mapping[str, Any], locale: str) -> dict[str, str]:
        kernel = self._engine.kernel(dossier.procedure_version)
        name = kernel.procedure.name
        due = data.get("due_at")
        if due is None and dossier.due_at is not None:
            due = aware(dossier.due_at).isoformat()
        values = {
            "code": dossier.code or "",
            "procedure": (name.en if locale == "en" and name.en else name.vi),
            "agency": kernel.procedure.agency,
            "event": "",
            "account": str(data.get("account", "")),
            "due_date": "" if due is None else _local(dt.datetime.fromisoformat(due)),
            "amount": "" if "amount" not in data else _money(int(data["amount"]), locale),
            "fee": _FEE_NAMES[locale].get(str(data.get("kind", "")), ""),
            "link": str(data.get("link", "")),
        }
        if data.get("agency"):
            values["agency"] = str(data["agency"])
        return values

    def _send(
        self, draft: _Draft, target: _Target, now: dt.datetime, journal: Journal
    ) -> str | None:
        """Send on one channel: ``None`` when sent, else why it cannot be (try the next)."""
        dossier = draft.dossier
        message_key = f"{draft.key}:{target.channel.value}"
        existing = journal.get(message_key)
        if existing is not None:
            status, detail = existing["status"], existing["detail"]
            if status in _SENT:
                return None
            if status == MessageStatus.PERMANENT_FAILURE.value:
                return str(detail or "permanent failure")
        rendered = draft.template.render(draft.locale, draft.values)
        provider = self._provider(target.channel, dossier)
        reference = payment_reference("M", message_key)
        message = _message(draft, target, rendered, message_key, reference)
        record: dict[str, Any] = {
            "id": existing["id"] if existing is not None else str(uuid.uuid4()),
            "reference": reference,
            "key": message_key,
            "dossier_id": dossier.id,
            "event": draft.event,
            "recipient": draft.recipient,
            "channel": target.channel.value,
            "locale": rendered.locale,
            "template_version": rendered.version,
            "provider": provider.name,
            "provider_ref": None,
            "status": MessageStatus.CREATED.value,
            "detail": None,
            "address_digest": self._address_digest(target.address),
            "created_at": existing["created_at"] if existing is not None else now,
            "updated_at": now,
        }
        journal.rows[message_key] = record
        try:
            receipt = self._engine.backends.send_message(provider, message)
        except BackendError as exc:
            failure = (
                MessageStatus.TECHNICAL_FAILURE
                if exc.retryable
                else MessageStatus.PERMANENT_FAILURE
            )
            record |= {"status": failure.value, "detail": str(exc)}
            if exc.retryable:
                raise
            return str(exc)
        status = receipt.status if receipt.status in _SENT else MessageStatus.SENDING.value
        record |= {"status": status, "provider_ref": receipt.provider_ref}
        return None

    def _provider(self, channel: MessageChannel, dossier: Row[Any]) -> Provider:
        name = self._settings.channels.get(channel)
        if name is not None:
            return self._engine.backends.provider(name)
        return self._engine.backends.provider_for(
            Family.NOTIFICATION, procedure=dossier.procedure_code, agency=dossier.agency
        )

    def _address_digest(self, address: str) -> str:
        return self._engine.recorder.identifier_digest(f"address:{address}")

    # -- receipts --------------------------------------------------------------------------------

    def receipt(
        self,
        provider: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        now: dt.datetime | None = None,
    ) -> str:
        """Apply a delivery receipt a provider posted; what it did.

        ``"applied"``, ``"duplicate"`` (seen before) or ``"stale"`` (it would move the message
        backwards). A permanent failure sends the message on the applicant's next channel.

        Raises:
            SignatureError: the receipt does not authenticate.
            CallbackError: malformed, oversize, for an unknown provider or message (each in
                the security log; nothing else changed).
        """
        at = to_utc(now if now is not None else self._engine.clock.now(), "now")
        _backend, report = self._engine.intake.verified(
            "receipt",
            provider,
            body=body,
            headers=headers,
            parse=self._engine.backends.parse_receipt,
            at=at,
        )
        with self._store.connect() as connection:
            if self._rows.receipt(connection, provider, report.event_id) is not None:
                return "duplicate"
            message = self._rows.message(connection, reference=report.reference)
        if message is None or message.provider != provider:
            detail = f"no message {report.reference!r}"
            raise self._engine.intake.reject(
                f"receipt:{provider}", "unknown_reference", detail, body, at
            )
        current = MessageStatus(message.status)
        result = "applied" if report.status.rank > current.rank else "stale"
        if current.terminal:
            result = "stale"
        try:
            with self._store.transaction() as connection:
                self._rows.record_receipt(
                    connection,
                    provider=provider,
                    event_id=report.event_id,
                    message_id=message.id,
                    status=report.status.value,
                    result=result,
                    received_at=at,
                    raw=body,
                )
                if result == "applied":
                    self._rows.update_message(
                        connection,
                        message.id,
                        status=report.status.value,
                        detail=report.detail,
                        updated_at=at,
                    )
                    if report.status is MessageStatus.PERMANENT_FAILURE:
                        self._fall_back(connection, message, at)
        except ConcurrencyError:
            return "duplicate"
        return result

    def _fall_back(self, connection: Connection, message: Row[Any], at: dt.datetime) -> None:
        """Queue the message again, on the channels after the one that failed."""
        effect_key = message.key.rsplit(":", 1)[0]
        original = self._store.ledger.outbox_row_by_key(connection, effect_key)
        if original is None:
            return
        data = dict(original.data) | {"after": message.channel}
        key = f"{effect_key}:after:{message.channel}"
        self._store.add_outbox(
            connection, [queued(key, message.dossier_id, original.kind, data, at)]
        )

    def endpoint(self, provider: str) -> Callable[[bytes, Mapping[str, str]], CallbackReply]:
        """A receipt endpoint for the portal's web framework: 204 accepted, 400 rejected."""
        return self._engine.intake.endpoint(
            lambda body, headers: self.receipt(provider, body, headers)
        )


def _message(
    draft: _Draft, target: _Target, rendered: Rendered, key: str, reference: str
) -> Message:
    short = target.channel in {MessageChannel.SMS, MessageChannel.ZALO}
    return Message(
        key=key,
        reference=reference,
        channel=target.channel,
        address=target.address,
        text=(rendered.short or rendered.text) if short else rendered.text,
        subject=None if short else rendered.subject,
        html=rendered.html if target.channel is MessageChannel.EMAIL else None,
        locale=rendered.locale,
        event=draft.event,
        template_version=rendered.version,
        dossier_code=draft.dossier.code,
        data=dict(draft.data),
    )


def _local(value: dt.datetime) -> str:
    return f"{value.astimezone(LOCAL):%d/%m/%Y %H:%M}"


def _money(amount: int, locale: str) -> str:
    text = f"{Money(amount).amount:,}"
    return f"{text.replace(',', '.')} đồng" if locale == "vi" else f"{text} VND"
