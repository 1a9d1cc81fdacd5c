"""Sealing: committed events get the next numbers and MACs of the database-wide chain, in batches.

A command's transaction writes its event with the dossier's MAC only and takes no
database-wide lock. A sealer then locks the chain head, numbers the unsealed events oldest
first (by their id, which grows in insertion order) and chains each one:
``chain_mac = HMAC(key, previous chain_mac + seq + mac)``. Only sealers contend for the head.

Sealing runs opportunistically after a command commits (passing over a head another sealer
holds, so a command never waits for it; at most once per ``seal_interval_ms`` per engine), in
`Engine.tick`, in `Engine.checkpoint` and in `Engine.seal`. On SQLite the writer lock orders
commands anyway: a command seals its own event in its transaction, which costs no more than
the unsealed write would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from dvcflow._history import chain_mac
from dvcflow._store import Store

__all__ = ["BATCH", "Sealer"]

BATCH = 500
"""Events sealed per transaction: the head is locked for one batch at a time."""


class Sealer:
    """Seals the database-wide chain through the store, keyed with the history key."""

    def __init__(self, store: Store, key: bytes) -> None:
        self.store = store
        self._key = key

    def seal(self, *, wait: bool = True, batch: int = BATCH) -> int:
        """Seal every event committed before the call, one batch per transaction.

        Args:
            wait: wait for a head another sealer holds (``False``: leave the work to it).
            batch: events sealed per transaction.

        Returns:
            How many events this call sealed.

        Raises:
            ConcurrencyError: a statement timed out or the connection was lost; what was
                sealed stays sealed and the rest waits for the next sealer.
        """
        with self.store.connect(read=False) as connection:
            return self.seal_on(connection, wait=wait, batch=batch)[0]

    def checkpoint(self) -> tuple[int, str]:
        """Seal every event committed before the call; the head as the last batch left it.

        Taken inside the last batch's transaction, which commits durably on PostgreSQL
        (flushing any opportunistic sealing before it), so the head can be handed out.
        """
        with self.store.connect(read=False) as connection:
            _, head = self.seal_on(connection, wait=True)
        if head is None:  # pragma: no cover - a waiting sealer always gets the head
            msg = "the chain head is missing"
            raise AssertionError(msg)
        return head

    def seal_on(
        self, connection: Connection, *, wait: bool, batch: int = BATCH
    ) -> tuple[int, tuple[int, str] | None]:
        """`seal` on an open connection (a command's, just committed).

        Returns:
            How many events were sealed, and the head the last batch left (``None``: another
            sealer held it).
        """
        sealed = 0
        while True:
            with self.store.begin(connection):
                claimed = self.store.claim_unsealed(connection, wait=wait, limit=batch)
                if claimed is None:
                    return sealed, None
                done, head = self._chain(connection, *claimed)
            sealed += done
            if done < batch:
                return sealed, head

    def number(
        self, connection: Connection, event: Mapping[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """A command's event row as it is to be written, and whether a backlog waits.

        Where commands seal (SQLite) the event gets the next number and chain MAC at once,
        unless older events wait for theirs: then it is written unsealed and
        `seal_backlog` seals them all in order after it. Elsewhere it is left unsealed.
        """
        if not self.store.seals_in_command:
            return dict(event), False
        seq, head, backlog = self.store.head_for_append(connection)
        if backlog:
            return dict(event), True
        seq += 1
        return {
            **event,
            "seq": seq,
            "chain_mac": chain_mac(self._key, seq, event["mac"], head),
        }, False

    def seal_backlog(self, connection: Connection) -> None:
        """Seal every unsealed event in the current transaction (which holds the writer lock)."""
        while True:
            claimed = self.store.claim_unsealed(connection, wait=True, limit=BATCH)
            if claimed is None or self._chain(connection, *claimed)[0] < BATCH:
                return

    def _chain(
        self, connection: Connection, head: tuple[int, str], pending: Sequence[tuple[int, str]]
    ) -> tuple[int, tuple[int, str]]:
        """Number and chain ``pending`` events after ``head``; how many, and the new head."""
        seq, mac = head
        seals = []
        for event_id, event_mac in pending:
            seq += 1
            mac = chain_mac(self._key, seq, event_mac, mac)
            seals.append((event_id, seq, mac))
        if seals:
            self.store.seal_events(connection, seals, (seq, mac))
        return len(seals), (seq, mac)
