"""Lifecycle definitions as data: states, transitions, national status codes, validation."""

from __future__ import annotations

import enum
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

import attrs

from dvcflow._values import ROLES
from dvcflow.errors import InvalidDefinitionError, Problem

__all__ = [
    "FINAL_STATES",
    "INITIAL",
    "TRIGGERS",
    "LifecycleSpec",
    "NationalStatus",
    "StateSpec",
    "TransitionSpec",
    "validate_lifecycle",
]

INITIAL = "initial"
"""The pseudo-state before a dossier's first command; never stored."""


class NationalStatus(enum.Enum):
    """The National Public Service Portal's dossier status codes (the interoperability contract)."""

    RECEIVING = 1
    """Mới đăng ký: submitted online, awaiting the reception check."""
    NEW = 2
    """Được tiếp nhận: received; receipt and appointment slip issued, clock started."""
    DENIED = 3
    """Không được tiếp nhận: refused at reception."""
    PROCESSING = 4
    """Đang xử lý: in processing."""
    WAITING = 5
    """Yêu cầu bổ sung giấy tờ: supplement requested from the applicant."""
    PAYING = 6
    """Yêu cầu thực hiện nghĩa vụ tài chính: fee or tax payment requested."""
    CANCELLED = 7
    """Công dân yêu cầu rút hồ sơ: withdrawal requested by the applicant."""
    UNRESOLVED = 8
    """Dừng xử lý: processing stopped."""
    RELEASING = 9
    """Đã xử lý xong: result ready."""
    DONE = 10
    """Đã trả kết quả: result returned."""

    @property
    def code(self) -> int:
        """The numeric code, 1-10."""
        return self.value

    @property
    def slug(self) -> str:
        """The portal's slug, e.g. ``"processing"``."""
        return self.name.lower()


FINAL_STATES = frozenset({"refused", "withdrawn", "stopped", "returned"})

BUILTIN_STATUSES: Mapping[str, NationalStatus] = {
    "submitted": NationalStatus.RECEIVING,
    "received": NationalStatus.NEW,
    "refused": NationalStatus.DENIED,
    "processing": NationalStatus.PROCESSING,
    "awaiting_supplement": NationalStatus.WAITING,
    "awaiting_payment": NationalStatus.PAYING,
    "withdrawal_requested": NationalStatus.CANCELLED,
    "withdrawn": NationalStatus.CANCELLED,
    "stopped": NationalStatus.UNRESOLVED,
    "result_ready": NationalStatus.RELEASING,
    "returned": NationalStatus.DONE,
}

TRIGGERS = frozenset(
    {
        "accept_supplement",
        "answer_consultation",
        "approve_document",
        "approve_withdrawal",
        "assign",
        "confirm_payment",
        "consult",
        "correct_due_date",
        "expire_payment",
        "expire_supplement",
        "hand_over",
        "issue_result",
        "reassign",
        "receive",
        "refuse",
        "reject_withdrawal",
        "request_payment",
        "request_supplement",
        "request_withdrawal",
        "reschedule",
        "resolve",
        "return_result",
        "start",
        "stop",
        "submit",
        "supplement",
    },
)
"""Every trigger a built-in lifecycle knows (DOMAIN.md §2)."""


def _role_set(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _state_tuple(value: Iterable[StateSpec]) -> tuple[StateSpec, ...]:
    return tuple(value)


def _edge_tuple(value: Iterable[TransitionSpec]) -> tuple[TransitionSpec, ...]:
    return tuple(value)


@attrs.frozen
class StateSpec:
    """A stored state and the national status it maps onto."""

    name: str
    status: NationalStatus
    final: bool = False
    step: str | None = None
    """For an agency step's state: the step's name."""


@attrs.frozen
class TransitionSpec:
    """One edge: ``trigger`` from ``source`` to ``dest`` (``None`` stays put), and who may fire it.

    ``returns_to`` marks an edge taken only when the dossier is returning from a waiting state
    to that state; ``when`` names a further selection condition the kernel evaluates
    (e.g. ``"expiry:stop"``).
    """

    trigger: str
    source: str
    dest: str | None
    roles: frozenset[str] = attrs.field(converter=_role_set)
    returns_to: str | None = None
    when: str | None = None

    @property
    def target(self) -> str:
        """The state after the edge (the source for an internal edge)."""
        return self.source if self.dest is None else self.dest


@attrs.frozen
class LifecycleSpec:
    """A procedure's lifecycle: the states and edges a level template and its steps produce."""

    name: str
    states: tuple[StateSpec, ...] = attrs.field(converter=_state_tuple)
    transitions: tuple[TransitionSpec, ...] = attrs.field(converter=_edge_tuple)
    initial: str = INITIAL

    def state(self, name: str) -> StateSpec:
        """The state called ``name``.

        Raises:
            KeyError: when there is none (a programming error: validated lifecycles are closed).
        """
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    @property
    def triggers(self) -> frozenset[str]:
        """Every trigger with at least one edge."""
        return frozenset(t.trigger for t in self.transitions)

    def outgoing(self, source: str) -> tuple[TransitionSpec, ...]:
        """The edges leaving ``source``, in definition order."""
        return tuple(t for t in self.transitions if t.source == source)

    def with_roles(self, narrowed: Mapping[str, frozenset[str]]) -> LifecycleSpec:
        """The lifecycle with the roles of some triggers narrowed (an agency's own table)."""
        edges = [
            attrs.evolve(t, roles=t.roles & narrowed[t.trigger]) if t.trigger in narrowed else t
            for t in self.transitions
        ]
        return attrs.evolve(self, transitions=edges)


def _graph(spec: LifecycleSpec) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for transition in spec.transitions:
        edges[transition.source].add(transition.target)
    return edges


def _reach(start: Iterable[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen = set(start)
    queue = deque(seen)
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _edge_problems(spec: LifecycleSpec, known: set[str], finals: set[str]) -> list[tuple[str, str]]:
    problems = []
    for edge in spec.transitions:
        where = f"transitions.{edge.trigger}[{edge.source}]"
        if edge.source != spec.initial and edge.source not in known:
            problems.append((where, f"unknown source state {edge.source!r}"))
        if edge.dest is not None and edge.dest not in known:
            problems.append((where, f"unknown destination state {edge.dest!r}"))
        unknown_roles = sorted(edge.roles - ROLES)
        if not edge.roles:
            problems.append((where, "names no role that may fire it"))
        elif unknown_roles:
            problems.append((where, f"unknown role {unknown_roles[0]!r}"))
        if edge.source in finals:
            problems.append((where, f"leaves the final state {edge.source!r}"))
        if edge.target == spec.initial:
            # An internal edge on `initial` would store the pseudo-state too.
            problems.append((where, "returns to the initial pseudo-state"))
    return problems


def _graph_problems(
    spec: LifecycleSpec, names: list[str], finals: set[str]
) -> list[tuple[str, str]]:
    problems = []
    edges = _graph(spec)
    reachable = _reach([spec.initial], edges)
    reverse: dict[str, set[str]] = defaultdict(set)
    for src, dests in edges.items():
        for dest in dests:
            reverse[dest].add(src)
    can_finish = _reach(finals, reverse)
    for name in names:
        if name not in reachable:
            problems.append((f"states.{name}", "is unreachable from the initial state"))
        elif name not in finals and name not in can_finish:
            problems.append((f"states.{name}", "is a trap: no final state can be reached from it"))
    return problems


def validate_lifecycle(spec: LifecycleSpec, *, source: str = "<lifecycle>") -> None:
    """Check a lifecycle's shape and raise every problem found.

    One initial pseudo-state that creates dossiers, every state reachable, no trap states,
    final states absorbing, roles on every edge.

    Raises:
        InvalidDefinitionError: naming each offending state or trigger.
    """
    names = [state.name for state in spec.states]
    known = set(names)
    finals = {state.name for state in spec.states if state.final}
    problems = [
        (f"states.{name}", "defined twice")
        for name in sorted({n for n in names if names.count(n) > 1})
    ]
    if spec.initial in known:
        problems.append(
            (f"states.{spec.initial}", "the initial pseudo-state is never a stored state")
        )
    if not finals:
        problems.append(("states", "a lifecycle needs at least one final state"))
    if not any(edge.source == spec.initial for edge in spec.transitions):
        problems.append((f"states.{spec.initial}", "no trigger creates a dossier"))
    problems += _edge_problems(spec, known, finals)
    problems += _graph_problems(spec, names, finals)
    if problems:
        raise InvalidDefinitionError(Problem(source, path, message) for path, message in problems)
