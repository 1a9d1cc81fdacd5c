"""Shared parts of the level templates: intake, processing, payment, withdrawal, return."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import attrs

from dvcflow._lifecycle import (
    BUILTIN_STATUSES,
    FINAL_STATES,
    INITIAL,
    LifecycleSpec,
    NationalStatus,
    StateSpec,
    TransitionSpec,
)
from dvcflow._procedure import ProcedureSpec, StepKind, StepSpec
from dvcflow._values import DeliveryMethod

__all__ = [
    "APPLICANTS",
    "Parts",
    "assemble",
    "counter_intake",
    "online_intake",
    "payment",
    "processing",
    "returning",
    "withdrawal",
]

APPLICANTS = frozenset({"citizen", "business", "representative"})
"""The roles that together are "the applicant"."""

_RETURN_ROLES = {
    DeliveryMethod.IN_PERSON: frozenset({"receiving_officer"}),
    DeliveryMethod.POSTAL: frozenset({"postal_worker", "system"}),
    DeliveryMethod.ELECTRONIC: frozenset({"system"}),
}


@attrs.frozen
class Parts:
    """What one part contributes: states and edges."""

    states: tuple[str, ...] = ()
    transitions: tuple[TransitionSpec, ...] = ()


def _edge(
    trigger: str,
    sources: Iterable[str],
    dest: str | None,
    roles: Iterable[str],
    **kwargs: str | None,
) -> list[TransitionSpec]:
    return [TransitionSpec(trigger, source, dest, frozenset(roles), **kwargs) for source in sources]


def work_states(steps: Sequence[StepSpec]) -> tuple[str, ...]:
    """The states of processing proper: ``processing`` and one per agency step."""
    return ("processing", *(step.name for step in steps))


def counter_intake() -> Parts:
    """In-person (and, from level 2, postal) intake: the receiving officer creates the dossier."""
    return Parts(
        ("received",), tuple(_edge("receive", [INITIAL], "received", {"receiving_officer"}))
    )


def online_intake() -> Parts:
    """Online submission (level 3 and up) and the reception check of a submitted dossier."""
    officer = {"receiving_officer"}
    edges = [
        *_edge("submit", [INITIAL], "submitted", APPLICANTS),
        *_edge("receive", ["submitted"], "received", officer),
        *_edge("refuse", ["submitted"], "refused", officer),
        *_edge("request_supplement", ["submitted"], "awaiting_supplement", officer),
        *_edge(
            "accept_supplement",
            ["awaiting_supplement"],
            "submitted",
            officer,
            returns_to="submitted",
        ),
        # A prepaid fee (collected before reception) is confirmed while the dossier waits.
        *_edge("confirm_payment", ["submitted"], None, {"system", "cashier"}),
    ]
    return Parts(("submitted", "received", "refused", "awaiting_supplement"), tuple(edges))


def processing(steps: Sequence[StepSpec], *, online_supplement: bool) -> Parts:
    """Processing with the agency's steps in order, supplements, reschedules, stop and resolve."""
    work = work_states(steps)
    edges = [
        *_edge("start", ["received"], "processing", {"department_head"}),
        *_edge("assign", work, None, {"department_head"}),
        *_edge("reassign", work, None, {"department_head", "admin"}),
    ]
    # Without steps, hand_over still logs a hand-over between officers within processing.
    chain = ["processing", *(step.name for step in steps), "processing"]
    for index, (src, dest) in enumerate(itertools.pairwise(chain)):
        entering = steps[index] if index < len(steps) else None
        leaving = steps[index - 1] if index > 0 else None
        if leaving is not None and leaving.kind is StepKind.CONSULTATION:
            edges += _edge("answer_consultation", [src], dest, {"external_agency"})
        elif entering is not None and entering.kind is StepKind.CONSULTATION:
            edges += _edge("consult", [src], dest, {"specialist"})
        else:
            roles = leaving.roles if leaving is not None else {"specialist"}
            edges += _edge("hand_over", [src], dest, roles)
    applicants = APPLICANTS if online_supplement else frozenset()
    edges += [
        *_edge("request_supplement", work, "awaiting_supplement", {"specialist"}),
        *_edge("supplement", ["awaiting_supplement"], None, applicants | {"receiving_officer"}),
        *_edge(
            "expire_supplement", ["awaiting_supplement"], "stopped", {"system"}, when="expiry:stop"
        ),
        *_edge(
            "expire_supplement",
            ["awaiting_supplement"],
            "withdrawn",
            {"system"},
            when="expiry:withdraw",
        ),
        *_edge("reschedule", ["received", *work], None, {"leader"}),
        *_edge(
            "correct_due_date",
            ["received", *work, "awaiting_supplement", "awaiting_payment"],
            None,
            {"admin"},
        ),
        *_edge("stop", [*work, "awaiting_supplement", "awaiting_payment"], "stopped", {"leader"}),
        *_edge("resolve", ["processing"], "result_ready", {"leader"}),
    ]
    edges += [
        TransitionSpec(
            "accept_supplement",
            "awaiting_supplement",
            state,
            frozenset({"receiving_officer"}),
            state,
        )
        for state in work
    ]
    states = ("received", *work, "awaiting_supplement", "stopped", "withdrawn", "result_ready")
    return Parts(states, tuple(edges))


def payment(steps: Sequence[StepSpec], *, online: bool) -> Parts:
    """Fee payment: requested in processing or before return, settled online or at the counter."""
    roles = {"system", "cashier"} if online else {"cashier"}
    waiting_from = [*work_states(steps), "result_ready"]
    edges = [
        *_edge("request_payment", waiting_from, "awaiting_payment", {"specialist", "cashier"}),
        *_edge("confirm_payment", ["received", *work_states(steps), "result_ready"], None, roles),
        # Settled: back where the request interrupted; partly paid: keep waiting.
        *[
            TransitionSpec(
                "confirm_payment", "awaiting_payment", state, frozenset(roles), state, "paid:all"
            )
            for state in waiting_from
        ],
        *_edge("confirm_payment", ["awaiting_payment"], None, roles, when="paid:part"),
    ]
    if online:
        edges += _edge("expire_payment", ["awaiting_payment"], None, {"system"})
    return Parts(("awaiting_payment",), tuple(edges))


def withdrawal(active: Sequence[str]) -> Parts:
    """Withdrawal at the applicant's request, any time before the result is ready."""
    edges = [
        *_edge("request_withdrawal", active, "withdrawal_requested", APPLICANTS),
        *_edge("approve_withdrawal", ["withdrawal_requested"], "withdrawn", {"leader"}),
        *[
            TransitionSpec(
                "reject_withdrawal", "withdrawal_requested", state, frozenset({"leader"}), state
            )
            for state in active
        ],
    ]
    return Parts(("withdrawal_requested", "withdrawn"), tuple(edges))


def returning(methods: Iterable[DeliveryMethod]) -> Parts:
    """Numbering and returning the result by the methods the procedure offers."""
    roles: frozenset[str] = frozenset().union(*(_RETURN_ROLES[method] for method in methods))
    edges = [
        *_edge("issue_result", ["result_ready"], None, {"clerk"}),
        *_edge("return_result", ["result_ready"], "returned", roles),
    ]
    return Parts(("result_ready", "returned"), tuple(edges))


def approvals(states: Iterable[str]) -> Parts:
    """A leader's sign-off of outgoing documents, possible in any non-final state."""
    return Parts((), tuple(_edge("approve_document", states, None, {"leader"})))


def assemble(name: str, procedure: ProcedureSpec, parts: Sequence[Parts]) -> LifecycleSpec:
    """Join parts into one lifecycle, mapping every state onto its national status."""
    steps = {step.name: step for step in procedure.steps}
    order: list[str] = []
    for part in parts:
        order += [state for state in part.states if state not in order]
    states = [
        StateSpec(
            state,
            BUILTIN_STATUSES.get(state, NationalStatus.PROCESSING),
            final=state in FINAL_STATES,
            step=state if state in steps else None,
        )
        for state in order
    ]
    transitions = [edge for part in parts for edge in part.transitions]
    live = [state for state in order if state not in FINAL_STATES]
    transitions += approvals(live).transitions
    return LifecycleSpec(name, states, transitions)
