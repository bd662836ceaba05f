"""GET /sync/v1/changes: scoped paging by server sequence, tombstones, must_reset on epoch or scope change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from starlette.testclient import TestClient

from server.cli import main
from server.config import Settings
from server.store import changes
from server.store.db import Store
from server.web.app import create_app
from tests.conftest import Logins
from tests.hall.helpers import ID_CARD, PHONE, form
from tests.sync.helpers import TEST_KIND, TestDevice, enrol_device, post_outbox


def pull(client: TestClient, auth: Logins, device: TestDevice, cursor: str | None = None,
         limit: int | None = None) -> Any:
    params: dict[str, Any] = {}
    if cursor:
        params["cursor"] = cursor
    if limit:
        params["limit"] = limit
    return client.get("/sync/v1/changes", params=params, headers=device.headers(auth(device.username)))


def pull_all(client: TestClient, auth: Logins, device: TestDevice, cursor: str | None = None,
             limit: int = 500) -> tuple[list[dict[str, Any]], str, int]:
    rows: list[dict[str, Any]] = []
    pages = 0
    while True:
        resp = pull(client, auth, device, cursor, limit)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        rows += body["changes"]
        cursor = body["next_cursor"]
        pages += 1
        if not body["has_more"]:
            return rows, cursor, pages


def create(client: TestClient, auth: Logins, device: TestDevice, title: str) -> str:
    resp = post_outbox(client, auth(device.username), device, [device.envelope(TEST_KIND, {"title": title})])
    (result,) = resp.json()["results"]
    assert result["status"] == "created", result
    return str(result["record"]["case_id"])


def puts(rows: list[dict[str, Any]], kind: str = "case") -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows if r["type"] == kind and r["op"] == "put"}


def test_pages_follow_the_server_sequence_and_end_with_nothing_new(client: TestClient, auth: Logins) -> None:
    tablet = enrol_device(client, auth, "clerk")
    made = [create(client, auth, tablet, f"第{i}件") for i in range(7)]
    rows, cursor, pages = pull_all(client, auth, tablet, limit=4)
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and pages > 3
    cases = puts(rows)
    assert set(made) <= set(cases) and cases[made[0]]["data"]["state"] == "submitted"
    assert any(r["type"] == "catalogue_item" and r["data"]["name"] for r in rows)  # the catalogue reaches tablets
    assert not any(r["type"] in ("submission", "device", "quarantine") for r in rows)
    again = pull(client, auth, tablet, cursor).json()
    assert again["changes"] == [] and again["has_more"] is False and again["next_cursor"] == cursor
    assert again["checkpoint"]["write_checkpoint"] <= again["checkpoint"]["high_seq"]


def test_new_changes_arrive_after_the_cursor(client: TestClient, auth: Logins) -> None:
    tablet = enrol_device(client, auth, "clerk")
    _, cursor, _ = pull_all(client, auth, tablet)
    case_id = create(client, auth, tablet, "新件")
    body = pull(client, auth, tablet, cursor).json()
    assert {(r["type"], r["id"]) for r in body["changes"]} >= {("case", case_id), ("case_event", case_id)}
    assert body["checkpoint"]["write_checkpoint"] <= body["checkpoint"]["high_seq"]


def test_each_user_sees_only_their_scope(client: TestClient, auth: Logins) -> None:
    community = enrol_device(client, auth, "community1")
    case_id = create(client, auth, community, "社区代收")
    street = enrol_device(client, auth, "clerk")
    grid = enrol_device(client, auth, "grid1")
    assert case_id in puts(pull_all(client, auth, street)[0])
    assert case_id in puts(pull_all(client, auth, community)[0])
    grid_rows = pull_all(client, auth, grid)[0]
    assert case_id not in {r["id"] for r in grid_rows}  # a grid is below the community, not above it
    assert all(r["type"] == "catalogue_item" for r in grid_rows)


def _move(store: Store, case_id: str, new_path: str) -> None:
    """A case handed to another unit: its row moves and the change log records the new path."""
    def move(db):  # type: ignore[no-untyped-def]
        db.execute("UPDATE cases SET org_path = ? WHERE id = ?", [new_path, case_id])
        changes.record(db, "case", case_id, new_path)
    store.write(move)


def test_a_record_that_left_the_scope_arrives_as_a_tombstone(client: TestClient, auth: Logins, store: Store) -> None:
    community = enrol_device(client, auth, "community1")
    case_id = create(client, auth, community, "将移交")
    rows, cursor, _ = pull_all(client, auth, community)
    assert case_id in puts(rows)
    other = store.query("SELECT path FROM org_units WHERE tier = 'community' AND path != ? LIMIT 1",
                        [community.org_path])[0]["path"]
    _move(store, case_id, other)
    later = pull(client, auth, community, cursor).json()["changes"]
    assert [(r["type"], r["id"], r["op"], r["reason"], r["data"]) for r in later] == [
        ("case", case_id, "delete", "left_scope", None)]
    fresh = enrol_device(client, auth, "community1")  # a tablet syncing from scratch gets no trace of it either
    first = pull_all(client, auth, fresh)[0]
    assert all(r["op"] == "delete" for r in first if r["id"] == case_id)
    assert not any(r["type"] == "case_event" and r["op"] == "put" and r["data"]["case_id"] == case_id
                   for r in first)


def test_deletes_are_tombstones(client: TestClient, auth: Logins, store: Store) -> None:
    tablet = enrol_device(client, auth, "clerk")
    case_id = create(client, auth, tablet, "将删除")
    _, cursor, _ = pull_all(client, auth, tablet)
    store.write(lambda db: changes.record(db, "case", case_id, tablet.org_path, op="delete"))
    (row,) = pull(client, auth, tablet, cursor).json()["changes"]
    assert (row["id"], row["op"], row["reason"]) == (case_id, "delete", "deleted")


def test_personal_fields_never_reach_tablets(client: TestClient, auth: Logins) -> None:
    window = enrol_device(client, auth, "clerk")
    resp = post_outbox(client, auth("clerk"), window, [window.envelope("service_application", form())])
    assert resp.json()["results"][0]["status"] == "created", resp.text
    rows = pull_all(client, auth, window)[0]
    text = json.dumps(rows, ensure_ascii=False)
    assert ID_CARD not in text and PHONE not in text and "_enc" not in text and "_bidx" not in text
    assert any(r["type"] == "case" and r["data"]["kind"] == "service_application" for r in rows)


def test_a_changed_scope_answers_must_reset(client: TestClient, auth: Logins, store: Store) -> None:
    tablet = enrol_device(client, auth, "grid1")
    _, cursor, _ = pull_all(client, auth, tablet)
    other = store.query("SELECT code, path FROM org_units WHERE tier = 'grid' AND path != ? LIMIT 1",
                        [tablet.org_path])[0]
    store.write(lambda db: db.execute("UPDATE users SET org_unit = ?, org_path = ? WHERE username = 'grid1'",
                                      [other["code"], other["path"]]))
    resp = pull(client, auth, tablet, cursor)
    assert resp.status_code == 409 and resp.json()["code"] == "must_reset"
    assert resp.json()["errors"][0]["reason"] == "scope_changed"
    assert pull(client, auth, tablet).status_code == 200  # starting over works


def test_an_unreadable_cursor_answers_must_reset(client: TestClient, auth: Logins) -> None:
    tablet = enrol_device(client, auth, "clerk")
    for bad in ("garbage!", "eyJ2IjoxfQ"):
        resp = pull(client, auth, tablet, bad)
        assert resp.status_code == 409 and resp.json()["errors"][0]["reason"] == "unknown_cursor"


def test_restore_from_backup_gives_a_new_epoch_and_tablets_reset_keeping_their_outbox(
        settings: Settings, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    with TestClient(create_app(settings)) as client:
        auth = Logins(client)
        tablet = enrol_device(client, auth, "clerk")
        create(client, auth, tablet, "备份前")
        client.app.state.services.store.backup_to(backup)  # type: ignore[attr-defined]
        after_backup = tablet.envelope(TEST_KIND, {"title": "备份后"})
        assert post_outbox(client, auth("clerk"), tablet, [after_backup]).json()["results"][0]["status"] == "created"
        _, cursor, _ = pull_all(client, auth, tablet)
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "restore", str(backup), "--yes"])
    assert result.exit_code == 0, result.output
    with TestClient(create_app(settings)) as client:
        auth = Logins(client)
        resp = pull(client, auth, tablet, cursor)
        assert resp.status_code == 409 and resp.json()["errors"][0]["reason"] == "new_epoch"
        rows, _, _ = pull_all(client, auth, tablet)
        assert any(r["type"] == "case" and r["data"]["data"]["title"] == "备份前" for r in rows)
        # the tablet kept its outbox: the item the restore lost is uploaded again and recreated
        (again,) = post_outbox(client, auth("clerk"), tablet, [after_backup]).json()["results"]
        assert again["status"] == "created"


def test_personal_columns_of_any_record_travel_masked(client: TestClient, auth: Logins, store: Store) -> None:
    tablet = enrol_device(client, auth, "clerk")

    def add(db):  # type: ignore[no-untyped-def]
        db.execute("CREATE TABLE feed_visits (id TEXT PRIMARY KEY, org_path TEXT, resident_name TEXT, phone TEXT,"
                   " id_card TEXT, note_enc TEXT, detail TEXT)")
        db.execute("INSERT INTO feed_visits VALUES ('v1', ?, '欧阳小明', ?, ?, 'token', ?)",
                   [tablet.org_path, PHONE, ID_CARD, json.dumps({"contact_phone": PHONE, "topic": "走访"})])
        changes.record(db, "feed_visit", "v1", tablet.org_path)
    store.write(add)
    (row,) = [r for r in pull_all(client, auth, tablet)[0] if r["type"] == "feed_visit"]
    data = row["data"]
    assert data["resident_name"] == "欧**明" and data["phone"] == "138****5678"
    assert data["id_card"] == ID_CARD[:4] + "*" * 10 + ID_CARD[-4:] and "note_enc" not in data
    assert data["detail"] == {"contact_phone": "138****5678", "topic": "走访"}


def test_a_grid_tablet_pulls_only_its_grid_whoever_signs_in(client: TestClient, auth: Logins, store: Store) -> None:
    """A street clerk signed in on a grid's tablet gets the grid's records, not the whole street's."""
    street_case = create(client, auth, enrol_device(client, auth, "clerk"), "街道件")
    grid_unit = store.query("SELECT org_unit FROM users WHERE username = 'grid1'")[0]["org_unit"]
    grid_tablet = enrol_device(client, auth, "clerk", org_unit=grid_unit)
    rows = pull_all(client, auth, grid_tablet)[0]
    assert street_case not in {r["id"] for r in rows}
    assert street_case in puts(pull_all(client, auth, enrol_device(client, auth, "clerk"))[0])


def test_a_revoked_tablet_gets_nothing_even_with_a_valid_user_token(client: TestClient, auth: Logins) -> None:
    tablet = enrol_device(client, auth, "clerk")
    assert pull(client, auth, tablet).status_code == 200
    revoked = client.post(f"/sync/v1/devices/{tablet.device_id}/revoke", json={"reason": "平板遗失"},
                          headers=auth("admin"))
    assert revoked.status_code == 200, revoked.text
    resp = pull(client, auth, tablet)
    assert resp.status_code == 403 and "changes" not in resp.json()
    assert resp.json()["errors"][0]["field"] == "x-device-id"


def test_a_tablet_of_an_unrelated_unit_is_refused(client: TestClient, auth: Logins, store: Store) -> None:
    other_grid = store.query("SELECT code FROM org_units WHERE tier = 'grid' AND code != ("
                             "SELECT org_unit FROM users WHERE username = 'grid1') LIMIT 1")
    if not other_grid:
        other_grid = store.query("SELECT code FROM org_units WHERE tier = 'community' AND path NOT IN ("
                                 "SELECT org_path FROM users WHERE username = 'grid1') LIMIT 1")
    tablet = enrol_device(client, auth, "grid1", org_unit=other_grid[0]["code"])
    resp = pull(client, auth, tablet)
    assert resp.status_code == 403 and resp.json()["errors"][0]["field"] == "x-device-id"
