"""The fold: payload models, per-transition reducers, rules versions, child cases, and a fold that is one
pass over the events (equal to applying them one by one, and linear in their number)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from schemas.common import Input
from server.domain.clocks import ClockSpec, ClockUnit
from server.domain.engine import (
    CREATE,
    PARENT,
    CaseKind,
    CaseView,
    ClockEffect,
    Draft,
    Event,
    Refusal,
    RuleViolation,
    Transition,
    apply_event,
    decide,
    fold,
)
from server.domain.ids import CHINA_TZ
from server.domain.roles import Principal, Role

R = Role
AT = datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ)
PATH = "440106/440106006000"
CLERK = Principal("u-clerk", "clerk", R.WINDOW_CLERK, "440106006000", PATH)
HANDLER = Principal("u-handler", "handler", R.STREET_HANDLER, "440106006000", PATH)


class OpenPayload(Input):
    title: str = Field(min_length=1, max_length=50)


class CommentPayload(Input):
    text: str = Field(min_length=1, max_length=500)
    stars: int | None = Field(None, ge=1, le=5)


def _comment(data: dict[str, Any], event: Event) -> None:
    """Comments collect in a list (no last-write-wins); rules v1 counted stars, v2 ignores them."""
    comments = data.setdefault("comments", [])
    comments.append(str(event.payload["text"]))
    if event.rules_version == 1 and event.payload.get("stars"):
        data["stars"] = data.get("stars", 0) + int(event.payload["stars"])


def _not_shouting(view: CaseView, draft: Draft) -> Refusal | None:
    text = str(draft.payload.get("text", ""))
    return Refusal("留言请勿全部使用大写字母", "shouting", "payload.text") if text.isupper() else None


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


def make_kind(rules_version: int = 1) -> CaseKind:
    return CaseKind(
        name="test_consultation", label_zh="测试征求意见", rules_version=rules_version,
        states={"open": "征求中", "closed": "已结束"},
        clocks={"answer": ClockSpec("answer", ClockUnit.WORKING_DAY, 5, "答复时限")},
        transitions={t.name: t for t in (
            Transition("open", "open", _fs(CREATE), _fs(R.WINDOW_CLERK), "发起", payload=OpenPayload,
                       clocks=(ClockEffect("answer", "start"),)),
            Transition("comment", "open", _fs("open"), _fs(R.WINDOW_CLERK, R.STREET_HANDLER), "留言",
                       payload=CommentPayload, reduce=_comment, guards=(_not_shouting,)),
            Transition("pause", "open", _fs("open"), _fs(R.STREET_HANDLER), "暂停",
                       clocks=(ClockEffect("answer", "pause"),)),
            Transition("resume", "open", _fs("open"), _fs(R.STREET_HANDLER), "恢复",
                       clocks=(ClockEffect("answer", "resume"),)),
            Transition("close", "closed", _fs("open"), _fs(R.WINDOW_CLERK), "结束",
                       clocks=(ClockEffect("answer", "stop"),)),
        )},
        terminal=_fs("closed"),
    )


KIND = make_kind()
CHILD = CaseKind(
    name="test_reply", label_zh="测试回复", parent_kind="test_consultation", states={"sent": "已回复"},
    transitions={"reply": Transition("reply", "sent", _fs(CREATE), _fs(R.WINDOW_CLERK), "回复")},
)


def draft(p: Principal | None, transition: str, at: datetime, n: int = 0, **payload: Any) -> Draft:
    return Draft(transition=transition, payload=payload, principal=p, node_time=at, event_id=f"e-{transition}-{n}")


def opened(kind: CaseKind = KIND) -> CaseView:
    return fold(kind, [decide(kind, None, draft(CLERK, "open", AT, title="旧城改造方案"), "c1", PATH)])


def test_payload_model_refuses_a_bad_field_by_name_in_chinese() -> None:
    view = opened()
    with pytest.raises(RuleViolation) as err:
        decide(KIND, view, draft(CLERK, "comment", AT, text="好", stars=9), "c1", PATH)
    assert (err.value.code, err.value.field) == ("invalid_payload", "payload.stars")
    assert err.value.message == "stars：数值过大"
    with pytest.raises(RuleViolation) as extra:
        decide(KIND, view, draft(CLERK, "comment", AT, text="好", colour="red"), "c1", PATH)
    assert (extra.value.field, extra.value.message) == ("payload.colour", "colour：不允许的字段")


def test_payload_is_checked_only_after_who_may_act() -> None:
    view = opened()
    with pytest.raises(RuleViolation) as err:  # the wrong role learns nothing about the payload
        decide(KIND, view, draft(HANDLER, "close", AT, nonsense=1), "c1", PATH)
    assert err.value.code == "role_not_allowed"


def test_a_guard_returns_its_refusal_with_code_and_field() -> None:
    with pytest.raises(RuleViolation) as err:
        decide(KIND, opened(), draft(CLERK, "comment", AT, text="NO"), "c1", PATH)
    assert (err.value.kind, err.value.code, err.value.field) == ("invalid", "shouting", "payload.text")


def test_reducer_collects_comments_instead_of_overwriting() -> None:
    view = opened()
    events = list(view.events)
    for i, text in enumerate(["同意", "建议增加停车位", "反对"]):
        events.append(decide(KIND, fold(KIND, events), draft(CLERK, "comment", AT, i, text=text, stars=2), "c1", PATH))
    done = fold(KIND, events)
    assert done.data["comments"] == ["同意", "建议增加停车位", "反对"] and done.data["stars"] == 6
    assert done.data["title"] == "旧城改造方案"  # the default reducer still merged the opening payload


def test_each_event_is_folded_by_the_rules_it_was_made_under() -> None:
    v2 = make_kind(rules_version=2)
    view = opened()
    old = decide(KIND, view, draft(CLERK, "comment", AT, 1, text="旧规则留言", stars=4), "c1", PATH)
    new = decide(v2, fold(v2, [*view.events, old]), draft(CLERK, "comment", AT, 2, text="新规则留言", stars=5),
                 "c1", PATH)
    assert (view.events[0].rules_version, old.rules_version, new.rules_version) == (1, 1, 2)
    done = fold(v2, [*view.events, old, new])
    assert done.data["stars"] == 4 and done.data["comments"] == ["旧规则留言", "新规则留言"]


def test_a_child_case_must_name_its_parent_and_only_a_child_kind_may() -> None:
    with pytest.raises(RuleViolation) as missing:
        decide(CHILD, None, draft(CLERK, "reply", AT), "r1", PATH)
    assert (missing.value.code, missing.value.field) == ("missing_field", f"payload.{PARENT}")
    child = fold(CHILD, [decide(CHILD, None, Draft("reply", {PARENT: "c1"}, CLERK, AT, "r"), "r1", PATH)])
    assert child.parent_id == "c1" and PARENT not in child.data
    with pytest.raises(RuleViolation) as not_child:
        decide(KIND, None, Draft("open", {"title": "x", PARENT: "c0"}, CLERK, AT, "o"), "c2", PATH)
    assert not_child.value.code == "reserved_field"
    with pytest.raises(RuleViolation) as later:
        decide(KIND, opened(), Draft("comment", {"text": "x", PARENT: "c0"}, CLERK, AT, "o"), "c1", PATH)
    assert later.value.field == f"payload.{PARENT}"


def test_apply_event_leaves_the_view_it_was_given_untouched() -> None:
    view = opened()
    first = decide(KIND, view, draft(CLERK, "comment", AT, 1, text="一"), "c1", PATH)
    after_one = apply_event(KIND, view, first)
    second = decide(KIND, after_one, draft(CLERK, "comment", AT, 2, text="二"), "c1", PATH)
    after_two = apply_event(KIND, after_one, second)
    assert after_one.data["comments"] == ["一"] and len(after_one.events) == 2
    assert after_two.data["comments"] == ["一", "二"] and view.data.get("comments") is None


# --- fold == step by step ---------------------------------------------------------------------

_STEPS = st.lists(st.sampled_from([
    (CLERK, "comment", {"text": "意见"}), (CLERK, "comment", {"text": "好", "stars": 3}),
    (HANDLER, "pause", {}), (HANDLER, "resume", {}), (CLERK, "close", {}), (HANDLER, "comment", {"text": "答"}),
]), max_size=12)


def _facts(view: CaseView) -> tuple[Any, ...]:
    return (view.state, view.version, view.org_path, view.data, view.clocks, view.actors, view.events,
            view.clock_specs, view.parent_id)


@settings(max_examples=60, deadline=None)
@given(steps=_STEPS)
def test_fold_of_the_events_equals_applying_them_one_by_one(steps: list[tuple[Principal, str, dict[str, Any]]]) -> None:
    stepwise = opened()
    at = AT
    for i, (who, name, payload) in enumerate(steps):
        at += timedelta(hours=7)
        try:
            event = decide(KIND, stepwise, Draft(name, payload, who, at, f"e{i}"), "c1", PATH)
        except RuleViolation:
            continue
        stepwise = apply_event(KIND, stepwise, event)
    assert _facts(fold(KIND, stepwise.events)) == _facts(stepwise)
    assert _facts(fold(KIND, list(reversed(stepwise.events)))) == _facts(stepwise)  # order by seq, not arrival


# --- linear -----------------------------------------------------------------------------------


def _comment_events(n: int) -> list[Event]:
    first = opened().events[0]
    return [first] + [
        Event(id=f"e{i}", case_id="c1", seq=i + 1, transition="comment", from_state="open", to_state="open",
              actor="u-clerk", role=R.WINDOW_CLERK, org_unit="440106006000", payload={"text": f"第 {i} 条"},
              node_time=AT + timedelta(minutes=i))
        for i in range(1, n)
    ]


def _count_lines(events: list[Event]) -> tuple[CaseView, int]:
    """Fold ``events`` counting every Python line executed (the engine's and the reducers')."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        view = fold(KIND, events)
    finally:
        sys.settrace(None)
    return view, count


def test_folding_five_thousand_events_is_linear_and_copies_nothing_per_event() -> None:
    seen: list[int] = []
    calls = 0

    def watching(data: dict[str, Any], event: Event) -> None:
        nonlocal calls
        calls += 1
        seen.append(id(data))
        _comment(data, event)

    kind = make_kind()
    watched = CaseKind(**{**kind.__dict__, "transitions": {
        **kind.transitions, "comment": Transition("comment", "open", _fs("open"), _fs(R.WINDOW_CLERK), "留言",
                                                  reduce=watching)}})
    view = fold(watched, _comment_events(5000))
    assert calls == 4999 and len(view.data["comments"]) == 4999
    assert len(set(seen)) == 1  # one working data dict for the whole fold: no copy per event
    half, n_half = _count_lines(_comment_events(2500))
    full, n_full = _count_lines(_comment_events(5000))
    assert full.version == 5000 and half.version == 2500
    assert n_full <= 2.05 * n_half  # twice the events, twice the work (a quadratic fold would be 4x)


def test_a_declaration_naming_a_receipt_field_its_model_lacks_or_its_own_parent_is_refused() -> None:
    bad = Transition("open", "open", _fs(CREATE), _fs(R.WINDOW_CLERK), "发起", payload=OpenPayload,
                     receipt_field="received_on")
    with pytest.raises(ValueError, match="received_on"):
        CaseKind(name="bad", label_zh="错", states={"open": "开"}, transitions={"open": bad})
    with pytest.raises(ValueError, match="own parent"):
        CaseKind(name="loop", label_zh="环", states={"open": "开"}, parent_kind="loop",
                 transitions={"open": Transition("open", "open", _fs(CREATE), _fs(R.WINDOW_CLERK))})
