"""Up-replication in-process: every change once at the hub, personal fields sealed, checkpoints after acks."""

from __future__ import annotations

import json

import pytest

from server.domain.crypto import EncryptionKeyPair
from server.domain.ids import now_china
from server.store import changes
from sync import checkpoints, records, wire
from sync.pairing import street_side
from sync.replication import up_replication_id
from sync.transport import HubClient, HubRefused
from sync.up_batches import build_batch
from tests.syncb.conftest import Pair


def hub_rows(p: Pair) -> list[dict]:  # type: ignore[type-arg]
    return p.hub_store.query("SELECT node_seq, entity, entity_id FROM hub_rows ORDER BY node_seq")


def street_log(p: Pair) -> list[dict]:  # type: ignore[type-arg]
    return p.street_store.query("SELECT node_seq, entity, entity_id FROM change_log ORDER BY node_seq")


def test_every_change_reaches_the_hub_exactly_once_in_small_batches(pair: Pair) -> None:
    ids = [pair.new_case(f"申请 {i}") for i in range(12)]
    summary = pair.sync(batch_rows=5)
    assert summary.batches >= 5 and summary.acked_through_seq == summary.high_seq
    assert [(r["node_seq"], r["entity_id"]) for r in hub_rows(pair)] == \
        [(r["node_seq"], r["entity_id"]) for r in street_log(pair)]
    got = pair.hub_store.query("SELECT entity_id, data FROM hub_records WHERE entity = 'case'")
    assert {r["entity_id"] for r in got} == set(ids)
    assert all(json.loads(r["data"])["state"] == "submitted" for r in got)


def test_a_second_sync_with_nothing_new_sends_nothing(pair: Pair) -> None:
    pair.new_case()
    pair.sync()
    again = pair.sync()
    assert again.rows_sent == 0 and again.batches == 0 and again.package_errors == []


def test_later_changes_update_the_hubs_copy_by_node_seq(pair: Pair) -> None:
    cid = pair.new_case()
    pair.sync()
    pair.step(cid, "clerk", "accept")
    second = pair.sync()
    assert second.counts["created"] == 2  # the new event and the case row's new state
    row = pair.hub_store.query("SELECT data FROM hub_records WHERE entity = 'case' AND entity_id = ?", [cid])[0]
    assert json.loads(row["data"])["state"] == "accepted"


def test_personal_fields_travel_sealed_to_the_district_and_routing_stays_clear(pair: Pair) -> None:
    cid = pair.new_case("低保申请", applicant_name="张三", phone="13800001234", id_card="440106199001011234")
    pair.sync()
    row = pair.hub_store.query("SELECT data, sealed, org_path FROM hub_records WHERE entity = 'case' AND entity_id = ?",
                               [cid])[0]
    clear = row["data"]
    assert "张三" not in clear and "13800001234" not in clear and "440106199001011234" not in clear
    assert json.loads(clear)["data"]["title"] == "低保申请" and row["org_path"].startswith("440106/")
    district = EncryptionKeyPair.load(pair.hub.key_dir / "district-enc.key")
    personal = records.open_personal(json.loads(row["sealed"]), district, "test-street", "case", cid)
    assert personal == {"data.applicant_name": "张三", "data.phone": "13800001234",
                        "data.id_card": "440106199001011234"}
    merged = records.merge_personal(json.loads(clear), personal)
    assert merged["data"]["applicant_name"] == "张三"
    # bound to its record: the box does not open as another record's
    with pytest.raises(Exception):  # noqa: B017 - any crypto error
        records.open_personal(json.loads(row["sealed"]), district, "test-street", "case", "another-id")


def test_replayed_batch_is_a_duplicate_and_stores_nothing_twice(pair: Pair) -> None:
    pair.new_case()
    side = pair.street_store.read(lambda db: street_side(pair.street, db))
    assert side is not None
    rep = up_replication_id(side)
    client = HubClient("http://testserver", side.key, side.node_id, side.pin.public_key, client=pair.hub_client)
    begin = {"type": "up_begin", "node_id": side.node_id, "hub_id": side.pin.hub_id, "epoch": side.epoch,
             "replication_id": rep, "session_id": "s1", "checkpoint": None, "high_seq": 0,
             "audit_head": {"seq": 0, "hash": "0" * 64}, "down_applied": {}, "created_at": "2026-09-28T10:00:00+08:00"}
    client.call("/hub/v1/up/begin", "up_begin", begin)
    built = pair.street_store.read(lambda db: build_batch(db, side, 0, session_id="s1", replication_id=rep,
                                                          now=now_china()))
    assert built is not None
    first = client.call("/hub/v1/up/batch", "up_batch", built.batch)
    replies = [client.call("/hub/v1/up/batch", "up_batch", built.batch) for _ in range(2)]
    n = len(built.batch["rows"])
    assert first["counts"]["created"] == n
    assert all(r["counts"]["duplicate"] == n and r["counts"]["created"] == 0 for r in replies)
    assert len(hub_rows(pair)) == n and replies[-1]["acked_through_seq"] == built.to_seq


def test_tampered_or_unsigned_batch_is_refused_before_parsing_and_nothing_is_stored(pair: Pair) -> None:
    pair.new_case()
    side = pair.street_store.read(lambda db: street_side(pair.street, db))
    assert side is not None
    built = pair.street_store.read(lambda db: build_batch(db, side, 0, session_id="s", replication_id="r",
                                                          now=now_china()))
    assert built is not None
    body, headers = wire.sign_message(side.key, side.node_id, "up_batch", built.batch)
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 0x01
    resp = pair.hub_client.post("/hub/v1/up/batch", content=bytes(flipped), headers=headers)
    assert resp.status_code == 401 and resp.json()["code"] == "bad_signature"
    resp = pair.hub_client.post("/hub/v1/up/batch", content=body, headers={**headers, "X-Streetnode-Sig": "AAAA"})
    assert resp.status_code == 401
    resp = pair.hub_client.post("/hub/v1/up/batch", content=body,
                                headers={**headers, "X-Streetnode-Signer": "someone-else"})
    assert resp.status_code == 403 and resp.json()["code"] == "unknown_node"
    resp = pair.hub_client.post("/hub/v1/up/begin", content=body, headers=headers)  # signed for another purpose
    assert resp.status_code == 401
    assert hub_rows(pair) == []


def test_checkpoint_is_written_only_after_the_hubs_durable_ack(pair: Pair) -> None:
    pair.new_case()
    # The hub has never heard of this node: it refuses, and the street's checkpoint must not move.
    pair.hub_store.write(lambda db: db.execute("UPDATE hub_nodes SET revoked_at = '2026-01-01' WHERE 1"))
    with pytest.raises(HubRefused):
        pair.sync()
    side = pair.street_store.read(lambda db: street_side(pair.street, db))
    assert side is not None
    ck = pair.street_store.read(lambda db: checkpoints.load(db, up_replication_id(side)))
    assert ck is None or ck.source_last_seq == 0
    pair.hub_store.write(lambda db: db.execute("UPDATE hub_nodes SET revoked_at = NULL WHERE 1"))
    summary = pair.sync()
    assert summary.resumed_from is not None  # the same session, continued
    ck = pair.street_store.read(lambda db: checkpoints.load(db, up_replication_id(side)))
    assert ck is not None and ck.source_last_seq == pair.street_store.read(changes.high_seq)
    hub_ck = pair.hub_store.query("SELECT source_last_seq, session_id FROM sync_checkpoint WHERE replication_id = ?",
                                  [up_replication_id(side)])
    assert hub_ck[0]["source_last_seq"] == ck.source_last_seq and hub_ck[0]["session_id"] == ck.session_id


def test_a_batch_past_a_hole_is_stored_but_not_acknowledged(pair: Pair) -> None:
    for _ in range(3):
        pair.new_case()
    side = pair.street_store.read(lambda db: street_side(pair.street, db))
    assert side is not None
    rep = up_replication_id(side)
    client = HubClient("http://testserver", side.key, side.node_id, side.pin.public_key, client=pair.hub_client)
    now = now_china()
    later = pair.street_store.read(lambda db: build_batch(db, side, 3, session_id="s", replication_id=rep, now=now))
    assert later is not None
    ack = client.call("/hub/v1/up/batch", "up_batch", later.batch)
    assert ack["acked_through_seq"] == 0 and ack["counts"]["created"] == len(later.batch["rows"])
    summary = pair.sync()  # the next session fills the hole; the stored rows come back as duplicates
    assert summary.acked_through_seq == summary.high_seq
    resent = summary.counts["duplicate"] + summary.counts.get("updated", 0)
    assert resent == len(later.batch["rows"]) and summary.counts["created"] == 3
    assert len(hub_rows(pair)) == len(street_log(pair))


def test_rows_of_another_street_are_refused_and_recorded_as_conflicts(pair: Pair) -> None:
    def foreign(db):  # type: ignore[no-untyped-def]
        changes.record(db, "grid_note", "n-1", "440106/440106001000/x")

    pair.street_store.write(foreign)
    summary = pair.sync()
    assert summary.counts["refused"] == 1
    conflict = pair.hub_store.query("SELECT kind, entity_id FROM sync_conflicts")
    assert conflict == [{"kind": "out_of_scope", "entity_id": "n-1"}]
    assert pair.hub_store.query("SELECT 1 FROM hub_records WHERE entity_id = 'n-1'") == []
    assert len(hub_rows(pair)) == len(street_log(pair))  # kept as evidence, and the ack is contiguous


def test_unknown_entities_travel_as_references(pair: Pair) -> None:
    pair.street_store.write(lambda db: changes.record(db, "legacy_thing", "x-1", "440106/440106006000", op="delete"))
    pair.sync()
    row = pair.hub_store.query("SELECT kind, op, data FROM hub_rows WHERE entity_id = 'x-1'")[0]
    assert row["kind"] == "ref" and row["op"] == "delete" and row["data"] in (None, "null")


def test_a_hall_applicant_reaches_the_district_sealed_and_readable_only_there(pair: Pair) -> None:
    from server.domain.personal import id_card_check_char
    from server.node import data_key
    from server.store.calendars import current_calendar
    from server.store.hall import handle_application
    from server.store.intake import IntakeContext

    id17 = "44010619900101123"
    id_card = id17 + id_card_check_char(id17)
    clerk = pair.principal("clerk")
    payload = {"item_code": "GF00101000-440106000000-01", "materials": [], "note": "",
               "applicant": {"name": "陈大文", "id_card": id_card, "phone": "13800008000", "address": "石牌东路 1 号"}}

    def intake(db):  # type: ignore[no-untyped-def]
        ctx = IntakeContext(node_id="test-street", principal=clerk, received_at=now_china(),
                            calendar=current_calendar(db), services={"data_key": data_key(pair.street)})
        return handle_application(db, payload, ctx)

    result = pair.street_store.write(intake)
    assert result.status == "created", result.errors
    case_id = result.record["case_id"]
    pair.sync()
    row = pair.hub_store.query(
        "SELECT data, sealed FROM hub_records WHERE entity = 'hall_application' AND entity_id = ?", [case_id])[0]
    assert "陈大文" not in row["data"] and id_card not in row["data"] and "13800008000" not in row["data"]
    assert json.loads(row["data"])["item_code"] == payload["item_code"]
    district = EncryptionKeyPair.load(pair.hub.key_dir / "district-enc.key")
    personal = records.open_personal(json.loads(row["sealed"]), district, "test-street", "hall_application", case_id)
    assert personal["applicant"] == payload["applicant"]
