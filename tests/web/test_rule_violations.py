"""A domain refusal (``RuleViolation``) reaches the client as the 4xx error envelope on every route.

The app registers one handler for it (server/web/rules.py); the routes below call the engine with no
wrapper of their own, so these tests fail with a 500 if the handler is ever dropped.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server.config import Settings
from server.domain.engine import RuleViolation
from server.store.db import Store
from server.web.rules import to_http
from tests.conftest import Logins
from tests.hall.helpers import submitted
from tests.web.test_cases_api import create


def _envelope(resp: Any, status: int, code: str, field: str, rule: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["ok"] is False and body["status"] == status and body["code"] == code and body["error"]
    assert body["errors"][0]["field"] == field and body["errors"][0]["rule"] == rule
    assert body["errors"][0]["message"] == body["error"]


def test_engine_refusals_on_the_events_route_are_403_422_409_envelopes(client: TestClient, auth: Logins,
                                                                        store: Store) -> None:
    case_id = create(store, "clerk")
    url = f"/api/v1/cases/{case_id}/events"
    _envelope(client.post(url, json={"transition": "accept"}, headers=auth("handler")),
              403, "forbidden", "transition", "role_not_allowed")
    resp = client.post(url, json={"transition": "reject"}, headers=auth("clerk"))
    assert resp.status_code == 422 and resp.json()["code"] == "validation_error"
    assert resp.json()["errors"][0]["field"] == "payload.reason"
    assert client.post(url, json={"transition": "accept"}, headers=auth("clerk")).status_code == 200
    again = client.post(url, json={"transition": "accept"}, headers=auth("clerk"))
    assert again.status_code == 409 and again.json()["code"] == "conflict" and again.json()["errors"][0]["rule"]


def test_a_resident_route_maps_store_refusals_without_a_wrapper(client: TestClient, store: Store,
                                                                 settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    url = f"/api/v1/track/{rec['query_code']}/rating"
    body = {"token": "not-the-receipt-token", "stage": "receipt", "level": 5}
    _envelope(client.post(url, json=body), 403, "forbidden", "token", "bad_rating_token")
    good = {"token": rec["receipt_token"], "stage": "receipt", "level": 5}
    assert client.post(url, json=good).status_code == 200
    _envelope(client.post(url, json=good), 409, "conflict", "stage", "already_rated")


@pytest.mark.parametrize("kind, status", [
    ("forbidden", 403), ("conflict", 409), ("invalid", 422), ("not_found", 404), ("something_new", 422),
])
def test_each_violation_kind_has_one_status(kind: str, status: int) -> None:
    err = to_http(RuleViolation(kind, "some_rule", "说明", field=None))
    assert err.status == status
    assert err.envelope()["errors"] == [{"field": "transition", "message": "说明", "rule": "some_rule"}]
