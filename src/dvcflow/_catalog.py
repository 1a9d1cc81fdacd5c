"""The procedure catalogue: every procedure file of a portal, loaded and checked together."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from dvcflow._loading import read_procedure
from dvcflow._procedure import ProcedureSpec
from dvcflow._reader import Node, Report, read_document
from dvcflow._rulepacks import RulePacks
from dvcflow.errors import InvalidDefinitionError, NotFoundError, Problem

__all__ = ["Catalog", "FileCheck", "check_files"]

SUFFIXES = (".toml", ".json")


@attrs.frozen
class FileCheck:
    """What checking one definition file found: its procedure, or its problems."""

    path: Path
    procedure: ProcedureSpec | None
    problems: tuple[Problem, ...]


def _files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            )
        else:
            found.append(path)
    return found


def check_files(
    paths: Iterable[str | Path], *, rule_packs: RulePacks | None = None
) -> list[FileCheck]:
    """Check every procedure file under ``paths`` (files or directories) without raising.

    Besides each file's own problems, a procedure code defined twice and an unknown rule pack
    are reported against the file that names them.
    """
    packs = RulePacks.builtin() if rule_packs is None else rule_packs
    checks: list[FileCheck] = []
    first_seen: dict[str, Path] = {}
    for path in _files(paths):
        report = Report(str(path))
        data = read_document(path, report) if path.exists() else None
        if not path.exists():
            report.add("", "no such file or directory")
        procedure = None if data is None else read_procedure(Node(data, "", report))
        if procedure is not None:
            if procedure.rule_pack is not None and procedure.rule_pack not in packs:
                known = ", ".join(pack.name for pack in packs)
                report.add(
                    "rule_pack", f"unknown rule pack {procedure.rule_pack!r} (known: {known})"
                )
            if procedure.code in first_seen:
                report.add(
                    "code",
                    f"{procedure.code} is already defined in {first_seen[procedure.code]}",
                )
            first_seen.setdefault(procedure.code, path)
        ok = not report.problems
        checks.append(FileCheck(path, procedure if ok else None, tuple(report.problems)))
    return checks


class Catalog:
    """The procedures a portal offers, keyed by national code.

    >>> catalog = Catalog.from_path("examples/procedures")
    >>> catalog.get("1.001193").name.vi
    'Đăng ký khai sinh'
    """

    def __init__(self, procedures: Iterable[ProcedureSpec]) -> None:
        self._procedures: dict[str, ProcedureSpec] = {}
        problems = []
        for procedure in procedures:
            if procedure.code in self._procedures:
                problems.append(
                    Problem("<catalog>", "code", f"procedure {procedure.code} is listed twice")
                )
            self._procedures[procedure.code] = procedure
        if problems:
            raise InvalidDefinitionError(problems)

    @classmethod
    def from_path(cls, *paths: str | Path, rule_packs: RulePacks | None = None) -> Catalog:
        """Load every ``.toml`` and ``.json`` procedure file in ``paths`` (files or directories).

        Raises:
            InvalidDefinitionError: with every problem of every file, each naming file and field.
        """
        checks = check_files(paths, rule_packs=rule_packs)
        problems = [problem for check in checks for problem in check.problems]
        if problems:
            raise InvalidDefinitionError(problems)
        if not checks:
            where = ", ".join(map(str, paths))
            raise InvalidDefinitionError(
                [Problem(where, "", "no .toml or .json procedure files found")]
            )
        return cls(check.procedure for check in checks if check.procedure is not None)

    def get(self, code: str) -> ProcedureSpec:
        """The procedure with national code ``code``.

        Raises:
            NotFoundError: when the catalogue has no such procedure.
        """
        try:
            return self._procedures[code]
        except KeyError:
            raise NotFoundError(f"the catalogue has no procedure {code!r}") from None

    def __iter__(self) -> Iterator[ProcedureSpec]:
        return iter(sorted(self._procedures.values(), key=lambda procedure: procedure.code))

    def __len__(self) -> int:
        return len(self._procedures)

    def __contains__(self, code: object) -> bool:
        return code in self._procedures
