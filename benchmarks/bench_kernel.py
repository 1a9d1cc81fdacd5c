"""Benchmark: loading a stored dossier into the kernel plus ``decide()``, against state machines.

Run ``python benchmarks/bench_kernel.py`` (``--profile`` adds where dvcflow's time goes). The
target (issue 4) is a median of at most 15 us per command that does not recompute a due date, on
a 12-state lifecycle with guards and roles, measured in the same run as transitions with a
`Machine` per dossier, python-statemachine with an instance per dossier, one shared transitions
`Machine` with unregistered models (STYLE.md) and a dict-lookup floor, all taking the same
stored dossiers through the same guarded commands. Memory: 100,000 dossiers decided in turn
create no `Machine` and keep at most 1 KB of kernel state each, flat in the number of dossiers.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import gc
import json
import pstats
import statistics
import sys
import time
import tomllib
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import statemachine
import transitions
from statemachine import State, StateMachine
from transitions import Machine

from dvcflow import Actor, ProcedureSpec
from dvcflow._dossier import Dossier, encode_changes, load_dossier
from dvcflow._kernel import Decision, Kernel
from dvcflow._lifecycle import INITIAL, LifecycleSpec, TransitionSpec

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "examples" / "procedures" / "giay-phep-xay-dung.toml"
)
TARGET_US = 15.0
TARGET_BYTES = 1024
START = dt.datetime(2025, 3, 3, 2, tzinfo=dt.UTC)  # a Monday, 09:00 in Hà Nội

# What a command's handler does with the working-day clock (src/dvcflow/_handlers.py).
PLAIN = "no due date"
DUE_DATE = "recomputes the due date (due_at)"
STEP_IN = "computes the step deadline (due_at)"
STEP_OUT = "classifies timeliness (working days)"
CREATES = "creates the dossier"


class Command(NamedTuple):
    """One command of the walk, and what its handler does with the clock."""

    trigger: str
    actor: Actor
    payload: Mapping[str, Any]
    clock: str = PLAIN
    select: Mapping[str, str] = {}
    """What dvcflow's handler selects between edges (``when``), told to the other contenders."""


class Stored(NamedTuple):
    """A command against a stored dossier: the row it is loaded from, and where it must go."""

    command: Command
    row: dict[str, Any]
    now: dt.datetime
    source: str
    target: str
    guard_args: Mapping[str, Any]
    """What the other contenders' guards are given: roles, where a wait returns, selection."""


Guard = Callable[..., bool]
Case = tuple[Callable[[], Any], Callable[[Any], object]]
"""What to prepare (not timed) and what to time, given what was prepared."""


def _procedure(steps: int | None = None) -> ProcedureSpec:
    """The construction-permit example; ``steps=1`` keeps appraisal only, for 12 stored states."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    if steps is not None:
        data["steps"] = data["steps"][:steps]
    return ProcedureSpec.from_data(data, source=str(EXAMPLE))


def _walk(procedure: ProcedureSpec) -> list[Command]:
    """An online dossier from submission to return, with a withdrawal asked for and rejected."""

    def staff(*roles: str) -> Actor:
        return Actor.staff(f"{roles[0]}-1", roles=roles, agency=procedure.agency)

    citizen, head, leader = Actor.citizen("account-1"), staff("department_head"), staff("leader")
    officer, cashier = staff("receiving_officer"), staff("cashier")
    # Hand-overs leave processing (a specialist) and then each step (its roles).
    handler = staff("specialist", "leader")
    applicant = {
        "kind": "citizen",
        "identifier": "001085012345",
        "name": "Nguyễn Văn An",
        "phone": "0912345678",
        "email": "an@example.vn",
        "vneid_verified": True,
    }
    submission = {
        "applicant": applicant,
        "documents": ["application", "land_title", "drawings"],
        "form": {"plot_number": "123", "floor_area_m2": 120, "floors": 3},
    }
    # Entering a step computes its deadline; leaving one classifies the hand-over's timeliness.
    clocks = [STEP_IN] + [f"{STEP_OUT}; {STEP_IN}"] * (len(procedure.steps) - 1) + [STEP_OUT]
    hand_overs = [Command("hand_over", handler, {"to": "next-1"}, clock) for clock in clocks]
    return [
        Command("submit", citizen, submission, CREATES),
        Command("receive", officer, {}, DUE_DATE),
        Command("start", head, {"specialist": "specialist-1"}),
        Command("assign", head, {"specialist": "specialist-2"}),
        Command("reassign", head, {"specialist": "specialist-3"}),
        Command("request_withdrawal", citizen, {"reason": "đổi ý"}),
        Command("reject_withdrawal", leader, {"reason": "đã thẩm định"}),
        *hand_overs,
        Command("approve_document", leader, {"document": "result"}),
        Command("resolve", leader, {"result": "GPXD-2025-001", "signed": True}),
        Command("issue_result", staff("clerk"), {"number": "123/GPXD"}),
        Command("request_payment", cashier, {}),
        Command(
            "confirm_payment",
            cashier,
            {"method": "counter", "kind": "charge", "amount": 75000},
            select={"paid": "all"},
        ),
        Command("return_result", officer, {"receiver": {"name": "Nguyễn Văn An"}}),
    ]


def _row(dossier: Dossier) -> dict[str, Any]:
    """The dossier as the store hands it over: every field as plain data, fresh values."""
    fields = {field.name: getattr(dossier, field.name) for field in attrs.fields(Dossier)}
    return _parse(json.dumps(encode_changes(fields)))


def _parse(text: str) -> dict[str, Any]:
    """The ``data`` column as the engine reads it: SQLAlchemy's JSON type runs `json.loads`.

    Keys and values are fresh strings, not the interned names of the source code.
    """
    data: dict[str, Any] = json.loads(text)
    return data


def _load(row: Mapping[str, Any]) -> Dossier:
    """What the engine does with a stored row before deciding."""
    return load_dossier(row)


def _decide(kernel: Kernel, step: Stored, dossier: Dossier) -> Decision:
    command = step.command
    return kernel.decide(
        dossier, command.trigger, actor=command.actor, payload=command.payload, now=step.now
    )


def _stored_walk(kernel: Kernel, walk: Sequence[Command]) -> list[Stored]:
    """Decide the walk once, keeping each command with the row its dossier is loaded from."""
    first, *rest = walk
    now = START
    dossier = kernel.decide(
        None, first.trigger, actor=first.actor, payload=first.payload, now=now, dossier_id="D-1"
    ).dossier
    stored = []
    for command in rest:
        now += dt.timedelta(hours=1)
        row = _row(dossier)
        step = Stored(command, row, now, dossier.state, "", {})
        after = _decide(kernel, step, _load(row)).dossier
        guard_args = {
            "roles": command.actor.roles,
            "resume": dossier.resume_state,
            "select": command.select,
        }
        stored.append(step._replace(target=after.state, guard_args=guard_args))
        dossier = after
    if dossier.state != "returned":
        msg = f"the walk ended in {dossier.state!r}"
        raise AssertionError(msg)
    return stored


# -- the other contenders: a role check and one condition per edge ----------------------------


def _role_check(edge: TransitionSpec) -> Guard:
    wanted = edge.roles

    def role_check(roles: frozenset[str], resume: str | None, select: Mapping[str, str]) -> bool:
        del resume, select
        return bool(roles & wanted)

    return role_check


def _condition(edge: TransitionSpec) -> Guard:
    """The edge's selection condition: where a wait returns to, or what the handler selected."""
    back = edge.returns_to
    key, _, value = (edge.when or "").partition(":")

    def condition(roles: frozenset[str], resume: str | None, select: Mapping[str, str]) -> bool:
        del roles
        return (back is None or resume == back) and (not key or select.get(key) == value)

    return condition


class Edge(NamedTuple):
    """An edge of the dict floor."""

    target: str
    roles: frozenset[str]
    returns_to: str | None
    key: str
    value: str


class _Model:
    """A per-dossier model for transitions and python-statemachine (both set attributes on it)."""

    def __init__(self, state: str) -> None:
        self.state = state


class _Light:
    """The shared machine's unregistered model, as in STYLE.md."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def _chart_class(spec: LifecycleSpec) -> type[StateMachine]:
    """The lifecycle as a python-statemachine class, built once; instances are per dossier."""
    states = {INITIAL: State(INITIAL, value=INITIAL, initial=True)}
    states |= {
        state.name: State(state.name, value=state.name, final=state.final) for state in spec.states
    }
    events: dict[str, Any] = {}
    for edge in spec.transitions:
        source, guards = states[edge.source], [_role_check(edge), _condition(edge)]
        if edge.dest is None:
            transition = source.to.itself(internal=True, cond=guards)
        else:
            transition = source.to(states[edge.dest], cond=guards)
        events[edge.trigger] = (
            events[edge.trigger] | transition if edge.trigger in events else transition
        )
    return type("Lifecycle", (StateMachine,), states | events)


class Contenders:
    """The same guarded walk through transitions, python-statemachine and a dict."""

    def __init__(self, spec: LifecycleSpec) -> None:
        self.states = [INITIAL, *(state.name for state in spec.states)]
        self.edges = [
            {
                "trigger": edge.trigger,
                "source": edge.source,
                "dest": edge.dest,
                "conditions": [_role_check(edge), _condition(edge)],
            }
            for edge in spec.transitions
        ]
        self.shared = Machine(
            model=None,
            states=self.states,
            transitions=self.edges,
            initial=INITIAL,
            auto_transitions=False,
        )
        self.chart = _chart_class(spec)
        self.table: dict[tuple[str, str], list[Edge]] = {}
        for edge in spec.transitions:
            key, _, value = (edge.when or "").partition(":")
            entry = Edge(edge.target, edge.roles, edge.returns_to, key, value)
            self.table.setdefault((edge.source, edge.trigger), []).append(entry)

    def machine_per_dossier(self, step: Stored) -> _Model:
        """A transitions `Machine` for this dossier; ``initial=`` keeps the loaded state."""
        model = _Model(step.row["state"])
        Machine(
            model=model,
            states=self.states,
            transitions=self.edges,
            initial=model.state,
            auto_transitions=False,
        )
        return model

    @staticmethod
    def fire_machine(model: _Model, step: Stored) -> str:
        model.trigger(step.command.trigger, **step.guard_args)  # type: ignore[attr-defined]
        return model.state

    def chart_per_dossier(self, step: Stored) -> StateMachine:
        """A python-statemachine instance for this dossier; a model with a state keeps it."""
        return self.chart(model=_Model(step.row["state"]))

    @staticmethod
    def fire_chart(chart: StateMachine, step: Stored) -> str:
        chart.send(step.command.trigger, **step.guard_args)
        return str(chart.model.state)

    @staticmethod
    def bind(step: Stored) -> _Light:
        return _Light(step.row["state"])

    def fire_shared(self, model: _Light, step: Stored) -> str:
        self.shared.events[step.command.trigger].trigger(model, **step.guard_args)
        return model.state

    def floor(self, step: Stored) -> str:
        """The same role check and condition, inline."""
        roles, resume, select = (
            step.command.actor.roles,
            step.guard_args["resume"],
            step.command.select,
        )
        for edge in self.table[step.row["state"], step.command.trigger]:
            if (
                roles & edge.roles
                and (edge.returns_to is None or resume == edge.returns_to)
                and (not edge.key or select.get(edge.key) == edge.value)
            ):
                return edge.target
        msg = f"{step.command.trigger} refused in {step.row['state']}"
        raise AssertionError(msg)

    def check(self, steps: Sequence[Stored]) -> None:
        """Every contender must take every step where dvcflow took it before we time them."""
        for step in steps:
            reached = {
                "transitions, Machine per dossier": self.fire_machine(
                    self.machine_per_dossier(step), step
                ),
                "python-statemachine": self.fire_chart(self.chart_per_dossier(step), step),
                "transitions, shared Machine": self.fire_shared(self.bind(step), step),
                "dict floor": self.floor(step),
            }
            for name, state in reached.items():
                if state != step.target:
                    msg = (
                        f"{name}: {step.command.trigger} from {step.source} went to {state},"
                        f" not {step.target}"
                    )
                    raise AssertionError(msg)


# -- measuring --------------------------------------------------------------------------------


def _cases(
    load: Callable[[Stored], Any], fire: Callable[[Any, Stored], object], steps: Sequence[Stored]
) -> dict[str, list[Case]]:
    """Load and fire together, load alone, and fire alone on something loaded beforehand."""

    def given(step: Stored) -> Callable[[], Stored]:
        return lambda: step

    def loaded(step: Stored) -> Case:
        return (lambda: load(step), lambda thing: fire(thing, step))

    return {
        "total": [(given(step), lambda step: fire(load(step), step)) for step in steps],
        "load": [(given(step), load) for step in steps],
        "fire": [loaded(step) for step in steps],
    }


def _sample(cases: Sequence[Case], rounds: int) -> list[list[int]]:
    """Nanoseconds per timed call, one perf_counter_ns pair around each, cases interleaved."""
    clock = time.perf_counter_ns
    samples: list[list[int]] = [[] for _ in cases]
    for _ in range(rounds):
        for (prepare, run), into in zip(cases, samples, strict=True):
            prepared = prepare()
            start = clock()
            run(prepared)
            into.append(clock() - start)
    return samples


def _pooled(cases: Sequence[Case], rounds: int, warmup: int) -> list[int]:
    _sample(cases, warmup)
    return [value for samples in _sample(cases, rounds) for value in samples]


def _floor(contenders: Contenders, steps: Sequence[Stored], rounds: int, batch: int) -> list[float]:
    """Nanoseconds per command, timed over batches: one call is near the timer's resolution."""
    clock = time.perf_counter_ns
    floor, work = contenders.floor, list(steps) * batch
    samples = []
    for _ in range(rounds):
        start = clock()
        for step in work:
            floor(step)
        samples.append((clock() - start) / len(work))
    return samples


def _stats(samples: Sequence[float]) -> tuple[float, float]:
    """Median and 90th percentile, in microseconds."""
    deciles = statistics.quantiles(samples, n=10)
    return statistics.median(samples) / 1000, deciles[8] / 1000


def _us(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} us"
    return f"{value:.1f} us" if value >= 10 else f"{value:.2f} us"


# -- memory -----------------------------------------------------------------------------------


@contextmanager
def _counting_machines() -> Iterator[list[int]]:
    """Count `transitions.Machine` constructions while the block runs."""
    created = [0]
    original = Machine.__init__

    def counting(self: Machine, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - passed on
        created[0] += 1
        original(self, *args, **kwargs)

    Machine.__init__ = counting
    try:
        yield created
    finally:
        Machine.__init__ = original


def _alive_machines() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, Machine))


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _anatomy(dossiers: Sequence[Dossier | None], count: int) -> dict[str, float]:
    """Approximate bytes per dossier by field: `sys.getsizeof`, each object counted once.

    Objects shared between dossiers (enum members, small ints, interned names) count once for
    all of them; the allocator's headers are not counted.
    """
    seen: set[int] = set()

    def size(value: object) -> int:
        if value is None or id(value) in seen:
            return 0
        seen.add(id(value))
        total = sys.getsizeof(value)
        if isinstance(value, tuple | frozenset):
            total += sum(size(item) for item in value)
        elif attrs.has(type(value)):
            total += sum(size(getattr(value, field.name)) for field in attrs.fields(type(value)))
        return total

    sizes = {"(the Dossier)": 0} | {field.name: 0 for field in attrs.fields(Dossier)}
    for index in range(count):
        dossier = dossiers[index]
        sizes["(the Dossier)"] += sys.getsizeof(dossier)
        for field in attrs.fields(Dossier):
            sizes[field.name] += size(getattr(dossier, field.name))
    return {name: total / count for name, total in sizes.items()}


class Memory(NamedTuple):
    """What deciding many dossiers in turn created and kept."""

    counts: tuple[int, int]
    machines_created: int
    machines_alive: tuple[int, int]
    registered_models: int
    kept: tuple[int, int]
    """Traced bytes with the first ``counts[0]`` and with all decided dossiers kept."""
    left: int
    """Traced bytes once the decided dossiers are dropped: what the kernel itself kept."""
    anatomy: dict[str, float]


def _memory(kernel: Kernel, steps: Sequence[Stored], count: int) -> Memory:
    """Decide ``count`` fresh dossiers in turn, keeping each decided `Dossier` value.

    Each dossier is loaded from its own row parsed from JSON, as a database driver hands over
    fresh strings, so the kept values own everything a loaded dossier would.
    """
    texts = [json.dumps(step.row | {"id": "@ID@"}) for step in steps]
    checkpoint = count // 10
    kept: list[Dossier | None] = [None] * count  # allocated before tracing: no list growth
    alive_before = _alive_machines()
    first = 0
    with _counting_machines() as created:
        tracemalloc.start()
        try:
            base = _traced()
            for number in range(count):
                step = steps[number % len(steps)]
                row = _parse(texts[number % len(texts)].replace("@ID@", f"D-{number:07d}"))
                kept[number] = _decide(kernel, step, _load(row)).dossier
                if number + 1 == checkpoint:
                    first = _traced() - base
            everything = _traced() - base
            anatomy = _anatomy(kept, checkpoint)
            for index in range(count):
                kept[index] = None
            left = _traced() - base
        finally:
            tracemalloc.stop()
    return Memory(
        (checkpoint, count),
        created[0],
        (alive_before, _alive_machines()),
        len(kernel.machine.models),
        (first, everything),
        left,
        anatomy,
    )


# -- the report -------------------------------------------------------------------------------


def _print_table(
    ours: dict[str, list[int]], theirs: dict[str, dict[str, list[int]]], floor: list[float]
) -> float:
    """The side-by-side table; returns dvcflow's median per command in microseconds."""
    reference = _stats(ours["total"])[0]
    columns = ("load / create", "decide / fire", "median", "p90", "vs dvcflow")
    print(
        f"{'per command, median of each part alone, then together':<52} | "
        + " | ".join(f"{c:>13}" for c in columns)
    )
    print("-" * 52 + "-+-" + "-+-".join("-" * 13 for _ in columns))
    rows = [
        ("dvcflow: load_dossier(row) + decide()", ours),
        ("transitions: a Machine per dossier", theirs["machine"]),
        ("python-statemachine: an instance per dossier", theirs["chart"]),
        ("transitions: shared Machine, unregistered model", theirs["shared"]),
    ]
    for label, parts in rows:
        median, p90 = _stats(parts["total"])
        load, fire = _stats(parts["load"])[0], _stats(parts["fire"])[0]
        cells = (_us(load), _us(fire), _us(median), _us(p90), f"{median / reference:.2f}x")
        print(f"{label:<52} | " + " | ".join(f"{cell:>13}" for cell in cells))
    median, p90 = _stats(floor)
    cells = ("-", "-", _us(median), _us(p90), f"{median / reference:.3f}x")
    label = "dict floor: (state, trigger) -> edges, same checks *"
    print(f"{label:<52} | " + " | ".join(f"{cell:>13}" for cell in cells))
    print(
        "The others read the state (and where a wait returns) from the row and only select the"
        " edge: no handler,\nno event, no new dossier. * timed over batches of 50 walks; its p90"
        " is of batch means."
    )
    return reference


def _print_per_command(kernel: Kernel, walk: Sequence[Stored], rounds: int) -> None:
    print("dvcflow per command (load + decide), median and p90:")
    per_trigger = _sample(_cases(_dvcflow_load, _dvcflow_fire(kernel), walk)["total"], rounds)
    clocked: list[int] = []
    for step, samples in zip(walk, per_trigger, strict=True):
        median, p90 = _stats(samples)
        move = f"{step.source} -> {step.target}"
        print(
            f"  {step.command.trigger:<19} {move:<38} {_us(median):>8} {_us(p90):>8}"
            f"  {step.command.clock}"
        )
        if step.command.clock != PLAIN:
            clocked += samples
    median = _stats(clocked)[0]
    print(f"  (the commands that use the working-day clock, together: median {_us(median)})")


def _print_memory(memory: Memory, commands: int) -> None:
    small, large = memory.counts
    per_small, per_large = memory.kept[0] / small, memory.kept[1] / large
    print(
        f"memory: {large:,} dossiers decided in turn (the {commands} commands in turn), each"
        " loaded from its own freshly parsed row; each decided Dossier kept"
    )
    print(
        f"  Machine() constructions while deciding: {memory.machines_created}; Machine objects"
        f" alive before/after: {memory.machines_alive[0]}/{memory.machines_alive[1]};"
        f" models registered on the kernel's machine: {memory.registered_models}"
    )
    print(
        f"  kernel state per dossier (tracemalloc, the decided Dossier values):"
        f" {per_small:.0f} B each with {small:,} kept, {per_large:.0f} B each with {large:,} kept"
    )
    print(f"  left once the {large:,} dossiers are dropped (kept by the kernel): {memory.left:,} B")
    biggest = sorted(memory.anatomy.items(), key=lambda item: -item[1])
    parts = ", ".join(f"{name} {size:.0f}" for name, size in biggest if size >= 20)
    print(f"  by field (sys.getsizeof, no allocator headers, B per dossier): {parts}")
    flat = abs(per_large - per_small) <= 0.05 * per_small
    worst = max(per_small, per_large)
    ok = memory.machines_created == 0 and memory.registered_models == 0
    verdict = "met" if ok and flat and worst <= TARGET_BYTES else "MISSED"
    print(
        f"target: 0 machines per dossier, <= {TARGET_BYTES} B each, flat in the count: {verdict}"
        f" ({memory.machines_created} machines, {worst:.0f} B each,"
        f" {'flat' if flat else 'growing'})"
    )


def _dvcflow_load(step: Stored) -> Dossier:
    return _load(step.row)


def _dvcflow_fire(kernel: Kernel) -> Callable[[Dossier, Stored], Decision]:
    return lambda dossier, step: _decide(kernel, step, dossier)


def _profile(kernel: Kernel, steps: Sequence[Stored], rounds: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(rounds):
        for step in steps:
            _decide(kernel, step, _load(step.row))
    profiler.disable()
    print(
        f"\nwhere dvcflow's time goes: cProfile over {rounds * len(steps)} commands (load + decide)"
    )
    print("(cProfile inflates many small calls: read the ranking, not the absolute times)")
    pstats.Stats(profiler).sort_stats(pstats.SortKey.TIME).print_stats(25)


def main(*, rounds: int = 2_000, memory_count: int = 100_000, profile: bool = False) -> None:
    """Measure and print the tables."""
    started = time.perf_counter_ns()
    kernel = Kernel(_procedure(steps=1))
    compiled_ms = (time.perf_counter_ns() - started) / 1e6
    if len(kernel.lifecycle.states) != 12:
        msg = f"the lifecycle has {len(kernel.lifecycle.states)} stored states, not 12"
        raise AssertionError(msg)
    walk = _stored_walk(kernel, _walk(kernel.procedure))
    plain = [step for step in walk if step.command.clock == PLAIN]
    started = time.perf_counter_ns()
    contenders = Contenders(kernel.lifecycle)
    built_ms = (time.perf_counter_ns() - started) / 1e6
    contenders.check(walk)

    ours = {
        name: _pooled(cases, rounds, rounds // 10)
        for name, cases in _cases(_dvcflow_load, _dvcflow_fire(kernel), plain).items()
    }
    others = {
        "machine": _cases(contenders.machine_per_dossier, contenders.fire_machine, plain),
        "chart": _cases(contenders.chart_per_dossier, contenders.fire_chart, plain),
        "shared": _cases(contenders.bind, contenders.fire_shared, plain),
    }
    theirs = {
        contender: {name: _pooled(cases, rounds // 20, 10) for name, cases in parts.items()}
        for contender, parts in others.items()
    }
    floor = _floor(contenders, plain, rounds // 2, 50)

    triggers = ", ".join(dict.fromkeys(step.command.trigger for step in plain))
    print(
        f"one command on a stored dossier of {kernel.procedure.code} with one agency step"
        f" (appraisal): {len(kernel.lifecycle.states)} stored states,"
        f" {len(kernel.lifecycle.transitions)} edges, guards and roles; the {len(plain)}"
        f" commands of a walk that recompute no due date ({triggers}), interleaved;"
        f" {rounds} rounds for dvcflow, {rounds // 20} for the others"
    )
    print(
        f"transitions {transitions.__version__}, python-statemachine {statemachine.__version__},"
        f" Python {sys.version.split()[0]}; once per procedure version: Kernel()"
        f" {compiled_ms:.1f} ms, the other three definitions {built_ms:.1f} ms"
    )
    print()
    reference = _print_table(ours, theirs, floor)
    print()
    _print_per_command(kernel, walk, rounds // 2)
    full = Kernel(_procedure())
    full_plain = [
        step for step in _stored_walk(full, _walk(full.procedure)) if step.command.clock == PLAIN
    ]
    full_cases = _cases(_dvcflow_load, _dvcflow_fire(full), full_plain)["total"]
    full_median, full_p90 = _stats(_pooled(full_cases, rounds // 4, 50))
    print(
        f"  the same {len(full_plain)} commands on {full.procedure.code} as published"
        f" ({len(full.lifecycle.states)} stored states, {len(full.lifecycle.transitions)} edges):"
        f" median {_us(full_median)}, p90 {_us(full_p90)}"
    )
    print()
    verdict = "met" if reference <= TARGET_US else "MISSED"
    print(
        f"target: median <= {TARGET_US:.0f} us per command without a due date: {verdict}"
        f" ({_us(reference)})"
    )
    if verdict == "MISSED" and not profile:
        print("(run with --profile to see where the time goes)")
    print()
    _print_memory(_memory(kernel, plain, memory_count), len(plain))
    if profile:
        _profile(kernel, plain, rounds // 4)


if __name__ == "__main__":
    main(profile="--profile" in sys.argv[1:])
