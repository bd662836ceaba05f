"""The connection badge tells the truth: a page answered from the service worker's cache is not the node."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Node, login, open_app, wait_controlled


def test_badge_stays_offline_when_a_screen_reads_cached_reference_data(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "grid1")
    page.goto(node.url + "/#/report")  # one online visit caches the categories
    page.wait_for_selector("#cat-groups button.chip")
    page.goto(node.url + "/#/")
    node.stop()  # the node is gone (a LAN outage): the worker's own fetch fails too
    try:
        page.click("#sync-now")
        page.wait_for_function("() => window.streetnode.state.reachable === false")
        page.goto(node.url + "/#/report")
        page.wait_for_selector("#cat-groups button.chip")  # drawn from the cached categories
        page.wait_for_timeout(300)  # any late answer of the reference read has been handled
        assert page.evaluate("() => window.streetnode.state.reachable") is False
        assert "离线" in page.inner_text("#net-label")
    finally:
        node.restart()
