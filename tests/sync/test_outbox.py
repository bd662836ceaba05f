"""POST /sync/v1/outbox: every per-item result, quarantine, receipts, batch limits, gaps and clocks."""

from __future__ import annotations

import copy
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from schemas.envelope import OutboxResponse
from server.config import Settings
from server.domain.crypto import SigningKey, b64url_decode, b64url_encode
from server.domain.ids import now_china, uuid7
from server.node import data_key
from server.store.db import Store
from server.store.seed import DEMO_PASSWORD
from sync.envelopes import sign_envelope, verify_receipt
from tests.conftest import Logins
from tests.hall.helpers import form
from tests.servers import free_port, start, stop, streetnode, wait_healthy
from tests.sync.helpers import TEST_KIND, P256Key, TestDevice, enrol_device, post_outbox


def send(client: TestClient, auth: Logins, device: TestDevice, *envs: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    resp = post_outbox(client, auth(device.username), device, list(envs), **kw)
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]  # type: ignore[no-any-return]


def count(store: Store, sql: str, params: Any = ()) -> int:
    return int(store.query(sql, params)[0]["n"])


def cases_of(store: Store, case_id: str) -> int:
    return count(store, "SELECT COUNT(*) AS n FROM cases WHERE id = ?", [case_id])


def quarantined(store: Store, settings: Settings, submission_id: str) -> list[dict[str, Any]]:
    """Quarantine rows of a submission, with their bodies decrypted."""
    key = data_key(settings)
    rows = store.query("SELECT * FROM quarantine WHERE submission_id = ? ORDER BY received_at", [submission_id])
    for row in rows:
        row["body"] = json.loads(key.decrypt_field(row["body_enc"], f"quarantine:{row['id']}"))
        if row["original_body_enc"]:
            row["original"] = json.loads(key.decrypt_field(row["original_body_enc"], f"submission:{submission_id}"))
    return rows


@pytest.fixture
def clerk_tablet(client: TestClient, auth: Logins) -> TestDevice:
    return enrol_device(client, auth, "clerk", label="窗口平板")


def test_created_item_gets_a_receipt_signed_by_the_node(client: TestClient, auth: Logins, store: Store,
                                                        clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope(TEST_KIND, {"title": "占道经营许可"})
    resp = post_outbox(client, auth("clerk"), clerk_tablet, [env])
    body = resp.json()
    (result,) = body["results"]
    assert result["status"] == "created" and result["errors"] == []
    node_public = b64url_decode(clerk_tablet.registration["node_public_key"])
    verify_receipt(result["receipt"], node_public, submission_id=env["submission_id"],
                   payload_sha256=env["payload_sha256"])
    assert body["write_checkpoint"] == result["receipt"]["node_seq"] and body["server_time"]
    OutboxResponse.model_validate(body)  # the documented response model is what the node sends
    assert result["record"]["case_id"] == env["submission_id"] and cases_of(store, env["submission_id"]) == 1
    row = store.query("SELECT status, node_seq, kind, user_id FROM submissions WHERE id = ?", [env["submission_id"]])
    assert row == [{"status": "created", "node_seq": result["receipt"]["node_seq"], "kind": TEST_KIND,
                    "user_id": clerk_tablet.user_id}]


def test_envelope_bodies_are_kept_encrypted_at_rest(store: Store, settings: Settings, client: TestClient,
                                                    auth: Logins, clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope(TEST_KIND, {"title": "申请人 张三丰"})
    send(client, auth, clerk_tablet, env)
    (row,) = store.query("SELECT envelope_enc FROM submissions WHERE id = ?", [env["submission_id"]])
    assert "张三丰" not in row["envelope_enc"]
    clear = data_key(settings).decrypt_field(row["envelope_enc"], f"submission:{env['submission_id']}")
    assert json.loads(clear) == env


def test_same_id_same_payload_is_duplicate_with_the_original_receipt(client: TestClient, auth: Logins, store: Store,
                                                                    clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope(TEST_KIND, {"title": "重复上传"})
    (first,) = send(client, auth, clerk_tablet, env)
    (again,) = send(client, auth, clerk_tablet, env)
    (twice_in_one_batch, thrice) = send(client, auth, clerk_tablet, env, env)
    assert first["status"] == "created"
    for result in (again, twice_in_one_batch, thrice):
        assert result["status"] == "duplicate" and result["receipt"] == first["receipt"]
        assert result["record"] == first["record"]
    assert cases_of(store, env["submission_id"]) == 1
    assert count(store, "SELECT COUNT(*) AS n FROM submissions") == 1


def test_same_id_different_payload_goes_to_quarantine_keeping_both(client: TestClient, auth: Logins, store: Store,
                                                                  settings: Settings, clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope(TEST_KIND, {"title": "原件"})
    send(client, auth, clerk_tablet, env)
    other = clerk_tablet.envelope(TEST_KIND, {"title": "改过的"}, submission_id=env["submission_id"])
    (result,) = send(client, auth, clerk_tablet, other)
    assert result["status"] == "id_conflict" and result["receipt"] is None
    assert result["errors"][0]["field"] == "submission_id"
    (row,) = quarantined(store, settings, env["submission_id"])
    assert row["status"] == "id_conflict" and row["body"] == other and row["original"] == env
    case = store.query("SELECT data FROM cases WHERE id = ?", [env["submission_id"]])[0]
    assert json.loads(case["data"])["title"] == "原件"  # never overwritten
    send(client, auth, clerk_tablet, other)  # sent again: still one quarantine row
    assert len(quarantined(store, settings, env["submission_id"])) == 1


def test_a_reused_device_seq_is_an_id_conflict(client: TestClient, auth: Logins, store: Store,
                                               clerk_tablet: TestDevice) -> None:
    first = clerk_tablet.envelope(TEST_KIND, {"title": "一"})
    send(client, auth, clerk_tablet, first)
    reused = clerk_tablet.envelope(TEST_KIND, {"title": "二"}, device_seq=first["device_seq"])
    (result,) = send(client, auth, clerk_tablet, reused)
    assert result["status"] == "id_conflict" and result["errors"][0]["field"] == "device_seq"
    assert cases_of(store, reused["submission_id"]) == 0


def _tampered(env: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(env)
    bad["org_path"] = bad["org_path"] + "x"  # signed bytes change, signature no longer matches
    return bad


def _unknown_alg(env: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(env)
    bad["sig"]["alg"] = "SM2"
    return bad


def _payload_changed(env: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(env)
    bad["payload"]["title"] = "被改动"
    return bad


@pytest.mark.parametrize("spoil, field, reason", [
    (_tampered, "sig.value", "bad_signature"),
    (_unknown_alg, "sig.alg", "unknown_alg"),
    (_payload_changed, "payload_sha256", "payload_hash_mismatch"),
], ids=["bad_signature", "unknown_alg", "bad_payload_hash"])
def test_envelopes_that_fail_verification_are_invalid_and_quarantined(
        client: TestClient, auth: Logins, store: Store, settings: Settings, clerk_tablet: TestDevice,
        spoil: Any, field: str, reason: str) -> None:
    env = spoil(clerk_tablet.envelope(TEST_KIND, {"title": "篡改"}))
    (result,) = send(client, auth, clerk_tablet, env)
    assert result["status"] == "invalid" and result["errors"][0]["field"] == field
    (row,) = quarantined(store, settings, env["submission_id"])
    assert row["reason"] == reason and row["device_seq"] is None  # an unverified seq is not trusted
    assert cases_of(store, env["submission_id"]) == 0
    assert count(store, "SELECT COUNT(*) AS n FROM submissions") == 0


def test_signed_envelope_with_a_schema_error_is_invalid_naming_the_field(
        client: TestClient, auth: Logins, store: Store, settings: Settings, clerk_tablet: TestDevice) -> None:
    fields = clerk_tablet.fields(TEST_KIND, {"title": "无表单版本"})
    del fields["form_version"]
    env = sign_envelope(fields, clerk_tablet.key)  # type: ignore[arg-type]
    (result,) = send(client, auth, clerk_tablet, env)
    assert result["status"] == "invalid" and result["errors"][0]["field"] == "form_version"
    (row,) = quarantined(store, settings, env["submission_id"])
    assert row["reason"] == "schema" and row["device_seq"] == env["device_seq"]


def test_unknown_kind_is_invalid(client: TestClient, auth: Logins, store: Store, settings: Settings,
                                 clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope("no_such_kind", {"x": 1})
    (result,) = send(client, auth, clerk_tablet, env)
    assert result["status"] == "invalid" and result["errors"][0]["field"] == "kind"
    assert quarantined(store, settings, env["submission_id"])[0]["reason"] == "unknown_kind"
    assert count(store, "SELECT COUNT(*) AS n FROM submissions") == 0


def test_out_of_scope_org_path_is_forbidden(client: TestClient, auth: Logins, store: Store, settings: Settings) -> None:
    tablet = enrol_device(client, auth, "grid1")
    sibling = store.query("SELECT path FROM org_units WHERE tier = 'grid' AND path != ? LIMIT 1", [tablet.org_path])
    env = tablet.envelope(TEST_KIND, {"title": "别的网格"}, sibling[0]["path"])
    (result,) = send(client, auth, tablet, env)
    assert result["status"] == "forbidden" and result["errors"][0]["field"] == "org_path"
    assert quarantined(store, settings, env["submission_id"])[0]["reason"] == "out_of_scope"


def test_envelope_of_another_user_is_forbidden(client: TestClient, auth: Logins, clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope(TEST_KIND, {"title": "他人"}, user_id=uuid7())
    (result,) = send(client, auth, clerk_tablet, env)
    assert result["status"] == "forbidden" and result["errors"][0]["field"] == "user_id"


def test_revoked_device_envelopes_are_forbidden_and_kept(client: TestClient, auth: Logins, store: Store,
                                                        settings: Settings, clerk_tablet: TestDevice) -> None:
    resp = client.post(f"/sync/v1/devices/{clerk_tablet.device_id}/revoke", headers=auth("admin"),
                       json={"reason": "平板遗失"})
    assert resp.status_code == 200, resp.text
    env = clerk_tablet.envelope(TEST_KIND, {"title": "停用后"})
    (result,) = send(client, auth, clerk_tablet, env)
    assert result["status"] == "forbidden"
    (row,) = quarantined(store, settings, env["submission_id"])
    assert row["reason"] == "revoked_device" and row["body"] == env
    assert cases_of(store, env["submission_id"]) == 0


@pytest.mark.parametrize("misbehave, status", [
    ("write_then_invalid", "invalid"), ("write_then_forbidden", "forbidden"), ("raise", "invalid"),
])
def test_a_refused_item_leaves_only_its_quarantine_row_and_the_batch_goes_on(
        client: TestClient, auth: Logins, store: Store, settings: Settings, clerk_tablet: TestDevice,
        misbehave: str, status: str) -> None:
    before = count(store, "SELECT COUNT(*) AS n FROM audit_log")
    good1 = clerk_tablet.envelope(TEST_KIND, {"title": "前"})
    bad = clerk_tablet.envelope(TEST_KIND, {"title": "坏", "misbehave": misbehave})
    good2 = clerk_tablet.envelope(TEST_KIND, {"title": "后"})
    results = send(client, auth, clerk_tablet, good1, bad, good2)
    assert [r["status"] for r in results] == ["created", status, "created"]
    assert cases_of(store, bad["submission_id"]) == 0  # the handler's case write was rolled back
    assert count(store, "SELECT COUNT(*) AS n FROM case_events WHERE case_id = ?", [bad["submission_id"]]) == 0
    assert count(store, "SELECT COUNT(*) AS n FROM submissions WHERE id = ?", [bad["submission_id"]]) == 0
    assert quarantined(store, settings, bad["submission_id"])[0]["status"] == status
    # two cases (one entry per accepted submission) and one quarantine entry were audited, nothing more
    assert count(store, "SELECT COUNT(*) AS n FROM audit_log") == before + 3


def test_case_event_moves_a_case_and_a_stale_base_version_becomes_a_conflict(
        client: TestClient, auth: Logins, store: Store, clerk_tablet: TestDevice) -> None:
    create = clerk_tablet.envelope(TEST_KIND, {"title": "许可"})
    (made,) = send(client, auth, clerk_tablet, create)
    case_id = made["record"]["case_id"]
    accept = clerk_tablet.envelope("case_event", {"case_id": case_id, "transition": "accept", "base_version": 1})
    (accepted,) = send(client, auth, clerk_tablet, accept)
    assert accepted["status"] == "created" and accepted["record"]["state"] == "accepted"
    event_ids = [r["id"] for r in store.query("SELECT id FROM case_events WHERE case_id = ? ORDER BY seq", [case_id])]
    assert event_ids[-1] == accept["submission_id"]  # the event id is the envelope's submission id
    stale = clerk_tablet.envelope("case_event", {"case_id": case_id, "transition": "reject", "base_version": 1,
                                                 "payload": {"reason": "材料不全"}})
    (result,) = send(client, auth, clerk_tablet, stale)
    assert result["status"] == "stale_version" and result["current_head"] == accept["submission_id"]
    assert result["receipt"] is not None and result["errors"][0]["field"] == "payload.base_version"
    conflict = store.query("SELECT case_id, base_version, current_version FROM case_conflicts WHERE id = ?",
                           [result["conflict_id"]])
    assert conflict == [{"case_id": case_id, "base_version": 1, "current_version": 2}]
    (again,) = send(client, auth, clerk_tablet, stale)  # a replay answers the same, no second conflict
    assert again["status"] == "stale_version" and again["conflict_id"] == result["conflict_id"]
    assert count(store, "SELECT COUNT(*) AS n FROM case_conflicts") == 1


def test_case_event_rule_violations_name_the_field(client: TestClient, auth: Logins, store: Store,
                                                   clerk_tablet: TestDevice) -> None:
    (made,) = send(client, auth, clerk_tablet, clerk_tablet.envelope(TEST_KIND, {"title": "许可"}))
    case_id = made["record"]["case_id"]
    handler = enrol_device(client, auth, "handler")
    wrong_role = handler.envelope("case_event", {"case_id": case_id, "transition": "accept"})
    missing = clerk_tablet.envelope("case_event", {"case_id": case_id, "transition": "reject"})
    nowhere = clerk_tablet.envelope("case_event", {"case_id": uuid7(), "transition": "accept"})
    (r1,) = send(client, auth, handler, wrong_role)
    r2, r3 = send(client, auth, clerk_tablet, missing, nowhere)
    assert r1["status"] == "forbidden"
    assert r2["status"] == "invalid" and r2["errors"][0]["field"] == "payload.payload.reason"
    assert r3["status"] == "invalid" and r3["errors"][0]["field"] == "payload.case_id"
    assert store.query("SELECT state FROM cases WHERE id = ?", [case_id]) == [{"state": "submitted"}]


def test_supersedes_must_name_the_current_head(client: TestClient, auth: Logins, clerk_tablet: TestDevice) -> None:
    v1 = clerk_tablet.envelope(TEST_KIND, {"title": "第一版"})
    send(client, auth, clerk_tablet, v1)
    v2 = clerk_tablet.envelope("case_event", {"case_id": v1["submission_id"], "transition": "accept"},
                               root_id=v1["submission_id"], supersedes=v1["submission_id"])
    (r2,) = send(client, auth, clerk_tablet, v2)
    assert r2["status"] == "created"
    v2b = clerk_tablet.envelope(TEST_KIND, {"title": "基于旧版"}, root_id=v1["submission_id"],
                                supersedes=v1["submission_id"])
    (stale,) = send(client, auth, clerk_tablet, v2b)
    assert stale["status"] == "stale_version" and stale["current_head"] == v2["submission_id"]


def test_batch_over_100_items_or_1_mib_is_413_envelope(client: TestClient, auth: Logins,
                                                       clerk_tablet: TestDevice) -> None:
    envs = [clerk_tablet.envelope(TEST_KIND, {"title": str(i)}) for i in range(101)]
    resp = post_outbox(client, auth("clerk"), clerk_tablet, envs)
    assert resp.status_code == 413 and resp.json()["code"] == "payload_too_large"
    assert resp.json()["errors"][0]["field"] == "envelopes"
    big = clerk_tablet.envelope(TEST_KIND, {"title": "大", "blob": "x" * (1024 * 1024)})
    resp = post_outbox(client, auth("clerk"), clerk_tablet, [big])
    assert resp.status_code == 413 and resp.json()["ok"] is False


def test_a_non_object_item_is_one_invalid_result_not_a_failed_batch(client: TestClient, auth: Logins,
                                                                    clerk_tablet: TestDevice) -> None:
    good = clerk_tablet.envelope(TEST_KIND, {"title": "好"})
    results = send(client, auth, clerk_tablet, "不是信封", good)  # type: ignore[arg-type]
    assert [(r["submission_id"], r["status"]) for r in results] == [("", "invalid"), (good["submission_id"], "created")]
    assert results[0]["errors"][0]["field"] == "envelope"


def test_sync_headers_are_required(client: TestClient, auth: Logins, clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope(TEST_KIND, {"title": "x"})
    resp = client.post("/sync/v1/outbox", json={"envelopes": [env]}, headers=auth("clerk"))
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "x-device-id"
    resp = client.post("/sync/v1/outbox", json={"envelopes": [env]}, headers={**auth("clerk"), "X-Device-Id": "nope"})
    assert resp.status_code == 403 and resp.json()["errors"][0]["field"] == "x-device-id"
    resp = client.post("/sync/v1/outbox", json={"envelopes": []}, headers=clerk_tablet.headers(auth("clerk")))
    assert resp.status_code == 422


def test_device_seq_gap_raises_a_possibly_lost_alert_until_the_item_arrives(
        client: TestClient, auth: Logins, store: Store, clerk_tablet: TestDevice) -> None:
    e1, e2, e3, e4 = (clerk_tablet.envelope(TEST_KIND, {"title": str(i)}) for i in range(4))
    send(client, auth, clerk_tablet, e1, e4)  # 2 and 3 have not arrived
    alerts = client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"][0]["alerts"]
    assert [(a["kind"], a["from_seq"], a["to_seq"]) for a in alerts] == [("seq_gap", 2, 3)]
    assert "可能在设备上丢失" in alerts[0]["message"]
    send(client, auth, clerk_tablet, e3)
    assert len(client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"][0]["alerts"]) == 1
    send(client, auth, clerk_tablet, e2)
    assert client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"][0]["alerts"] == []
    assert store.query("SELECT resolved_at IS NOT NULL AS r FROM sync_alerts") == [{"r": 1}]


def test_a_quarantined_item_still_counts_for_the_gapless_sequence(client: TestClient, auth: Logins,
                                                                  clerk_tablet: TestDevice) -> None:
    e1 = clerk_tablet.envelope("no_such_kind", {})
    e2 = clerk_tablet.envelope(TEST_KIND, {"title": "二"})
    send(client, auth, clerk_tablet, e1, e2)
    assert client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"][0]["alerts"] == []


def test_device_clock_off_by_more_than_five_minutes_is_flagged(client: TestClient, auth: Logins, store: Store,
                                                               clerk_tablet: TestDevice) -> None:
    env = clerk_tablet.envelope(TEST_KIND, {"title": "准"})
    resp = post_outbox(client, auth("clerk"), clerk_tablet, [env], device_time=now_china())
    assert resp.json()["clock"]["suspect"] is False and abs(resp.json()["clock"]["offset_ms"]) < 300_000
    year_ahead = now_china() + timedelta(days=365)
    env = clerk_tablet.envelope(TEST_KIND, {"title": "快一年"}, created_at_device=year_ahead.isoformat())
    resp = post_outbox(client, auth("clerk"), clerk_tablet, [env], device_time=year_ahead)
    body = resp.json()
    assert body["results"][0]["status"] == "created"  # the record is kept; the clock is flagged
    assert body["clock"]["suspect"] is True and body["clock"]["offset_ms"] < -300_000
    (device,) = client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"]
    assert device["clock_suspect"] is True and [a["kind"] for a in device["alerts"]] == ["clock_suspect"]
    assert store.query("SELECT clock_suspect FROM submissions WHERE id = ?", [env["submission_id"]]) == [
        {"clock_suspect": 1}]
    post_outbox(client, auth("clerk"), clerk_tablet, [clerk_tablet.envelope(TEST_KIND, {"title": "未测时钟"})])
    (device,) = client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"]
    assert device["clock_suspect"] is True  # a sync that measured nothing does not clear the flag
    post_outbox(client, auth("clerk"), clerk_tablet, [clerk_tablet.envelope(TEST_KIND, {"title": "校准"})],
                device_time=now_china())
    (device,) = client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"]
    assert device["clock_suspect"] is False and device["alerts"] == []


def test_tablet_signing_with_ecdsa_p256_is_accepted(client: TestClient, auth: Logins) -> None:
    tablet = enrol_device(client, auth, "clerk", key=P256Key())
    (result,) = send(client, auth, tablet, tablet.envelope(TEST_KIND, {"title": "P-256"}))
    assert result["status"] == "created"


def test_an_envelope_signed_by_another_key_for_this_device_is_invalid(client: TestClient, auth: Logins,
                                                                      clerk_tablet: TestDevice) -> None:
    impostor = TestDevice(clerk_tablet.device_id, SigningKey.generate(), "clerk", clerk_tablet.user_id,
                          clerk_tablet.org_path)
    (result,) = send(client, auth, impostor, impostor.envelope(TEST_KIND, {"title": "冒充"}))
    assert result["status"] == "invalid" and result["errors"][0]["field"] == "sig.key_id"


# --- the real server ---------------------------------------------------------------------------------


def _real_device(base: str, username: str) -> tuple[TestDevice, dict[str, str]]:
    def login(name: str) -> dict[str, str]:
        resp = httpx2.post(base + "/api/v1/auth/login", json={"username": name, "password": DEMO_PASSWORD})
        return {"Authorization": f"Bearer {resp.json()['token']}"}

    code = httpx2.post(base + "/sync/v1/devices/enrolments", json={"label": "真机测试"}, headers=login("admin"))
    key = SigningKey.generate()
    reg = httpx2.post(base + "/sync/v1/devices/register", json={
        "code": code.json()["code"], "public_key": b64url_encode(key.public_raw), "alg": key.alg})
    headers = login(username)
    user = httpx2.get(base + "/api/v1/auth/me", headers=headers).json()["user"]
    device = TestDevice(reg.json()["device_id"], key, username, user["id"], user["org_path"],
                        registration=reg.json())
    return device, headers


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_lost_response_then_retry_is_duplicate_with_the_same_receipt_on_a_real_server(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    streetnode("--data-dir", data, "init", "--demo")
    port = free_port()
    proc = start("--data-dir", data, "serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        device, headers = _real_device(base, "clerk")
        headers = device.headers(headers)
        env = device.envelope("service_application", form())
        body = json.dumps({"envelopes": [env]}).encode()
        request = (f"POST /sync/v1/outbox HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nAuthorization: {headers['Authorization']}\r\n"
                   f"X-Device-Id: {device.device_id}\r\nConnection: close\r\n\r\n").encode() + body
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)  # the tablet loses the connection before any answer arrives
        token = httpx2.post(base + "/api/v1/auth/login", json={"username": "admin", "password": DEMO_PASSWORD})
        admin = {"Authorization": f"Bearer {token.json()['token']}"}
        _wait_for(lambda: httpx2.get(base + "/sync/v1/devices", headers=admin).json()["devices"][0]["seq_high"] == 1)

        retries = [httpx2.post(base + "/sync/v1/outbox", json={"envelopes": [env]}, headers=headers).json()
                   for _ in range(2)]
        (first,), (second,) = (r["results"] for r in retries)
        assert first["status"] == second["status"] == "duplicate"
        assert first["receipt"] == second["receipt"] and first["record"] == second["record"]
        verify_receipt(first["receipt"], b64url_decode(device.registration["node_public_key"]),
                       submission_id=env["submission_id"], payload_sha256=env["payload_sha256"])
        cases = httpx2.get(base + "/api/v1/cases", params={"kind": "service_application"}, headers=headers).json()
        assert [c["id"] for c in cases["cases"]] == [first["record"]["case_id"]]  # exactly one record

        # the same batch three times at once (sync.md §4.6 replay): one created, the rest duplicates
        batch = [device.envelope("service_application", form()) for _ in range(3)]
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: httpx2.post(base + "/sync/v1/outbox", json={"envelopes": batch},
                                                          headers=headers, timeout=30).json()["results"], range(3)))
        for i in range(3):
            statuses = sorted(a[i]["status"] for a in answers)
            assert statuses == ["created", "duplicate", "duplicate"]
            assert len({json.dumps(a[i]["receipt"], sort_keys=True) for a in answers}) == 1
        cases = httpx2.get(base + "/api/v1/cases", params={"kind": "service_application"}, headers=headers).json()
        assert len(cases["cases"]) == 4
    finally:
        assert stop(proc) == 0


def test_a_lone_surrogate_in_one_item_refuses_that_item_only(client: TestClient, auth: Logins, store: Store,
                                                             clerk_tablet: TestDevice) -> None:
    """"\\ud800" is valid JSON text but no UTF-8: once it made the whole batch a 500, and the good item beside
    it was never stored, on every retry."""
    good = clerk_tablet.envelope(TEST_KIND, {"title": "占道经营许可"})
    bad = clerk_tablet.envelope(TEST_KIND, {"title": "坏字符"})
    bad["payload"]["title"] = "坏\ud800字符"
    body = json.dumps({"envelopes": [good, bad]})  # ASCII JSON with a \\ud800 escape, as a buggy client sends it
    resp = client.post("/sync/v1/outbox", content=body, headers={
        **clerk_tablet.headers(auth("clerk")), "content-type": "application/json"})
    assert resp.status_code == 200, resp.text
    first, second = resp.json()["results"]
    assert first["status"] == "created" and cases_of(store, good["submission_id"]) == 1
    assert second["status"] == "invalid" and second["errors"][0]["field"] == "envelope"
    assert store.query("SELECT reason FROM quarantine WHERE submission_id = ?", [bad["submission_id"]]) == \
        [{"reason": "encoding"}]
