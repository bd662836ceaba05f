"""The shell loads offline; sign-in, the PIN lock and its limits (pwa.md T1, T12)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (
    PIN,
    Node,
    assert_accessible,
    login,
    open_app,
    screenshot,
    unlock_with_pin,
    wait_controlled,
)

pytestmark = pytest.mark.browser


def test_shell_loads_offline_after_first_visit(page: Any, context: Any, node: Node) -> None:
    open_app(page, node)
    wait_controlled(page)
    assert page.title().endswith("街道通")
    assert page.get_attribute("html", "lang") == "zh-CN"
    context.set_offline(True)
    page.reload()
    page.wait_for_selector("#login-form")
    assert page.inner_text(".brand-name") == "街道通"
    page.wait_for_function("() => window.streetnode.state.reachable === false")
    assert "离线" in page.inner_text("#net-label")
    assert not page.js_errors


def test_login_screen_is_accessible(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    page.wait_for_selector("#login-form")
    assert_accessible(page, "01-login")


def test_wrong_password_is_refused_in_chinese(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    page.fill("#login-user", "grid2")
    page.fill("#login-pass", "wrong-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert "用户名或密码错误" in page.inner_text("#login-error")


def test_pin_unlocks_offline_and_five_wrong_pins_need_the_password(page: Any, context: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid2")
    page.wait_for_selector("text=您好")
    assert_accessible(page, "02-home-grid")
    page.click("#lock-now")
    page.wait_for_selector("#pin-input")
    assert_accessible(page, "03-lock-pin")
    # Offline, a reload keeps the lock and the PIN still opens it (same shift).
    context.set_offline(True)
    page.reload()
    unlock_with_pin(page)
    assert page.evaluate("() => window.streetnode.state.user.username") == "grid2"
    page.click("#lock-now")
    for attempt in range(1, 6):
        page.fill("#pin-input", "000000")
        page.click("#pin-unlock button.btn-primary")
        if attempt < 5:
            page.wait_for_function(
                f"() => document.querySelector('#pin-msg').textContent.includes('还可尝试 {5 - attempt} 次')"
            )
    page.wait_for_selector("text=请联网登录")
    screenshot(page, "04-lock-password-required")
    # The PIN is gone for good: a reload offers the password only, and offline login explains why it fails.
    page.reload()
    page.wait_for_selector("#login-form")
    assert page.query_selector("#pin-input") is None
    page.fill("#login-pass", "demo1234")
    page.click("#login-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.includes('无法连接街道节点')")
    context.set_offline(False)
    page.click("#login-form button[type=submit]") if page.input_value("#login-pass") else None
    page.fill("#login-pass", "demo1234")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#pin-form")  # a fresh PIN is set after the password login
    page.fill("#pin1", PIN)
    page.fill("#pin2", PIN)
    page.click("#pin-form button[type=submit]")
    page.wait_for_function("() => window.streetnode.state.unlocked === true")


def test_idle_tablet_locks_itself(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    page.evaluate("() => localStorage.setItem('sn.idleSeconds', '2')")
    login(page, "community1")
    page.wait_for_selector("#pin-input", timeout=15000)
    assert page.evaluate("() => window.streetnode.state.unlocked") is False
    unlock_with_pin(page)


def test_logout_keeps_unsent_work_under_its_owner_key(page: Any, context: Any, node: Node) -> None:
    from tests.browser.conftest import enrol, jpeg_bytes, make_report

    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid1")
    enrol(page, node)
    context.set_offline(True)
    make_report(page, "共享平板测试：井盖缺失", jpeg_bytes(page, 800, 600))
    page.goto(node.url + "/#/home")
    page.click("#logout")
    page.wait_for_selector("dialog >> text=还有数据未上传")
    screenshot(page, "05-logout-warning")
    page.click("dialog button:has-text('仍然退出')")
    page.wait_for_selector("#login-form")
    context.set_offline(False)
    login(page, "grid2")
    assert page.evaluate("() => window.streetnode.state.pending") == 0
    page.wait_for_selector("text=本机还有其他工作人员的 1 条记录待上传")
    # grid2's key cannot open grid1's item.
    opened = page.evaluate(
        """async () => {
            const db = await import('/js/db.js'); const outbox = await import('/js/outbox.js');
            const mine = await outbox.listItems(); const all = await db.all('outbox');
            const other = all.find((i) => !mine.some((m) => m.id === i.id) && i.state === 'finalized');
            try { await outbox.itemContent(other); return 'opened'; } catch (e) { return 'refused'; }
        }"""
    )
    assert opened == "refused"
    page.goto(node.url + "/#/home")
    page.click("#logout")
    page.wait_for_selector("#login-form")
    login(page, "grid1")
    page.wait_for_function("() => window.streetnode.state.pending === 0", timeout=30000)  # uploaded at sign-in


def test_login_form_is_keyboard_operable_in_order(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    page.wait_for_selector("#login-form")
    page.focus("#login-user")
    order = []
    for _ in range(2):
        page.keyboard.press("Tab")
        order.append(page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()"))
    assert order == ["login-pass", "登录"]
    page.fill("#login-user", "clerk")
    page.fill("#login-pass", "demo1234")
    page.focus("#login-pass")
    page.keyboard.press("Enter")  # submits without a pointer
    page.wait_for_selector("#pin-form")


def test_pin_expires_with_the_shift(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    login(page, "supervisor")
    # The shift (12 h after the online login) is over: move the PIN slot's end into the past.
    page.evaluate(
        """async () => {
            const db = await import('/js/db.js');
            const rec = await db.get('users', window.streetnode.state.user.id);
            rec.slots.pin.validUntil = Date.now() - 1000;
            await db.put('users', rec);
        }"""
    )
    page.click("#lock-now")
    page.wait_for_selector("text=请联网登录")  # no PIN pad: the password is needed
    assert page.query_selector("#pin-input") is None
    page.fill("#login-pass", "demo1234")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#pin-form")  # the expired PIN is gone: a new shift needs a new PIN
