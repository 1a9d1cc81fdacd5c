"""``dvcflow demo``: the example catalogue, loaded and described from the definitions themselves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TextIO

from dvcflow._catalog import Catalog
from dvcflow._procedure import ProcedureSpec
from dvcflow._rulepacks import RulePacks
from dvcflow.errors import NotFoundError

__all__ = ["example_catalog_path", "run_demo"]


def example_catalog_path() -> Path:
    """Where the example procedures are: bundled in a wheel, or in the source checkout.

    Raises:
        NotFoundError: when neither exists.
    """
    package = Path(__file__).parent
    for candidate in (package / "_examples", package.parents[1] / "examples" / "procedures"):
        if candidate.is_dir():
            return candidate
    raise NotFoundError("the example procedures are not installed; pass --catalog PATH")


def _describe(procedure: ProcedureSpec, out: TextIO) -> None:
    klass = procedure.online_class.value if procedure.online_class else "-"
    print(f"\n{procedure.code}  {procedure.name.vi}", file=out)
    if procedure.name.en:
        print(f"    {procedure.name.en}", file=out)
    caps = procedure.capabilities
    print(
        f"    level {procedure.level.value} ({procedure.level.name.lower().replace('_', ' ')}), "
        f"2022 class: {klass}; agency {procedure.agency}",
        file=out,
    )
    channels = ", ".join(sorted(channel.value for channel in caps.channels))
    returns = ", ".join(sorted(method.value for method in caps.return_methods))
    print(f"    intake: {channels}; result: {returns}", file=out)
    for case in procedure.cases:
        marker = " (default)" if case.key == procedure.default_case else ""
        print(f"    case {case.key}{marker}: {case.name.vi}", file=out)
        for channel, duration in case.durations:
            fees = case.fees_for(channel)
            owed = (
                "; ".join(f"{fee.kind.value} {money} {fee.timing.value}" for fee, money in fees)
                or "no fees"
            )
            print(f"      {channel.value:<9} {duration!s:<18} {owed}", file=out)
    for step in procedure.steps:
        print(
            f"    step {step.name} ({step.kind.value}, {step.duration})"
            f" by {', '.join(sorted(step.roles))}",
            file=out,
        )


def run_demo(out: TextIO, *, catalog_path: Path | None = None) -> int:
    """Load the catalogue and print each procedure's derived level, class, durations and fees."""
    path = catalog_path if catalog_path is not None else example_catalog_path()
    catalog = Catalog.from_path(path)
    now = dt.datetime.now(dt.UTC)
    pack = RulePacks.builtin().in_force(now)
    print(f"dvcflow demo: {len(catalog)} procedures from {path}", file=out)
    print(
        f"rule pack in force now: {pack.name} ({pack.title}; {', '.join(pack.legal_basis)})",
        file=out,
    )
    for procedure in catalog:
        _describe(procedure, out)
    by_level: dict[int, int] = {}
    for procedure in catalog:
        by_level[procedure.level.value] = by_level.get(procedure.level.value, 0) + 1
    summary = ", ".join(f"level {level}: {count}" for level, count in sorted(by_level.items()))
    print(f"\nsummary: {summary}", file=out)
    return 0
