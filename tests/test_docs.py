"""The documentation's Python examples run, against the real code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = ["docs/engine.md"]
"""Pages whose every ``python`` block runs as written, in order, in one namespace."""


def blocks(page: str) -> list[str]:
    """The ``python`` code blocks of a Markdown page."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


class TestExamples:
    @pytest.mark.parametrize("page", RUNNABLE)
    def test_page_examples_run(
        self, page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each runnable page's examples execute without error in a fresh folder."""
        (tmp_path / "examples").symlink_to(ROOT / "examples")
        monkeypatch.chdir(tmp_path)
        namespace: dict[str, object] = {}
        for code in blocks(page):
            exec(compile(code, page, "exec"), namespace)  # noqa: S102 - our own documentation
        assert namespace["d"] is not None
        assert (tmp_path / "dvcflow.db").exists()
        assert (tmp_path / "dvcflow.db.key").stat().st_mode & 0o777 == 0o600
