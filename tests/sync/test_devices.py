"""Device enrolment: one-time codes with a QR payload, key registration, listing, revocation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.domain.crypto import SigningKey, b64url_encode
from server.store.db import Store
from tests.conftest import Logins
from tests.sync.helpers import P256Key, enrol_device


def enrolment(client: TestClient, auth: Logins, **body: Any) -> dict[str, Any]:
    resp = client.post("/sync/v1/devices/enrolments", json=body, headers=auth("admin"))
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def register(client: TestClient, code: str, key: Any = None, **extra: Any) -> Any:
    key = key or SigningKey.generate()
    return client.post("/sync/v1/devices/register", json={
        "code": code, "public_key": b64url_encode(key.public_raw), "alg": key.alg, "label": "一号平板", **extra})


def test_enrolment_gives_a_one_time_code_and_a_qr_payload(client: TestClient, auth: Logins) -> None:
    made = enrolment(client, auth, label="网格一号平板")
    qr = json.loads(made["qr_payload"])
    assert qr["type"] == "streetnode.enrolment" and qr["code"] == made["code"]
    assert qr["node_url"] == "http://testserver" and qr["node_id"] == "test-street"
    assert qr["node_public_key"] and len(qr["node_key_id"]) == 16 and qr["expires_at"] == made["expires_at"]
    assert made["qr_svg"].startswith("<svg") and len(made["code"]) == 11  # ABCDE-FGHJK


def test_register_with_the_code_returns_a_device_id_and_the_node_key(client: TestClient, auth: Logins,
                                                                     store: Store) -> None:
    made = enrolment(client, auth, label="网格一号平板")
    resp = register(client, made["code"].lower().replace("-", " "))  # typed by hand
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["device_id"] and body["node_public_key"] == json.loads(made["qr_payload"])["node_public_key"]
    assert body["org_path"] == made["org_path"]
    actions = [r["action"] for r in store.query("SELECT action FROM audit_log WHERE action LIKE 'device.%'")]
    assert actions == ["device.enrolment_created", "device.registered"]


def test_a_code_works_once(client: TestClient, auth: Logins) -> None:
    made = enrolment(client, auth)
    assert register(client, made["code"]).status_code == 200
    resp = register(client, made["code"])
    assert resp.status_code == 403 and resp.json()["code"] == "enrolment_code_invalid"
    assert resp.json()["errors"][0]["field"] == "code"


def test_an_expired_or_unknown_code_is_refused(client: TestClient, auth: Logins, store: Store) -> None:
    made = enrolment(client, auth, ttl_minutes=5)
    store.write(lambda db: db.execute("UPDATE device_enrolments SET expires_at = '2000-01-01T00:00:00+08:00'"))
    assert register(client, made["code"]).status_code == 403
    assert register(client, "AAAAA-BBBBB").status_code == 403


@pytest.mark.parametrize("public_key, alg", [("A" * 42, "Ed25519"), ("not!base64", "Ed25519"),
                                             (b64url_encode(b"\x04" + b"\x01" * 64), "ECDSA-P256-SHA256")])
def test_a_malformed_public_key_is_422_naming_the_field(client: TestClient, auth: Logins, public_key: str,
                                                        alg: str) -> None:
    made = enrolment(client, auth)
    resp = client.post("/sync/v1/devices/register", json={"code": made["code"], "public_key": public_key,
                                                           "alg": alg})
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "public_key"
    assert register(client, made["code"]).status_code == 200  # the code was not spent by the bad attempt


def test_unknown_algorithm_is_refused(client: TestClient, auth: Logins) -> None:
    made = enrolment(client, auth)
    resp = register(client, made["code"], alg="SM2")
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "alg"


def test_the_same_key_cannot_be_two_devices(client: TestClient, auth: Logins) -> None:
    key = SigningKey.generate()
    assert register(client, enrolment(client, auth)["code"], key).status_code == 200
    resp = register(client, enrolment(client, auth)["code"], key)
    assert resp.status_code == 409 and resp.json()["errors"][0]["field"] == "public_key"


def test_a_browser_p256_key_registers(client: TestClient, auth: Logins) -> None:
    resp = register(client, enrolment(client, auth)["code"], P256Key())
    assert resp.status_code == 200 and len(resp.json()["key_id"]) == 16


def test_enrolment_for_a_unit_outside_the_admins_scope_is_refused(client: TestClient, auth: Logins) -> None:
    district_bureau = "440106-MZJ"  # 区民政局: not under the street admin's street
    resp = client.post("/sync/v1/devices/enrolments", json={"org_unit": district_bureau}, headers=auth("admin"))
    assert resp.status_code == 403 and resp.json()["errors"][0]["field"] == "org_unit"
    resp = client.post("/sync/v1/devices/enrolments", json={"org_unit": "nope"}, headers=auth("admin"))
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "org_unit"


def test_only_admins_enrol_and_revoke(client: TestClient, auth: Logins) -> None:
    resp = client.post("/sync/v1/devices/enrolments", json={}, headers=auth("grid1"))
    assert resp.status_code == 403 and resp.json()["errors"][0]["field"] == "role"


def test_revoked_device_is_listed_inactive_and_its_bound_tokens_end(client: TestClient, auth: Logins,
                                                                    store: Store) -> None:
    tablet = enrol_device(client, auth, "grid1")
    login = client.post("/api/v1/auth/login", json={"username": "grid1", "password": "demo1234",
                                                    "device_id": tablet.device_id})
    bound = {"Authorization": f"Bearer {login.json()['token']}"}
    assert client.get("/api/v1/auth/me", headers=bound).status_code == 200
    resp = client.post(f"/sync/v1/devices/{tablet.device_id}/revoke", json={"reason": "平板遗失"},
                       headers=auth("admin"))
    assert resp.status_code == 200 and resp.json()["device"]["active"] is False
    assert client.get("/api/v1/auth/me", headers=bound).status_code == 401
    listed = {d["device_id"]: d for d in client.get("/sync/v1/devices", headers=auth("admin")).json()["devices"]}
    assert listed[tablet.device_id]["revoked_at"] == resp.json()["device"]["revoked_at"]
    again = client.post(f"/sync/v1/devices/{tablet.device_id}/revoke", json={"reason": "再次"},
                        headers=auth("admin"))
    assert again.json()["device"]["revoked_at"] == resp.json()["device"]["revoked_at"]
    changes = client.get("/sync/v1/changes", headers=tablet.headers(auth("grid1")))
    assert changes.status_code == 403 and changes.json()["code"] == "device_revoked"


def test_revoking_an_unknown_device_is_404(client: TestClient, auth: Logins) -> None:
    resp = client.post("/sync/v1/devices/nope/revoke", json={"reason": "x"}, headers=auth("admin"))
    assert resp.status_code == 404 and resp.json()["errors"][0]["field"] == "device_id"
