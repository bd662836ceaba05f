"""Grid incidents walked through every path: closed, not filed, returned, rework, 挂账 and its expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from server.domain.engine import RuleViolation
from server.domain.ids import now_china
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from tests.conftest import Logins
from tests.grid.helpers import (
    CHECK,
    ENFORCEMENT_TEAM,
    FEEDBACK,
    GRID,
    URBAN_DEPT,
    act,
    case,
    photo,
    report,
    send_report,
    step,
    walk_to_filed,
    walk_to_handled,
)


def test_report_is_checked_on_site_and_closed_by_the_shift_leader(client: TestClient, auth: Logins,
                                                                  store: Store) -> None:
    cid = send_report(client, auth)
    row = case(store, cid)
    assert row["state"] == "reported" and row["data"]["category"]["name"] == "暴露垃圾"
    assert row["data"]["photos"][0]["mime"] == "image/jpeg" and row["number"].startswith("440106006000-")
    walk_to_handled(client, auth, cid)
    step(client, auth, "clerk", cid, "request_check")
    step(client, auth, "grid1", cid, "check_pass", **CHECK)
    done = step(client, auth, "leader", cid, "close", closure_code="resolved")
    assert done["state"] == "closed"
    row = case(store, cid)
    handle = row["clocks"]["handle"]
    # 暴露垃圾: 1 working day, the category's own limit, started at dispatch and stopped at feedback
    assert handle["unit"] == "working_day" and handle["duration"] == 1 and handle["status"] == "stopped"
    assert "暴露垃圾" in handle["label"]
    assert store.read(lambda db: cases.rebuild_case(db, cid, current_calendar(db), now_china())) == {}
    transitions = [e["transition"] for e in store.query(
        "SELECT transition FROM case_events WHERE case_id = ? ORDER BY seq", [cid])]
    assert transitions == ["report", "accept", "verify", "file", "dispatch", "accept_task", "feedback",
                           "request_check", "check_pass", "close"]


def test_working_hour_category_runs_a_working_hour_clock(client: TestClient, auth: Logins, store: Store) -> None:
    cid = send_report(client, auth, category="SJ0104", description="路面不洁")  # 道路不洁: 5 工作时
    walk_to_filed(client, auth, cid)
    step(client, auth, "dispatcher", cid, "dispatch", unit_code=ENFORCEMENT_TEAM)
    handle = case(store, cid)["clocks"]["handle"]
    assert handle["unit"] == "working_hour" and handle["duration"] == 5 and handle["status"] in ("running", "breached")
    assert "工作时" in handle["explanation"]


def test_not_genuine_report_cannot_be_filed_and_is_not_filed_with_a_reason(client: TestClient, auth: Logins,
                                                                           store: Store) -> None:
    cid = send_report(client, auth)
    step(client, auth, "clerk", cid, "accept")
    step(client, auth, "grid1", cid, "verify", genuine=False, note="现场未见垃圾")
    refused = step(client, auth, "leader", cid, "file", expect=422)
    assert "不属实" in refused["error"]
    missing = step(client, auth, "leader", cid, "not_file", expect=422, not_filed_reason_code="not_genuine")
    assert missing["errors"][0]["field"] == "payload.not_filed_reason"
    step(client, auth, "leader", cid, "not_file", not_filed_reason_code="not_genuine", not_filed_reason="现场核实不属实")
    assert case(store, cid)["state"] == "not_filed"
    late = step(client, auth, "dispatcher", cid, "dispatch", expect=409, unit_code=ENFORCEMENT_TEAM)
    assert late["errors"][0]["rule"] == "wrong_state"


def test_non_emergency_report_is_filed_only_after_verification(client: TestClient, auth: Logins,
                                                               store: Store) -> None:
    cid = send_report(client, auth)
    refused = step(client, auth, "leader", cid, "file", expect=422)
    assert "核实" in refused["error"]


def test_return_to_dispatcher_keeps_the_clock_running_from_the_first_dispatch(client: TestClient, auth: Logins,
                                                                             store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_filed(client, auth, cid)
    step(client, auth, "dispatcher", cid, "dispatch", unit_code=URBAN_DEPT)
    first = case(store, cid)["clocks"]["handle"]["started_at"]
    # the street's handler relays the department; the dispatcher may record on its behalf
    no_behalf = step(client, auth, "dispatcher", cid, "return", expect=422, return_reason_code="not_our_duty",
                     return_reason="非本单位职责")
    assert "on_behalf_of" in no_behalf["error"]
    step(client, auth, "dispatcher", cid, "return", on_behalf_of=URBAN_DEPT, return_reason_code="not_our_duty",
         return_reason="属街道综合执法队职责")
    row = case(store, cid)
    assert row["state"] == "returned" and row["data"]["return_reason_code"] == "not_our_duty"
    bad_code = step(client, auth, "dispatcher", cid, "redispatch", expect=422, unit_code="nope")
    assert bad_code["errors"][0]["field"] == "payload.unit_code"
    step(client, auth, "dispatcher", cid, "redispatch", unit_code=ENFORCEMENT_TEAM)
    row = case(store, cid)
    assert row["state"] == "dispatched" and row["clocks"]["handle"]["started_at"] == first


def test_grid_member_cannot_handle_work_dispatched_to_a_unit(client: TestClient, auth: Logins, store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_filed(client, auth, cid)
    step(client, auth, "dispatcher", cid, "dispatch", unit_code=ENFORCEMENT_TEAM)
    refused = step(client, auth, "grid1", cid, "accept_task", expect=422)
    assert "网格员不能代为处置" in refused["error"]


def test_failed_check_sends_the_case_back_for_rework_with_a_fresh_limit(client: TestClient, auth: Logins,
                                                                       store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_handled(client, auth, cid)
    step(client, auth, "clerk", cid, "request_check")
    far = step(client, auth, "grid1", cid, "check_fail", expect=422, rework_reason="仍有垃圾",
               check_photos=[photo("c")], check_location={"lng": 113.3440, "lat": 23.1318})
    assert far["errors"][0]["field"] == "payload.check_location"
    step(client, auth, "grid1", cid, "check_fail", rework_reason="仍有垃圾", **CHECK)
    row = case(store, cid)
    assert row["state"] == "handling" and row["clocks"]["handle"]["status"] != "stopped"
    step(client, auth, "handler", cid, "feedback", **FEEDBACK)
    step(client, auth, "leader", cid, "request_check")
    step(client, auth, "grid1", cid, "check_pass", **CHECK)
    # the shift leader may still send it back (返工) instead of closing
    step(client, auth, "leader", cid, "rework", rework_reason="照片不清晰，请补充处置")
    step(client, auth, "handler", cid, "feedback", **FEEDBACK)
    step(client, auth, "clerk", cid, "request_check")
    # a check from before the latest feedback does not count: closing needs a new one
    assert step(client, auth, "leader", cid, "close", expect=409)["errors"][0]["rule"] == "wrong_state"
    step(client, auth, "grid2", cid, "check_pass", **CHECK)
    step(client, auth, "leader", cid, "close")
    assert case(store, cid)["state"] == "closed"


def test_on_account_expires_and_forces_re_justification(client: TestClient, auth: Logins, store: Store) -> None:
    t0 = now_china() - timedelta(days=40)
    cid = report(store, category="SJ0101", description="违法搭建雨棚", at=t0)  # 违法搭建: 15 working days
    act(store, "clerk", cid, "accept", t0 + timedelta(minutes=10))
    act(store, "grid2", cid, "verify", t0 + timedelta(hours=1), genuine=True)
    act(store, "leader", cid, "file", t0 + timedelta(hours=2))
    act(store, "dispatcher", cid, "dispatch", t0 + timedelta(hours=3), unit_code=ENFORCEMENT_TEAM)
    act(store, "handler", cid, "accept_task", t0 + timedelta(hours=4))
    with pytest.raises(RuleViolation) as no_reason:
        act(store, "handler", cid, "request_on_account", t0 + timedelta(hours=5))
    assert no_reason.value.field == "payload.on_account_reason"
    act(store, "handler", cid, "request_on_account", t0 + timedelta(hours=5),
        on_account_reason="产权纠纷诉讼中，判决前无法拆除")
    act(store, "leader", cid, "approve_on_account", t0 + timedelta(days=1), decision_reason="同意挂账，30 日后复核")
    row = case(store, cid)
    assert row["state"] == "on_account"
    assert row["clocks"]["handle"]["status"] == "paused" and row["clocks"]["on_account"]["duration"] == 30
    early = store.write(lambda db: cases.fire_timers(db, current_calendar(db), t0 + timedelta(days=20),
                                                     "test-street"))
    assert early == 0
    fired = store.write(lambda db: cases.fire_timers(db, current_calendar(db), now_china(), "test-street"))
    assert fired == 1
    row = case(store, cid)
    assert row["state"] == "on_account_expired" and row["clocks"]["handle"]["status"] != "paused"
    last = store.query("SELECT actor, role FROM case_events WHERE case_id = ? ORDER BY seq DESC LIMIT 1", [cid])[0]
    assert last == {"actor": "system", "role": "system"}
    # re-justify; the leader refuses this time, the handler finishes the work
    step(client, auth, "handler", cid, "request_on_account", on_account_reason="诉讼仍未判决")
    step(client, auth, "leader", cid, "reject_on_account", decision_reason="已判决，应立即拆除")
    step(client, auth, "handler", cid, "feedback", **FEEDBACK)
    row = case(store, cid)
    # the approved 挂账 period is not counted against the handling limit; it is explained
    assert row["state"] == "handled" and "暂停" in row["clocks"]["handle"]["explanation"]


def test_on_account_can_be_lifted_by_the_shift_leader(client: TestClient, auth: Logins, store: Store) -> None:
    cid = send_report(client, auth, category="SJ0101", description="违法搭建")
    walk_to_filed(client, auth, cid)
    step(client, auth, "dispatcher", cid, "dispatch", unit_code=ENFORCEMENT_TEAM)
    step(client, auth, "handler", cid, "accept_task")
    step(client, auth, "handler", cid, "request_on_account", on_account_reason="需协调产权单位")
    step(client, auth, "leader", cid, "approve_on_account")
    step(client, auth, "leader", cid, "lift_on_account", note="产权单位已同意")
    row = case(store, cid)
    assert row["state"] == "handling" and row["clocks"]["on_account"]["status"] == "stopped"


def test_case_dispatched_to_the_grid_is_checked_by_the_other_member(client: TestClient, auth: Logins,
                                                                    store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_filed(client, auth, cid)
    step(client, auth, "dispatcher", cid, "dispatch", unit_code=GRID, instruction="网格自行处置")
    refused = step(client, auth, "handler", cid, "accept_task", expect=422)
    assert "网格员处置" in refused["error"]
    step(client, auth, "grid1", cid, "accept_task")
    step(client, auth, "grid1", cid, "feedback", **FEEDBACK)
    step(client, auth, "clerk", cid, "request_check")
    own = step(client, auth, "grid1", cid, "check_pass", expect=422, **CHECK)
    assert own["errors"][0]["rule"] == "invariant" and "处置人以外" in own["error"]
    step(client, auth, "grid2", cid, "check_pass", **CHECK)
    step(client, auth, "leader", cid, "close")
    assert case(store, cid)["state"] == "closed"


def test_dispatch_to_another_grid_is_refused(client: TestClient, auth: Logins, store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_filed(client, auth, cid)
    refused = step(client, auth, "dispatcher", cid, "dispatch", expect=422, unit_code="440106006001-G02")
    assert "属地" in refused["error"]
