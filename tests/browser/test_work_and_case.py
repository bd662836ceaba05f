"""The generic work list and case screen, tried as the staff who had no way to act in the PWA before:
the shift leader files, sends for checking and closes a grid incident, the dispatcher dispatches it
(offline, as a signed case_event envelope shown as 待上传 until the node has it), and the window clerk
accepts a hall application — each from the role's own work list, each checked through the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    CONTEXT_OPTIONS,
    WAIT_MS,
    Node,
    assert_accessible,
    enrol,
    jpeg_bytes,
    login,
    open_app,
    screenshot,
    server_count,
    wait_controlled,
    wait_for_async,
)
from tests.browser.seeding import GRID, NEAR, Seeder

ENFORCEMENT_TEAM = "440106006000-enforcement_team"  # 石牌街 综合执法队 (一队三中心)

pytestmark = pytest.mark.browser


@pytest.fixture
def seeder(node: Node) -> Iterator[Seeder]:
    if not node.has("post", "/sync/v1/outbox"):
        pytest.skip("the outbox is not served by this node")
    s = Seeder(node)
    yield s
    s.close()


def staff_page(browser: Any, node: Node, username: str) -> tuple[Any, Any]:
    ctx = browser.new_context(**CONTEXT_OPTIONS)
    page = ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, username)
    return ctx, page


def open_from_work_list(page: Any, node: Node, case_id: str, action: str) -> None:
    """待办 → the case's row (it lists what the person may do) → the case screen → the action's form."""
    page.click("#tabbar a:has-text('待办')")
    row = page.locator(f"a.rowlink[href='#/case/{case_id}']")
    row.wait_for()
    assert action in row.inner_text()
    row.click()
    page.wait_for_selector(f"button.act-btn:has-text('{action}')")
    page.click(f"button.act-btn:has-text('{action}')")
    page.wait_for_selector("#act-form")


ACKED = "async () => (await window.streetnode.outbox.list()).filter((i) => i.caseId && i.state === 'acked').length"


def submit_and_sync(page: Any) -> None:
    """Submit the open form; wait until the node has accepted the act (the outbox item is acked)."""
    before = page.evaluate(ACKED)
    page.click("#act-form button[type=submit]")
    wait_for_async(page, f"async () => (await ({ACKED})()) > {before}", 30.0)


def test_leader_and_dispatcher_move_a_grid_incident_from_their_work_lists(
        browser: Any, page: Any, node: Node, seeder: Seeder) -> None:
    open_app(page, node)
    photo = jpeg_bytes(page, 1200, 900)
    case_id = seeder.report(photo, "华文路口人行道上堆放建筑垃圾，影响通行")
    seeder.step(case_id, "clerk", "accept", {"note": "请网格员核实"})
    seeder.step(case_id, "grid2", "verify", {"genuine": True, "note": "现场属实，约两车建筑垃圾"})

    leader_ctx, leader = staff_page(browser, node, "leader")
    try:
        # 立案 from the leader's work list; the case screen shows the place, photo and verifier's note.
        open_from_work_list(leader, node, case_id, "立案")
        main = leader.inner_text("main")
        assert "华文路口东侧人行道" in main and "暴露垃圾" in main and "现场属实" in main
        leader.wait_for_selector("figure[data-sha] img")  # the reporter's photo, fetched from the node
        assert_accessible(leader, "40-case-leader-file")
        submit_and_sync(leader)
        assert seeder.state(case_id) == "filed"

        # 派遣, offline on an enrolled tablet: a signed case_event envelope, 待上传 until the node has it.
        disp_ctx, disp = staff_page(browser, node, "dispatcher")
        try:
            enrol(disp, node)
            disp.click("#tabbar a:has-text('待办')")
            disp.locator(f"a.rowlink[href='#/case/{case_id}']").wait_for()
            screenshot(disp, "41-worklist-dispatcher")
            assert_accessible(disp, "41-worklist-dispatcher")
            disp.click(f"a.rowlink[href='#/case/{case_id}']")
            disp.wait_for_selector("button.act-btn:has-text('派遣')")  # seen once online: kept for offline use
            disp_ctx.set_offline(True)
            disp.click("#tabbar a:has-text('待办')")
            disp.wait_for_selector("main .stale")  # the list as last fetched, marked with its time
            disp.click(f"a.rowlink[href='#/case/{case_id}']")
            disp.wait_for_selector("main .stale")
            disp.click("button.act-btn:has-text('派遣')")
            disp.wait_for_selector("#unit-pick")
            disp.select_option("#unit-pick", GRID)
            disp.fill("[data-path='instruction']", "请今日内清运，注意施工围挡")
            screenshot(disp, "42-case-dispatch-form")
            disp.click("#act-form button[type=submit]")
            disp.wait_for_selector(".pending-act:has-text('待上传')")
            assert disp.evaluate("() => window.streetnode.state.pending") == 1
            assert not disp.locator("button.act-btn").count()  # no second act on a version the node has moved past
            assert seeder.state(case_id) == "filed"
            screenshot(disp, "43-case-dispatch-pending")
            disp_ctx.set_offline(False)
            disp.evaluate("() => window.streetnode.syncNow(true)")
            disp.wait_for_function("() => window.streetnode.state.pending === 0", timeout=30000)
            disp.wait_for_selector(".case-state:has-text('已派遣')")
            assert seeder.state(case_id) == "dispatched"
            dispatch = [e for e in seeder.case(case_id)["events"] if e["transition"] == "dispatch"]
            assert len(dispatch) == 1  # the event's id is the signed envelope's submission id
            assert server_count(node, "SELECT COUNT(*) FROM submissions WHERE id = ? AND kind = 'case_event'",
                                [dispatch[0]["id"]]) == 1
            assert not disp.js_errors
        finally:
            disp_ctx.close()

        # The grid handles it; the leader sends a grid member to check, who passes it; the leader closes.
        seeder.step(case_id, "grid1", "accept_task")
        seeder.act(case_id, "grid1", "feedback", {"result": "建筑垃圾已清运，路面已冲洗"},
                   photos={"after_photos": jpeg_bytes(page, 800, 600)})
        open_from_work_list(leader, node, case_id, "派网格员核查")
        submit_and_sync(leader)
        assert seeder.state(case_id) == "checking"
        seeder.act(case_id, "grid2", "check_pass", {"check_location": NEAR},
                   photos={"check_photos": jpeg_bytes(page, 640, 480)})
        open_from_work_list(leader, node, case_id, "结案")
        assert "建筑垃圾已清运" in leader.inner_text("main")  # the handler's result, read before closing
        leader.wait_for_function("() => document.querySelectorAll('figure[data-sha] img').length === 3")
        screenshot(leader, "44-case-leader-close")
        submit_and_sync(leader)
        leader.wait_for_selector(".case-state:has-text('已结案')")
        assert seeder.state(case_id) == "closed"
        transitions = [e["transition"] for e in seeder.case(case_id)["events"]]
        assert transitions[-1] == "close" and "dispatch" in transitions and "request_check" in transitions
        assert not leader.js_errors
    finally:
        leader_ctx.close()


def test_clerk_accepts_a_hall_application_from_the_work_list(page: Any, node: Node, seeder: Seeder) -> None:
    seeder.application()  # a second open case, so the scope's list has more than one page of one
    case_id = seeder.application()
    detail = seeder.case(case_id, "clerk")
    originals = detail["case"]["data"]["originals_required"]
    seeder.step(case_id, "clerk", "pre_review_pass")
    seeder.step(case_id, "clerk", "onsite_check", {"verified": originals})

    open_app(page, node, "#/login")
    login(page, "clerk")
    # The hall queue's rows now open the case too.
    page.goto(node.url + "/#/queue?all=1")
    page.click(f"a[href='#/case/{case_id}']")
    page.wait_for_selector("button.act-btn:has-text('受理')")
    main = page.inner_text("main")
    assert "最低生活保障审批" in main and "张*丰" in main and "时限如何计算" in main
    assert "张三丰" not in main  # the node masks the applicant; the screen shows what it is given
    open_from_work_list(page, node, case_id, "受理")
    screenshot(page, "45-case-clerk-accept")
    assert_accessible(page, "45-case-clerk-accept")
    submit_and_sync(page)
    page.wait_for_selector(".case-state:has-text('已受理')")
    assert seeder.state(case_id) == "accepted"

    # The whole scope, one case a page: the node's cursor leads to the next page (the work list holds
    # open cases, so a second open one makes the second page).
    if node.has("get", "/api/v1/worklist"):
        page.goto(node.url + "/#/work?mine=0&size=1")
        page.wait_for_selector("ul.worklist li")
        first = page.inner_text("ul.worklist")
        page.click("a.btn:has-text('下一页')")
        page.wait_for_selector("text=第 2 页")
        assert page.inner_text("ul.worklist") != first
    assert not page.js_errors


STAFF = ("district_admin", "district_approver", "street_admin", "window_clerk", "street_handler",
         "confidentiality_reviewer", "supervisor", "shift_leader", "dispatcher", "grid_member", "community_worker")


def test_every_staff_role_starts_from_its_work_list(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    first_tabs = page.evaluate("""async (roles) => {
        const { tabsFor } = await import('/js/chrome.js');
        return roles.map((r) => tabsFor(r)[0]);
    }""", list(STAFF))
    assert first_tabs == [["/work", "待办"]] * len(STAFF)


def test_grid_member_verifies_on_site_from_the_case_screen(browser: Any, page: Any, node: Node, seeder: Seeder) -> None:
    """The payload form's own widgets: a required yes/no, photos from the camera, a GPS fix."""
    open_app(page, node)
    case_id = seeder.report(jpeg_bytes(page, 1000, 750), "井盖破损，行人易绊倒")
    seeder.step(case_id, "clerk", "accept")
    ctx, grid = staff_page(browser, node, "grid2")
    try:
        enrol(grid, node)  # photos travel as the signed envelope's attachments
        open_from_work_list(grid, node, case_id, "现场核实")
        grid.click("#act-form button[type=submit]")
        grid.wait_for_selector("#act-errors:has-text('请按提示补全')")  # 情况是否属实 is a choice, not a default
        grid.check("input[name=genuine][value=yes]")
        grid.set_input_files("#ph-in-verify_photos", files=[
            {"name": "v.jpg", "mimeType": "image/jpeg", "buffer": jpeg_bytes(grid, 1600, 1200)}])
        grid.wait_for_selector("#ph-verify_photos img")
        grid.click("#gps-verify_location")
        grid.wait_for_function("() => document.querySelector('#loc-verify_location').textContent.startsWith('GPS')")
        assert_accessible(grid, "46-case-grid-verify")
        submit_and_sync(grid)
        assert seeder.state(case_id) == "verified"
        verify = [e for e in seeder.case(case_id)["events"] if e["transition"] == "verify"][0]
        payload = verify["payload"] if isinstance(verify["payload"], dict) else json.loads(verify["payload"])
        assert payload["genuine"] is True and len(payload["verify_photos"]) == 1
        assert abs(payload["verify_location"]["lat"] - 23.1318) < 0.001
        assert not grid.js_errors
    finally:
        ctx.close()


def test_a_duplicate_report_is_merged_from_the_case_screen(page: Any, node: Node, seeder: Seeder) -> None:
    """并单 has its own screen on the node (two cases in one write): offered on the case screen, online."""
    open_app(page, node)
    kept = seeder.report(jpeg_bytes(page, 900, 600), "路灯不亮（先报）")
    duplicate = seeder.report(jpeg_bytes(page, 902, 600), "路灯不亮（后报）", username="grid2")
    open_app(page, node, "#/login")
    login(page, "clerk")
    page.goto(node.url + f"/#/case/{duplicate}")
    page.wait_for_selector(f"button[data-into='{kept}']")
    screenshot(page, "47-case-duplicates")
    page.click(f"button[data-into='{kept}']")
    page.fill("#merge-reason", "同一处路灯，重复上报")
    page.click("dialog button:has-text('确认并单')")
    page.wait_for_selector(".case-state:has-text('已并单')")
    assert seeder.state(duplicate) == "merged"
    assert "absorb" in [e["transition"] for e in seeder.case(kept)["events"]]
    assert not page.js_errors


def test_dispatcher_records_a_units_step_on_its_behalf(page: Any, node: Node, seeder: Seeder) -> None:
    """A case dispatched to the street's 综合执法队 (no tablet of its own): the dispatcher signs for it
    from the case screen, and the act names the unit it was recorded for."""
    open_app(page, node)
    case_id = seeder.report(jpeg_bytes(page, 700, 500), "占道经营摊档堵塞人行道")
    seeder.step(case_id, "clerk", "accept")
    seeder.step(case_id, "grid2", "verify", {"genuine": True})
    seeder.step(case_id, "leader", "file")
    seeder.step(case_id, "dispatcher", "dispatch", {"unit_code": ENFORCEMENT_TEAM, "instruction": "请执法队处置"})
    open_app(page, node, "#/login")
    login(page, "dispatcher")
    open_from_work_list(page, node, case_id, "签收")
    assert "代处置单位" in page.inner_text("#act-form")
    submit_and_sync(page)
    assert seeder.state(case_id) == "handling"
    signed = [e for e in seeder.case(case_id)["events"] if e["transition"] == "accept_task"][0]
    assert signed["on_behalf_of"] == ENFORCEMENT_TEAM
    assert not page.js_errors
