"""Drawing lifecycles: Mermaid ``stateDiagram-v2`` and Graphviz DOT, current state highlighted."""

from __future__ import annotations

import json
from collections import defaultdict

from dvcflow._lifecycle import INITIAL, LifecycleSpec
from dvcflow.errors import NotFoundError

__all__ = ["to_dot", "to_mermaid"]

_HIGHLIGHT = "#fde68a"


def _edges(spec: LifecycleSpec, *, internal: bool) -> dict[tuple[str, str], list[str]]:
    """Edges grouped by (source, target), each with its triggers in definition order."""
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for edge in spec.transitions:
        if edge.dest is None and not internal:
            continue
        triggers = grouped[(edge.source, edge.target)]
        if edge.trigger not in triggers:
            triggers.append(edge.trigger)
    return grouped


def _check_state(spec: LifecycleSpec, current: str | None) -> None:
    if current is not None and current not in {state.name for state in spec.states}:
        known = ", ".join(state.name for state in spec.states)
        raise NotFoundError(f"the lifecycle has no state {current!r} (states: {known})")


def to_mermaid(spec: LifecycleSpec, *, current: str | None = None, internal: bool = False) -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``; ``current`` is highlighted.

    Internal transitions (a trigger that keeps the state, such as ``assign``) are left out
    unless ``internal`` is true.

    Raises:
        NotFoundError: when ``current`` is not a state of the lifecycle.
    """
    _check_state(spec, current)
    lines = ["stateDiagram-v2"]
    lines.extend(
        f"    {state.name}: {state.name} ({state.status.code} {state.status.slug})"
        for state in spec.states
    )
    for (source, target), triggers in _edges(spec, internal=internal).items():
        start = "[*]" if source == INITIAL else source
        lines.append(f"    {start} --> {target}: {' / '.join(triggers)}")
    lines.extend(f"    {state.name} --> [*]" for state in spec.states if state.final)
    if current is not None:
        lines.append(f"    classDef current fill:{_HIGHLIGHT},stroke:#b45309,stroke-width:2px")
        lines.append(f"    class {current} current")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def to_dot(spec: LifecycleSpec, *, current: str | None = None, internal: bool = False) -> str:
    """The lifecycle as a Graphviz DOT digraph; ``current`` is filled.

    Raises:
        NotFoundError: when ``current`` is not a state of the lifecycle.
    """
    _check_state(spec, current)
    lines = [
        f"digraph {_quote(spec.name)} {{",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded"];',
        f'    {_quote(INITIAL)} [shape=point, label=""];',
    ]
    for state in spec.states:
        label = f"{state.name}\n{state.status.code} {state.status.slug}"
        attributes = [f"label={_quote(label)}"]
        if state.final:
            attributes.append("peripheries=2")
        if state.name == current:
            attributes.append(f'style="rounded,filled", fillcolor="{_HIGHLIGHT}"')
        lines.append(f"    {_quote(state.name)} [{', '.join(attributes)}];")
    for (source, target), triggers in _edges(spec, internal=internal).items():
        lines.append(
            f"    {_quote(source)} -> {_quote(target)} [label={_quote(' / '.join(triggers))}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
