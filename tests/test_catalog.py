"""Tests of the procedure catalogue: loading directories, lookup, and checking files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dvcflow import (
    Catalog,
    DvcflowError,
    InvalidDefinitionError,
    NotFoundError,
    Problem,
    ProcedureSpec,
    RulePacks,
)
from dvcflow._catalog import FileCheck, check_files

EXAMPLES = Path(__file__).parent.parent / "examples" / "procedures"
CODES = ["1.000894", "1.001193", "1.002804", "1.009994", "2.000488", "2.000575", "2.000815"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The example catalogue, loaded once."""
    return Catalog.from_path(EXAMPLES)


@pytest.fixture
def examples_copy(tmp_path: Path) -> Path:
    """A writable copy of the example procedure files."""
    target = tmp_path / "procedures"
    shutil.copytree(EXAMPLES, target)
    return target


class TestFromPath:
    def test_loads_the_seven_examples(self, catalog):
        """The example directory holds seven procedures, keyed by national code."""
        assert len(catalog) == 7
        assert sorted(procedure.code for procedure in catalog) == CODES

    def test_accepts_a_string_path(self):
        """A directory given as a string loads the same catalogue."""
        assert [p.code for p in Catalog.from_path(str(EXAMPLES))] == CODES

    def test_accepts_several_files(self):
        """Files given one by one make a catalogue of just those procedures."""
        catalog = Catalog.from_path(
            EXAMPLES / "khai-sinh.toml", EXAMPLES / "doi-giay-phep-lai-xe.json"
        )
        assert [p.code for p in catalog] == ["1.001193", "1.002804"]

    def test_reads_subdirectories_and_ignores_other_files(self, examples_copy):
        """A catalogue directory is searched recursively; README.md and other files are skipped."""
        nested = examples_copy / "tinh" / "xa"
        nested.mkdir(parents=True)
        (examples_copy / "khai-sinh.toml").rename(nested / "khai-sinh.toml")
        (examples_copy / "notes.txt").write_text("not a procedure", encoding="utf-8")
        assert (examples_copy / "README.md").exists()
        assert [p.code for p in Catalog.from_path(examples_copy)] == CODES

    def test_suffixes_are_case_insensitive(self, tmp_path):
        """KHAI-SINH.TOML is read like khai-sinh.toml."""
        shutil.copy(EXAMPLES / "khai-sinh.toml", tmp_path / "KHAI-SINH.TOML")
        assert "1.001193" in Catalog.from_path(tmp_path)

    def test_empty_directory_is_an_error(self, tmp_path):
        """A directory without procedure files is refused rather than giving an empty catalogue."""
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(tmp_path)
        assert caught.value.problems == (
            Problem(str(tmp_path), "", "no .toml or .json procedure files found"),
        )

    def test_directory_with_only_other_files_is_an_error(self, tmp_path):
        """Only .toml and .json files count as procedures."""
        (tmp_path / "README.md").write_text("# nothing here", encoding="utf-8")
        with pytest.raises(InvalidDefinitionError, match=r"no \.toml or \.json procedure files"):
            Catalog.from_path(tmp_path)

    def test_missing_path_is_an_error(self, tmp_path):
        """A path that does not exist is reported as a problem of that path."""
        missing = tmp_path / "nope.toml"
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(missing)
        assert [str(p) for p in caught.value.problems] == [f"{missing}: no such file or directory"]

    def test_one_bad_file_fails_the_catalogue(self, examples_copy):
        """A catalogue with one broken file does not load, and names only that file."""
        broken = examples_copy / "ket-hon.toml"
        broken.write_text("extra = 1\n" + broken.read_text(encoding="utf-8"), encoding="utf-8")
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(examples_copy)
        assert [str(p) for p in caught.value.problems] == [f"{broken}: extra: unknown key"]

    def test_duplicate_code_in_a_catalogue(self, examples_copy):
        """A second file defining an existing code is refused, naming the first file."""
        copy = examples_copy / "z-khai-sinh-copy.toml"
        shutil.copy(examples_copy / "khai-sinh.toml", copy)
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(examples_copy)
        assert [str(p) for p in caught.value.problems] == [
            f"{copy}: code: 1.001193 is already defined in {examples_copy / 'khai-sinh.toml'}"
        ]

    def test_custom_rule_packs(self, tmp_path):
        """Rule-pack pins are checked against the packs given, not only the built-in ones."""
        text = (EXAMPLES / "khai-sinh.toml").read_text(encoding="utf-8")
        path = tmp_path / "khai-sinh.toml"
        path.write_text('rule_pack = "levels-2009"\n' + text, encoding="utf-8")
        assert Catalog.from_path(path).get("1.001193").rule_pack == "levels-2009"
        only_2024 = RulePacks([RulePacks.builtin().get("vneid-2024")])
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog.from_path(path, rule_packs=only_2024)
        assert [str(p) for p in caught.value.problems] == [
            f"{path}: rule_pack: unknown rule pack 'levels-2009' (known: vneid-2024)"
        ]


class TestLookup:
    def test_get_returns_the_procedure(self, catalog):
        """get() returns the procedure with that national code."""
        procedure = catalog.get("1.001193")
        assert isinstance(procedure, ProcedureSpec)
        assert procedure.code == "1.001193"
        assert procedure.name.vi == "Đăng ký khai sinh"

    @pytest.mark.parametrize("code", CODES)
    def test_every_code_is_found(self, catalog, code):
        """Every code of the catalogue is contained and found by get()."""
        assert code in catalog
        assert catalog.get(code).code == code

    @pytest.mark.parametrize("code", ["9.999999", "1.001193.H38", "", "1.001193 "])
    def test_unknown_code(self, catalog, code):
        """An unknown code is not contained, and get() raises NotFoundError naming it."""
        assert code not in catalog
        with pytest.raises(NotFoundError) as caught:
            catalog.get(code)
        assert repr(code) in str(caught.value)
        assert isinstance(caught.value, DvcflowError)
        assert isinstance(caught.value, LookupError)

    @pytest.mark.parametrize("value", [None, 1.001193, ("1.001193",)])
    def test_contains_anything_else_is_false(self, catalog, value):
        """Membership of a non-string is simply False."""
        assert value not in catalog

    def test_iteration_is_sorted_by_code(self, catalog):
        """Iterating a catalogue gives its procedures in code order, every time."""
        assert [p.code for p in catalog] == CODES
        assert [p.code for p in catalog] == [p.code for p in catalog]

    def test_iteration_order_does_not_depend_on_input_order(self, catalog):
        """A catalogue built from procedures in any order iterates in code order."""
        reversed_catalog = Catalog(reversed(list(catalog)))
        assert [p.code for p in reversed_catalog] == CODES
        assert len(reversed_catalog) == 7

    def test_constructor_refuses_duplicates(self, catalog):
        """Building a catalogue from a list with a repeated procedure is an error."""
        procedure = catalog.get("1.001193")
        with pytest.raises(InvalidDefinitionError) as caught:
            Catalog([procedure, catalog.get("2.000488"), procedure])
        assert caught.value.problems == (
            Problem("<catalog>", "code", "procedure 1.001193 is listed twice"),
        )

    def test_empty_catalogue_from_procedures(self):
        """A catalogue built in code from no procedures is empty, not an error."""
        empty = Catalog([])
        assert len(empty) == 0
        assert list(empty) == []
        assert "1.001193" not in empty


class TestCheckFiles:
    def test_examples_all_pass(self):
        """Every example file checks clean and carries its procedure, in path order."""
        checks = check_files([EXAMPLES])
        assert [check.path.name for check in checks] == sorted(
            p.name for p in EXAMPLES.iterdir() if p.suffix in {".toml", ".json"}
        )
        assert all(isinstance(check, FileCheck) for check in checks)
        assert all(check.problems == () for check in checks)
        assert sorted(check.procedure.code for check in checks if check.procedure) == CODES

    def test_never_raises_for_bad_files(self, tmp_path):
        """check_files reports broken, missing and foreign files without raising."""
        (tmp_path / "broken.toml").write_text("code = ", encoding="utf-8")
        (tmp_path / "list.json").write_text("[]", encoding="utf-8")
        missing = tmp_path / "missing.json"
        checks = check_files([tmp_path, missing])
        assert [(check.path.name, check.procedure) for check in checks] == [
            ("broken.toml", None),
            ("list.json", None),
            ("missing.json", None),
        ]
        assert [len(check.problems) for check in checks] == [1, 1, 1]
        assert checks[0].problems[0].message.startswith("not valid TOML")
        assert checks[1].problems[0].message == "the document must be a table (a JSON object)"
        assert checks[2].problems[0].message == "no such file or directory"
        assert all(problem.path == "" for check in checks for problem in check.problems)

    def test_good_and_bad_files_side_by_side(self, examples_copy):
        """A broken file loses its procedure; the other files keep theirs."""
        broken = examples_copy / "ho-kinh-doanh.toml"
        broken.write_text(
            broken.read_text(encoding="utf-8").replace('code = "2.000575"', 'code = "2.575"'),
            encoding="utf-8",
        )
        checks = {check.path.name: check for check in check_files([examples_copy])}
        assert checks["ho-kinh-doanh.toml"].procedure is None
        assert [str(p) for p in checks["ho-kinh-doanh.toml"].problems] == [
            f"{broken}: code: '2.575' does not match the expected format"
        ]
        others = [check for name, check in checks.items() if name != "ho-kinh-doanh.toml"]
        assert len(others) == 6
        assert all(check.procedure is not None and not check.problems for check in others)

    def test_duplicate_code_is_reported_against_the_later_file(self, tmp_path):
        """Of two files with one code, the first keeps its procedure and the second is blamed."""
        first, second = tmp_path / "a.toml", tmp_path / "b.toml"
        shutil.copy(EXAMPLES / "khai-sinh.toml", first)
        shutil.copy(EXAMPLES / "khai-sinh.toml", second)
        checks = check_files([tmp_path])
        assert checks[0].procedure is not None
        assert checks[0].problems == ()
        assert checks[1].procedure is None
        assert checks[1].problems == (
            Problem(str(second), "code", f"1.001193 is already defined in {first}"),
        )

    def test_unknown_rule_pack_is_reported_against_the_file(self, tmp_path):
        """A pin to a rule pack that does not exist is a problem of the file that names it."""
        path = tmp_path / "p.toml"
        text = (EXAMPLES / "khai-sinh.toml").read_text(encoding="utf-8")
        path.write_text('rule_pack = "nope"\n' + text, encoding="utf-8")
        (check,) = check_files([path])
        assert check.procedure is None
        assert check.problems == (
            Problem(
                str(path),
                "rule_pack",
                "unknown rule pack 'nope' (known: levels-2009, online-2022, vneid-2024)",
            ),
        )

    def test_no_paths_no_checks(self):
        """Checking nothing gives no results (the catalogue, not check_files, refuses that)."""
        assert check_files([]) == []
