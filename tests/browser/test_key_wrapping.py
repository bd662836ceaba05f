"""The data key needs the PIN (or password) *and* the node's KEK; the KEK is never stored in the clear;
the outbox tells the node the tablet's clock (issue 6 §2, pwa.md §5, sync.md §4.5)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import (
    PASSWORD,
    PIN,
    Node,
    enrol,
    jpeg_bytes,
    login,
    make_report,
    open_app,
    screenshot,
    server_count,
    unlock_with_pin,
    wait_controlled,
)

pytestmark = pytest.mark.browser

# Every string and byte run in IndexedDB and localStorage, so a test can look for a secret anywhere.
DUMP_STORAGE = """async () => {
    const db = await import('/js/db.js');
    const b64 = (await import('/js/crypto.js')).b64url;
    const out = [];
    const walk = (v) => {
        if (v == null) return;
        if (typeof v === 'string') { out.push(v); return; }
        if (v instanceof ArrayBuffer) v = new Uint8Array(v);
        if (ArrayBuffer.isView(v)) { out.push('bytes:' + b64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))); return; }
        if (typeof v === 'object') for (const k of Object.keys(v)) { out.push(k); walk(v[k]); }
    };
    for (const s of ['outbox', 'blobs', 'users', 'cache', 'kv']) walk(await db.all(s));
    for (let i = 0; i < localStorage.length; i++) { const k = localStorage.key(i); out.push(k, localStorage.getItem(k)); }
    return out;
}"""

SLOTS = """async () => {
    const db = await import('/js/db.js');
    const rec = await db.get('users', window.streetnode.state.user.id);
    const d = (s) => s && ({v: s.v, kid: s.kid, sealed: Boolean(s.kekBox), validUntil: s.validUntil});
    return {pin: d(rec.slots.pin), password: d(rec.slots.password)};
}"""


def kek_of(node: Node, username: str) -> dict[str, Any]:
    body = node.get("/api/v1/auth/kek", username).json()
    assert body["ok"] and body["alg"] == "A256GCM-KW"
    return dict(body)


def assert_no_plain_kek(page: Any, kek: str) -> None:
    dump = page.evaluate(DUMP_STORAGE)
    assert dump, "storage dump is empty"
    # The KEK neither as text nor as a raw byte run (b64url of the bytes is the node's own encoding).
    assert not [s for s in dump if kek in s], "the server KEK is stored in the clear"


def test_slots_need_both_factors_and_the_kek_is_never_stored_in_the_clear(page: Any, node: Node) -> None:
    kek = kek_of(node, "handler")
    open_app(page, node, "#/login")
    login(page, "handler")
    slots = page.evaluate(SLOTS)
    assert slots["password"] == {"v": 2, "kid": kek["kid"], "sealed": False, "validUntil": None}
    assert slots["pin"]["v"] == 2 and slots["pin"]["kid"] == kek["kid"] and slots["pin"]["sealed"]
    assert_no_plain_kek(page, kek["kek"])
    # Each slot opens only with its secret *and* the right KEK.
    opened = page.evaluate(
        """async ([kekB64, kid, password, pin]) => {
            const c = await import('/js/crypto.js'); const db = await import('/js/db.js');
            const uid = window.streetnode.state.user.id;
            const rec = await db.get('users', uid);
            const good = {kid, bytes: c.unb64url(kekB64)};
            const wrong = {kid, bytes: c.randomBytes(32)};
            const pw = `pw:${uid}:${password}`; const pinS = `pin:${uid}:${pin}`;
            const ok = async (p) => Boolean(await p);
            const tampered = {...rec.slots.pin, kekBox: {iv: rec.slots.pin.kekBox.iv, ct: c.randomBytes(48)}};
            return {
                passwordAndKek: await ok(c.unwrapDataKey(rec.slots.password, pw, good)),
                passwordAlone: await ok(c.unwrapDataKey(rec.slots.password, pw)),
                passwordWrongKek: await ok(c.unwrapDataKey(rec.slots.password, pw, wrong)),
                wrongPasswordAndKek: await ok(c.unwrapDataKey(rec.slots.password, pw + 'x', good)),
                pinOffline: await ok(c.unwrapDataKey(rec.slots.pin, pinS)),
                pinWithoutSealedKek: await ok(c.unwrapDataKey({...rec.slots.pin, kekBox: undefined}, pinS)),
                pinTamperedKek: await ok(c.unwrapDataKey(tampered, pinS)),
                wrongPin: await ok(c.unwrapDataKey(rec.slots.pin, 'pin:' + uid + ':000000')),
            };
        }""",
        [kek["kek"], kek["kid"], PASSWORD, PIN],
    )
    assert opened == {
        "passwordAndKek": True, "passwordAlone": False, "passwordWrongKek": False, "wrongPasswordAndKek": False,
        "pinOffline": True, "pinWithoutSealedKek": False, "pinTamperedKek": False, "wrongPin": False,
    }
    # Logout drops the PIN slot and the KEK sealed in it: only password + node open the data key now.
    page.click("#logout")
    page.wait_for_selector("#login-form")
    assert page.evaluate(
        """async () => (await (await import('/js/db.js')).all('users')).every((u) => !u.slots.pin)"""
    )
    assert_no_plain_kek(page, kek["kek"])


def test_pin_unlocks_offline_after_an_online_login_and_a_wrong_pin_still_counts(
        page: Any, context: Any, node: Node) -> None:
    kek = kek_of(node, "reviewer")
    open_app(page, node, "#/login")
    wait_controlled(page)
    login(page, "reviewer")
    page.click("#lock-now")
    page.wait_for_selector("#pin-input")
    context.set_offline(True)
    page.reload()  # nothing from the online session survives in memory
    page.wait_for_selector("#pin-input")
    page.fill("#pin-input", "135790")
    page.click("#pin-unlock button.btn-primary")
    page.wait_for_function("() => document.querySelector('#pin-msg').textContent.includes('还可尝试 4 次')")
    screenshot(page, "06-lock-wrong-pin-offline")
    page.reload()  # the count is stored, not kept in memory
    page.wait_for_selector("#pin-input")
    failures = page.evaluate(
        """async () => {
            const db = await import('/js/db.js');
            return (await db.all('users')).find((u) => u.username === 'reviewer').pinFailures;
        }"""
    )
    assert failures == 1
    unlock_with_pin(page)
    page.wait_for_selector("main h1:has-text('您好')")
    screenshot(page, "07-home-after-offline-pin")
    # The unlocked data key opens what was sealed online (the session token box), and the count resets.
    state = page.evaluate(
        """async () => {
            const db = await import('/js/db.js'); const c = await import('/js/crypto.js');
            const s = await import('/js/session.js');
            const rec = await db.get('users', s.currentUserId());
            const t = await c.decryptJSON(s.currentKey(), rec.tokenBox);
            return {failures: rec.pinFailures, hasToken: typeof t.token === 'string'};
        }"""
    )
    assert state == {"failures": 0, "hasToken": True}
    assert_no_plain_kek(page, kek["kek"])
    assert not page.js_errors


def test_outbox_upload_sends_the_device_time_with_its_offset(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    login(page, "grid2")
    enrol(page, node)
    assert re.fullmatch(
        r"2026-11-29T14:21:38\.007\+08:00",
        page.evaluate(
            "async () => (await import('/js/outbox.js')).isoWithOffset(new Date(Date.UTC(2026, 10, 29, 6, 21, 38, 7)))"
        ),
    )
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.headers.get("x-device-time", ""))
            if r.method == "POST" and r.url.endswith("/sync/v1/outbox") else None)
    make_report(page, "时钟测试：路灯不亮", jpeg_bytes(page, 640, 480, with_exif=False))
    page.wait_for_function("() => window.streetnode.state.pending === 0", timeout=30000)
    assert sent, "no outbox upload seen"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", s) for s in sent), sent
    assert server_count(node, "SELECT COUNT(*) FROM devices WHERE clock_offset_ms IS NOT NULL"
                              " AND clock_checked_at IS NOT NULL", []) >= 1


def test_a_slot_from_before_the_kek_opens_once_and_is_rewrapped(page: Any, node: Node) -> None:
    open_app(page, node, "#/login")
    login(page, "dispatcher")
    # Seal a marker under the data key, then put back a password slot in the pre-KEK shape (PBKDF2 alone).
    page.evaluate(
        """async (password) => {
            const c = await import('/js/crypto.js'); const db = await import('/js/db.js');
            const s = await import('/js/session.js');
            const uid = s.currentUserId(); const rec = await db.get('users', uid);
            const salt = c.randomBytes(16); const iv = c.randomBytes(12);
            const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(`pw:${uid}:${password}`),
                'PBKDF2', false, ['deriveKey']);
            const kek = await crypto.subtle.deriveKey({name: 'PBKDF2', hash: 'SHA-256', salt, iterations: 1000},
                base, {name: 'AES-GCM', length: 256}, false, ['wrapKey']);
            const wrapped = await crypto.subtle.wrapKey('raw', s.currentKey(), kek, {name: 'AES-GCM', iv});
            rec.slots = {password: {salt, iv, iterations: 1000, wrapped}};
            await db.put('users', rec);
            await db.kvSet('test.marker', await c.encryptJSON(s.currentKey(), {marker: '旧版密钥'}));
        }""",
        PASSWORD,
    )
    page.click("#lock-now")
    page.wait_for_selector("text=请联网登录")
    page.fill("#login-pass", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#pin-form")
    after = page.evaluate(
        """async () => {
            const c = await import('/js/crypto.js'); const db = await import('/js/db.js');
            const s = await import('/js/session.js');
            const rec = await db.get('users', s.currentUserId());
            return {v: rec.slots.password.v, retired: rec.retired.length,
                    marker: (await c.decryptJSON(s.currentKey(), await db.kvGet('test.marker'))).marker};
        }"""
    )
    assert after == {"v": 2, "retired": 0, "marker": "旧版密钥"}
