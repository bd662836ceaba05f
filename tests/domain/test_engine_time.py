"""Event time: which instant the clocks take for an act, and the Chinese explanation of why."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from server.domain.clocks import ClockSpec, ClockUnit
from server.domain.engine import (
    CREATE,
    CaseKind,
    ClockEffect,
    Draft,
    RuleViolation,
    Transition,
    decide,
    fold,
)
from server.domain.ids import CHINA_TZ
from server.domain.roles import Principal, Role

R = Role
PATH = "440106/440106006000"
CLERK = Principal("u-clerk", "clerk", R.WINDOW_CLERK, "440106006000", PATH)
HANDLER = Principal("u-handler", "handler", R.STREET_HANDLER, "440106006000", PATH)
FRIDAY = datetime(2026, 11, 6, 16, 0, tzinfo=CHINA_TZ)  # the act, offline
MONDAY = datetime(2026, 11, 9, 9, 0, tzinfo=CHINA_TZ)  # the sync


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


KIND = CaseKind(
    name="test_request", label_zh="测试申请", states={"received": "已收到", "paused": "暂停", "done": "已办结"},
    clocks={"reply": ClockSpec("reply", ClockUnit.WORKING_DAY, 15, "答复时限")},
    transitions={t.name: t for t in (
        Transition("receive", "received", _fs(CREATE), _fs(R.WINDOW_CLERK), "登记收到", receipt_field="received_on",
                   clocks=(ClockEffect("reply", "start"),)),
        Transition("pause", "paused", _fs("received"), _fs(R.STREET_HANDLER), "征求第三方意见",
                   clocks=(ClockEffect("reply", "pause"),)),
        Transition("resume", "received", _fs("paused"), _fs(R.STREET_HANDLER), "第三方意见已回复",
                   clocks=(ClockEffect("reply", "resume"),)),
        Transition("reply", "done", _fs("received"), _fs(R.STREET_HANDLER), "答复",
                   clocks=(ClockEffect("reply", "stop"),)),
    )},
)


def received(at: datetime = FRIDAY, **payload: object) -> list:  # type: ignore[type-arg]
    return [decide(KIND, None, Draft("receive", payload, CLERK, at, "e1"), "c1", PATH)]


def test_an_offline_act_on_a_trusted_device_takes_effect_when_it_was_done() -> None:
    events = received()
    # done on Friday on the tablet, whose clock the last sync found 30 s slow; synced on Monday
    d = Draft("pause", {}, HANDLER, MONDAY, "e2", device_time=FRIDAY - timedelta(seconds=30),
              device_clock_trusted=True, device_offset_ms=30_000)
    event = decide(KIND, fold(KIND, events), d, "c1", PATH)
    assert event.node_time == MONDAY and event.effective_time == FRIDAY
    assert event.effective_basis == ("按设备记录的办理时间 2026-11-06 16:00 计时（设备时钟经同步核对，偏差约 30 秒，"
                                     "离线办理以办理时为准）")
    clock = fold(KIND, [*events, event]).clocks["reply"]
    assert clock.pauses[-1].from_at == FRIDAY


def test_a_suspect_or_unmeasured_device_clock_is_not_believed() -> None:
    events = received()
    d = Draft("pause", {}, HANDLER, MONDAY, "e2", device_time=FRIDAY)  # never measured
    event = decide(KIND, fold(KIND, events), d, "c1", PATH)
    assert event.effective_time == MONDAY
    assert event.effective_basis == "按节点记录时间计时（设备时钟未经核对或偏差过大，不采用设备时间）"


def test_a_channel_receipt_date_in_the_payload_starts_the_clock_that_day() -> None:
    [event] = received(MONDAY, received_on="2026-11-02")  # registered post signed for the Monday before
    assert event.effective_time == datetime(2026, 11, 2, tzinfo=CHINA_TZ)
    assert event.effective_basis == "按收件渠道的收到日期 2026-11-02 起算（received_on）"
    assert fold(KIND, [event]).clocks["reply"].started_at == datetime(2026, 11, 2, tzinfo=CHINA_TZ)
    with pytest.raises(RuleViolation) as future:
        received(MONDAY, received_on="2026-11-10")
    assert (future.value.code, future.value.field) == ("invalid_payload", "payload.received_on")
    with pytest.raises(RuleViolation) as garbled:
        received(MONDAY, received_on="11/02/2026")
    assert garbled.value.field == "payload.received_on"


def test_a_device_time_before_the_last_recorded_step_is_held_at_that_step() -> None:
    events = received(MONDAY)
    d = Draft("pause", {}, HANDLER, MONDAY + timedelta(hours=1), "e2", device_time=FRIDAY,
              device_clock_trusted=True, device_offset_ms=0)
    event = decide(KIND, fold(KIND, events), d, "c1", PATH)
    assert event.effective_time == MONDAY  # clocks never run backwards past a recorded step
    assert event.effective_basis.endswith("；早于上一步的计时时间，按上一步时间 2026-11-09 09:00 计")


def test_a_fast_device_clock_never_dates_an_act_after_it_was_recorded() -> None:
    events = received()
    d = Draft("pause", {}, HANDLER, MONDAY, "e2", device_time=MONDAY + timedelta(minutes=2),
              device_clock_trusted=True, device_offset_ms=0)
    event = decide(KIND, fold(KIND, events), d, "c1", PATH)
    assert event.effective_time == MONDAY and "晚于节点记录时间" in event.effective_basis


def test_a_time_the_caller_knows_wins_and_keeps_its_provisional_flag() -> None:
    events = received()
    due = datetime(2026, 11, 27, 23, 59, 59, tzinfo=CHINA_TZ)
    d = Draft("reply", {}, HANDLER, due + timedelta(days=3), "e2", effective_time=due,
              effective_basis="按时限届满时间计", effective_provisional=True)
    event = decide(KIND, fold(KIND, events), d, "c1", PATH)
    assert (event.effective_time, event.effective_basis, event.effective_provisional) == (
        due, "按时限届满时间计", True)
    assert fold(KIND, [*events, event]).clocks["reply"].stopped_at == due
