"""Hostile input from the street LAN gets a 4xx envelope, never a 500 or a hang (hardening issue, items 3, 6,
7, 10): deeply nested JSON, huge integers, foreign letters in an enrolment code, a zstd frame that lies about
its size, a query code with a trailing newline."""

from __future__ import annotations

import json
from typing import Any

import pytest
import zstandard
from starlette.testclient import TestClient

from server.config import Settings
from server.store.db import Store
from server.web.app import create_app
from sync import wire
from tests.conftest import Logins
from tests.hall.helpers import PHONE, submitted


@pytest.mark.parametrize("body", [
    "[" * 3000 + "]" * 3000,
    '{"username": "clerk", "password": ' + "9" * 5000 + "}",
    '{"a":' * 3000 + "1" + "}" * 3000,
])
def test_hostile_json_is_a_400_envelope_even_without_a_token(client: TestClient, body: str) -> None:
    resp = client.post("/api/v1/auth/login", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "malformed_json" and resp.json()["errors"][0]["field"] == "body"


def test_foreign_letters_in_an_enrolment_code_do_not_match_and_do_not_crash(client: TestClient) -> None:
    for code in ("ＡＢＣＤＥ-ＦＧＨＪＫ", "登记码一二三四五六", "ABCDE-FGHJK"):
        resp = client.post("/sync/v1/devices/register", json={"code": code, "public_key": "A" * 43, "alg": "Ed25519"})
        assert 400 <= resp.status_code < 500, resp.text
        assert resp.json()["ok"] is False


def test_a_zstd_frame_declaring_a_huge_size_is_refused_before_expanding() -> None:
    big = json.dumps("a" * 1_000_000).encode()
    frame = zstandard.ZstdCompressor(level=1).compress(big)  # the frame header declares 1 MB
    assert len(frame) < 1000
    with pytest.raises(wire.BadBody) as refused:
        wire.decode_body(frame, "zstd", limit=64 * 1024)
    assert refused.value.field == "body"
    assert wire.decode_body(frame, "zstd", limit=2_000_000) == "a" * 1_000_000  # within the cap it reads


def test_a_signed_body_nested_thousands_deep_is_a_bad_body_not_a_crash() -> None:
    with pytest.raises(wire.BadBody):
        wire.decode_body(b"[" * 100_000 + b"]" * 100_000, "identity")


def test_a_query_code_with_a_newline_shares_the_codes_rate_limit(settings: Settings) -> None:
    """"CODE\\n" once had a counter of its own and answered 200 after the real code was already limited."""
    app = create_app(settings)  # one node: its rate-limit counters live as long as the app
    with TestClient(app) as first:
        store: Store = first.app.state.services.store  # type: ignore[attr-defined]
        rec = submitted(store, settings, "clerk")
        code = rec["query_code"]
        for _ in range(settings.track_rate_per_minute):
            assert first.get(f"/api/v1/track/{code}", params={"phone4": "0000"}).status_code == 404
    # another client address, so only the code's own counter can refuse it
    with TestClient(app, client=("192.0.2.7", 50000)) as other:
        for variant in (code + "%0A", code.lower(), "%20" + code):
            resp = other.get(f"/api/v1/track/{variant}", params={"phone4": PHONE[-4:]})
            assert resp.status_code == 429, (variant, resp.text)
        assert other.get("/api/v1/track/AB%0ACDEFG", params={"phone4": "1234"}).status_code == 422
        arabic = other.get("/api/v1/track/ZZZZZZZZ", params={"phone4": "١٢٣٤"})  # Arabic-Indic digits
        assert arabic.status_code == 422 and arabic.json()["errors"][0]["field"] == "phone4"


@pytest.mark.parametrize("path", [
    "/api/v1/catalogue/items?limit=²", "/api/v1/hall/queue?limit=²", "/api/v1/grid/patrols?limit=²",
    "/api/v1/worklist?limit=²", "/sync/v1/changes?limit=²",
])
def test_a_digit_int_refuses_is_never_a_500(client: TestClient, auth: Logins, path: str) -> None:
    """"²" passes str.isdigit() and makes int() raise: every numeric parameter takes ASCII digits only."""
    resp = client.get(path, headers=auth("admin"))
    assert resp.status_code < 500, resp.text


def test_a_client_that_leaves_mid_body_is_not_a_server_error(settings: Settings) -> None:
    """An ASGI receive that says the client disconnected is a 400 client_disconnected, logged without a
    traceback: the real app, driven at the ASGI level as uvicorn drives it."""
    import asyncio
    import logging

    app = create_app(settings)
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": b'{"username": "cl', "more_body": True},
                     {"type": "http.disconnect"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/auth/login", "raw_path": b"/api/v1/auth/login", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json")], "client": ("192.0.2.9", 1), "server": ("t", 80)}
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("streetnode").addHandler(handler)
    try:
        with TestClient(app):  # the lifespan opens the store
            asyncio.run(app(scope, receive, send))
    finally:
        logging.getLogger("streetnode").removeHandler(handler)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    assert b"client_disconnected" in b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert not [r for r in records if r.exc_info]  # no traceback logged
