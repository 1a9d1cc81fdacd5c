"""Lifecycle diagrams: Mermaid and DOT for every procedure, the CLI, the generated levels page."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dvcflow import Catalog, NotFoundError
from dvcflow._cli import EXIT_INVALID, EXIT_OK, main
from dvcflow._diagram import to_dot, to_mermaid
from dvcflow._docgen import PAGES, authorization_markdown, levels_markdown
from dvcflow.levels import lifecycle_for

DOCS = Path(__file__).resolve().parents[1] / "docs"


class TestMermaid:
    def test_every_state_and_edge_drawn(self, catalog: Catalog) -> None:
        """Each state appears with its national code, and each state-changing edge is drawn."""
        for procedure in catalog:
            spec = lifecycle_for(procedure)
            text = to_mermaid(spec)
            assert text.startswith("stateDiagram-v2\n")
            for state in spec.states:
                assert f"    {state.name}: {state.name} ({state.status.code} " in text
            for edge in spec.transitions:
                if edge.dest is not None:
                    start = "[*]" if edge.source == "initial" else edge.source
                    line = next(
                        ln
                        for ln in text.splitlines()
                        if ln.startswith(f"    {start} --> {edge.dest}:")
                    )
                    assert edge.trigger in line.split(": ", 1)[1].split(" / ")

    def test_final_states_end(self, catalog: Catalog) -> None:
        """Final states lead to the end marker, other states do not."""
        text = to_mermaid(lifecycle_for(catalog.get("1.001193")))
        ends = {ln.split(" --> ")[0].strip() for ln in text.splitlines() if ln.endswith("--> [*]")}
        assert ends == {"refused", "stopped", "withdrawn", "returned"}

    def test_current_state_highlighted(self, catalog: Catalog) -> None:
        """The current state gets the highlight class."""
        text = to_mermaid(lifecycle_for(catalog.get("2.000488")), current="police_check")
        assert text.endswith("    class police_check current\n")

    def test_internal_edges_optional(self, catalog: Catalog) -> None:
        """Triggers that keep the state are drawn only on request."""
        spec = lifecycle_for(catalog.get("2.000488"))
        assert "processing --> processing: assign" not in to_mermaid(spec)
        assert "processing --> processing: assign" in to_mermaid(spec, internal=True)

    def test_unknown_state(self, catalog: Catalog) -> None:
        """Highlighting a state the lifecycle lacks is an error naming the states."""
        with pytest.raises(NotFoundError, match="no state 'nowhere'"):
            to_mermaid(lifecycle_for(catalog.get("2.000815")), current="nowhere")


class TestDot:
    def test_dot_shape(self, catalog: Catalog) -> None:
        """DOT output declares every state, doubles final ones and fills the current one."""
        spec = lifecycle_for(catalog.get("1.009994"))
        text = to_dot(spec, current="appraisal")
        assert text.startswith('digraph "level-3" {\n')
        assert text.rstrip().endswith("}")
        assert '"returned" [label="returned\\n10 done", peripheries=2];' in text
        assert '"appraisal" [label="appraisal\\n4 processing", style="rounded,filled"' in text
        assert '"appraisal" -> "site_inspection" [label="hand_over"];' in text


class TestCommand:
    @pytest.mark.parametrize("fmt", ["mermaid", "dot"])
    def test_every_example(self, examples_dir: Path, fmt: str) -> None:
        """``dvcflow diagram`` prints a diagram for every example procedure."""
        for path in sorted(examples_dir.glob("*.*")):
            if path.suffix not in {".toml", ".json"}:
                continue
            out = io.StringIO()
            assert main(["diagram", str(path), "--format", fmt], out=out) == EXIT_OK
            assert out.getvalue().startswith("stateDiagram-v2" if fmt == "mermaid" else "digraph")

    def test_state_option(self, examples_dir: Path) -> None:
        """``--state`` highlights a state; an unknown one exits 1."""
        path = str(examples_dir / "khai-sinh.toml")
        out = io.StringIO()
        assert main(["diagram", path, "--state", "result_ready"], out=out) == EXIT_OK
        assert "class result_ready current" in out.getvalue()
        assert main(["diagram", path, "--state", "nowhere"], out=io.StringIO()) == EXIT_INVALID

    def test_invalid_file(self, tmp_path: Path) -> None:
        """An invalid procedure file exits 1."""
        bad = tmp_path / "bad.toml"
        bad.write_text("code = 1\n", encoding="utf-8")
        assert main(["diagram", str(bad)], out=io.StringIO()) == EXIT_INVALID


class TestLevelsPage:
    @pytest.mark.parametrize("name", sorted(PAGES))
    def test_docs_match_templates(self, name: str) -> None:
        """Each generated docs page is exactly what the level templates give today."""
        assert (DOCS / name).read_text(encoding="utf-8") == PAGES[name]()

    def test_one_diagram_per_level(self) -> None:
        """The page holds one Mermaid diagram per level."""
        text = levels_markdown()
        assert text.count("```mermaid") == 4
        for level in ("Level 1", "Level 2", "Level 3", "Level 4"):
            assert f"## {level}" in text


class TestAuthorizationPage:
    def test_table_matches_domain_defaults(self) -> None:
        """The published table holds DOMAIN.md's default roles for the key triggers."""
        text = authorization_markdown()
        assert "| `resolve` | leader | processing |" in text
        assert "| `submit` | business, citizen, representative | initial |" in text
        assert "| `receive` | receiving_officer | initial, submitted |" in text
        assert "| `expire_supplement` | system | awaiting_supplement |" in text
        assert "| `correct_due_date` | admin |" in text
