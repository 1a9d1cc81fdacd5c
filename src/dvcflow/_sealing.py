"""Sealing: committed events get the next numbers and MACs of the database-wide chain, in batches.

A command's transaction writes its event with the dossier's MAC only and takes no
database-wide lock. A sealer then locks the chain head, numbers the unsealed events oldest
first (by their id, which grows in insertion order) and chains each one:
``chain_mac = HMAC(key, previous chain_mac + seq + mac)``. Only sealers contend for the head.

Sealing runs opportunistically after a command commits (passing over a head another sealer
holds, so a command never waits for it), in `Engine.tick`, in `Engine.checkpoint` and in
`Engine.seal`. On SQLite the writer lock orders commands anyway: a command seals its own event
in its transaction, which costs no more than the unsealed write would.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        sealed = 0
        while True:
            with self.store.transaction() as connection:
                head = self.store.lock_chain_head(connection, wait=wait)
                if head is None:
                    return sealed
                done = self._seal_batch(connection, head, batch)
            sealed += done
            if done < batch:
                return sealed

    def append(self, connection: Connection, event: Mapping[str, Any]) -> None:
        """Append a command's event: unsealed, or sealed at once where commands seal (SQLite)."""
        if not self.store.seals_in_command:
            self.store.append_event(connection, event)
            return
        seq, head, backlog = self.store.head_for_append(connection)
        if not backlog:
            seq += 1
            sealed = {"seq": seq, "chain_mac": chain_mac(self._key, seq, event["mac"], head)}
            self.store.append_event(connection, {**event, **sealed})
            return
        # Events wait before this one: they take their numbers first, in order.
        self.store.append_event(connection, event)
        while self._seal_batch(connection, (seq, head), BATCH) == BATCH:
            seq, head = self.store.chain_head(connection)

    def _seal_batch(self, connection: Connection, head: tuple[int, str], batch: int) -> int:
        seq, mac = head
        seals = []
        for event_id, event_mac in self.store.unsealed(connection, batch):
            seq += 1
            mac = chain_mac(self._key, seq, event_mac, mac)
            seals.append((event_id, seq, mac))
        if seals:
            self.store.seal_events(connection, seals, (seq, mac))
        return len(seals)
