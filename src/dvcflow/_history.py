"""Tamper-evident history: canonical event bodies, the per-dossier and database-wide MAC chains."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from dvcflow.errors import TamperedHistoryError

__all__ = [
    "GENESIS",
    "Checkpoint",
    "StoredEvent",
    "canonical",
    "chain_mac",
    "digest",
    "event_mac",
    "keyed_digest",
    "verify_chain",
    "verify_dossier",
]

GENESIS = "0" * 64
"""The "previous MAC" of a dossier's first event and of the database's first event."""


def canonical(value: Any) -> str:  # noqa: ANN401 - any JSON-ready value
    """The canonical serialisation the MACs cover: JSON, sorted keys, UTF-8, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:  # noqa: ANN401 - any JSON-ready value
    """SHA-256 (hex) of a value's canonical form: how events refer to personal data."""
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def keyed_digest(key: bytes, purpose: str, value: Any) -> str:  # noqa: ANN401 - JSON-ready
    """HMAC-SHA256 (hex) of a value's canonical form, for ``purpose`` (``"personal"``, ...).

    Stands in for personal data where a plain digest would let anyone confirm a guess.
    """
    return hmac.new(key, f"{purpose}\n{canonical(value)}".encode(), hashlib.sha256).hexdigest()


def event_mac(key: bytes, body: str, previous: str) -> str:
    """HMAC-SHA256 over the dossier's previous MAC and this event's canonical body."""
    return hmac.new(key, f"{previous}\n{body}".encode(), hashlib.sha256).hexdigest()


def chain_mac(key: bytes, seq: int, mac: str, previous: str) -> str:
    """HMAC-SHA256 linking event ``seq`` (by its MAC) to the database-wide chain.

    The event's own MAC does not depend on ``seq``: an event is written with its dossier's
    chain only, and numbered and chained here when it is sealed, after its commit.
    """
    return hmac.new(key, f"{previous}\n{seq}\n{mac}".encode(), hashlib.sha256).hexdigest()


@attrs.frozen
class Checkpoint:
    """The head of the database-wide chain, kept outside the database (``dvcflow checkpoint``)."""

    seq: int
    mac: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.mac}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Read a checkpoint printed as ``seq:mac``.

        Raises:
            ValueError: when the text is not a checkpoint.
        """
        seq, _, mac = text.strip().partition(":")
        if not seq.isdigit() or len(mac) != 64:
            msg = f"not a checkpoint (want SEQ:MAC): {text!r}"
            raise ValueError(msg)
        return cls(int(seq), mac)


@attrs.frozen
class StoredEvent:
    """An event row as the store reads it back.

    ``seq`` and ``chain_mac`` are ``None`` until the event is sealed into the database-wide
    chain (see `dvcflow._sealing`).
    """

    seq: int | None
    dossier_id: str
    version: int
    body: str
    mac: str
    chain_mac: str | None

    @property
    def where(self) -> str:
        """The event's place, as messages name it: ``event 3 (seq 5)`` or ``(unsealed)``."""
        return f"event {self.version} ({'unsealed' if self.seq is None else f'seq {self.seq}'})"


def verify_dossier(
    key: bytes, dossier_id: str, events: Sequence[StoredEvent], version: int
) -> None:
    """Check a dossier's chain: every version present, in order, each MAC over its predecessor.

    Raises:
        TamperedHistoryError: naming the first event that was edited, deleted, inserted or
            moved, or a history shorter than the dossier's version.
    """
    previous = GENESIS
    for expected, event in enumerate(events, start=1):
        where = f"dossier {dossier_id}: {event.where}"
        if event.version != expected:
            missing = "deleted" if event.version > expected else "duplicated or moved"
            msg = f"dossier {dossier_id}: event {expected} is missing ({missing})"
            raise TamperedHistoryError(msg)
        if not hmac.compare_digest(event_mac(key, event.body, previous), event.mac):
            claimed = _claimed_previous(event)
            if claimed is not None and hmac.compare_digest(
                event_mac(key, event.body, claimed), event.mac
            ):
                msg = (
                    f"{where} does not follow event {expected - 1}: deleted, inserted or reordered"
                )
            else:
                msg = f"{where} was edited or inserted: its MAC does not match its content"
            raise TamperedHistoryError(msg)
        body = json.loads(event.body)
        if body.get("dossier_id") != dossier_id or body.get("version") != event.version:
            named = f"{body.get('dossier_id')} v{body.get('version')}"
            msg = f"{where} was moved: its content names dossier {named}"
            raise TamperedHistoryError(msg)
        previous = event.mac
    if len(events) != version:
        msg = (
            f"dossier {dossier_id}: the history has {len(events)} events but the dossier is at "
            f"version {version}: the newest were deleted"
        )
        raise TamperedHistoryError(msg)


def _claimed_previous(event: StoredEvent) -> str | None:
    """The MAC the event's body says it follows (bodies record it), to tell a move from an edit.

    ``None`` when the body is not an event at all (it was overwritten with anything else).
    """
    try:
        body = json.loads(event.body)
    except ValueError:
        return None
    claimed = body.get("previous") if isinstance(body, dict) else None
    return claimed if isinstance(claimed, str) else None


def verify_chain(
    key: bytes, events: Iterable[StoredEvent], *, start_previous: str = GENESIS, first_seq: int = 1
) -> Checkpoint:
    """Check the database-wide chain over ``events`` (ordered by seq), returning its head.

    Raises:
        TamperedHistoryError: at the first gap (a deleted event) or broken link.
    """
    previous, expected = start_previous, first_seq
    for event in events:
        if event.seq is None or event.seq != expected:
            msg = f"the database-wide chain is missing event {expected} (deleted), next {event.seq}"
            raise TamperedHistoryError(msg)
        if event.chain_mac is None or not hmac.compare_digest(
            chain_mac(key, event.seq, event.mac, previous), event.chain_mac
        ):
            msg = (
                f"the database-wide chain breaks at event {event.seq} (dossier {event.dossier_id})"
            )
            raise TamperedHistoryError(msg)
        previous, expected = event.chain_mac, expected + 1
    return Checkpoint(expected - 1, previous)
