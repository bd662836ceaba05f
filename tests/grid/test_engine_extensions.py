"""The engine extensions the grid kind needs, on a small kind of their own: per-case clock specs at
creation (``_clocks``), same-state annotations (``SAME_STATE``) and store look-ups for guards."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from server.domain.clocks import ClockSpec, ClockUnit
from server.domain.engine import (
    CREATE,
    SAME_STATE,
    CaseKind,
    CaseView,
    ClockEffect,
    Draft,
    RuleViolation,
    Transition,
    decide,
    fold,
)
from server.domain.ids import CHINA_TZ, uuid7
from server.domain.kinds import register
from server.domain.roles import Principal, Role
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=CHINA_TZ)


def _needs_context(view: CaseView, draft: Draft) -> str | None:
    return None if draft.context.get("ok") else "缺少查询结果"


NOTE_KIND = register(CaseKind(
    name="test_clock_note",
    label_zh="测试",
    states={"open": "进行中", "done": "完成"},
    clocks={"limit": ClockSpec("limit", ClockUnit.WORKING_DAY, 5, "时限")},
    transitions={
        "open": Transition("open", "open", frozenset({CREATE}), frozenset({Role.WINDOW_CLERK}), "开始",
                           clocks=(ClockEffect("limit", "start"),)),
        "note": Transition("note", SAME_STATE, frozenset({"open", "done"}), frozenset({Role.WINDOW_CLERK}), "备注",
                           guards=(_needs_context,)),
        "finish": Transition("finish", "done", frozenset({"open"}), frozenset({Role.WINDOW_CLERK}), "完成",
                             clocks=(ClockEffect("limit", "stop"),)),
    },
    terminal=frozenset(),
))
PATH = "440106/440106006000"
CLERK = Principal("u1", "clerk", Role.WINDOW_CLERK, "440106006000", "440106/440106006000")


def draft(transition: str, minutes: int = 0, context: dict[str, object] | None = None, **payload: object) -> Draft:
    return Draft(transition, payload, CLERK, T0 + timedelta(minutes=minutes), uuid7(), context=context or {})


def test_creating_payload_sets_this_cases_clock_unit_and_duration() -> None:
    event = decide(NOTE_KIND, None, draft("open", _clocks={"limit": {"unit": "working_hour", "duration": 4,
                                                                     "label_zh": "处置时限（测试）"}}), "c", PATH)
    view = fold(NOTE_KIND, [event])
    spec = view.clocks["limit"].spec
    assert (spec.unit, spec.duration, spec.label_zh) == (ClockUnit.WORKING_HOUR, 4, "处置时限（测试）")
    assert "_clocks" not in view.data  # server-only keys never reach the case data
    plain = fold(NOTE_KIND, [decide(NOTE_KIND, None, draft("open"), "d", PATH)])
    assert plain.clocks["limit"].spec == NOTE_KIND.clocks["limit"]  # backward compatible default


@pytest.mark.parametrize("bad", [{"nope": {"duration": 1}}, {"limit": {"duration": 0}}, {"limit": {"unit": "fortnight"}},
                                 {"limit": {"duration": True}}, "5"])
def test_bad_clock_override_is_a_rule_violation(bad: object) -> None:
    with pytest.raises(RuleViolation) as exc:
        decide(NOTE_KIND, None, draft("open", _clocks=bad), "c", PATH)
    assert exc.value.field == "payload._clocks"


def test_clock_override_only_at_creation() -> None:
    view = fold(NOTE_KIND, [decide(NOTE_KIND, None, draft("open"), "c", PATH)])
    with pytest.raises(RuleViolation) as exc:
        decide(NOTE_KIND, view, draft("finish", 5, _clocks={"limit": {"duration": 99}}), "c", PATH)
    assert exc.value.code == "clock_override"


def test_same_state_transition_annotates_without_moving_the_case() -> None:
    view = fold(NOTE_KIND, [decide(NOTE_KIND, None, draft("open"), "c", PATH)])
    event = decide(NOTE_KIND, view, draft("note", 1, {"ok": True}, text="补充"), "c", PATH)
    assert (event.from_state, event.to_state) == ("open", "open")
    done = fold(NOTE_KIND, [*view.events, event, decide(NOTE_KIND, fold(NOTE_KIND, [*view.events, event]),
                                                        draft("finish", 2), "c", PATH)])
    assert done.state == "done"
    later = decide(NOTE_KIND, done, draft("note", 3, {"ok": True}), "c", PATH)
    assert later.to_state == "done"


def test_store_lookup_feeds_the_guards_context(settings) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def lookup(db, view, d):  # type: ignore[no-untyped-def]
        seen.append(d.transition)
        return {"ok": d.payload.get("text") != "无"}

    cases.register_lookup(NOTE_KIND.name, lookup)
    try:
        with Store(settings.db_path) as store:
            user = store.read(lambda db: get_user_by_name(db, "clerk"))
            assert user is not None
            p = user.principal()

            def run(db):  # type: ignore[no-untyped-def]
                view, _ = cases.create_case(db, NOTE_KIND, Draft("open", {}, p, T0, uuid7()), org_path=p.org_path,
                                            node_id="n", calendar=current_calendar(db))
                cases.transition(db, view.id, Draft("note", {"text": "好"}, p, T0, uuid7()), node_id="n",
                                 calendar=current_calendar(db))
                return view.id

            cid = store.write(run)
            with pytest.raises(RuleViolation):
                store.write(lambda db: cases.transition(db, cid, Draft("note", {"text": "无"}, p, T0, uuid7()),
                                                        node_id="n", calendar=current_calendar(db)))
            assert store.query("SELECT COUNT(*) AS n FROM case_events WHERE case_id = ?", [cid])[0]["n"] == 2
    finally:
        cases.LOOKUPS.pop(NOTE_KIND.name, None)
    assert seen == ["open", "note", "note"]
