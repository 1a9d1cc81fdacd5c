"""Outbox workers as real OS processes, on SQLite and PostgreSQL, delivering to an HTTP peer.

The workers are ``dvcflow worker`` processes that find the peer's plugin through the
``dvcflow`` entry-point group (``tests/plugins`` on their PYTHONPATH), as a portal's would.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dvcflow import Catalog, Config, Engine, FrozenClock
from peer import Peer
from pg import ENVIRON, Database
from support import drive

HERE = Path(__file__).parent
DOSSIERS = 6
PAST = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
"""When the dossiers were worked on: their effects are due for the workers' system clock."""

sys.path.insert(0, str(HERE / "plugins"))
from dvcflow_webhook_peer import WebhookPeer  # noqa: E402 - the test plugin's folder, just added

sys.path.remove(str(HERE / "plugins"))


def config_file(tmp_path: Path, db: Database, peer: Peer, **worker: int) -> Path:
    """A configuration routing notifications to the peer, with the given worker settings."""
    settings = "\n".join(f"{key} = {value}" for key, value in worker.items())
    history = '[history]\nkey_env = "DVCFLOW_TEST_HISTORY_KEY"\n' if db.dialect != "sqlite" else ""
    path = tmp_path / "dvcflow.toml"
    path.write_text(
        f"""{history}
[providers.peer]
type = "webhook_peer"
settings = {{ url = "{peer.url}" }}

[routing]
notification = "peer"

[worker]
{settings}
""",
        encoding="utf-8",
    )
    return path


def fill(db: Database, catalog: Catalog, config: Path) -> list[str]:
    """Walk a few dossiers to their returned results; the outbox keys they queued."""
    clock = FrozenClock(PAST)
    options = db.options({"config": Config.load(config), "environ": ENVIRON})
    engine = Engine.open(
        db.url, catalog=catalog, clock=clock, plugins=[WebhookPeer()], entry_points=False, **options
    )
    try:
        for _ in range(DOSSIERS):
            drive(engine, clock, catalog.get("2.000575"))
        return [item.key for item in engine.outbox.items()]
    finally:
        engine.close()


def start_worker(db: Database, config: Path, *args: str) -> subprocess.Popen[str]:
    env = os.environ | ENVIRON | {"PYTHONPATH": str(HERE / "plugins")}
    return subprocess.Popen(  # noqa: S603 - our own interpreter and entry point
        [
            sys.executable,
            "-c",
            "import sys; from dvcflow._cli import main; sys.exit(main())",
            "worker",
            "--db",
            db.url,
            "--config",
            str(config),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def effects(messages: Counter[str]) -> Counter[str]:
    """Deliveries counted by effect: a message's key is its effect's key and its channel."""
    counted: Counter[str] = Counter()
    for key, count in messages.items():
        counted[key.rsplit(":", 1)[0]] += count
    return counted


def outbox(db: Database) -> dict[str, int]:
    return dict(db.rows("SELECT status, COUNT(*) FROM outbox GROUP BY status"))


def wait_until(condition, *, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer(delay_s=0.02) as running:
        yield running


class TestWorkerProcesses:
    def test_two_workers_deliver_each_effect_once(
        self, db: Database, catalog: Catalog, peer: Peer, tmp_path: Path
    ):
        """Two worker processes of two threads each: every effect reaches the peer exactly once."""
        config = config_file(tmp_path, db, peer, batch=5, poll_ms=50)
        keys = fill(db, catalog, config)
        workers = [start_worker(db, config, "--concurrency", "2") for _ in range(2)]
        try:
            wait_until(lambda: outbox(db) == {"done": len(keys)}, what="the outbox to drain")
        finally:
            results = [stop(worker) for worker in workers]
        assert [code for code, _ in results] == [0, 0], [err for _, err in results]
        assert effects(peer.counts()) == dict.fromkeys(keys, 1)
        claimed_by = {row[0] for row in db.rows("SELECT claimed_by FROM outbox")}
        assert len(claimed_by) >= 2

    def test_a_worker_killed_mid_dispatch_loses_nothing(
        self, db: Database, catalog: Catalog, tmp_path: Path
    ):
        """SIGKILL mid-batch, then another worker: every effect at least once, applied once."""
        with Peer(delay_s=0.1) as peer:
            config = config_file(tmp_path, db, peer, batch=10, lease_s=2, poll_ms=50)
            keys = fill(db, catalog, config)
            first = start_worker(db, config)
            wait_until(lambda: len(peer.received) >= 5, what="the first deliveries")
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
            in_flight = {
                row[0]
                for row in db.rows(
                    "SELECT key FROM outbox WHERE status = 'pending' AND attempts = 1"
                )
            }
            assert in_flight, "the kill should leave a claimed batch behind"
            second = start_worker(db, config)
            try:
                wait_until(lambda: outbox(db) == {"done": len(keys)}, what="the second worker")
            finally:
                code, err = stop(second)
            assert code == 0, err
            received = effects(peer.counts())
        assert set(received) == set(keys)  # at least once
        assert set(effects(Counter(list(peer.applied)))) == set(keys)  # applied once, by key
        assert len(peer.applied) == len(keys)
        twice = {key for key, count in received.items() if count > 1}
        assert twice <= in_flight  # only what was in the killed worker's hands
        assert db.rows("SELECT COUNT(*) FROM outbox") == [(len(keys),)]
