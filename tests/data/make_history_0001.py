"""Write ``history_0001.json``: a database made by dvcflow at schema revision 0001, as rows.

Run with the dvcflow of commit ee7380c (the last one at revision 0001) first on the path::

    git archive ee7380c src examples | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python tests/data/make_history_0001.py /tmp/old/examples/procedures

``tests/test_migrations.py`` loads the rows into a database at revision 0001, opens it with the
current dvcflow (which upgrades it) and verifies every history against the saved checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dvcflow import Actor, Applicant, ApplicantType, Catalog, Channel, Config, Engine, FrozenClock

KEY_ENV = "DVCFLOW_0001_KEY"
KEY = "0c" * 32
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
AGENCY = "UBND-XA.002"
OFFICER = Actor.staff("officer-1", roles={"receiving_officer"}, agency=AGENCY)
HEAD = Actor.staff("head-1", roles={"department_head"}, agency=AGENCY)
SPECIALIST = Actor.staff("specialist-1", roles={"specialist"}, agency=AGENCY)
TABLES = (
    "procedure_versions",
    "applicants",
    "dossiers",
    "payloads",
    "events",
    "chain_head",
    "commands",
    "outbox",
    "timers",
    "code_sequences",
)


def plain(value: Any) -> Any:
    """A cell as JSON: instants as ISO text."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


def main(examples: Path) -> None:
    """Make the dossiers, then print every table's rows as JSON."""
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'dvcflow.db'}"
    clock = FrozenClock(START)
    procedure = Catalog.from_path(examples).get("2.000575")
    engine = Engine.open(
        url,
        catalog=[procedure],
        config=Config(history_key_env=KEY_ENV),
        clock=clock,
        environ={KEY_ENV: KEY},
    )
    applicant = Applicant(
        ApplicantType.CITIZEN, "001099012345", "Nguyễn Văn An", phone="0912345678"
    )
    ids = [
        engine.submit(
            "2.000575",
            applicant=applicant,
            actor=OFFICER,
            channel=Channel.IN_PERSON,
            form={"business_name": "Tạp hóa An", "capital_vnd": 1, "business_lines": "bán lẻ"},
            documents=["application"],
            fees_collected=True,
            command_id=f"intake-{n}",
        ).id
        for n in range(3)
    ]
    for n, dossier in enumerate(ids):
        clock.advance(dt.timedelta(minutes=30))
        engine.fire(dossier, "start", actor=HEAD, payload={"specialist": f"cv-{n}"})
    engine.fire(ids[0], "request_supplement", actor=SPECIALIST, payload={"reason": "thiếu"})
    engine.fire(ids[1], "assign", actor=HEAD, payload={"specialist": "cv-9"}, command_id="c-9")
    checkpoint = str(engine.checkpoint())
    engine.close()
    rows: dict[str, Any] = {"key": KEY, "checkpoint": checkpoint}
    tables = sa.MetaData()
    with sa.create_engine(url).connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
            "0001"
        )
        # Reflected: JSON columns come back as values, not as their text.
        tables.reflect(connection)
        for name in TABLES:
            result = connection.execute(sa.select(tables.tables[name]))
            rows[name] = [
                {column: plain(cell) for column, cell in zip(result.keys(), row, strict=True)}
                for row in result
            ]
    json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
