"""What a transition does to a clock (``ClockEffect``), and the pure step that applies one.

The engine's fold calls ``apply_effect`` for every effect of an event's transition; everything a
clock records comes from the event (its time, payload and legal basis) and the case data folded so
far, so replaying the log rebuilds every clock with its explanation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any, Literal

from server.domain.clock_model import ClockSpec, ClockState, reset
from server.domain.ids import CHINA_TZ

ClockAction = Literal["start", "pause", "resume", "stop", "reset", "extend", "set_due", "note"]

# (case data folded so far, event payload) -> (reason, legal basis) of a pause, reset or stop.
# Lets a kind name a pause from its own catalogue (the item's special step and its article)
# instead of from free text the client sent.
Describe = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[str, str]]


@dataclass(frozen=True)
class StartAt:
    """A start (or restart) date taken from the payload, and the rule that makes it the start.

    ``StartAt("received_on", by_field="channel", rules_zh={"post_registered": "…签收之日…"})``: the
    clock starts on ``payload["received_on"]`` (ISO date or datetime) and the explanation names the
    rule for ``payload["channel"]``, or ``rule_zh`` when no per-channel rule applies.
    """

    date_field: str
    rule_zh: str = ""
    by_field: str | None = None
    rules_zh: Mapping[str, str] = field(default_factory=dict, hash=False)

    def rule_for(self, payload: Mapping[str, Any]) -> str:
        if self.by_field is not None:
            return self.rules_zh.get(str(payload.get(self.by_field, "")), self.rule_zh)
        return self.rule_zh


@dataclass(frozen=True)
class ClockEffect:
    """One thing a transition does to one clock.

    - ``amount`` / ``amount_field``: for "extend", the units added (fixed, or the payload field
      validated by the transition). For "start" (and "reset" of a clock not yet started),
      ``amount_field`` names the payload field holding this case's duration (e.g. a service item's
      promised limit); absent or < 1: no clock.
    - ``basis_field``: for "start", the payload field holding the clock's legal basis (a string or a
      list of them), e.g. the item's 设定依据 carried by the creating event.
    - ``start_at``: for "start"/"reset", a date from the payload and the rule naming it.
    - ``key`` / ``key_field``: for "pause"/"resume", the reason a pause is for; a resume closes
      only the pause with its key, so overlapping reasons each keep the clock paused.
    - ``reason`` / ``describe``: the record's reason (and basis) for pause, reset, stop and note;
      by default the transition's label and the event's legal basis.
    - ``link``: for "start" of a sub-clock, the main clock whose pause (``key``) it belongs to; the
      sub-clock stops when that pause is resumed.
    - ``deadline_field``: for "set_due", the payload field holding the decided due date.
    """

    clock: str
    action: ClockAction
    amount: int = 0
    amount_field: str | None = None
    basis_field: str | None = None
    start_at: StartAt | None = None
    key: str = ""
    key_field: str | None = None
    reason: str = ""
    describe: Describe | None = None
    link: str | None = None
    deadline_field: str | None = None


@dataclass(frozen=True)
class EffectContext:
    """The event facts an effect reads (the engine builds it from the event and the view)."""

    at: datetime
    payload: Mapping[str, Any]
    data: Mapping[str, Any]
    label: str
    legal_basis: str


def parse_day(value: Any) -> datetime | None:
    """An ISO date ("2026-03-02", local midnight) or aware datetime from a payload; None if unusable."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=CHINA_TZ)
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=CHINA_TZ)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def effect_key(eff: ClockEffect, payload: Mapping[str, Any]) -> str:
    return str(payload.get(eff.key_field, "")) if eff.key_field else eff.key


def _record(eff: ClockEffect, ctx: EffectContext) -> tuple[str, str]:
    if eff.describe is not None:
        return eff.describe(ctx.data, ctx.payload)
    return eff.reason or ctx.label, ctx.legal_basis


def _start_point(eff: ClockEffect, ctx: EffectContext) -> tuple[datetime, str]:
    if eff.start_at is None:
        return ctx.at, ""
    when = parse_day(ctx.payload.get(eff.start_at.date_field))
    if when is None:  # the transition's payload model should have refused it; never lose the clock
        return ctx.at, "起算日期缺失或无效，按登记时间起算"
    return when, eff.start_at.rule_for(ctx.payload)


def _basis(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value if v)
    return str(value or "")


def apply_effect(clocks: dict[str, ClockState], spec: ClockSpec, eff: ClockEffect, ctx: EffectContext) -> None:
    """Apply ``eff`` to ``clocks`` in place (the engine passes the new view's own dict)."""
    cur = clocks.get(eff.clock)
    if eff.action == "start" or (cur is None and eff.action == "reset"):
        if eff.amount_field is not None:  # a per-case duration (see ClockEffect)
            amount = ctx.payload.get(eff.amount_field)
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
                return
            spec = replace(spec, duration=amount)
        if eff.basis_field is not None and _basis(ctx.payload.get(eff.basis_field)):
            spec = replace(spec, legal_basis=_basis(ctx.payload.get(eff.basis_field)))
        started, rule = _start_point(eff, ctx)
        state = ClockState(spec=spec, started_at=started, start_rule=rule,
                           linked_to=f"{eff.link}:{eff.key}" if eff.link else "")
        if eff.link:
            main = clocks.get(eff.link)
            pause = next((p for p in (main.open_pauses() if main else ()) if p.key == eff.key), None)
            if main is not None and pause is not None:
                state = state.note(ctx.at, f"「{main.spec.label_zh}」因{pause.reason}暂停期间的期限")
        clocks[eff.clock] = state
    elif cur is None:
        return  # effect on a clock that never started: nothing to pause or stop
    elif eff.action == "reset":
        started, rule = _start_point(eff, ctx)
        reason, basis = _record(eff, ctx)
        clocks[eff.clock] = reset(cur, max(started, cur.started_at), reason, basis, start_rule=rule)
        _stop_linked(clocks, eff.clock, None, ctx)  # a fresh count leaves no earlier pause, nor its sub-clocks
    elif eff.action == "pause":
        key = effect_key(eff, ctx.payload)
        if not cur.is_paused(key) and cur.stopped_at is None:
            reason, basis = _record(eff, ctx)
            clocks[eff.clock] = cur.pause(max(ctx.at, cur.started_at), reason, key, basis)
    elif eff.action == "resume":
        key = effect_key(eff, ctx.payload)
        if cur.is_paused(key):
            clocks[eff.clock] = cur.resume(ctx.at, key)
            _stop_linked(clocks, eff.clock, key, ctx)
    elif eff.action == "stop" and cur.stopped_at is None:
        clocks[eff.clock] = cur.stop(max(ctx.at, cur.latest_instant()), eff.reason)
    elif eff.action == "extend":
        amount = int(ctx.payload.get(eff.amount_field, 0)) if eff.amount_field else eff.amount
        if amount < 1:
            return
        notified = parse_day(ctx.payload.get("notified_on"))
        clocks[eff.clock] = cur.extend(
            amount, str(ctx.payload.get("reason", "")) or ctx.label, max(ctx.at, cur.started_at),
            approver=str(ctx.payload.get("approver", "") or ""),
            notified_on=notified.date() if notified else None, legal_basis=ctx.legal_basis)
    elif eff.action == "set_due" and eff.deadline_field:
        day = parse_day(ctx.payload.get(eff.deadline_field))
        if day is not None:
            reason, basis = _record(eff, ctx)
            clocks[eff.clock] = cur.set_deadline(day.date(), reason, ctx.at, basis)
    elif eff.action == "note":
        reason, basis = _record(eff, ctx)
        clocks[eff.clock] = cur.note(ctx.at, reason, basis)


def _stop_linked(clocks: dict[str, ClockState], main: str, key: str | None, ctx: EffectContext) -> None:
    """A sub-clock belongs to its main clock's pause: when that reason closes (``key``; None: every reason,
    the main clock being reset), its own period ends."""
    for name, clock in list(clocks.items()):
        linked = clock.linked_to == f"{main}:{key}" if key is not None else clock.linked_to.startswith(f"{main}:")
        if linked and clock.stopped_at is None:
            clocks[name] = clock.stop(max(ctx.at, clock.latest_instant()), "关联的暂停已结束")
