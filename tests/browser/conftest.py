"""Browser harness: the real node (uvicorn subprocess on a free port, demo data in a temp dir) and
Debian's Chromium driven by Playwright for Python. Never downloads a browser (pwa.md §7.1).

Screenshots go to ``tests/artifacts/screens/`` (git-ignored); axe-core is loaded from
``tests/browser/vendor/`` into the page under test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.servers import free_port, start, stop, streetnode, wait_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe-core-4.14.1.min.js"
SCREENS = HERE.parent / "artifacts" / "screens"
PASSWORD = "demo1234"
PIN = "246810"
VIEWPORT = {"width": 1280, "height": 800}  # a 10-inch tablet in landscape
WAIT_MS = 20000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == HERE and item.get_closest_marker("browser") is None \
                and "test_pwa_files" not in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@dataclass
class Node:
    """A running street node: its URL, data dir and an API client with cached logins."""

    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes] | None
    port: int
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            resp = httpx2.post(self.url + "/api/v1/auth/login", json={"username": username, "password": PASSWORD})
            resp.raise_for_status()
            self.tokens[username] = resp.json()["token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def get(self, path: str, username: str = "admin", **kw: Any) -> httpx2.Response:
        return httpx2.get(self.url + path, headers=self.headers(username), timeout=10.0, **kw)

    def post(self, path: str, body: Any, username: str = "admin") -> httpx2.Response:
        return httpx2.post(self.url + path, json=body, headers=self.headers(username), timeout=10.0)

    def has(self, method: str, path: str) -> bool:
        """Whether the node serves an API route (parallel features may not have landed)."""
        doc = httpx2.get(self.url + "/api/v1/openapi.json", timeout=10.0).json()
        return method.lower() in doc.get("paths", {}).get(path, {})

    def enrolment_code(self) -> str:
        resp = self.post("/sync/v1/devices/enrolments", {"label": "测试平板"})
        if resp.status_code == 404:
            pytest.skip("device enrolment (sync leg A) is not served by this node yet")
        assert resp.status_code in (200, 201), resp.text
        body = resp.json()
        return str(body.get("code") or body.get("enrolment_code"))

    def restart(self) -> None:
        self.stop()
        self.proc = start("--data-dir", str(self.data_dir), "serve", "--port", str(self.port))
        wait_healthy(self.url, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            if self.proc.stdout is not None:
                self.proc.stdout.close()  # an unclosed pipe is a ResourceWarning, an error under -W error
            self.proc = None


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("node")
    streetnode("--data-dir", str(data), "init", "--demo")
    port = free_port()
    proc = start("--data-dir", str(data), "serve", "--port", str(port))
    n = Node(url=f"http://127.0.0.1:{port}", data_dir=data, proc=proc, port=port)
    try:
        wait_healthy(n.url, proc)
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (make chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


# Inside the demo grid 440106006001-G01 (石牌街), so reports pass the node's location check.
IN_GRID = {"latitude": 23.1318, "longitude": 113.3411, "accuracy": 8}
CONTEXT_OPTIONS: dict[str, Any] = {
    "locale": "zh-CN", "timezone_id": "Asia/Shanghai", "viewport": VIEWPORT, "service_workers": "allow",
    "geolocation": IN_GRID, "permissions": ["geolocation"],
}


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(**CONTEXT_OPTIONS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    p = context.new_page()
    p.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.js_errors = errors  # type: ignore[attr-defined]
    return p


def launch_persistent(playwright_instance: Any, user_data_dir: Path) -> Any:
    """A browser with a profile on disk, to prove data survives closing and relaunching it."""
    ctx = playwright_instance.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **CONTEXT_OPTIONS
    )
    ctx.set_default_timeout(WAIT_MS)
    return ctx


# ---- page helpers ---------------------------------------------------------------------------------

def open_app(page: Any, node: Node, hash_: str = "") -> None:
    page.goto(node.url + "/" + hash_)
    page.wait_for_function("() => window.streetnode !== undefined")


def wait_controlled(page: Any) -> None:
    """Wait until the service worker controls the page (the shell is precached by then)."""
    page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== null")


def login(page: Any, username: str, pin: str | None = PIN) -> None:
    page.wait_for_selector("#login-form")
    page.fill("#login-user", username)
    page.fill("#login-pass", PASSWORD)
    page.click("#login-form button[type=submit]")
    if pin is not None:
        page.wait_for_selector("#pin-form")
        page.fill("#pin1", pin)
        page.fill("#pin2", pin)
        page.click("#pin-form button[type=submit]")
    page.wait_for_function("() => window.streetnode.state.unlocked === true")
    page.wait_for_selector("main h1:has-text('您好')")  # the PIN is saved and home is shown


def unlock_with_pin(page: Any, pin: str = PIN) -> None:
    page.wait_for_selector("#pin-input")
    page.fill("#pin-input", pin)
    page.click("#pin-unlock button.btn-primary")
    page.wait_for_function("() => window.streetnode.state.unlocked === true")


def enrol(page: Any, node: Node) -> None:
    code = node.enrolment_code()
    page.goto(node.url + "/#/device")
    page.wait_for_selector("#enrol-code")
    page.fill("#enrol-code", code)
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("text=已登记")


def wait_for_async(page: Any, predicate: str, timeout_s: float = WAIT_MS / 1000) -> Any:
    """Poll an async JS predicate until it is truthy. ``page.wait_for_function`` does not await a
    predicate's promise (a pending promise is truthy, so it returns at once)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(predicate)
        if value:
            return value
        assert time.monotonic() < deadline, f"not true within {timeout_s:.0f} s: {predicate}"
        page.wait_for_timeout(100)


def pending(page: Any) -> int:
    return int(page.evaluate("() => window.streetnode.state.pending"))


def screenshot(page: Any, name: str) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical WCAG 2.1 A/AA violations on the current page (pwa.md §4)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_accessible(page: Any, name: str) -> None:
    screenshot(page, name)
    bad = axe_violations(page)
    assert not bad, f"{name}: " + json.dumps(bad, ensure_ascii=False, indent=1)


def jpeg_bytes(page: Any, width: int = 4000, height: int = 3000, with_exif: bool = True) -> bytes:
    """A camera-sized JPEG made by the browser's own encoder, with an EXIF GPS block spliced in."""
    data = page.evaluate(
        """async ([w, h]) => {
            const c = new OffscreenCanvas(w, h); const g = c.getContext('2d');
            const grad = g.createLinearGradient(0, 0, w, h); grad.addColorStop(0, '#3a7'); grad.addColorStop(1, '#c53');
            g.fillStyle = grad; g.fillRect(0, 0, w, h);
            g.fillStyle = '#fff'; g.font = `${Math.round(h / 8)}px sans-serif`; g.fillText('材料 2026', w / 10, h / 2);
            const b = await c.convertToBlob({type: 'image/jpeg', quality: 0.92});
            return Array.from(new Uint8Array(await b.arrayBuffer()));
        }""",
        [width, height],
    )
    raw = bytes(data)
    return add_exif(raw) if with_exif else raw


EXIF_MARKER = b"Exif\x00\x00"


def add_exif(jpeg: bytes) -> bytes:
    # A minimal big-endian TIFF with one IFD entry (Make = "TESTCAM") after the SOI marker: enough
    # for "has EXIF" to be checkable after the tablet re-encodes the photo.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x0f\x00\x02\x00\x00\x00\x08\x00\x00\x00\x1a" \
        + b"\x00\x00\x00\x00" + b"TESTCAM\x00"
    app1 = EXIF_MARKER + tiff
    segment = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + segment + jpeg[2:]


def copy_profile(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)


def make_report(page: Any, description: str, photo: bytes) -> None:
    """Fill and submit the incident report form on #/report (works offline)."""
    page.goto(page.url.split("#")[0] + "#/report")
    page.wait_for_selector("#cat-groups button.chip")
    page.click("#cat-groups button.chip >> nth=1")
    page.set_input_files("#photo-input", files=[{"name": "camera.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    page.wait_for_selector("#photo-list figure img")
    page.click("#gps")
    page.wait_for_function("() => document.querySelector('#loc-status').textContent.startsWith('GPS')")
    page.fill("#description", description)
    page.click("#report-form button[type=submit]")
    page.wait_for_selector("text=上报已保存")


def server_count(node: Node, sql: str, params: list[Any]) -> int:
    """Count rows in the node's own SQLite file (read-only; the node keeps running)."""
    import sqlite3

    con = sqlite3.connect(f"file:{node.data_dir / 'streetnode.db'}?mode=ro", uri=True)
    try:
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()
