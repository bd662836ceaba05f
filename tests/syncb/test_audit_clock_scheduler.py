"""Audit heads counter-signed, a clock off by a year, the nightly job, the hub endpoints on a street node."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from server.domain.ids import CHINA_TZ, now_china
from server.store import audit
from sync.countersigs import check_countersigned
from sync.scheduler import NIGHTLY_ID, RETRY_ID, SyncScheduler, backoff_seconds, should_schedule
from sync.transport import HubUnreachable
from tests.syncb.conftest import Pair


def test_the_hub_countersigns_the_audit_head_and_a_rewritten_chain_is_detected(pair: Pair) -> None:
    pair.new_case()
    summary = pair.sync()
    seq, head = pair.street_store.read(audit.head)
    assert summary.countersigned_seq is not None and summary.countersigned_seq <= seq
    stored = pair.street_store.query("SELECT audit_seq, audit_hash FROM sync_countersigs")
    assert stored and all(r["audit_hash"] for r in stored)
    assert pair.street_store.read(check_countersigned) == []
    # The street reports a shorter chain than the hub counter-signed: the hub records it.
    pair.hub_store.write(lambda db: db.execute("UPDATE hub_nodes SET audit_seq = audit_seq + 1000"))
    pair.sync()
    kinds = [r["kind"] for r in pair.hub_store.query("SELECT kind FROM sync_conflicts")]
    assert kinds == ["audit_regression"]


def test_a_street_clock_off_by_a_year_changes_no_cursor_and_is_flagged(pair: Pair) -> None:
    ids = [pair.new_case() for _ in range(3)]
    year_ahead = lambda: now_china() + timedelta(days=365)  # noqa: E731
    summary = pair.sync(now=year_ahead)
    assert summary.clock_suspect and summary.clock_offset_ms < -300_000
    assert summary.acked_through_seq == summary.high_seq
    node = pair.hub_store.query("SELECT clock_suspect, clock_offset_ms FROM hub_nodes")[0]
    assert node["clock_suspect"] == 1
    pair.new_case()
    back = pair.sync(now=lambda: now_china() - timedelta(days=365))  # and back again: seqs, not clocks
    assert back.counts["created"] == 2 and back.acked_through_seq == back.high_seq
    got = {r["entity_id"] for r in pair.hub_store.query("SELECT entity_id FROM hub_records WHERE entity = 'case'")}
    assert set(ids) <= got


def test_backoff_doubles_from_a_minute_up_to_an_hour() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]


def test_nightly_job_is_one_instance_coalesced_with_grace_and_retries_while_the_hub_is_unreachable() -> None:
    calls: list[str] = []

    def run(trigger: str) -> Any:
        calls.append(trigger)
        if len(calls) < 3:
            raise HubUnreachable("无法连接区级枢纽", "refused")

    clock = lambda: datetime(2026, 10, 1, 2, 0, tzinfo=CHINA_TZ)  # noqa: E731
    sched = SyncScheduler(run, "02:00", "Asia/Shanghai", max_retries=2, clock=clock)
    job = sched.scheduler.get_job(NIGHTLY_ID)
    assert job.max_instances == 1 and job.coalesce is True and job.misfire_grace_time == 3600
    assert str(job.trigger).startswith("cron[") and "hour='2'" in str(job.trigger)
    assert sched.job("nightly") == "retry_scheduled"
    retry = sched.scheduler.get_job(RETRY_ID)
    assert retry is not None and retry.trigger.run_date == clock() + timedelta(seconds=60)
    assert sched.job("retry") == "retry_scheduled"
    assert sched.scheduler.get_job(RETRY_ID).trigger.run_date == clock() + timedelta(seconds=120)
    assert sched.job("retry") == "ok" and sched.attempts == 0
    calls.clear()  # a new night fails again, and with no retries left the job waits for tomorrow
    sched.max_retries = 0
    assert sched.job("nightly") == "gave_up"


def test_the_job_starts_only_on_a_paired_street_with_sync_enabled(pair: Pair) -> None:
    assert should_schedule(pair.street)
    assert not should_schedule(pair.street.model_copy(update={"sync_enabled": False}))
    assert not should_schedule(pair.hub)
    with TestClient(__import__("server.web.app", fromlist=["create_app"]).create_app(pair.street)) as c:
        sched = c.app.state.services.extra.get("sync_scheduler")  # type: ignore[attr-defined]
        assert sched is not None and sched.next_run() is not None
        assert sched.next_run().hour == 2
    assert sched.scheduler.running is False


def test_hub_endpoints_answer_not_a_hub_on_a_street_node(client: TestClient) -> None:
    for path in ("/hub/v1/up/begin", "/hub/v1/up/batch", "/hub/v1/down/pull"):
        resp = client.post(path, content=b"x")
        assert resp.status_code == 404 and resp.json()["code"] == "not_a_hub"
    assert client.get("/hub/v1/identity").json()["code"] == "not_a_hub"


def test_district_admin_enrols_a_node_and_sees_its_state(pair: Pair) -> None:
    from tests.conftest import Logins

    auth = Logins(pair.hub_client)
    sheet = pair.hub_client.get("/hub/v1/identity").json()["hub"]
    assert sheet["hub_id"] == "test-hub" and len(sheet["key_id"]) == 16
    bad = pair.hub_client.post("/hub/v1/nodes", headers=auth("district_admin"),
                               json={"node_id": "n2", "org_unit": "nope", "public_key": "A" * 43})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "org_unit"
    ok = pair.hub_client.post("/hub/v1/nodes", headers=auth("district_admin"),
                              json={"node_id": "wushan-node", "org_unit": "440106001000", "public_key": "A" * 43})
    assert ok.status_code == 200 and ok.json()["node"]["org_path"] == "440106/440106001000"
    denied = pair.hub_client.post("/hub/v1/nodes", headers=auth("approver"), json={})
    assert denied.status_code == 403
    pair.new_case()
    pair.sync()
    nodes = pair.hub_client.get("/hub/v1/nodes", headers=auth("district_admin")).json()["nodes"]
    mine = next(n for n in nodes if n["node_id"] == "test-street")
    assert mine["acked_through_seq"] > 0 and mine["clock_suspect"] is False
    recs = pair.hub_client.get("/hub/v1/records?entity=case", headers=auth("approver")).json()["records"]
    assert recs == [] or all(r["entity"] == "case" for r in recs)
