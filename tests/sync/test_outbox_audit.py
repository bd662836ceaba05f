"""One tablet submission, one audit entry (DESIGN.md §5; issue 9 "one audit entry per submission").

The entry names the envelope (submission id, device seq, payload hash, the receipt's node seq) and its
effect (the handler's own entry, e.g. ``case.accept``, exactly as the REST route writes it), and the
chain stays verifiable, so the hub's counter-signature over its head means what it did before.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from server.store.audit import verify_chain
from server.store.db import Store
from tests.conftest import Logins
from tests.sync.helpers import TEST_KIND, TestDevice, enrol_device, post_outbox


def _head(store: Store) -> int:
    return int(store.query("SELECT COALESCE(MAX(seq), 0) AS n FROM audit_log")[0]["n"])


def _entries_after(store: Store, seq: int) -> list[dict[str, Any]]:
    rows = store.query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq", [seq])
    for r in rows:
        r["detail"] = json.loads(r["detail"])
    return rows


def _send(client: TestClient, auth: Logins, device: TestDevice, env: dict[str, Any]) -> dict[str, Any]:
    resp = post_outbox(client, auth(device.username), device, [env])
    assert resp.status_code == 200, resp.text
    return resp.json()["results"][0]  # type: ignore[no-any-return]


def test_each_outbox_submission_writes_exactly_one_audit_entry_naming_envelope_and_effect(
        client: TestClient, auth: Logins, store: Store) -> None:
    tablet = enrol_device(client, auth, "clerk", label="窗口平板")
    auth("clerk")  # sign-in entries are written before we start counting

    mark = _head(store)
    create = tablet.envelope(TEST_KIND, {"title": "许可"})
    made = _send(client, auth, tablet, create)
    assert made["status"] == "created"
    (entry,) = _entries_after(store, mark)
    assert entry["action"] == "case.submit" and entry["object_id"] == made["record"]["case_id"]
    assert entry["detail"]["envelope"] == {
        "submission_id": create["submission_id"], "kind": TEST_KIND, "status": "created",
        "device_seq": create["device_seq"], "node_seq": made["receipt"]["node_seq"],
        "payload_sha256": create["payload_sha256"],
    }

    mark = _head(store)
    accept = tablet.envelope("case_event", {"case_id": made["record"]["case_id"], "transition": "accept",
                                            "base_version": 1})
    assert _send(client, auth, tablet, accept)["status"] == "created"
    (entry,) = _entries_after(store, mark)
    assert entry["action"] == "case.accept"  # the same action the REST route's entry has
    assert entry["detail"]["envelope"]["submission_id"] == accept["submission_id"]
    assert entry["detail"]["event_id"] == accept["submission_id"]

    mark = _head(store)
    stale = tablet.envelope("case_event", {"case_id": made["record"]["case_id"], "transition": "reject",
                                           "base_version": 1, "payload": {"reason": "材料不全"}})
    assert _send(client, auth, tablet, stale)["status"] == "stale_version"
    (entry,) = _entries_after(store, mark)
    assert entry["action"] == "case.conflict" and entry["detail"]["envelope"]["status"] == "stale_version"

    mark = _head(store)
    assert _send(client, auth, tablet, create)["status"] == "duplicate"  # a replay changes nothing
    assert _entries_after(store, mark) == []
    assert store.read(verify_chain).ok


def test_a_refused_submission_writes_only_its_quarantine_entry(client: TestClient, auth: Logins,
                                                                store: Store) -> None:
    tablet = enrol_device(client, auth, "clerk", label="窗口平板")
    auth("clerk")
    mark = _head(store)
    bad = tablet.envelope(TEST_KIND, {"title": "坏", "misbehave": "write_then_invalid"})
    assert _send(client, auth, tablet, bad)["status"] == "invalid"
    (entry,) = _entries_after(store, mark)  # the handler's case.submit was rolled back with its case
    assert entry["action"] == "sync.quarantine" and entry["detail"]["submission_id"] == bad["submission_id"]
    assert store.read(verify_chain).ok
