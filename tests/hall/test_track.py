"""Tracking and 好差评 from the resident's side: privacy, abuse, one rating per stage, rectification, appeals."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server.config import Settings
from server.store.db import Store
from tests.conftest import Logins
from tests.hall.helpers import ID_CARD, ORIGINALS, PHONE, step, submitted

PERSONAL = ["张三丰", "张*丰", ID_CARD, PHONE, "天河区石牌街道某路", "陈晓敏", "clerk"]


def track(client: TestClient, code: str, phone4: str = PHONE[-4:]) -> Any:
    return client.get(f"/api/v1/track/{code}", params={"phone4": phone4})


def rate(client: TestClient, rec: dict[str, Any], headers: dict[str, str] | None = None, **kw: Any) -> Any:
    body = {"token": rec["receipt_token"], "stage": "receipt", "level": 5, **kw}
    return client.post(f"/api/v1/track/{rec['query_code']}/rating", json=body, headers=headers or {})


def test_resident_sees_timeline_and_due_date_and_nothing_personal(client: TestClient, auth: Logins, store: Store,
                                                                   settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    step(client, auth, "clerk", rec["case_id"], "correction_notice", items=["家庭经济状况核对授权书"])
    resp = track(client, rec["query_code"].lower())  # codes are read aloud: case does not matter
    assert resp.status_code == 200, resp.text
    body = resp.json()["case"]
    assert body["number"] == store.query("SELECT number FROM cases")[0]["number"]
    assert [t["step"] for t in body["timeline"]] == ["申办", "一次性补正告知"]
    assert body["timeline"][1]["detail"] == {"items": ["家庭经济状况核对授权书"]}  # addressed to the applicant
    assert body["due"]["explanation"] and "promised" in body["clocks"] and "statutory" in body["clocks"]
    text = resp.text
    for secret in PERSONAL:
        assert secret not in text, secret


def test_wrong_phone_digits_answer_exactly_like_an_unknown_code(client: TestClient, store: Store,
                                                                 settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    wrong = track(client, rec["query_code"], "0000")
    unknown = track(client, "ZZZZZZZZ")
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert track(client, rec["query_code"], "12").status_code == 422  # a malformed query says which field
    assert track(client, "short").json()["errors"][0]["field"] == "query_code"


def test_lookups_are_rate_limited_per_query_code_and_per_client(client: TestClient, store: Store,
                                                                settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    limit = settings.track_rate_per_minute
    for _ in range(limit):
        assert track(client, rec["query_code"], "0000").status_code == 404  # guessing digits
    resp = track(client, rec["query_code"])  # even the right digits now wait
    assert resp.status_code == 429 and resp.json()["code"] == "rate_limited"
    # guessing many codes from one address is limited too
    statuses = {track(client, f"AAAA{n:04d}").status_code for n in range(limit + 1)}
    assert 429 in statuses


def test_rating_needs_the_receipt_token_and_refuses_staff(client: TestClient, auth: Logins, store: Store,
                                                          settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    staff = rate(client, rec, headers=auth("clerk"))
    assert staff.status_code == 403 and staff.json()["errors"][0]["field"] == "authorization"
    forged = rate(client, {**rec, "receipt_token": "x" * 32})
    assert forged.status_code == 403 and forged.json()["errors"][0]["field"] == "token"
    other = submitted(store, settings, "clerk")
    crossed = rate(client, {**rec, "receipt_token": other["receipt_token"]})  # another case's token
    assert crossed.status_code == 403
    assert store.query("SELECT COUNT(*) AS n FROM hall_ratings")[0]["n"] == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"stage": "completion"}, "stage"),  # not decided yet
    ({"level": 6}, "level"),
    ({"indicators": {"platform": 5}}, "indicators.platform"),  # not an offline indicator
    ({"indicators": {"overall": 0}}, "indicators.overall"),
    ({"channel": "phone"}, "channel"),
])
def test_bad_rating_input_names_the_field(client: TestClient, store: Store, settings: Settings,
                                          change: dict[str, Any], field: str) -> None:
    rec = submitted(store, settings, "clerk")
    resp = rate(client, rec, **change)
    assert resp.status_code == 422
    assert field in [e["field"] for e in resp.json()["errors"]], resp.text


def test_one_rating_per_stage_never_edited_or_deleted(client: TestClient, store: Store, settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    assert rate(client, rec, level=4).status_code == 200
    again = rate(client, rec, level=5)
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "stage"
    import sqlite3

    from server.store.db import connect

    conn = connect(settings.db_path)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE hall_ratings SET level = 5")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM hall_ratings")
    conn.close()


def test_bad_rating_opens_rectification_with_the_configured_deadline_and_appeal_needs_a_second_reviewer(
        client: TestClient, auth: Logins, store: Store, settings: Settings) -> None:
    resp = client.put("/api/v1/hall/settings", headers=auth("admin"), json={"rectification_wd": 5})
    assert resp.status_code == 200
    rec = submitted(store, settings, "clerk")
    cid = rec["case_id"]
    step(client, auth, "clerk", cid, "pre_review_pass")
    step(client, auth, "clerk", cid, "onsite_check", verified=ORIGINALS["GF00101000-440106000000-01"])
    step(client, auth, "clerk", cid, "accept")
    resp = rate(client, rec, stage="acceptance", level=1, comment="等候时间太长", problems=["服务效率"])
    assert resp.status_code == 200, resp.text
    rect = resp.json()["rectification_case_id"]
    detail = client.get(f"/api/v1/cases/{rect}", headers=auth("supervisor")).json()["case"]
    assert detail["kind"] == "rating_rectification" and detail["state"] == "open"
    assert detail["clocks"]["rectify"]["duration"] == 5
    ratings = client.get("/api/v1/hall/ratings?bad=1", headers=auth("supervisor")).json()["ratings"]
    assert len(ratings) == 1 and ratings[0]["responsible"] and ratings[0]["level_label"] == "非常不满意"
    rating_id = ratings[0]["id"]
    appeal = client.post(f"/api/v1/hall/ratings/{rating_id}/appeals", headers=auth("admin"),
                         json={"reason": "当日系统故障，已现场致歉"})
    assert appeal.status_code == 200, appeal.text
    appeal_id = appeal.json()["appeal_id"]
    dup = client.post(f"/api/v1/hall/ratings/{rating_id}/appeals", headers=auth("clerk"), json={"reason": "再次"})
    assert dup.status_code == 409
    own = client.post(f"/api/v1/hall/appeals/{appeal_id}/review", headers=auth("admin"),
                      json={"decision": "upheld", "reason": "同意"})
    assert own.status_code == 403 and own.json()["errors"][0]["field"] == "reviewer"
    ok = client.post(f"/api/v1/hall/appeals/{appeal_id}/review", headers=auth("supervisor"),
                     json={"decision": "upheld", "reason": "经核实属系统故障"})
    assert ok.status_code == 200, ok.text
    rating = client.get("/api/v1/hall/ratings", headers=auth("supervisor")).json()["ratings"][0]
    assert rating["excluded"] is True and rating["level"] == 1  # annotated, never deleted
    assert store.query("SELECT state FROM cases WHERE id = ?", [rect])[0]["state"] == "voided"


def test_rectification_cannot_be_closed_by_whoever_fixed_it(client: TestClient, auth: Logins, store: Store,
                                                            settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    rect = rate(client, rec, level=2).json()["rectification_case_id"]
    step(client, auth, "admin", rect, "feed_back", measure="调整窗口排班", result="已电话回访")
    resp = step(client, auth, "admin", rect, "close", expect=422, conclusion="已整改")
    assert "自行办结" in resp["error"]
    step(client, auth, "supervisor", rect, "close", conclusion="回访满意，整改完成")


def test_staff_cannot_rate_through_the_case_api(client: TestClient, auth: Logins, store: Store,
                                                settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    step(client, auth, "clerk", rec["case_id"], "rate", expect=422, level=5)  # no such transition
    assert store.query("SELECT COUNT(*) AS n FROM hall_ratings")[0]["n"] == 0
