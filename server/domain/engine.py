"""The case engine: case kinds declared as data, state as a pure fold of events.

A ``CaseKind`` lists its states, transitions (who may make each, from which states,
which payload fields they need, what they do to which clock) and invariants. The
truth of a case is its append-only event list; ``fold`` rebuilds its state, data and
clocks from the events alone, so replaying the log always reproduces the case row.
``decide`` checks one proposed transition against role, tier, scope, state, required
fields, guards and invariants, and returns the event to append, or raises
``RuleViolation`` naming what was wrong. No I/O here (DESIGN.md §2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

# ClockAction and StartAt are re-exported: kinds declare their clock effects with them.
from server.domain.clock_effects import ClockAction as ClockAction
from server.domain.clock_effects import ClockEffect, EffectContext, apply_effect
from server.domain.clock_effects import StartAt as StartAt
from server.domain.clocks import ClockSpec, ClockState, ClockUnit
from server.domain.roles import Principal, can_see

CREATE = "__new__"  # the from-state of a kind's creating transition
SYSTEM_ROLE = "system"  # transitions the engine makes itself (deemed acceptance, expiry)
SAME_STATE = "__same__"  # to-state of an annotation: the event keeps the case where it is (并单 note)
CLOCK_OVERRIDES = "_clocks"  # creating payload key: {clock: {"unit", "duration", "label_zh"?}} per case

# ClockAction, ClockEffect and StartAt are declared with the clocks (clock_effects.py) and re-exported.


@dataclass(frozen=True)
class Event:
    """One fact in a case's life. Immutable; appended, never edited."""

    id: str
    case_id: str
    seq: int
    transition: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    org_unit: str
    payload: Mapping[str, Any]
    node_time: datetime
    on_behalf_of: str | None = None
    legal_basis: str = ""
    device_time: datetime | None = None
    device_id: str | None = None
    origin_node: str = ""


@dataclass
class CaseView:
    """What the fold of a case's events says it is now."""

    id: str
    kind: str
    state: str
    version: int
    org_path: str
    data: dict[str, Any] = field(default_factory=dict)
    clocks: dict[str, ClockState] = field(default_factory=dict)
    actors: dict[str, list[str]] = field(default_factory=dict)  # transition -> actors, in order
    events: list[Event] = field(default_factory=list)
    clock_specs: dict[str, ClockSpec] = field(default_factory=dict)  # per-case overrides of kind.clocks

    def actors_of(self, *transitions: str) -> list[str]:
        return [a for t in transitions for a in self.actors.get(t, [])]


Guard = Callable[[CaseView, "Draft"], str | None]  # None = fine, else a Chinese message
Route = Callable[[CaseView, "Draft"], str | None]  # the org path a transition moves the case to, if any
Invariant = Callable[[CaseView, Event], str | None]  # checked on the view *after* the event


@dataclass(frozen=True)
class Transition:
    name: str
    to_state: str
    from_states: frozenset[str]
    roles: frozenset[str]
    label_zh: str = ""
    tiers: frozenset[str] = frozenset()  # empty: any tier of the allowed roles
    required: tuple[str, ...] = ()
    clocks: tuple[ClockEffect, ...] = ()
    guards: tuple[Guard, ...] = ()
    legal_basis: str = ""
    route: Route | None = None  # ownership transfer computed by the kind, never taken from the client

    @property
    def system(self) -> bool:
        return self.roles == frozenset({SYSTEM_ROLE})


@dataclass(frozen=True)
class Timer:
    """When a case sits in ``states`` and ``clock`` runs out, the engine makes ``transition``."""

    transition: str
    states: frozenset[str]
    clock: str


@dataclass(frozen=True)
class CaseKind:
    name: str
    label_zh: str
    states: Mapping[str, str]  # state -> Chinese label
    transitions: Mapping[str, Transition]
    clocks: Mapping[str, ClockSpec] = field(default_factory=dict)
    invariants: tuple[Invariant, ...] = ()
    terminal: frozenset[str] = frozenset()
    timers: tuple[Timer, ...] = ()
    number_prefix: str = ""

    def __post_init__(self) -> None:
        for t in self.transitions.values():
            unknown = (t.from_states - {CREATE} | {t.to_state} - {SAME_STATE}) - set(self.states)
            if unknown:
                raise ValueError(f"{self.name}.{t.name}: unknown states {sorted(unknown)}")
            for eff in t.clocks:
                if eff.clock not in self.clocks:
                    raise ValueError(f"{self.name}.{t.name}: unknown clock {eff.clock}")
        for tm in self.timers:
            if tm.transition not in self.transitions or tm.clock not in self.clocks:
                raise ValueError(f"{self.name}: bad timer {tm}")

    @property
    def creating(self) -> list[Transition]:
        return [t for t in self.transitions.values() if CREATE in t.from_states]

    def available(self, state: str, role: str) -> list[Transition]:
        return [t for t in self.transitions.values() if state in t.from_states and role in t.roles]


class RuleViolation(Exception):
    """A proposed transition breaks a rule. ``kind`` decides the HTTP status at the edge:
    forbidden -> 403, conflict -> 409, invalid -> 422, not_found -> 404."""

    def __init__(self, kind: str, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Draft:
    """A proposed transition, before the engine accepts it."""

    transition: str
    payload: Mapping[str, Any]
    principal: Principal | None  # None: the engine itself (SYSTEM_ROLE)
    node_time: datetime
    event_id: str
    on_behalf_of: str | None = None
    device_time: datetime | None = None
    device_id: str | None = None
    base_version: int | None = None
    legal_basis: str = ""
    # Facts the store looked up for the guards (e.g. the org unit a case is dispatched to);
    # never stored: guards stay pure functions of (view, draft).
    context: Mapping[str, Any] = field(default_factory=dict)


def clock_overrides(kind: CaseKind, payload: Mapping[str, Any]) -> dict[str, ClockSpec]:
    """Per-case clock specs from a creating payload's ``_clocks`` (e.g. a grid category's own limit).

    Raises ValueError naming the problem; ``decide`` turns it into a RuleViolation.
    """
    raw = payload.get(CLOCK_OVERRIDES)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("时限设置格式错误")
    out: dict[str, ClockSpec] = {}
    for name, spec in raw.items():
        base = kind.clocks.get(name)
        if base is None or not isinstance(spec, Mapping):
            raise ValueError(f"未知的时限：{name}")
        duration = spec.get("duration", base.duration)
        if not isinstance(duration, int) or isinstance(duration, bool) or duration < 1:
            raise ValueError(f"时限 {name} 的期限须为正整数")
        try:
            unit = ClockUnit(spec.get("unit", base.unit))
        except ValueError:
            raise ValueError(f"时限 {name} 的计时单位无效") from None
        label = spec.get("label_zh", base.label_zh)
        out[name] = replace(base, unit=unit, duration=duration, label_zh=str(label))
    return out


# --- the fold -----------------------------------------------------------------


def apply_event(kind: CaseKind, view: CaseView | None, event: Event, org_path: str = "") -> CaseView:
    """Return the view after ``event``; pure (the input view is not modified)."""
    if view is None:
        view = CaseView(id=event.case_id, kind=kind.name, state=CREATE, version=0, org_path=org_path)
    new = replace(
        view,
        state=event.to_state,
        version=event.seq,
        data={**view.data, **{k: v for k, v in event.payload.items() if not k.startswith("_")}},
        clocks=dict(view.clocks),
        actors={k: list(v) for k, v in view.actors.items()},
        events=[*view.events, event],
        clock_specs=dict(view.clock_specs),
    )
    if event.from_state is None and CLOCK_OVERRIDES in event.payload:  # checked by ``decide``
        new.clock_specs.update(clock_overrides(kind, event.payload))
    if "_org_path" in event.payload:  # ownership transfer (handed up to the district, moved grid)
        new.org_path = str(event.payload["_org_path"])
    new.actors.setdefault(event.transition, []).append(event.actor)
    transition = kind.transitions.get(event.transition)
    for eff in transition.clocks if transition else ():
        _apply_clock(kind, new, eff, event)
    return new


def _apply_clock(kind: CaseKind, view: CaseView, eff: ClockEffect, event: Event) -> None:
    spec = view.clock_specs.get(eff.clock, kind.clocks[eff.clock])  # per-case ``_clocks`` override
    ctx = EffectContext(at=_clock_time(event), payload=event.payload, data=view.data, label=_label(kind, event),
                        legal_basis=event.legal_basis)
    apply_effect(view.clocks, spec, eff, ctx)


def _clock_time(event: Event) -> datetime:
    """The instant clocks use for ``event`` (the one place to change when events carry another time)."""
    return event.node_time


def _paused(clock: ClockState) -> bool:
    return clock.is_paused()


def _label(kind: CaseKind, event: Event) -> str:
    t = kind.transitions.get(event.transition)
    return (t.label_zh if t else "") or event.transition


def fold(kind: CaseKind, events: list[Event], org_path: str = "") -> CaseView:
    if not events:
        raise ValueError("a case has at least its creating event")
    view: CaseView | None = None
    for event in sorted(events, key=lambda e: e.seq):
        view = apply_event(kind, view, event, org_path)
    assert view is not None
    return view


# --- deciding -----------------------------------------------------------------


def decide(kind: CaseKind, view: CaseView | None, draft: Draft, case_id: str, org_path: str) -> Event:
    """Check ``draft`` against every rule of ``kind``; return the event to append."""
    transition = kind.transitions.get(draft.transition)
    if transition is None:
        raise RuleViolation("invalid", "unknown_transition", f"未知的操作：{draft.transition}", "transition")
    state = view.state if view is not None else CREATE
    principal = draft.principal
    if transition.system:
        if principal is not None:
            raise RuleViolation("forbidden", "system_only", f"「{transition.label_zh}」只能由系统自动作出")
        role, actor, org_unit = SYSTEM_ROLE, SYSTEM_ROLE, ""
    else:
        if principal is None:
            raise RuleViolation("forbidden", "no_actor", "缺少操作人")
        if principal.role not in transition.roles:
            raise RuleViolation(
                "forbidden", "role_not_allowed", f"当前角色无权执行「{transition.label_zh or transition.name}」"
            )
        if transition.tiers and principal.tier not in transition.tiers:
            raise RuleViolation("forbidden", "tier_not_allowed", "该层级无权执行此操作")
        if not can_see(principal, org_path):
            raise RuleViolation("forbidden", "out_of_scope", "该事项不在您的管辖范围内")
        role, actor, org_unit = principal.role, principal.user_id, principal.org_unit
    if view is not None and draft.base_version is not None and draft.base_version != view.version:
        raise RuleViolation(
            "conflict", "stale_version", f"事项已被他人更新（版本 {view.version}，提交基于 {draft.base_version}）"
        )
    if state not in transition.from_states:
        label = kind.states.get(state, state)
        raise RuleViolation(
            "conflict", "wrong_state", f"事项当前状态为「{label}」，不能执行「{transition.label_zh}」", "transition"
        )
    if view is not None and CLOCK_OVERRIDES in draft.payload:
        raise RuleViolation("invalid", "clock_override", "时限只能在创建事项时设定", f"payload.{CLOCK_OVERRIDES}")
    reserved = sorted(k for k in draft.payload if k.startswith("_") and k != CLOCK_OVERRIDES)
    if view is not None and reserved:
        # "_"-keys are the engine's own (``_org_path`` moves a case): only a kind's ``route`` sets them,
        # never a client's payload, or anyone could hand a case to another unit.
        raise RuleViolation("invalid", "reserved_field", f"字段 {reserved[0]} 为系统保留字段", f"payload.{reserved[0]}")
    if CLOCK_OVERRIDES in draft.payload:
        try:
            clock_overrides(kind, draft.payload)
        except ValueError as exc:
            raise RuleViolation("invalid", "clock_override", str(exc), f"payload.{CLOCK_OVERRIDES}") from None
    for name in transition.required:
        value = draft.payload.get(name)
        if value is None or value == "" or value == []:
            raise RuleViolation("invalid", "missing_field", f"缺少必填项：{name}", f"payload.{name}")
    probe = view or CaseView(id=case_id, kind=kind.name, state=CREATE, version=0, org_path=org_path)
    for guard in transition.guards:
        message = guard(probe, draft)
        if message:
            raise RuleViolation("invalid", "guard_failed", message)
    payload = dict(draft.payload)
    if transition.route is not None:
        target = transition.route(probe, draft)
        if target:
            payload["_org_path"] = target
    event = Event(
        id=draft.event_id,
        case_id=case_id,
        seq=(view.version if view else 0) + 1,
        transition=transition.name,
        from_state=None if view is None else view.state,
        to_state=state if transition.to_state == SAME_STATE else transition.to_state,
        actor=actor,
        role=role,
        org_unit=org_unit,
        payload=payload,
        node_time=draft.node_time,
        on_behalf_of=draft.on_behalf_of,
        legal_basis=draft.legal_basis or transition.legal_basis,
        device_time=draft.device_time,
        device_id=draft.device_id,
    )
    after = apply_event(kind, view, event, org_path)
    for invariant in kind.invariants:
        message = invariant(after, event)
        if message:
            raise RuleViolation("invalid", "invariant", message)
    return event

