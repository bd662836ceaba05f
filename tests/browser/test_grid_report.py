"""A grid report made offline: counted, encrypted at rest, survives a reload and a browser restart,
uploads by itself when the node is back, exactly once — also when the first response is lost
(pwa.md T2–T6, T8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    Node,
    assert_accessible,
    enrol,
    jpeg_bytes,
    launch_persistent,
    login,
    make_report,
    open_app,
    pending,
    screenshot,
    server_count,
    unlock_with_pin,
    wait_controlled,
)

pytestmark = pytest.mark.browser


def photo_facts(page: Any) -> dict[str, Any]:
    """The stored photo of the newest item: size, pixel dimensions, whether EXIF survived."""
    return page.evaluate(
        """async () => {
            const items = await window.streetnode.outbox.list();
            const b = await window.streetnode.outbox.blob(items[0].blobs[0].sha256);
            const bytes = new Uint8Array(await b.arrayBuffer());
            const bmp = await createImageBitmap(b);
            const text = Array.from(bytes.slice(0, 4096), (x) => String.fromCharCode(x)).join('');
            return {size: bytes.length, width: bmp.width, height: bmp.height, exif: text.includes('Exif'),
                    jpeg: bytes[0] === 0xff && bytes[1] === 0xd8};
        }"""
    )


def stored_plaintext(page: Any, needle: str) -> bool:
    """Whether `needle` appears anywhere in the raw IndexedDB records (it must not: AES-GCM at rest)."""
    return bool(page.evaluate(
        """async (needle) => {
            const db = await new Promise((ok, err) => { const r = indexedDB.open('streetnode'); r.onsuccess = () => ok(r.result); r.onerror = err; });
            const dump = async (name) => new Promise((ok) => { const r = db.transaction(name).objectStore(name).getAll(); r.onsuccess = () => ok(r.result); });
            const enc = new TextEncoder().encode(needle);
            const hasBytes = (buf) => { const u = new Uint8Array(buf); outer: for (let i = 0; i + enc.length <= u.length; i++) {
                for (let j = 0; j < enc.length; j++) if (u[i + j] !== enc[j]) continue outer; return true; } return false; };
            const walk = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? hasBytes(v.buffer || v)
                : typeof v === 'string' ? v.includes(needle) : v && typeof v === 'object' ? Object.values(v).some(walk) : false;
            for (const name of ['outbox', 'blobs', 'kv', 'cache']) if ((await dump(name)).some(walk)) return true;
            return false;
        }""",
        needle,
    ))


def test_report_made_offline_survives_reload_and_restart(playwright_instance: Any, node: Node, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    ctx = launch_persistent(playwright_instance, profile)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid1")
    page.goto(node.url + "/#/report")
    page.wait_for_selector("#cat-groups button.chip")  # categories fetched once online, then cached
    assert_accessible(page, "10-report-form")
    ctx.set_offline(True)
    description = "石牌东路12号门前垃圾堆放（离线上报测试）"
    make_report(page, description, jpeg_bytes(page))
    assert pending(page) == 1
    assert "待上传 1 条" in page.inner_text("#pending")
    facts = photo_facts(page)
    assert facts["jpeg"] and max(facts["width"], facts["height"]) == 2048 and not facts["exif"], facts
    assert facts["size"] < 1_500_000, facts
    assert not stored_plaintext(page, description)

    page.reload()  # offline reload: the SW serves the shell, the lock asks for the PIN
    unlock_with_pin(page)
    page.wait_for_function("() => window.streetnode.state.pending === 1")
    ctx.close()

    ctx = launch_persistent(playwright_instance, profile)
    ctx.set_offline(True)
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.goto(node.url + "/#/outbox")
    unlock_with_pin(page)
    page.wait_for_function("() => window.streetnode.state.pending === 1")
    page.wait_for_selector("text=待上传（1）")
    assert_accessible(page, "11-outbox-pending")
    ctx.close()


def test_offline_report_uploads_on_reconnect_exactly_once_even_when_the_response_is_lost(
    page: Any, context: Any, node: Node
) -> None:
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid1")
    enrol(page, node)
    context.set_offline(True)
    make_report(page, "树木倒伏压住人行道（断线重传测试）", jpeg_bytes(page, 1600, 1200))
    assert pending(page) == 1
    submission_id = page.evaluate("async () => (await window.streetnode.outbox.list())[0].id")

    # The first upload reaches the node, then its response is lost on the way back.
    lost = {"n": 0}

    def lose_first_response(route: Any) -> None:
        if lost["n"] == 0:
            lost["n"] += 1
            route.fetch()  # the node commits the batch
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/sync/v1/outbox", lose_first_response)
    context.set_offline(False)  # the `online` event starts a sync by itself
    for _ in range(300):  # bounded: the reconnect sync must reach the node by itself
        if lost["n"]:
            break
        page.wait_for_timeout(100)
    assert lost["n"] == 1, "reconnecting did not start an upload"
    assert pending(page) == 1  # the lost response left the item queued, never marked sent
    page.evaluate("() => window.streetnode.syncNow(true)")  # the timer would retry too; do not wait 30 s
    page.wait_for_function("() => window.streetnode.state.pending === 0", timeout=30000)
    item = page.evaluate("async () => (await window.streetnode.outbox.list())[0]")
    assert item["state"] == "acked" and item["receipt"]["submission_id"] == submission_id
    assert item["result"]["status"] == "duplicate"  # the retry was recognised, not stored again
    assert server_count(node, "SELECT count(*) FROM submissions WHERE id = ?", [submission_id]) == 1
    page.goto(node.url + "/#/outbox")
    page.wait_for_selector("text=已受理")
    screenshot(page, "12-outbox-acked")


def test_real_lan_outage_queues_although_the_browser_says_online(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    wait_controlled(page)
    page.evaluate("() => localStorage.setItem('sn.syncSeconds', '2')")
    login(page, "grid2")
    enrol(page, node)
    page.goto(node.url + "/#/report")
    page.wait_for_selector("#cat-groups button.chip")
    node.stop()
    try:
        make_report(page, "停电期间上报：路灯不亮（节点宕机测试）", jpeg_bytes(page, 1024, 768))
        assert page.evaluate("() => navigator.onLine") is True  # the browser believes it is online
        page.wait_for_function("() => window.streetnode.state.reachable === false")
        assert pending(page) == 1
        assert "离线" in page.inner_text("#net-label")
    finally:
        node.restart()
    page.wait_for_function("() => window.streetnode.state.pending === 0", timeout=30000)  # the timer drained it
    assert "已连接" in page.inner_text("#net-label")
