"""Helpers for grid tests: reports through the intake handler, steps through the case API."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from starlette.testclient import TestClient

from server.domain.ids import now_china, uuid7
from server.domain.roles import Principal
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.grid import handle_incident_report
from server.store.intake import IntakeContext, IntakeResult
from server.store.users import get_user_by_name
from tests.conftest import Logins

# 石牌街 暨大社区 第一网格 (grid1 and grid2 work here): lng 113.3405–113.34183, lat 23.1303–23.1333
INSIDE = {"lng": 113.3411, "lat": 23.1318, "place": "暨大社区 第一网格 华文路口"}
NEAR = {"lng": 113.34115, "lat": 23.13185}  # about 7 m away
OUTSIDE = {"lng": 113.3440, "lat": 23.1318}  # in the third grid, about 250 m east
ENFORCEMENT_TEAM = "440106006000-enforcement_team"
URBAN_DEPT = "440106-CGJ"
GRID = "440106006001-G01"


def photo(seed: str = "scene", mime: str = "image/jpeg") -> dict[str, Any]:
    return {"name": f"{seed}.jpg", "sha256": hashlib.sha256(seed.encode()).hexdigest(), "size": 2048, "mime": mime}


def principal(store: Store, username: str) -> Principal:
    user = store.read(lambda db: get_user_by_name(db, username))
    assert user is not None
    return user.principal()


def envelope(payload: dict[str, Any], attachments: list[dict[str, Any]], submission_id: str | None = None,
             kind: str = "incident_report") -> dict[str, Any]:
    return {"submission_id": submission_id or uuid7(), "kind": kind, "form_id": kind, "form_version": "1",
            "payload": payload, "attachments": attachments}


def intake(store: Store, username: str, env: dict[str, Any], handler: Any = handle_incident_report,
           at: datetime | None = None) -> IntakeResult:
    p = principal(store, username)

    def write(db):  # type: ignore[no-untyped-def]
        ctx = IntakeContext(node_id="test-street", principal=p, received_at=at or now_china(),
                            calendar=current_calendar(db), device_id="tab-1")
        return handler(db, env, ctx)

    return store.write(write)


def report(store: Store, username: str = "grid1", *, category: str = "SJ0102", location: dict[str, Any] | None = None,
           photos: int = 1, at: datetime | None = None, description: str = "路边有暴露垃圾") -> str:
    payload = {"category_code": category, "location": location or INSIDE, "description": description}
    result = intake(store, username, envelope(payload, [photo(f"p{i}-{uuid7()}") for i in range(photos)]), at=at)
    assert result.status == "created", result.errors
    return str(result.record["case_id"])


def step(client: TestClient, auth: Logins, username: str, case_id: str, transition: str, expect: int = 200,
         on_behalf_of: str | None = None, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"transition": transition, "payload": payload}
    if on_behalf_of:
        body["on_behalf_of"] = on_behalf_of
    resp = client.post(f"/api/v1/cases/{case_id}/events", headers=auth(username), json=body)
    assert resp.status_code == expect, resp.text
    return resp.json()  # type: ignore[no-any-return]


def case(store: Store, case_id: str) -> dict[str, Any]:
    row = store.read(lambda db: cases.case_row(db, case_id))
    assert row is not None
    return row


def counts(store: Store) -> tuple[int, ...]:
    return tuple(store.query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in (
        "cases", "case_events", "audit_log", "change_log", "grid_incidents", "grid_hotspot_reports"))


# Payloads of the common steps
FEEDBACK = {"result": "已清理完毕", "after_photos": [photo("after")]}
CHECK = {"check_photos": [photo("check")], "check_location": NEAR}


def walk_to_filed(client: TestClient, auth: Logins, case_id: str) -> None:
    step(client, auth, "clerk", case_id, "accept")
    step(client, auth, "grid2", case_id, "verify", genuine=True, note="现场属实")
    step(client, auth, "leader", case_id, "file")


def walk_to_handled(client: TestClient, auth: Logins, case_id: str, unit: str = ENFORCEMENT_TEAM,
                    handler: str = "handler") -> None:
    walk_to_filed(client, auth, case_id)
    step(client, auth, "dispatcher", case_id, "dispatch", unit_code=unit, instruction="请尽快处置")
    step(client, auth, handler, case_id, "accept_task")
    step(client, auth, handler, case_id, "feedback", **FEEDBACK)


def act(store: Store, username: str, case_id: str, transition: str, at: datetime,
        on_behalf_of: str | None = None, **payload: Any) -> cases.TransitionResult:
    """A step at a chosen node time (for clocks in the past), through the same store call as the API."""
    from server.domain.engine import Draft

    p = principal(store, username)
    draft = Draft(transition=transition, payload=payload, principal=p, node_time=at, event_id=uuid7(),
                  on_behalf_of=on_behalf_of)
    return store.write(lambda db: cases.transition(db, case_id, draft, node_id="test-street",
                                                   calendar=current_calendar(db)))


# --- the tablet's write path: envelopes through POST /sync/v1/outbox --------------------------------


def tablet(client: TestClient, auth: Logins, username: str) -> Any:
    """The enrolled tablet ``username`` works on (one per user and app instance)."""
    from tests.sync.helpers import enrol_device

    devices: dict[str, Any] = client.__dict__.setdefault("_grid_tablets", {})
    if username not in devices:
        devices[username] = enrol_device(client, auth, username)
    return devices[username]


def upload_photo(client: TestClient, auth: Logins, username: str, tag: str) -> dict[str, Any]:
    from tests.sync.helpers import attachment, jpeg_bytes, upload_blob

    data = jpeg_bytes(tag)
    upload_blob(client, auth(username), tablet(client, auth, username), data, "image/jpeg")
    return attachment(data, name=f"{tag}.jpg")


def send(client: TestClient, auth: Logins, username: str, kind: str, payload: dict[str, Any],
         attachments: list[dict[str, Any]] | None = None, org_path: str | None = None) -> dict[str, Any]:
    """One signed envelope through the outbox; returns its per-item result."""
    from tests.sync.helpers import post_outbox

    device = tablet(client, auth, username)
    env = device.envelope(kind, payload, org_path, attachments=attachments or [])
    resp = post_outbox(client, auth(username), device, [env])
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()["results"][0]
    result["submission_id"] = env["submission_id"]
    return result


def send_report(client: TestClient, auth: Logins, username: str = "grid1", *, category: str = "SJ0102",
                location: dict[str, Any] | None = None, photos: int = 1,
                description: str = "路边有暴露垃圾") -> str:
    """A grid member's report exactly as the tablet sends it: photos uploaded, then the envelope."""
    attachments = [upload_photo(client, auth, username, f"scene-{uuid7()}") for _ in range(photos)]
    payload = {"category_code": category, "location": location or INSIDE, "description": description}
    result = send(client, auth, username, "incident_report", payload, attachments)
    assert result["status"] == "created", result
    return str(result["submission_id"])  # the case id is the envelope's submission id


def send_event(client: TestClient, auth: Logins, username: str, case_id: str, transition: str,
               **payload: Any) -> dict[str, Any]:
    """A later step made offline: a ``case_event`` envelope."""
    return send(client, auth, username, "case_event", {"case_id": case_id, "transition": transition,
                                                        "payload": payload})
