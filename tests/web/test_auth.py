"""Sign-in, tokens, lockout and bad input on the real app (in-process)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.testclient import TestClient

from server.config import Settings
from server.store.db import Store
from server.store.seed import DEMO_PASSWORD
from server.web.app import create_app
from tests.conftest import Logins


def audit_count(store: Store) -> int:
    return int(store.query("SELECT COUNT(*) AS n FROM audit_log")[0]["n"])


def assert_envelope(resp, status: int, code: str, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["ok"] is False and body["status"] == status and body["code"] == code and body["error"]
    if field is not None:
        assert any(e["field"] == field for e in body["errors"]), body
    return body  # type: ignore[no-any-return]


def test_login_returns_opaque_token_and_user(client: TestClient, store: Store) -> None:
    resp = client.post("/api/v1/auth/login", json={"username": "clerk", "password": DEMO_PASSWORD})
    assert resp.status_code == 200
    body = resp.json()
    assert body["user"]["role"] == "window_clerk" and body["user"]["role_label"] == "窗口受理员"
    token = body["token"]
    stored = store.query("SELECT token_hash FROM tokens")
    assert stored and all(token not in r["token_hash"] for r in stored), "only a hash of the token is stored"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["user"]["username"] == "clerk"


def test_wrong_password_is_401_and_lockout_after_repeated_failures(client: TestClient) -> None:
    for _ in range(4):
        r = client.post("/api/v1/auth/login", json={"username": "clerk", "password": "nope"})
        assert_envelope(r, 401, "unauthorized", "password")
    r = client.post("/api/v1/auth/login", json={"username": "clerk", "password": "nope"})
    assert_envelope(r, 423, "account_locked", "username")
    r = client.post("/api/v1/auth/login", json={"username": "clerk", "password": DEMO_PASSWORD})
    assert_envelope(r, 423, "account_locked")


def test_unknown_user_looks_like_a_wrong_password(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    assert_envelope(r, 401, "unauthorized", "password")


def test_logout_revokes_the_token(client: TestClient, auth: Logins) -> None:
    headers = auth("clerk")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 200
    body = assert_envelope(client.get("/api/v1/auth/me", headers=headers), 401, "unauthorized", "authorization")
    assert "注销" in body["error"]


def test_expired_token_is_refused(client: TestClient, auth: Logins, store: Store) -> None:
    headers = auth("clerk")
    store.write(lambda db: db.execute("UPDATE tokens SET expires_at = '2000-01-01T00:00:00+08:00'"))
    body = assert_envelope(client.get("/api/v1/auth/me", headers=headers), 401, "unauthorized")
    assert "过期" in body["error"]


def test_missing_and_malformed_tokens_are_refused(client: TestClient) -> None:
    assert_envelope(client.get("/api/v1/auth/me"), 401, "unauthorized", "authorization")
    assert_envelope(client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    assert_envelope(client.get("/api/v1/auth/me", headers={"Authorization": "Bearer forged"}), 401, "unauthorized")


def test_bad_bodies_get_envelopes_and_write_nothing(client: TestClient, store: Store) -> None:
    before = audit_count(store)
    url = "/api/v1/auth/login"
    headers = {"Content-Type": "application/json"}
    assert_envelope(client.post(url, content=b"{not json", headers=headers), 400, "malformed_json", "body")
    assert_envelope(client.post(url, content=b"", headers=headers), 400, "malformed_json", "body")
    assert_envelope(client.post(url, json={"username": "clerk", "password": "x", "extra": 1}), 422,
                    "validation_error", "extra")
    assert_envelope(client.post(url, json={"username": 5, "password": "x"}), 422, "validation_error", "username")
    assert_envelope(client.post(url, json={"username": "clerk"}), 422, "validation_error", "password")
    assert_envelope(client.post(url, json=["clerk"]), 422, "validation_error")
    big = b'{"username": "' + b"a" * (1024 * 1024 + 10) + b'", "password": "x"}'
    assert_envelope(client.post(url, content=big, headers=headers), 413, "payload_too_large", "body")
    assert_envelope(client.post(url, content=b"username=clerk", headers={"Content-Type": "text/plain"}), 415,
                    "unsupported_media_type")
    assert audit_count(store) == before
    assert store.query("SELECT COUNT(*) AS n FROM tokens")[0]["n"] == 0


def test_kek_is_per_user_stable_and_needs_a_session(client: TestClient, auth: Logins) -> None:
    first = client.get("/api/v1/auth/kek", headers=auth("grid1")).json()
    again = client.get("/api/v1/auth/kek", headers=auth("grid1")).json()
    other = client.get("/api/v1/auth/kek", headers=auth("grid2")).json()
    assert first["kek"] == again["kek"] != other["kek"] and len(first["kek"]) == 43  # 32 bytes, base64url
    assert_envelope(client.get("/api/v1/auth/kek"), 401, "unauthorized")


def test_field_errors_speak_chinese(client: TestClient) -> None:
    body = client.post("/api/v1/auth/login", json={"username": "clerk", "extra": 1}).json()
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert messages == {"password": "缺少必填项", "extra": "不允许的字段"}


def _login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_a_lock_holds_one_client_only_so_nobody_can_lock_a_colleague_out(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app, client=("192.0.2.66", 40000)) as attacker:
        for _ in range(5):
            _login(attacker, "clerk", "guess")
        assert_envelope(_login(attacker, "clerk", DEMO_PASSWORD), 423, "account_locked", "username")
    with TestClient(app, client=("192.0.2.10", 40000)) as own_tablet:
        assert _login(own_tablet, "clerk", DEMO_PASSWORD).status_code == 200


def test_unknown_names_lock_exactly_like_real_ones(client: TestClient) -> None:
    """No user discovery: 423 appears for a name that does not exist as for one that does."""
    answers = {}
    for name in ("clerk", "nobody-here"):
        seen = [_login(client, name, "guess").status_code for _ in range(6)]
        answers[name] = seen
    assert answers["clerk"] == answers["nobody-here"] == [401, 401, 401, 401, 423, 423]


def test_each_further_lock_lasts_twice_as_long_and_an_admin_lifts_them(client: TestClient, store: Store,
                                                                       settings: Settings) -> None:
    from click.testing import CliRunner

    from server.cli import main

    for _ in range(5):
        _login(client, "clerk", "guess")
    first = store.query("SELECT locked_until, last_at FROM login_failures WHERE username = 'clerk'")[0]
    store.write(lambda db: db.execute("UPDATE login_failures SET locked_until = '2000-01-01' WHERE username = 'clerk'"))
    for _ in range(5):
        _login(client, "clerk", "guess")
    second = store.query("SELECT locked_until, last_at, locks FROM login_failures WHERE username = 'clerk'")[0]

    def minutes(row: dict[str, Any]) -> float:
        return (datetime.fromisoformat(row["locked_until"]) - datetime.fromisoformat(row["last_at"])).total_seconds() / 60

    assert minutes(first) == settings.lockout_minutes and minutes(second) == 2 * settings.lockout_minutes
    assert second["locks"] == 2
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "user", "unlock", "clerk"])
    assert result.exit_code == 0 and "已解除" in result.output, result.output
    assert _login(client, "clerk", DEMO_PASSWORD).status_code == 200
    assert store.query("SELECT 1 FROM audit_log WHERE action = 'user.unlock'")
