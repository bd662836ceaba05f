"""A timer's event takes effect when its clock ran out, not when the scheduler got round to it (issue 10
point 4), worked by hand on the real 2026 calendar (清明节 04-04 至 04-06 休息).

油烟扰民 (SJ0111) has 5 working days. Dispatched and put on account (挂账) the same Monday, 2026-03-02,
so no handling day was used; the 30-calendar-day review period runs out at the end of 2026-04-01. The
node was off until Friday 2026-04-10, when the timer fired.

- resumed 04-01 (right): 04-02 Thu 1, 04-03 Fri 2, (04-04–04-06 清明), 04-07 3, 04-08 4, 04-09 5 → 04-09;
- resumed 04-10 (the old behaviour): 04-13 … 04-17 → 04-17, eight days the handler never had.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from server.domain.ids import CHINA_TZ
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from tests.grid.helpers import ENFORCEMENT_TEAM, act, case, report

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA_TZ)
FIRED = datetime(2026, 4, 10, 10, 0, tzinfo=CHINA_TZ)


def on_account_case(store: Store) -> str:
    cid = report(store, category="SJ0111", description="餐馆油烟直排", at=MONDAY)
    act(store, "clerk", cid, "accept", MONDAY + timedelta(minutes=5))
    act(store, "grid2", cid, "verify", MONDAY + timedelta(minutes=10), genuine=True)
    act(store, "leader", cid, "file", MONDAY + timedelta(minutes=15))
    act(store, "dispatcher", cid, "dispatch", MONDAY + timedelta(minutes=20), unit_code=ENFORCEMENT_TEAM)
    act(store, "handler", cid, "accept_task", MONDAY + timedelta(minutes=25))
    act(store, "handler", cid, "request_on_account", MONDAY + timedelta(minutes=30),
        on_account_reason="须待餐馆装修完成后安装净化设备")
    act(store, "leader", cid, "approve_on_account", MONDAY + timedelta(minutes=35))
    return cid


def test_on_account_expiry_resumes_the_handling_clock_from_the_due_date_not_the_run_date(store: Store) -> None:
    cid = on_account_case(store)
    assert case(store, cid)["clocks"]["on_account"]["due_at"].startswith("2026-04-01")
    fired = store.write(lambda db: cases.fire_timers(db, current_calendar(db), FIRED, "test-street"))
    assert fired == 1
    row = case(store, cid)
    assert row["state"] == "on_account_expired"
    assert row["clocks"]["handle"]["due_at"].startswith("2026-04-09")  # not 2026-04-17
    event = store.query("SELECT node_time, effective_time, effective_basis, effective_provisional FROM case_events"
                        " WHERE case_id = ? ORDER BY seq DESC LIMIT 1", [cid])[0]
    assert event["node_time"].startswith("2026-04-10T10:00")
    assert event["effective_time"].startswith("2026-04-01T23:59:59")
    assert event["effective_basis"] == "按时限届满时间 2026-04-01 23:59 计（系统于 2026-04-10 10:00 执行）"
    assert event["effective_provisional"] == 0  # 2026 is a published year
    assert store.read(lambda db: cases.rebuild_case(db, cid, current_calendar(db), FIRED)) == {}
