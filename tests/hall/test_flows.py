"""Applications walked over the API: every stage of domain.md §1.7 across community, street and district."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from schemas.reference import load_service_catalogue
from server.config import Settings
from server.domain.ids import now_china
from server.domain.roles import Role
from server.store import cases as case_store
from server.store import hall_catalogue
from server.store.calendars import current_calendar
from server.store.db import Store
from tests.conftest import Logins
from tests.hall.helpers import DISABILITY_CARD, MINIMUM_LIVING, ORIGINALS, add_user, case, step, submitted


def community_district_item(store: Store) -> str:
    """The hub publishes a district item that community stations may also receive (代办)."""
    spec = next(i for i in load_service_catalogue().items if i.implementation_code == DISABILITY_CARD)
    spec = spec.model_copy(update={"accepted_at": ("community", "street")})
    store.write(lambda db: hall_catalogue.apply_item(db, spec, catalogue_version="hub-test-1", now=now_china()))
    return DISABILITY_CARD


def test_community_intake_street_handover_district_decision_delivery_and_rating(
        client: TestClient, auth: Logins, store: Store, settings: Settings) -> None:
    item = community_district_item(store)
    add_user(store, "cl_approver", Role.DISTRICT_APPROVER, "440106-CL")  # 区残联, the implementing body
    rec = submitted(store, settings, "community1", item)
    cid = rec["case_id"]
    step(client, auth, "clerk", cid, "pre_review_pass")
    step(client, auth, "community1", cid, "book_appointment", slot="2026-12-01T09:30:00+08:00")
    step(client, auth, "community1", cid, "onsite_check", verified=ORIGINALS[item])
    # the street cannot accept a district item: it hands it up (ownership transfer)
    resp = step(client, auth, "clerk", cid, "accept", expect=422)
    assert "区级" in resp["error"]
    step(client, auth, "clerk", cid, "hand_up")
    row = store.query("SELECT org_path, owner_tier FROM cases WHERE id = ?", [cid])[0]
    assert row["org_path"] == "440106/440106-CL" and row["owner_tier"] == "street"  # path depth 2
    assert client.get(f"/api/v1/hall/applications/{cid}", headers=auth("clerk")).status_code == 403
    step(client, auth, "cl_approver", cid, "accept")
    step(client, auth, "cl_approver", cid, "start_handling", opinion="符合条件，拟同意")
    step(client, auth, "cl_approver", cid, "decide", outcome="approved", result="核发残疾人证")
    # the decision comes back down to the community that received it
    home = store.query("SELECT org_path, state FROM cases WHERE id = ?", [cid])[0]
    assert home["state"] == "decided" and home["org_path"].count("/") == 2
    step(client, auth, "community1", cid, "deliver", method="window")
    body = case(client, auth, "clerk", cid)
    assert body["case"]["state"] == "delivered"
    assert [e["transition"] for e in body["events"]] == [
        "submit", "pre_review_pass", "book_appointment", "onsite_check", "hand_up", "accept", "start_handling",
        "decide", "deliver"]
    assert body["events"][0]["on_behalf_of"]  # 代办 recorded
    assert all(m["original_verified"] for m in body["application"]["materials"] if m["material"] in ORIGINALS[item])
    rating = client.post(f"/api/v1/track/{rec['query_code']}/rating",
                         json={"token": rec["receipt_token"], "stage": "completion", "level": 5,
                               "indicators": {"overall": 5, "attitude": 5}})
    assert rating.status_code == 200, rating.text
    assert rating.json()["rectification_case_id"] is None


def test_street_item_accepted_handled_and_decided_by_the_street_head(client: TestClient, auth: Logins,
                                                                     store: Store, settings: Settings) -> None:
    cid = submitted(store, settings, "clerk")["case_id"]
    step(client, auth, "clerk", cid, "pre_review_pass")
    step(client, auth, "clerk", cid, "onsite_check", verified=ORIGINALS[MINIMUM_LIVING])
    step(client, auth, "clerk", cid, "hand_up", expect=422)  # a street item stays at the street
    step(client, auth, "clerk", cid, "accept")
    clocks = case(client, auth, "clerk", cid)["case"]["clocks"]
    assert clocks["acceptance"]["status"] == "stopped"
    assert clocks["promised"]["status"] == "running" and clocks["statutory"]["status"] == "running"
    assert clocks["promised"]["due_at"] < clocks["statutory"]["due_at"]
    step(client, auth, "clerk", cid, "start_handling", expect=403, opinion="x")  # the clerk does not handle
    step(client, auth, "handler", cid, "start_handling", opinion="经核对符合低保条件")
    step(client, auth, "handler", cid, "decide", expect=403, outcome="approved")  # the head decides
    step(client, auth, "admin", cid, "decide", expect=422, outcome="refused")  # refusal needs written reasons
    step(client, auth, "admin", cid, "decide", outcome="approved")
    clocks = case(client, auth, "clerk", cid)["case"]["clocks"]
    assert clocks["promised"]["status"] == "stopped" and clocks["delivery"]["status"] == "running"


def test_pre_review_return_and_resubmission_restart_the_clocks(client: TestClient, auth: Logins, store: Store,
                                                                settings: Settings) -> None:
    cid = submitted(store, settings, "community1")["case_id"]
    step(client, auth, "community1", cid, "pre_review_pass", expect=403)  # a community never decides
    step(client, auth, "clerk", cid, "pre_review_return", expect=422)  # reasons are required
    step(client, auth, "clerk", cid, "pre_review_return", reasons=["申请书未签名"])
    clocks = case(client, auth, "clerk", cid)["case"]["clocks"]
    assert clocks["acceptance"]["status"] == "stopped" and clocks["promised"]["status"] == "paused"
    step(client, auth, "community1", cid, "resubmit")
    body = case(client, auth, "clerk", cid)
    assert body["case"]["state"] == "submitted"
    assert body["case"]["clocks"]["acceptance"]["status"] == "running"


def test_correction_notice_is_one_time_then_accepted_after_correction(client: TestClient, auth: Logins,
                                                                        store: Store, settings: Settings) -> None:
    cid = submitted(store, settings, "clerk")["case_id"]
    step(client, auth, "clerk", cid, "pre_review_pass")
    resp = step(client, auth, "clerk", cid, "onsite_check", expect=422, verified=["最低生活保障申请书"])
    assert "补正" in resp["error"]  # missing originals: issue a correction notice instead
    step(client, auth, "clerk", cid, "correction_notice", expect=422, items=[])  # must list the items
    step(client, auth, "clerk", cid, "correction_notice", items=["家庭经济状况核对授权书", "收入证明"])
    assert case(client, auth, "clerk", cid)["case"]["clocks"]["statutory"]["status"] == "paused"
    step(client, auth, "clerk", cid, "receive_correction")
    step(client, auth, "clerk", cid, "accept")
    assert case(client, auth, "clerk", cid)["case"]["state"] == "accepted"


def test_a_second_correction_notice_is_refused(client: TestClient, auth: Logins, store: Store,
                                               settings: Settings) -> None:
    cid = submitted(store, settings, "clerk", DISABILITY_CARD)["case_id"]
    step(client, auth, "clerk", cid, "correction_notice", items=["照片"])
    step(client, auth, "clerk", cid, "receive_correction")
    step(client, auth, "clerk", cid, "hand_up")
    add_user(store, "cl_approver", Role.DISTRICT_APPROVER, "440106-CL")
    resp = step(client, auth, "cl_approver", cid, "correction_notice", expect=422, items=["户口簿"])
    assert "一次性" in resp["error"]


def test_no_correction_within_five_working_days_is_deemed_acceptance_from_receipt(
        client: TestClient, auth: Logins, store: Store, settings: Settings) -> None:
    received = now_china() - timedelta(days=15)
    cid = submitted(store, settings, "clerk", at=received)["case_id"]
    fresh = submitted(store, settings, "clerk")["case_id"]
    fired = store.write(lambda db: case_store.fire_timers(db, current_calendar(db), now_china(), settings.node_id))
    assert fired >= 1
    body = case(client, auth, "clerk", cid)
    assert body["case"]["state"] == "deemed_accepted"
    deem = body["events"][-1]
    assert deem["transition"] == "deem_accept" and deem["actor"] == "system" and "第三十二条" in deem["legal_basis"]
    # accepted from the day of receipt: the decision clocks were not restarted
    assert body["case"]["clocks"]["statutory"]["started_at"] == received.isoformat()
    audit = store.query("SELECT actor, action FROM audit_log WHERE object_id = ? AND action = 'case.deem_accept'",
                        [cid])
    assert audit == [{"actor": "system", "action": "case.deem_accept"}]
    assert case(client, auth, "clerk", fresh)["case"]["state"] == "submitted"
    step(client, auth, "clerk", cid, "deem_accept", expect=403)  # only the engine deems


def test_special_procedure_pauses_both_clocks_and_tells_the_applicant(client: TestClient, auth: Logins,
                                                                      store: Store, settings: Settings) -> None:
    cid = accepted(client, auth, store, settings)
    step(client, auth, "handler", cid, "start_special", expect=422, procedure="社区公示", reason="公示 7 日")
    step(client, auth, "handler", cid, "start_special", procedure="社区公示", reason="公示 7 日",
         notice="已书面告知申请人：公示期不计入办理时限")
    clocks = case(client, auth, "clerk", cid)["case"]["clocks"]
    assert clocks["promised"]["status"] == "paused" and clocks["statutory"]["status"] == "paused"
    step(client, auth, "admin", cid, "decide", expect=409, outcome="approved")  # out of order
    step(client, auth, "handler", cid, "end_special", result="公示无异议")
    clocks = case(client, auth, "clerk", cid)["case"]["clocks"]
    assert clocks["promised"]["status"] == "running" and "暂停" in clocks["promised"]["explanation"]


def test_extension_needs_the_heads_approval_a_reason_and_at_most_ten_days(client: TestClient, auth: Logins,
                                                                           store: Store, settings: Settings) -> None:
    cid = accepted(client, auth, store, settings)
    before = case(client, auth, "clerk", cid)["case"]["clocks"]["statutory"]["due_at"]
    step(client, auth, "handler", cid, "extend", expect=403, days=5, reason="需入户调查")
    step(client, auth, "admin", cid, "extend", expect=422, days=5)  # no reason
    step(client, auth, "admin", cid, "extend", expect=422, days=11, reason="需入户调查")
    step(client, auth, "admin", cid, "extend", days=6, reason="需入户调查")
    step(client, auth, "admin", cid, "extend", expect=422, days=5, reason="再延")  # 6 + 5 > 10
    clocks = case(client, auth, "clerk", cid)["case"]["clocks"]
    assert clocks["statutory"]["due_at"] > before and "延长 6 个工作日" in clocks["statutory"]["explanation"]


def test_not_accepted_needs_written_reasons_and_stops_every_clock(client: TestClient, auth: Logins,
                                                                  store: Store, settings: Settings) -> None:
    cid = submitted(store, settings, "clerk")["case_id"]
    step(client, auth, "clerk", cid, "not_accept", expect=422)
    step(client, auth, "community1", cid, "not_accept", expect=403, reasons=["x"])
    step(client, auth, "clerk", cid, "not_accept", reasons=["申请人户籍不在本街道"])
    body = case(client, auth, "clerk", cid)
    assert body["case"]["state"] == "not_accepted"
    assert {c["status"] for c in body["case"]["clocks"].values()} == {"stopped"}
    step(client, auth, "clerk", cid, "accept", expect=409)


def test_clients_cannot_move_a_case_or_rewrite_its_item(client: TestClient, auth: Logins, store: Store,
                                                        settings: Settings) -> None:
    cid = submitted(store, settings, "clerk", DISABILITY_CARD)["case_id"]
    step(client, auth, "clerk", cid, "pre_review_pass", expect=422, _org_path="440106/440106006000")
    step(client, auth, "clerk", cid, "pre_review_pass", expect=422, item_level="street")
    step(client, auth, "clerk", cid, "pre_review_pass")
    assert case(client, auth, "clerk", cid)["case"]["data"]["item_level"] == "district"


def test_hall_case_kind_rebuilds_from_its_events(client: TestClient, auth: Logins, store: Store,
                                                 settings: Settings) -> None:
    cid = accepted(client, auth, store, settings)
    step(client, auth, "admin", cid, "extend", days=2, reason="材料核查")
    diffs = store.read(lambda db: case_store.rebuild_case(db, cid, current_calendar(db), now_china()))
    assert diffs == {}


def accepted(client: TestClient, auth: Logins, store: Store, settings: Settings) -> str:
    cid = submitted(store, settings, "clerk")["case_id"]
    step(client, auth, "clerk", cid, "pre_review_pass")
    step(client, auth, "clerk", cid, "onsite_check", verified=ORIGINALS[MINIMUM_LIVING])
    step(client, auth, "clerk", cid, "accept")
    step(client, auth, "handler", cid, "start_handling", opinion="符合条件")
    return cid
