"""Every route: the error envelope on every error path, the role matrix, OpenAPI, the PWA mount."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.domain.roles import STAFF_ROLES, Role
from server.web.app import create_app
from server.web.endpoint import Endpoint
from server.web.routes import all_endpoints
from tests.conftest import Logins, init_demo, make_settings

ENDPOINTS = all_endpoints()
PROTECTED = [ep for ep in ENDPOINTS if ep.roles is not None]
USER_OF_ROLE = {
    Role.STREET_ADMIN: "admin", Role.WINDOW_CLERK: "clerk", Role.STREET_HANDLER: "handler",
    Role.CONFIDENTIALITY_REVIEWER: "reviewer", Role.SUPERVISOR: "supervisor", Role.SHIFT_LEADER: "leader",
    Role.DISPATCHER: "dispatcher", Role.GRID_MEMBER: "grid1", Role.COMMUNITY_WORKER: "community1",
}
DISTRICT_USER_OF_ROLE = {Role.DISTRICT_ADMIN: "district_admin", Role.DISTRICT_APPROVER: "approver"}
ZERO_UUID = "00000000-0000-7000-8000-000000000000"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[TestClient, Logins]]:
    """The same code in its district role, with the district's demo accounts."""
    settings = make_settings(tmp_path, "district")
    init_demo(settings)
    with TestClient(create_app(settings)) as c:
        yield c, Logins(c)


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", ZERO_UUID, path)


def call(client: TestClient, ep: Endpoint, headers: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    return client.request(ep.method, concrete(ep.path), headers=headers or {}, **kw)


def is_envelope(body: Any, status: int) -> bool:
    return (
        isinstance(body, dict) and body.get("ok") is False and body.get("status") == status
        and isinstance(body.get("code"), str) and isinstance(body.get("error"), str)
        and isinstance(body.get("errors"), list)
    )


@pytest.mark.parametrize("ep", PROTECTED, ids=lambda e: e.name)
def test_protected_route_without_token_is_401_envelope(client: TestClient, ep: Endpoint) -> None:
    resp = call(client, ep)
    assert resp.status_code == 401 and is_envelope(resp.json(), 401)


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if e.body is not None and not e.raw_body],
                         ids=lambda e: e.name)
def test_route_with_body_answers_malformed_json_with_envelope(client: TestClient, auth: Logins, tmp_path: Path,
                                                              ep: Endpoint) -> None:
    role = next(iter(sorted(ep.roles))) if ep.roles else None
    if role in DISTRICT_USER_OF_ROLE:  # a district-only route: ask the hub
        settings = make_settings(tmp_path, "district")
        init_demo(settings)
        with TestClient(create_app(settings)) as hub_client:
            headers = Logins(hub_client)(DISTRICT_USER_OF_ROLE[role])
            resp = call(hub_client, ep, {**headers, "Content-Type": "application/json"}, content=b"{oops")
    else:
        headers = auth(USER_OF_ROLE[role]) if role is not None else {}
        resp = call(client, ep, {**headers, "Content-Type": "application/json"}, content=b"{oops")
    assert resp.status_code == 400 and is_envelope(resp.json(), 400)
    assert resp.json()["code"] == "malformed_json"


def test_unknown_api_path_and_wrong_method_are_envelopes(client: TestClient) -> None:
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404 and is_envelope(resp.json(), 404)
    resp = client.delete("/api/v1/health")
    assert resp.status_code == 405 and is_envelope(resp.json(), 405)


@pytest.mark.parametrize("role", sorted(USER_OF_ROLE), ids=str)
def test_role_matrix_each_role_reaches_exactly_its_endpoints(client: TestClient, auth: Logins, role: Role) -> None:
    """For every protected endpoint: a role outside its set gets 403 role; a role inside never does."""
    headers = auth(USER_OF_ROLE[role])
    for ep in PROTECTED:
        if ep.path.endswith("/auth/logout"):
            continue  # would revoke the token used for the rest of the matrix
        body: dict[str, Any] = {"json": {}} if ep.body is not None and not ep.raw_body else {}
        resp = call(client, ep, headers, **body)
        denied = resp.status_code == 403 and resp.json().get("errors", [{}])[0].get("field") == "role"
        assert denied == (role not in ep.roles), f"{role} on {ep.name}: {resp.status_code} {resp.text[:200]}"  # type: ignore[operator]


@pytest.mark.parametrize("role", sorted(DISTRICT_USER_OF_ROLE), ids=str)
def test_role_matrix_on_the_district_hub(hub: tuple[TestClient, Logins], role: Role) -> None:
    client, auth = hub
    headers = auth(DISTRICT_USER_OF_ROLE[role])
    for ep in PROTECTED:
        if ep.path.endswith("/auth/logout"):
            continue
        body: dict[str, Any] = {"json": {}} if ep.body is not None and not ep.raw_body else {}
        resp = call(client, ep, headers, **body)
        denied = resp.status_code == 403 and resp.json().get("errors", [{}])[0].get("field") == "role"
        assert denied == (role not in ep.roles), f"{role} on {ep.name}: {resp.status_code} {resp.text[:200]}"  # type: ignore[operator]


def test_role_matrix_covers_every_staff_role() -> None:
    assert set(USER_OF_ROLE) | set(DISTRICT_USER_OF_ROLE) == STAFF_ROLES


def test_sensitive_core_endpoints_have_the_expected_roles() -> None:
    by_name = {ep.name: ep for ep in ENDPOINTS}
    assert by_name["GET /api/v1/audit/head"].roles == {Role.DISTRICT_ADMIN, Role.STREET_ADMIN, Role.SUPERVISOR}
    assert by_name["GET /api/v1/health"].roles is None
    assert by_name["POST /api/v1/auth/login"].roles is None


def test_openapi_matches_the_route_table(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(ep.method, ep.path) for ep in ENDPOINTS}
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("LoginRequest")


def test_health_reports_role_node_and_database(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["ok"] is True and body["role"] == "street" and body["node_id"] == "test-street"
    assert body["database"]["journal_mode"] == "wal" and body["epoch"]


def test_pwa_mount_serves_worker_uncached_and_manifest_typed(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from server.web.static import pwa_app

    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>", encoding="utf-8")
    (tmp_path / "sw.js").write_text("self.addEventListener('fetch', () => {});", encoding="utf-8")
    (tmp_path / "manifest.webmanifest").write_text("{}", encoding="utf-8")
    app = Starlette(routes=[Mount("/", app=pwa_app(tmp_path))])
    with TestClient(app) as c:
        sw = c.get("/sw.js")
        assert sw.status_code == 200 and sw.headers["cache-control"] == "no-cache"
        man = c.get("/manifest.webmanifest")
        assert man.headers["content-type"].startswith("application/manifest+json")
        assert c.get("/").status_code == 200


def test_generic_case_endpoints_are_in_the_matrix_for_every_staff_role() -> None:
    by_name = {ep.name: ep for ep in PROTECTED}
    for name in ("GET /api/v1/kinds", "GET /api/v1/kinds/{kind}", "GET /api/v1/worklist",
                 "GET /api/v1/cases/{case_id}", "POST /api/v1/cases/{case_id}/events"):
        assert by_name[name].roles == STAFF_ROLES, name
