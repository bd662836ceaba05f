"""Down-packages: signed, ordered, applied one transaction each; gaps, newer schemas and tampering refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import ED25519, SigningKey, b64url_encode
from server.domain.ids import now_china
from server.domain.roles import Tier
from server.node import node_key
from server.store import org
from server.store.calendars import publish_version
from sync import down_apply
from sync.packages import HubOwnedRecord, PackageRefused, assert_may_author, make_package
from sync.pairing import StreetSide, street_side
from tests.conftest import Logins
from tests.syncb.conftest import HANDUP, Pair

ENTRIES = [{"day": "2027-01-01", "work": False, "reason": "statutory", "name": "元旦"},
           {"day": "2027-01-02", "work": False, "reason": "statutory", "name": "元旦"}]


def side_of(p: Pair) -> StreetSide:
    side = p.street_store.read(lambda db: street_side(p.street, db))
    assert side is not None
    return side


def resign(pkg: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    body = {k: v for k, v in pkg.items() if k != "sig"}
    body["sha256"] = sha256_hex(canonical_json(body["items"]))
    return {**body, "sig": {"alg": ED25519, "key_id": key.key_id, "value": b64url_encode(key.sign(canonical_json(body)))}}


def hub_calendar(p: Pair, version: str, entries: list[dict[str, Any]] = ENTRIES) -> None:
    p.hub_store.write(lambda db: publish_version(db, version=version, entries=entries, source_notice="国办发明电",
                                                 actor="district_admin", role="district_admin", now=now_china()))


def test_calendar_published_at_the_hub_reaches_the_street_and_is_never_reauthored(pair: Pair) -> None:
    hub_calendar(pair, "tianhe-2027-v1")
    first = pair.sync()
    assert first.package_errors == [] and first.packages_applied >= 2  # directory, catalogue, calendar
    assert pair.street_store.query("SELECT version, active FROM calendar_versions") == \
        [{"version": "tianhe-2027-v1", "active": 1}]
    second = pair.sync()  # the street's own change-log row for the calendar goes up as an echo
    assert second.counts.get("refused", 0) == 0
    echo = pair.hub_store.query("SELECT kind FROM hub_rows WHERE entity = 'calendar'")
    assert echo == [{"kind": "echo"}]
    assert pair.hub_store.query("SELECT * FROM sync_conflicts") == []


def test_directory_changes_reach_only_the_streets_own_subtree(pair: Pair) -> None:
    def rename(db: Any) -> None:
        org.upsert_unit(db, code="440106006001", name="暨大社区（更名）", tier=Tier.COMMUNITY,
                        kind="residents_committee", parent="440106006000")

    pair.hub_store.write(rename)
    pair.sync()
    unit = pair.street_store.read(lambda db: org.get_unit(db, "440106006001"))
    assert unit is not None and unit["name"] == "暨大社区（更名）"
    assert pair.street_store.read(lambda db: org.get_unit(db, "440106001000")) is None  # another street


def test_packages_apply_strictly_in_order_and_a_gap_waits(pair: Pair) -> None:
    pair.sync()
    side, key = side_of(pair), node_key(pair.hub)
    base = pair.street_store.read(lambda db: down_apply.last_applied(db, "all"))
    later = make_package(key, "test-hub", "all", base + 2, "void", True, [], now_china())
    pair.street_store.write(lambda db: down_apply.store_packages(db, side, [later], now_china()))
    applied, errors = down_apply.apply_all(pair.street_store, side, "s", now_china)
    assert applied == 0 and errors == []
    assert pair.street_store.read(lambda db: down_apply.last_applied(db, "all")) == base
    missing = make_package(key, "test-hub", "all", base + 1, "void", True, [], now_china())
    pair.street_store.write(lambda db: down_apply.store_packages(db, side, [missing], now_china()))
    applied, _ = down_apply.apply_all(pair.street_store, side, "s", now_china)
    assert applied == 2 and pair.street_store.read(lambda db: down_apply.last_applied(db, "all")) == base + 2


def test_an_atomic_package_with_a_bad_item_applies_nothing_and_blocks_its_stream(pair: Pair) -> None:
    pair.sync()
    side, key = side_of(pair), node_key(pair.hub)
    base = pair.street_store.read(lambda db: down_apply.last_applied(db, "all"))
    items = [{"version": "v-good", "entries": ENTRIES}, {"version": "v-bad", "entries": [{"day": "not a day"}]}]
    bad = make_package(key, "test-hub", "all", base + 1, "calendar", True, items, now_china())
    nxt = make_package(key, "test-hub", "all", base + 2, "void", True, [], now_china())
    pair.street_store.write(lambda db: down_apply.store_packages(db, side, [bad, nxt], now_china()))
    applied, errors = down_apply.apply_all(pair.street_store, side, "s", now_china)
    assert applied == 0 and "第 2 项无法应用" in errors[0]
    assert pair.street_store.query("SELECT version FROM calendar_versions") == []
    row = pair.street_store.query("SELECT result FROM sync_inbox WHERE stream = 'all' AND seq = ?", [base + 1])[0]
    assert json.loads(row["result"])["code"] == "item_refused"


def test_newer_schema_unknown_type_and_tampering_are_refused(pair: Pair) -> None:
    pair.sync()
    side, key = side_of(pair), node_key(pair.hub)
    base = pair.street_store.read(lambda db: down_apply.last_applied(db, "all"))
    newer = resign({**make_package(key, "test-hub", "all", base + 1, "void", True, [], now_china()),
                    "min_node_schema": 99}, key)
    pair.street_store.write(lambda db: down_apply.store_packages(db, side, [newer], now_china()))
    _, errors = down_apply.apply_all(pair.street_store, side, "s", now_china)
    assert "升级" in errors[0]
    unknown = resign({**newer, "min_node_schema": 1, "ptype": "from_the_future", "package_id": "p-2"}, key)
    pair.street_store.write(lambda db: down_apply.store_packages(db, side, [unknown], now_china()))
    _, errors = down_apply.apply_all(pair.street_store, side, "s", now_china)
    assert "未知的下发包类型" in errors[0]
    tampered = {**make_package(key, "test-hub", "all", base + 1, "calendar", True,
                               [{"version": "x", "entries": ENTRIES}], now_china())}
    tampered["items"] = [{"version": "evil", "entries": []}]
    with pytest.raises(PackageRefused) as err:
        pair.street_store.write(lambda db: down_apply.store_packages(db, side, [tampered], now_china()))
    assert err.value.code == "bad_signature"
    forged = resign(tampered, SigningKey.generate())
    with pytest.raises(PackageRefused):
        pair.street_store.write(lambda db: down_apply.store_packages(db, side, [forged], now_china()))


def test_a_street_never_authors_a_hub_owned_record(pair: Pair) -> None:
    with pytest.raises(HubOwnedRecord):
        assert_may_author("street", "calendar")
    assert_may_author("district", "calendar")
    pair.sync()  # the shipped baseline (catalogue, org tree) is not a violation
    # A calendar written locally at the street is reported, not applied at the hub.
    pair.street_store.write(lambda db: publish_version(db, version="local-v", entries=ENTRIES, source_notice="",
                                                       actor="admin", role="street_admin", now=now_china()))
    summary = pair.sync()
    assert summary.counts["refused"] == 1
    assert [r["kind"] for r in pair.hub_store.query("SELECT kind FROM sync_conflicts")] == ["hub_owned"]
    assert [r["kind"] for r in pair.street_store.query("SELECT kind FROM sync_conflicts")] == ["hub_owned_local"]
    assert pair.hub_store.query("SELECT 1 FROM calendar_versions WHERE version = 'local-v'") == []


def test_district_decision_on_a_handed_up_case_flows_down_and_a_stale_one_becomes_a_conflict(
        pair: Pair) -> None:
    cid = pair.new_case("困难救助", kind=HANDUP)
    pair.step(cid, "handler", "hand_up")
    pair.sync()
    hub_auth = Logins(pair.hub_client)
    approver = hub_auth("approver")
    ok = pair.hub_client.post(f"/hub/v1/cases/{cid}/decisions", headers=approver,
                              json={"transition": "approve", "base_version": 2, "payload": {"note": "同意"}})
    assert ok.status_code == 200, ok.text
    stale = pair.hub_client.post(f"/hub/v1/cases/{cid}/decisions", headers=approver,
                                 json={"transition": "refuse", "base_version": 2, "payload": {"reason": "材料不全"}})
    assert stale.status_code == 200
    summary = pair.sync()
    assert summary.package_errors == []
    case = pair.street_store.query("SELECT state, version FROM cases WHERE id = ?", [cid])[0]
    assert case == {"state": "approved", "version": 3}
    event = pair.street_store.query("SELECT role, origin_node FROM case_events WHERE case_id = ? AND seq = 3", [cid])
    assert event == [{"role": "district_approver", "origin_node": "hub:test-hub"}]
    conflicts = pair.street_store.query("SELECT base_version, current_version FROM case_conflicts WHERE case_id = ?",
                                        [cid])
    assert conflicts == [{"base_version": 2, "current_version": 3}]  # never a silent winner
    pair.sync()  # and the district sees the decided case come back
    row = pair.hub_store.query("SELECT data FROM hub_records WHERE entity = 'case' AND entity_id = ?", [cid])[0]
    assert json.loads(row["data"])["state"] == "approved"


def test_the_district_cannot_decide_a_case_the_street_still_owns(pair: Pair) -> None:
    cid = pair.new_case(kind=HANDUP)
    pair.sync()
    resp = pair.hub_client.post(f"/hub/v1/cases/{cid}/decisions", headers=Logins(pair.hub_client)("approver"),
                                json={"transition": "approve", "base_version": 1})
    assert resp.status_code == 409 and resp.json()["errors"][0]["field"] == "case_id"
    resp = pair.hub_client.post("/hub/v1/cases/nope/decisions", headers=Logins(pair.hub_client)("approver"),
                                json={"transition": "approve", "base_version": 1})
    assert resp.status_code == 404
