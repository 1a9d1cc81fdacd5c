"""The command line: ``validate`` and ``demo``, their output and exit codes."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

from dvcflow._cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main


def run(*argv: str) -> tuple[int, str]:
    """Run the command line in-process; returns the exit code and standard output."""
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


class TestValidate:
    def test_examples_are_valid(self, examples_dir: Path) -> None:
        """Every example file passes, one line each."""
        code, out = run("validate", str(examples_dir))
        lines = out.splitlines()
        assert code == EXIT_OK
        assert len(lines) == 7
        assert all(": ok (" in line for line in lines)
        assert any("khai-sinh.toml: ok (1.001193, level 4, class full)" in line for line in lines)

    def test_unknown_key_exits_1_naming_it(self, examples_dir: Path, tmp_path: Path) -> None:
        """A copy of an example with one unknown key fails and names the key."""
        bad = tmp_path / "khai-sinh.toml"
        text = (examples_dir / "khai-sinh.toml").read_text(encoding="utf-8")
        bad.write_text(text.replace("[result]\n", "[result]\ncolour = 'blue'\n"), encoding="utf-8")
        code, out = run("validate", str(bad))
        assert code == EXIT_INVALID
        assert out == f"{bad}: result.colour: unknown key\n"

    def test_not_toml_exits_1_naming_the_file(self, tmp_path: Path) -> None:
        """A file that is not TOML at all fails and names the file."""
        bad = tmp_path / "broken.toml"
        bad.write_text("code = [\n", encoding="utf-8")
        code, out = run("validate", str(bad))
        assert code == EXIT_INVALID
        assert out.startswith(f"{bad}: not valid TOML: ")

    def test_every_error_listed(self, examples_dir: Path, tmp_path: Path) -> None:
        """Good files still print ok while bad ones list all their problems."""
        shutil.copy(examples_dir / "ket-hon.toml", tmp_path)
        bad = tmp_path / "x.json"
        bad.write_text('{"code": "9.9", "name": 1}', encoding="utf-8")
        code, out = run("validate", str(tmp_path))
        assert code == EXIT_INVALID
        assert f"{tmp_path / 'ket-hon.toml'}: ok" in out
        assert f"{bad}: code: '9.9' does not match the expected format" in out
        assert f"{bad}: agency: is required" in out
        assert f"{bad}: name: must be a table, got 1" in out

    def test_missing_argument_is_usage_error(self) -> None:
        """No path is a usage error, exit 2."""
        assert run("validate")[0] == EXIT_USAGE


class TestDemo:
    def test_demo_runs_on_the_database(self, tmp_path: Path) -> None:
        """The demo describes each procedure, then runs its dossiers on a real SQLite file."""
        db = tmp_path / "demo.db"
        code, out = run("demo", "--db", f"sqlite:///{db}", "--dossiers", "5")
        assert code == EXIT_OK
        assert "7 procedures" in out
        assert "1.001193  Đăng ký khai sinh" in out
        assert "level 4 (online payment), 2022 class: full" in out
        assert "online    5 working days     charge 115.000 ₫ before_reception" in out
        assert "[##############################] 35/35" in out
        assert "dossiers by national status: 10 done: 28, 4 processing: 7" in out
        assert "every history verified" in out
        assert db.exists()
        assert (tmp_path / "demo.db.key").stat().st_mode & 0o777 == 0o600

    def test_console_script(self) -> None:
        """The installed ``dvcflow`` entry point runs and exits 0."""
        exe = Path(sys.executable).with_name("dvcflow")
        result = subprocess.run(  # noqa: S603 - our own entry point
            [str(exe), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0
        assert result.stdout.startswith("dvcflow ")
