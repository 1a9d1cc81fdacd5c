"""The ``dvcflow`` command line: argument parsing, exit codes, and one function per command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from dvcflow._catalog import check_files
from dvcflow._commands import DEFAULT_DB, add_database_commands
from dvcflow.errors import (
    DvcflowError,
    InvalidDefinitionError,
    NotFoundError,
    SchemaError,
    StoreUnavailableError,
)

__all__ = ["EXIT_ENVIRONMENT", "EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_INVALID = 1
"""Refused or invalid input; the message says what and where."""
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3
"""Database or back end unreachable, a file system problem."""

Command = Callable[[argparse.Namespace, TextIO], int]


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    checks = check_files(args.paths)
    if not checks:
        print(f"{', '.join(args.paths)}: no .toml or .json procedure files found", file=sys.stderr)
        return EXIT_INVALID
    for check in checks:
        if check.procedure is not None:
            procedure = check.procedure
            klass = procedure.online_class
            label = f"class {klass.value}" if klass else "no 2022 class"
            print(
                f"{check.path}: ok ({procedure.code}, level {procedure.level.value}, {label})",
                file=out,
            )
        for problem in check.problems:
            print(problem, file=out)
    return EXIT_OK if all(check.procedure is not None for check in checks) else EXIT_INVALID


def _diagram(args: argparse.Namespace, out: TextIO) -> int:
    from dvcflow._diagram import to_dot, to_mermaid  # noqa: PLC0415 - only this command draws
    from dvcflow.levels import lifecycle_for  # noqa: PLC0415

    checks = check_files([args.file])
    problems = [problem for check in checks for problem in check.problems]
    if problems or not checks or checks[0].procedure is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    spec = lifecycle_for(checks[0].procedure)
    draw = to_dot if args.format == "dot" else to_mermaid
    out.write(draw(spec, current=args.state, internal=args.internal))
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from dvcflow._demo import run_demo  # noqa: PLC0415 - keeps `dvcflow validate` light

    return run_demo(out, catalog_path=args.catalog, db=args.db, per_procedure=args.dossiers)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dvcflow",
        description="Lifecycle of administrative dossiers for Vietnam's online public services.",
    )
    from dvcflow import __version__  # noqa: PLC0415 - the package imports this module lazily

    parser.add_argument("--version", action="version", version=f"dvcflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser("demo", help="run the demo on the example catalogue")
    demo.add_argument(
        "--catalog",
        type=Path,
        default=None,
        help="procedure files to use (default: the bundled examples)",
    )
    demo.add_argument(
        "--db", default=DEFAULT_DB, metavar="URL", help=f"database URL (default {DEFAULT_DB})"
    )
    demo.add_argument(
        "--dossiers", type=int, default=10, metavar="N", help="dossiers per procedure (default 10)"
    )
    demo.set_defaults(handler=_demo)

    diagram = commands.add_parser("diagram", help="draw a procedure's lifecycle")
    diagram.add_argument("file", metavar="FILE", help="a procedure file (.toml or .json)")
    diagram.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    diagram.add_argument("--state", metavar="NAME", help="highlight this state")
    diagram.add_argument(
        "--internal",
        action="store_true",
        help="also draw triggers that keep the state (assign, approve_document, ...)",
    )
    diagram.set_defaults(handler=_diagram)

    add_database_commands(commands)

    validate = commands.add_parser(
        "validate", help="check procedure files and report every problem"
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="procedure files or directories")
    validate.set_defaults(handler=_validate)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 1 invalid, 2 usage, 3 environment)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    handler: Command = args.handler
    stream = sys.stdout if out is None else out
    try:
        return handler(args, stream)
    except (StoreUnavailableError, SchemaError) as exc:
        print(f"dvcflow {args.command}: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except (InvalidDefinitionError, NotFoundError) as exc:
        print(f"dvcflow {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except DvcflowError as exc:
        print(f"dvcflow {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"dvcflow {args.command}: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
