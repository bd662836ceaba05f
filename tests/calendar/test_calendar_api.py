"""``GET /api/v1/calendar`` and the clerk's "what if received on …" calculator (issue #10 point 15)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import Logins


def due(client: TestClient, auth: Logins, **params: str):  # type: ignore[no-untyped-def]
    return client.get("/api/v1/calendar/due", params=params, headers=auth("clerk"))


def test_received_the_day_before_national_day_2026(client: TestClient, auth: Logins) -> None:
    body = due(client, auth, start="2026-09-30", unit="working_day", duration="20").json()
    # 10-08, 10-09, Saturday 10-10 (make-up), then 17 ordinary working days: 11-03.
    assert body == {
        "ok": True,
        "due_at": "2026-11-03T23:59:59+08:00",
        "provisional": False,
        "explanation": "试算时限；起算日（第0日）：2026-09-30（星期三），当日不计入；按工作日计 20 日；"
        "跳过：2026-10-01至2026-10-07 国庆节休假、周末 7 天；2026-10-10（星期六）为调休上班日，计入；"
        "截止：2026-11-03（星期二）24:00前；日历版本：chinese-calendar-1.11.0",
        "calendar_version": "chinese-calendar-1.11.0",
    }


def test_a_date_in_an_unpublished_year_is_provisional_and_says_which_days_were_assumed(
    client: TestClient, auth: Logins
) -> None:
    body = due(client, auth, start="2026-12-28", unit="working_day", duration="5", label="视为受理").json()
    # 12-29, 12-30, 12-31; 2027-01-01 rests by law; 01-04 and 01-05 are assumed working days.
    assert body["due_at"] == "2027-01-05T23:59:59+08:00" and body["provisional"] is True
    assert body["explanation"] == (
        "视为受理；起算日（第0日）：2026-12-28（星期一），当日不计入；按工作日计 5 日；跳过：2027-01-01（星期五） "
        "元旦休假、周末 2 天；2027 年节假日安排尚未发布，暂按周末及固定日期法定节假日（元旦1月1日，劳动节5月1日至2日，国庆节10月1日至3日）"
        "计算，其中 2027-01-04至2027-01-05 暂按工作日计入，发布后自动重算；截止：2027-01-05（星期二）24:00前；"
        "日历版本：chinese-calendar-1.11.0"
    )


def test_calendar_days_and_working_hours(client: TestClient, auth: Logins) -> None:
    spring = due(client, auth, start="2026-02-10", unit="calendar_day", duration="15").json()
    assert spring["due_at"] == "2026-02-25T23:59:59+08:00", "calendar days run through 春节"
    hours = due(client, auth, start="2026-09-30T16:00", unit="working_hour", duration="4").json()
    # 16:00-17:30 on 09-30 (1.5 h), then 08:30-11:00 on 10-08 after the holiday (2.5 h).
    assert hours["due_at"] == "2026-10-08T11:00:00+08:00"
    assert hours["explanation"].startswith("试算时限；起算时间：2026-09-30 16:00；按工作时计 4 小时")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"unit": "working_day", "duration": "20"}, "start"),
        ({"start": "2026-02-30", "unit": "working_day", "duration": "20"}, "start"),
        ({"start": "2026-09-30", "unit": "fortnight", "duration": "20"}, "unit"),
        ({"start": "2026-09-30", "duration": "20"}, "unit"),
        ({"start": "2026-09-30", "unit": "working_day", "duration": "0"}, "duration"),
        ({"start": "2026-09-30", "unit": "working_day", "duration": "二十"}, "duration"),
        ({"start": "2026-09-30", "unit": "working_day", "duration": "100000"}, "duration"),
        ({"start": "2026-09-30", "unit": "working_day", "duration": "5", "label": "长" * 51}, "label"),
    ],
)
def test_bad_input_is_a_422_envelope_naming_the_field(
    client: TestClient, auth: Logins, params: dict[str, str], field: str
) -> None:
    resp = due(client, auth, **params)
    body = resp.json()
    assert resp.status_code == 422 and body["ok"] is False and body["code"] == "validation_error"
    assert body["errors"][0]["field"] == field


def test_calendar_info_names_the_version_and_the_provisional_rule(client: TestClient, auth: Logins) -> None:
    body = client.get("/api/v1/calendar", headers=auth("handler")).json()
    assert body["version"] == "chinese-calendar-1.11.0" and body["last_known_year"] == 2026
    assert body["versions"] == [] and body["earlier_pending"] == 0
    assert body["provisional_rule"] == (
        "2026 年以后按周末及固定日期法定节假日（元旦1月1日，劳动节5月1日至2日，国庆节10月1日至3日）暂算")


def test_the_earlier_list_refuses_an_unknown_status(client: TestClient, auth: Logins) -> None:
    resp = client.get("/api/v1/calendar/earlier", params={"status": "maybe"}, headers=auth("clerk"))
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "status"
    assert client.get("/api/v1/calendar/earlier", params={"status": "all"}, headers=auth("clerk")).json() == {
        "ok": True, "items": []}
