"""Bad input names the problem and writes nothing: no photo, outside the grid, unknown category,
wrong role, out of order, a closure by the handler, forged server-only payload keys."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server.store.db import Store
from server.store.grid_patrols import handle_patrol_log
from tests.conftest import Logins
from tests.grid.helpers import (
    CHECK,
    ENFORCEMENT_TEAM,
    INSIDE,
    OUTSIDE,
    counts,
    envelope,
    intake,
    photo,
    send_report,
    step,
    walk_to_handled,
)

GOOD = {"category_code": "SJ0102", "location": INSIDE, "description": "垃圾堆放"}


@pytest.mark.parametrize(
    ("payload", "attachments", "field", "words"),
    [
        (GOOD, [], "attachments", "照片"),
        (GOOD, [{**photo("doc"), "mime": "application/pdf", "name": "a.pdf"}], "attachments", "照片"),
        ({**GOOD, "location": OUTSIDE}, [photo()], "payload.location", "不在您负责的网格"),
        ({**GOOD, "category_code": "XX9999"}, [photo()], "payload.category_code", "未知的事件类别"),
        ({**GOOD, "description": ""}, [photo()], "payload.description", ""),
        ({**GOOD, "location": {"lng": 23.13, "lat": 113.34}}, [photo()], "payload.location.lng", ""),
        ({**GOOD, "colour": "red"}, [photo()], "payload.colour", ""),
        ({k: v for k, v in GOOD.items() if k != "location"}, [photo()], "payload.location", ""),
    ],
    ids=["no-photo", "pdf-only", "outside-grid", "unknown-category", "empty-description", "swapped-lnglat",
         "unknown-field", "no-location"],
)
def test_bad_report_is_refused_naming_the_field_and_nothing_is_written(
        store: Store, payload: dict[str, Any], attachments: list[dict[str, Any]], field: str, words: str) -> None:
    before = counts(store)
    result = intake(store, "grid1", envelope(payload, attachments))
    assert result.status == "invalid"
    assert result.errors[0]["field"] == field and words in result.errors[0]["message"]
    assert counts(store) == before


def test_outside_grid_message_says_how_far(store: Store) -> None:
    result = intake(store, "grid1", envelope({**GOOD, "location": OUTSIDE}, [photo()]))
    assert "米" in result.errors[0]["message"]


@pytest.mark.parametrize("username", ["clerk", "handler", "leader", "dispatcher", "community1", "admin"])
def test_only_grid_members_report_incidents(store: Store, username: str) -> None:
    before = counts(store)
    result = intake(store, username, envelope(GOOD, [photo()]))
    assert result.status == "forbidden" and result.errors
    assert counts(store) == before


def test_unknown_form_version_is_refused(store: Store) -> None:
    env = envelope(GOOD, [photo()])
    env["form_version"] = "99"
    result = intake(store, "grid1", env)
    assert result.status == "invalid" and result.errors[0]["field"] == "form_version"


def test_photos_listed_in_the_payload_count_too(store: Store) -> None:
    result = intake(store, "grid1", envelope({**GOOD, "photos": [photo("listed")]}, []))
    assert result.status == "created"


def test_same_report_twice_is_one_case(store: Store) -> None:
    env = envelope(GOOD, [photo()])
    first, second = intake(store, "grid1", env), intake(store, "grid1", env)
    assert first.record["case_id"] == second.record["case_id"]
    assert store.query("SELECT COUNT(*) AS n FROM cases")[0]["n"] == 1


def test_wrong_role_and_wrong_order_are_4xx_and_write_nothing(client: TestClient, auth: Logins,
                                                               store: Store) -> None:
    cid = send_report(client, auth)
    for name in ("grid1", "dispatcher", "leader"):
        auth(name)  # sign-ins are audited: sign in before counting
    before = counts(store)
    wrong_role = step(client, auth, "grid1", cid, "file", expect=403)
    assert wrong_role["errors"][0]["rule"] == "role_not_allowed"
    out_of_order = step(client, auth, "dispatcher", cid, "dispatch", expect=409, unit_code=ENFORCEMENT_TEAM)
    assert out_of_order["errors"][0]["rule"] == "wrong_state"
    unknown = step(client, auth, "leader", cid, "approve", expect=422)
    assert unknown["errors"][0]["field"] == "transition"
    assert counts(store) == before


def test_closure_by_the_handler_is_refused(client: TestClient, auth: Logins, store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_handled(client, auth, cid)
    step(client, auth, "clerk", cid, "request_check")
    step(client, auth, "grid1", cid, "check_pass", **CHECK)
    auth("handler")
    before = counts(store)
    refused = step(client, auth, "handler", cid, "close", expect=403)
    assert "结案" in refused["error"]
    assert counts(store) == before


def test_feedback_without_an_after_photo_is_refused(client: TestClient, auth: Logins, store: Store) -> None:
    cid = send_report(client, auth)
    walk_to_handled(client, auth, cid)  # with a photo
    cid2 = send_report(client, auth, description="另一处垃圾")
    from tests.grid.helpers import walk_to_filed

    walk_to_filed(client, auth, cid2)
    step(client, auth, "dispatcher", cid2, "dispatch", unit_code=ENFORCEMENT_TEAM)
    step(client, auth, "handler", cid2, "accept_task")
    none = step(client, auth, "handler", cid2, "feedback", expect=422, result="已处理")
    assert none["errors"][0]["field"] == "payload.after_photos"
    empty = step(client, auth, "handler", cid2, "feedback", expect=422, result="已处理", after_photos=[])
    assert empty["errors"][0]["field"] == "payload.after_photos"
    pdf = step(client, auth, "handler", cid2, "feedback", expect=422, result="已处理",
               after_photos=[{**photo("x"), "mime": "application/pdf"}])
    assert pdf["errors"][0]["field"].startswith("payload.after_photos")


@pytest.mark.parametrize("forged", [{"_org_path": "440106"}, {"_clocks": {"handle": {"duration": 999}}},
                                    {"emergency": True}, {"category_code": "SJ0403"}])
def test_server_only_and_foreign_payload_keys_are_refused(client: TestClient, auth: Logins, store: Store,
                                                          forged: dict[str, Any]) -> None:
    cid = send_report(client, auth)
    auth("clerk")
    before = counts(store)
    resp = step(client, auth, "clerk", cid, "accept", expect=422, **forged)
    assert resp["errors"][0]["field"].startswith("payload.")
    assert counts(store) == before


def test_bad_patrol_log_is_refused(store: Store) -> None:
    bad = {"started_at": "2026-05-01T10:00:00+08:00", "ended_at": "2026-05-01T09:00:00+08:00"}
    result = intake(store, "grid1", envelope(bad, [], kind="patrol_log"), handler=handle_patrol_log)
    assert result.status == "invalid" and "结束时间" in result.errors[0]["message"]
    by_clerk = intake(store, "clerk", envelope({**bad, "ended_at": "2026-05-01T11:00:00+08:00"}, [],
                                               kind="patrol_log"), handler=handle_patrol_log)
    assert by_clerk.status == "forbidden"
    assert store.query("SELECT COUNT(*) AS n FROM grid_patrols")[0]["n"] == 0
