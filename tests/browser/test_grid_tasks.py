"""Grid member task screens against the real case engine: verify on site with a photo, sign for a
dispatched task, report the result with an after-photo; an action queued offline on a case that
changed meanwhile comes back as a conflict and opens the conflict dialog (pwa.md T14)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.browser.conftest import (
    Node,
    assert_accessible,
    enrol,
    jpeg_bytes,
    login,
    make_report,
    open_app,
    screenshot,
    wait_controlled,
)

pytestmark = pytest.mark.browser
GRID = "440106006001-G01"


def case_of_submission(node: Node, submission_id: str) -> str:
    con = sqlite3.connect(f"file:{node.data_dir / 'streetnode.db'}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT case_id FROM grid_incidents WHERE submission_id = ?", [submission_id]).fetchone()
    finally:
        con.close()
    assert row, "the report did not become a grid case"
    return str(row[0])


def case_state(node: Node, case_id: str) -> tuple[str, int]:
    case = node.get(f"/api/v1/cases/{case_id}").json()["case"]
    return case["state"], case["version"]


def step(node: Node, case_id: str, username: str, transition: str, payload: dict[str, Any] | None = None) -> None:
    _, version = case_state(node, case_id)
    resp = node.post(f"/api/v1/cases/{case_id}/events",
                     {"transition": transition, "payload": payload or {}, "base_version": version}, username=username)
    assert resp.status_code == 200, resp.text


def act(page: Any, node: Node, case_id: str, action_label: str) -> None:
    page.goto(node.url + f"/#/task/{case_id}")
    page.wait_for_selector(f"button[data-action]:has-text('{action_label}')")
    page.click(f"button[data-action]:has-text('{action_label}')")
    page.wait_for_selector("#task-form")


def synced(page: Any) -> None:
    page.evaluate("() => window.streetnode.syncNow(true)")
    page.wait_for_function("() => window.streetnode.state.pending === 0 && !window.streetnode.state.syncing", timeout=30000)


def test_grid_member_verifies_handles_and_meets_a_conflict(page: Any, context: Any, node: Node) -> None:
    if not node.has("get", "/api/v1/grid/tasks"):
        pytest.skip("grid API not served yet")
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid2")
    enrol(page, node)
    make_report(page, "消防通道被杂物堵塞（任务流程测试）", jpeg_bytes(page, 1200, 900))
    synced(page)
    submission_id = page.evaluate("async () => (await window.streetnode.outbox.list())[0].id")
    case_id = case_of_submission(node, submission_id)

    step(node, case_id, "clerk", "accept")  # 受理, sends the grid member to verify
    synced(page)  # the pull sees the change and caches the task list and the task, never opened yet
    context.set_offline(True)
    page.goto(node.url + "/#/tasks")
    page.wait_for_selector(f"a[href='#/task/{case_id}']")
    assert "离线" in page.inner_text("main")  # marked with the time of the cached copy
    assert_accessible(page, "13-tasks-offline")
    page.click(f"a[href='#/task/{case_id}']")
    page.wait_for_selector("button[data-action]:has-text('现场核实')")
    context.set_offline(False)

    act(page, node, case_id, "现场核实")
    page.check("input[name=genuine][value=yes]")
    page.set_input_files("#task-photo", files=[{"name": "v.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(page, 1200, 900)}])
    page.wait_for_selector("#task-photos img")
    page.click("#task-gps")
    page.wait_for_function("() => document.querySelector('#task-loc').textContent.startsWith('GPS')")
    assert_accessible(page, "14-task-verify")
    page.click("#task-form button[type=submit]")
    synced(page)
    assert case_state(node, case_id)[0] == "verified"

    step(node, case_id, "leader", "file")
    step(node, case_id, "dispatcher", "dispatch", {"unit_code": GRID})
    act(page, node, case_id, "签收")
    page.click("#task-form button[type=submit]")
    synced(page)
    assert case_state(node, case_id)[0] == "handling"

    act(page, node, case_id, "处置反馈")
    page.fill("#task-text", "杂物已清理，通道畅通")
    page.set_input_files("#task-photo", files=[{"name": "after.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(page, 1200, 900)}])
    page.wait_for_selector("#task-photos img")
    page.click("#task-gps")
    page.wait_for_function("() => document.querySelector('#task-loc').textContent.startsWith('GPS')")
    screenshot(page, "15-task-feedback")
    page.click("#task-form button[type=submit]")
    synced(page)
    assert case_state(node, case_id)[0] == "handled"
    events = node.get(f"/api/v1/cases/{case_id}").json()["events"]
    after = [e for e in events if e["transition"] == "feedback"][0]
    assert "after_photos" in str(after["payload"])

    # The shift leader sends it back for rework; the member opens the form online, then loses the
    # network and submits; meanwhile a colleague of the same grid returns the task. The queued feedback is based on
    # an old version of the case: the node records a conflict instead of overwriting, and the tablet
    # opens the conflict dialog.
    step(node, case_id, "leader", "rework", {"rework_reason": "现场仍有杂物"})
    act(page, node, case_id, "处置反馈")
    context.set_offline(True)
    page.fill("#task-text", "已再次清理")
    page.set_input_files("#task-photo", files=[{"name": "again.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(page, 800, 600)}])
    page.wait_for_selector("#task-photos img")
    page.click("#task-gps")
    page.wait_for_function("() => document.querySelector('#task-loc').textContent.startsWith('GPS')")
    page.click("#task-form button[type=submit]")
    page.wait_for_function("() => window.streetnode.state.pending === 1")
    step(node, case_id, "grid1", "return", {"return_reason_code": "needs_coordination", "return_reason": "需多部门协同"})
    context.set_offline(False)
    page.evaluate("() => window.streetnode.syncNow(true)")
    page.wait_for_selector("dialog >> text=提交冲突")
    screenshot(page, "16-conflict-dialog")
    assert case_state(node, case_id)[0] == "returned"  # the node kept its own version
    page.click("dialog button:has-text('查看并处理')")
    page.wait_for_selector("text=需要处理")
    page.click("button[data-act=conflict]")
    page.wait_for_selector("dialog button:has-text('保留节点版本')")
    page.click("dialog button:has-text('保留节点版本')")
    page.wait_for_selector("text=已处理的退回与冲突")
    assert_accessible(page, "17-outbox-resolved")
