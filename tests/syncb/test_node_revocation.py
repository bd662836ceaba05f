"""Revoking a stolen street node at the hub: its key refused from then on (also on re-enrolment), the
decisions queued for it withdrawn, one audit entry; a replacement enrols with a new key and syncs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from server.cli import main
from server.domain.crypto import SigningKey, b64url_decode
from server.domain.ids import now_china
from sync.hub import HubError, enrol_node
from sync.pairing import node_sheet
from sync.replication import HubRefused
from tests.conftest import Logins
from tests.syncb.conftest import HANDUP, Pair


def _revoke_with_cli(pair: Pair, node_id: str, reason: str = "设备被盗") -> str:
    # the hub app holds its database open in this process; the CLI opens its own connection, as an
    # operator's shell would next to the running hub
    result = CliRunner().invoke(main, ["--data-dir", str(pair.hub.data_dir), "hub", "revoke-node", node_id,
                                       "--reason", reason])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_revoked_node_is_refused_and_its_queued_decision_is_withdrawn(pair: Pair) -> None:
    cid = pair.new_case("困难救助", kind=HANDUP)
    pair.step(cid, "handler", "hand_up")
    pair.sync()
    decided = pair.hub_client.post(f"/hub/v1/cases/{cid}/decisions", headers=Logins(pair.hub_client)("approver"),
                                   json={"transition": "approve", "base_version": 2, "payload": {"note": "同意"}})
    assert decided.status_code == 200, decided.text
    stream, seq = decided.json()["stream"], decided.json()["seq"]

    output = _revoke_with_cli(pair, pair.street.node_id)
    assert "已吊销街道节点" in output and cid in output  # the withdrawn decision is named for re-deciding

    with pytest.raises(HubRefused) as refused:
        pair.sync()
    assert "吊销" in str(refused.value) or "revoked" in str(refused.value)
    package = pair.hub_store.query("SELECT ptype, body FROM hub_packages WHERE stream = ? AND seq = ?", [stream, seq])
    assert package[0]["ptype"] == "void" and json.loads(package[0]["body"])["items"] == []
    entries = pair.hub_store.query("SELECT detail FROM audit_log WHERE action = 'sync.revoke_node'")
    assert len(entries) == 1 and json.loads(entries[0]["detail"])["withdrawn"][0]["case_id"] == cid
    assert pair.street_store.query("SELECT state FROM cases WHERE id = ?", [cid])[0]["state"] != "approved"


def test_the_revoked_key_can_never_be_enrolled_again_but_a_new_key_can(pair: Pair) -> None:
    sheet = pair.street_store.read(lambda db: node_sheet(pair.street, db))
    _revoke_with_cli(pair, sheet["node_id"])

    def enrol(public_key: bytes) -> dict[str, object]:
        return pair.hub_store.write(lambda db: enrol_node(
            db, node_id=sheet["node_id"], org_unit=sheet["org_unit"], public_key=public_key, enc_public_key=None,
            actor="cli", role="system", now=now_china()))

    with pytest.raises(HubError) as again:
        enrol(b64url_decode(sheet["public_key"]))
    assert again.value.code == "key_revoked" and again.value.field == "public_key"
    replacement = enrol(SigningKey.generate().public_raw)
    row = pair.hub_store.query("SELECT revoked_at, key_id FROM hub_nodes WHERE node_id = ?", [sheet["node_id"]])[0]
    assert row["revoked_at"] is None and row["key_id"] == replacement["key_id"]


def test_revoking_needs_a_known_node_a_reason_and_happens_once(pair: Pair) -> None:
    hub = ["--data-dir", str(pair.hub.data_dir), "hub", "revoke-node"]
    unknown = CliRunner().invoke(main, [*hub, "no-such-node", "--reason", "丢失"])
    assert unknown.exit_code != 0 and "未在区级枢纽登记" in unknown.output
    blank = CliRunner().invoke(main, [*hub, pair.street.node_id, "--reason", " "])
    assert blank.exit_code != 0 and "原因" in blank.output
    _revoke_with_cli(pair, pair.street.node_id)
    twice = CliRunner().invoke(main, [*hub, pair.street.node_id, "--reason", "设备被盗"])
    assert twice.exit_code != 0 and "已于" in twice.output
    assert len(pair.hub_store.query("SELECT 1 FROM audit_log WHERE action = 'sync.revoke_node'")) == 1
