"""A published correction that would move a due date EARLIER is held until an admin confirms it."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from server.config import Settings
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from tests.calendar.helpers import CAL_2027, CORRECTION_2027, at, cli, clock, due_day, open_case, publish
from tests.conftest import Logins


def _published_with_correction(settings: Settings, tmp_path: Path) -> tuple[str, str]:
    spring = open_case(settings, at(2027, 2, 4))
    labour = open_case(settings, at(2027, 4, 28))
    assert publish(settings, tmp_path, CAL_2027).exit_code == 0
    assert due_day(settings, spring) == "2027-02-18"
    result = publish(settings, tmp_path, CORRECTION_2027)
    assert result.exit_code == 0, result.output
    # 2027-02-11 is a working day again: 02-11 (1), 02-12 (2), 02-15..02-17 (3-5) -> 02-17, one day earlier.
    assert "重算 2 个在办事项的期限" in result.output
    assert "其中 1 个期限将被提前，已暂缓应用，待管理员核对确认：" in result.output
    assert "办理时限：2027-02-18 23:59 → 2027-02-17 23:59" in result.output
    return spring, labour


def test_an_earlier_due_date_is_held_listed_and_applied_only_when_confirmed(
    settings: Settings, client: TestClient, auth: Logins, tmp_path: Path
) -> None:
    spring, labour = _published_with_correction(settings, tmp_path)
    held = clock(settings, spring)
    assert held["due_at"][:10] == "2027-02-18", "the case keeps its date until a person confirms"
    assert held["earlier_pending"]["due_at"][:10] == "2027-02-17"
    assert held["earlier_pending"]["calendar_version"] == "demo-2027.2"
    assert due_day(settings, labour) == "2027-05-08", "an unaffected case is simply recomputed"

    listing = client.get("/api/v1/calendar/earlier", headers=auth("clerk")).json()["items"]
    assert [(h["case_id"], h["clock"], h["held_due_at"][:10], h["new_due_at"][:10], h["still_held"])
            for h in listing] == [(spring, "decide", "2027-02-18", "2027-02-17", True)]
    assert "2027-02-11" not in listing[0]["explanation"].split("跳过：")[1].split("；")[0]
    assert "暂缓" not in cli(settings, "calendar", "earlier").output
    assert "2027-02-18 23:59 → 2027-02-17 23:59" in cli(settings, "calendar", "earlier").output

    # A clerk may read the list but not confirm; an admin confirms, with a note, audited.
    path = f"/api/v1/calendar/earlier/{spring}/confirm"
    refused = client.post(path, json={"note": "已核对"}, headers=auth("clerk"))
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "role"
    bad = client.post(path, json={}, headers=auth("admin"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "note"
    assert clock(settings, spring)["due_at"][:10] == "2027-02-18", "refusals change nothing"
    ok = client.post(path, json={"note": "已核对区政府更正通知"}, headers=auth("admin"))
    assert ok.status_code == 200, ok.text
    assert {k: (v["from"][:10], v["to"][:10]) for k, v in ok.json()["confirmed"].items()} == {
        "decide": ("2027-02-18", "2027-02-17")}
    applied = clock(settings, spring)
    assert applied["due_at"][:10] == "2027-02-17" and "earlier_pending" not in applied
    assert client.get("/api/v1/calendar/earlier", headers=auth("clerk")).json()["items"] == []
    again = client.post(path, json={"note": "再次确认"}, headers=auth("admin"))
    assert again.status_code == 404 and again.json()["errors"][0]["field"] == "case_id"

    with Store(settings.db_path) as store:
        entries = store.query("SELECT actor, object_id, before_digest, detail FROM audit_log"
                              " WHERE action = 'calendar.confirm_earlier'")
        history = store.query("SELECT status, resolved_by, note FROM calendar_earlier")
        publishes = store.query("SELECT detail FROM audit_log WHERE action = 'calendar.publish' ORDER BY seq")
    assert len(entries) == 1 and entries[0]["object_id"] == spring and entries[0]["before_digest"]
    assert json.loads(entries[0]["detail"])["note"] == "已核对区政府更正通知"
    assert len(history) == 1 and history[0]["status"] == "confirmed" and history[0]["note"] == "已核对区政府更正通知"
    assert json.loads(publishes[-1]["detail"]) == {"recomputed_cases": 2, "held_earlier": 1}


def test_the_cli_confirms_by_case_number(settings: Settings, tmp_path: Path) -> None:
    spring, _ = _published_with_correction(settings, tmp_path)
    verified = cli(settings, "cases", "verify")
    assert verified.exit_code == 0, "a held date is a recorded deviation, not drift: " + verified.output
    with Store(settings.db_path) as store:
        number = store.read(lambda db: cases.case_row(db, spring))["number"]  # type: ignore[index]
    missing = cli(settings, "calendar", "confirm", number, "--by", "王科长")
    assert missing.exit_code != 0, "a confirmation needs a note"
    result = cli(settings, "calendar", "confirm", number, "--by", "王科长", "--note", "已核对")
    assert result.exit_code == 0, result.output
    assert f"已确认 {number} decide：2027-02-18 23:59 → 2027-02-17 23:59" in result.output
    assert due_day(settings, spring) == "2027-02-17"
    assert cli(settings, "cases", "verify").exit_code == 0
    assert cli(settings, "calendar", "confirm", number, "--by", "王科长", "--note", "x").exit_code != 0


def test_a_held_date_no_longer_earlier_after_the_next_version_is_released(settings: Settings, tmp_path: Path) -> None:
    spring, _ = _published_with_correction(settings, tmp_path)
    undo = {"version": "demo-2027.3", "source_notice": "示例：撤回更正（测试用）", "complete_years": [],
            "entries": [{"day": "2027-02-11", "work": False, "reason": "makeup_rest", "name": "春节"}]}
    result = publish(settings, tmp_path, undo)
    assert result.exit_code == 0 and "没有期限被提前" in result.output
    assert due_day(settings, spring) == "2027-02-18" and "earlier_pending" not in clock(settings, spring)
    with Store(settings.db_path) as store:
        assert [r["status"] for r in store.query("SELECT status FROM calendar_earlier")] == ["superseded"]


def test_a_timer_does_not_fire_before_the_held_date(settings: Settings, tmp_path: Path) -> None:
    spring, _ = _published_with_correction(settings, tmp_path)
    # The test permit is deemed accepted when ``decide`` runs out in state "submitted".
    with Store(settings.db_path) as store:
        on_new_date = store.read(lambda db: cases.due_timers(db, current_calendar(db), at(2027, 2, 18, 0)))
        on_held_date = store.read(lambda db: cases.due_timers(db, current_calendar(db), at(2027, 2, 19, 0)))
    assert spring not in [c for c, _ in on_new_date]
    assert (spring, "deem") in on_held_date


def test_dry_run_reports_the_held_dates_and_changes_nothing(settings: Settings, tmp_path: Path) -> None:
    spring = open_case(settings, at(2027, 2, 4))
    assert publish(settings, tmp_path, CAL_2027).exit_code == 0
    result = publish(settings, tmp_path, CORRECTION_2027, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "试算（未发布）日历版本 demo-2027.2" in result.output
    assert "其中 1 个期限将被提前，将暂缓应用" in result.output
    with Store(settings.db_path) as store:
        assert store.query("SELECT version FROM calendar_versions ORDER BY seq") == [{"version": "demo-2027.1"}]
        assert store.query("SELECT * FROM calendar_earlier") == []
    assert "earlier_pending" not in clock(settings, spring)
    assert publish(settings, tmp_path, CORRECTION_2027).exit_code == 0, "the label is still free"


def test_a_later_event_on_the_case_does_not_apply_the_held_date(
    settings: Settings, client: TestClient, auth: Logins, tmp_path: Path
) -> None:
    """Only a person's confirmation applies an earlier date: accepting the case (which leaves its clock as it
    is) keeps the held 02-18, and the list still shows it as held."""
    spring, _ = _published_with_correction(settings, tmp_path)
    accepted = client.post(f"/api/v1/cases/{spring}/events", headers=auth("clerk"),
                           json={"transition": "accept", "payload": {}})
    assert accepted.status_code == 200, accepted.text
    held = clock(settings, spring)
    assert held["due_at"][:10] == "2027-02-18" and held["earlier_pending"]["due_at"][:10] == "2027-02-17"
    listing = client.get("/api/v1/calendar/earlier", headers=auth("clerk")).json()["items"]
    assert [(h["case_id"], h["still_held"]) for h in listing] == [(spring, True)]
    with Store(settings.db_path) as store:
        row = store.query("SELECT state, due_at FROM cases WHERE id = ?", [spring])[0]
    assert row["state"] == "accepted" and row["due_at"][:10] == "2027-02-18"
    assert cli(settings, "cases", "verify").exit_code == 0
    ok = client.post(f"/api/v1/calendar/earlier/{spring}/confirm", json={"note": "已核对"}, headers=auth("admin"))
    assert ok.status_code == 200 and clock(settings, spring)["due_at"][:10] == "2027-02-17"
