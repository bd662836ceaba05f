"""Patrol log, device enrolment by a street admin, and a service-worker update that waits for a
half-filled form (pwa.md T9)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (
    Node,
    assert_accessible,
    enrol,
    login,
    open_app,
    wait_controlled,
    wait_for_async,
)

pytestmark = pytest.mark.browser
ITEM = "GF00101000-440106000000-01"


def test_patrol_log_is_recorded_offline_and_uploaded(page: Any, context: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid1")
    enrol(page, node)
    page.goto(node.url + "/#/patrol")
    page.wait_for_selector("#patrol-start")
    assert_accessible(page, "18-patrol-idle")
    context.set_offline(True)
    page.click("#patrol-start")
    page.wait_for_selector("#finding-form")
    page.wait_for_function("() => document.querySelector('main').textContent.includes('已记录轨迹 1 点')")
    page.fill("#finding-note", "华师社区东门路灯不亮")
    page.click("#finding-form button[type=submit]")
    page.wait_for_selector("li:has-text('路灯不亮')")
    assert_accessible(page, "19-patrol-running")
    page.click("#patrol-end")
    page.wait_for_function("() => window.streetnode.state.pending === 1")
    context.set_offline(False)
    page.evaluate("() => window.streetnode.syncNow(true)")
    page.wait_for_function("() => window.streetnode.state.pending === 0", timeout=30000)
    patrols = node.get("/api/v1/grid/patrols?member=me", username="grid1").json()["patrols"]
    assert len(patrols) >= 1


def test_street_admin_issues_an_enrolment_code_with_its_qr(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    login(page, "admin")
    page.goto(node.url + "/#/device")
    page.wait_for_selector("#issue-form")
    page.click("#issue-form button[type=submit]")
    page.wait_for_selector("#issued svg[role=img]")
    assert "登记码" in page.inner_text("#issued")
    assert_accessible(page, "31-device-enrolment")


def test_service_worker_update_waits_until_no_form_is_half_filled(page: Any, node: Node) -> None:
    """The gate in front of skipWaiting. Playwright cannot intercept a service worker's own script
    fetch and the node serves pwa/ from the repository, so the waiting worker here is a stand-in
    that records the message the page sends it; the worker's SKIP_WAITING handler is sw.js's own."""
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "clerk")
    page.goto(node.url + f"/#/apply/{ITEM}")
    page.wait_for_selector("#apply-form")
    page.fill("[data-path='applicant.name']", "林小梅")
    page.evaluate(
        """async () => {
            window.__messages = [];
            const actions = await import('/js/actions.js');
            const { setState } = await import('/js/state.js');
            actions.setWaitingWorker({ postMessage: (m) => window.__messages.push(m.type) });
            setState({ updateWaiting: true });
        }"""
    )
    page.wait_for_selector("#apply-update")
    assert_accessible(page, "32-update-waiting")
    page.click("#apply-update")  # refused while the form is half-filled
    page.wait_for_function("() => document.querySelector('#toast').textContent.includes('请先提交或保存当前表单')")
    assert page.evaluate("() => window.__messages") == []
    assert page.input_value("[data-path='applicant.name']") == "林小梅"

    # Leaving the form (its draft is saved) lets the update go ahead.
    page.goto(node.url + "/#/catalogue")
    page.wait_for_function("() => window.__messages.includes('SKIP_WAITING')")
    page.goto(node.url + f"/#/apply/{ITEM}")
    page.wait_for_selector("text=已恢复未完成的草稿")
    assert page.input_value("[data-path='applicant.name']") == "林小梅"


def test_must_reset_restarts_the_change_feed_and_keeps_the_outbox(page: Any, context: Any, node: Node) -> None:
    from tests.browser.conftest import jpeg_bytes, make_report

    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid2")
    enrol(page, node)
    page.evaluate("() => window.streetnode.syncNow(true)")
    wait_for_async(page, "async () => !!(await (await import('/js/db.js')).kvGet('cursor:' + window.streetnode.state.user.id))")
    context.set_offline(True)
    make_report(page, "节点恢复备份期间的上报", jpeg_bytes(page, 800, 600))
    before = page.evaluate("async () => (await window.streetnode.outbox.list()).length")

    def restored_node(route: Any) -> None:
        if "cursor=" in route.request.url:
            route.fulfill(status=409, content_type="application/json", body=(
                '{"ok":false,"error":"节点已从备份恢复，请重新下载本辖区数据（待上传的数据会保留）",'
                '"errors":[{"field":"cursor","message":"节点已从备份恢复","reason":"new_epoch"}],'
                '"code":"must_reset","status":409}'))
        else:
            route.continue_()

    page.route("**/sync/v1/changes*", restored_node)
    context.set_offline(False)
    page.evaluate("() => window.streetnode.syncNow(true)")
    page.wait_for_selector("text=已重新下载，未上传的数据均已保留")
    page.wait_for_function("() => window.streetnode.state.pending === 0")
    assert page.evaluate("async () => (await window.streetnode.outbox.list()).length") == before
    assert page.evaluate("async () => (await window.streetnode.outbox.list())[0].state") == "acked"
