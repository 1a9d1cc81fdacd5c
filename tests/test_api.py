"""The public façade: a sorted, complete ``__all__``, the version, and the error tree."""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
import types

import dvcflow
from dvcflow import errors


class TestFacade:
    def test_all_is_sorted(self) -> None:
        """``__all__`` is sorted (constants, classes, then the rest, as ruff's RUF022 keeps it)."""

        def group(name: str) -> tuple[int, str]:
            kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
            return kind, name

        assert dvcflow.__all__ == sorted(dvcflow.__all__, key=group)

    def test_all_is_complete(self) -> None:
        """Every public name of the package is listed, and everything listed exists."""
        for name in dvcflow.__all__:
            getattr(dvcflow, name)
        public = {
            name
            for name, value in vars(dvcflow).items()
            if not name.startswith("_")
            and name != "TYPE_CHECKING"
            and not isinstance(value, types.ModuleType)
        }
        assert public | {"__version__"} == set(dvcflow.__all__)
        assert set(dir(dvcflow)) == set(dvcflow.__all__)

    def test_names_load_on_first_use(self) -> None:
        """``import dvcflow`` loads neither the engine nor SQLAlchemy (the command line and
        the pytest plugin start quickly); the first use of a name does."""
        probe = (
            "import sys, dvcflow\n"
            "assert 'sqlalchemy' not in sys.modules and 'dvcflow._engine' not in sys.modules\n"
            "assert dvcflow.Engine.__module__ == 'dvcflow._engine'\n"
            "assert 'sqlalchemy' in sys.modules\n"
            "try:\n"
            "    dvcflow.Engien\n"
            "except AttributeError as error:\n"
            "    assert \"'Engien'\" in str(error)\n"
            "else:\n"
            "    raise AssertionError('a misspelt name resolved')\n"
        )
        subprocess.run([sys.executable, "-c", probe], check=True)  # noqa: S603 - our own code

    def test_version_from_metadata(self) -> None:
        """The version comes from the installed package's metadata."""
        assert dvcflow.__version__ == importlib.metadata.version("dvcflow")

    def test_public_names_live_in_dvcflow(self) -> None:
        """Re-exported classes are dvcflow's own, not a dependency's."""
        for name in dvcflow.__all__:
            value = getattr(dvcflow, name)
            if inspect.isclass(value):
                assert value.__module__.startswith("dvcflow"), name


class TestErrorTree:
    def test_every_error_derives_from_dvcflow_error(self) -> None:
        """One ``except dvcflow.DvcflowError`` catches everything dvcflow raises on purpose."""
        classes = [
            value
            for value in vars(errors).values()
            if inspect.isclass(value) and issubclass(value, Exception)
        ]
        assert len(classes) >= 10
        assert all(issubclass(cls, dvcflow.DvcflowError) for cls in classes)
        assert all(cls.__name__.endswith("Error") for cls in classes)

    def test_builtin_bases_kept_where_natural(self) -> None:
        """Callers catching ValueError or LookupError keep working."""
        assert issubclass(dvcflow.InvalidValueError, ValueError)
        assert issubclass(dvcflow.NotFoundError, LookupError)
        assert issubclass(dvcflow.PermissionDeniedError, dvcflow.RefusedError)
        assert issubclass(dvcflow.ConfigurationError, dvcflow.InvalidDefinitionError)

    def test_refused_error_carries_reasons(self) -> None:
        """A refusal carries machine-readable reasons and the triggers allowed now."""
        error = dvcflow.RefusedError("return_result", ["fees_unpaid"], ["confirm_payment"])
        assert error.reasons == ("fees_unpaid",)
        assert error.allowed == ("confirm_payment",)
        assert str(error) == "return_result refused: fees_unpaid"

    def test_definition_error_lists_every_problem(self) -> None:
        """An invalid definition lists each problem as ``file: path: message``."""
        error = dvcflow.InvalidDefinitionError(
            [
                dvcflow.Problem("a.toml", "code", "bad"),
                dvcflow.Problem("a.toml", "", "worse"),
            ],
        )
        assert str(error) == "2 problems:\n  a.toml: code: bad\n  a.toml: worse"
