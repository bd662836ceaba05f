"""Revoking a street node at the hub: a stolen or lost street machine (issue: node revocation).

From the moment of revocation the node's key is refused for every message (``sync.hub._node`` checks
``revoked_at``), and for good: the key is listed in ``hub_revoked_keys`` so that re-enrolling the same
key is refused too — a replacement machine enrols with a key of its own. Packages already queued for
that street but not yet applied by it (the district's decisions on its handed-up cases) are withdrawn:
each is replaced at its seq by a signed ``void`` package, so the stream keeps no gap for the
replacement node, and the withdrawn decisions are listed in the audit entry and the command's output
for the district to decide again once the replacement is enrolled.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.canonical import canonical_json
from server.domain.crypto import SigningKey
from server.store import audit
from sync.hub import HubError
from sync.packages import make_package

__all__ = ["revoke_node"]


def revoke_node(db: Database, key: SigningKey, hub_id: str, *, node_id: str, reason: str, actor: str, role: str,
                now: datetime) -> dict[str, Any]:
    """Revoke ``node_id``; returns its key id and the withdrawn package items (decisions to re-make)."""
    if not reason.strip():
        raise HubError(422, "reason_required", "reason", "吊销节点须写明原因（如：设备被盗）")
    row = db.execute("SELECT * FROM hub_nodes WHERE node_id = ?", [node_id]).fetchone()
    if row is None:
        raise HubError(404, "unknown_node", "node_id", f"节点 {node_id} 未在区级枢纽登记")
    node = dict(row)
    if node["revoked_at"]:
        raise HubError(409, "already_revoked", "node_id", f"节点 {node_id} 已于 {node['revoked_at']} 被吊销")
    db.execute("UPDATE hub_nodes SET revoked_at = ? WHERE node_id = ?", [now.isoformat(), node_id])
    db.execute("INSERT INTO hub_revoked_keys (key_id, node_id, public_key, revoked_at, reason, revoked_by)"
               " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key_id) DO NOTHING",
               [node["key_id"], node_id, node["public_key"], now.isoformat(), reason, actor])
    withdrawn = _withdraw_pending(db, key, hub_id, node_id, json.loads(node["down_applied"] or "{}"), now)
    audit.append(db, actor=actor, role=role, action="sync.revoke_node", object_type="node", object_id=node_id,
                 org_path=node["org_path"], after={"revoked_at": now.isoformat(), "key_id": node["key_id"]},
                 detail={"reason": reason, "withdrawn": withdrawn})
    return {"node_id": node_id, "key_id": node["key_id"], "revoked_at": now.isoformat(), "withdrawn": withdrawn}


def _withdraw_pending(db: Database, key: SigningKey, hub_id: str, node_id: str, applied: dict[str, int],
                      now: datetime) -> list[dict[str, Any]]:
    """Void every package of the node's own stream it has not applied (district-wide streams stay)."""
    stream = f"node:{node_id}"
    rows = db.execute(
        "SELECT seq, ptype, body FROM hub_packages WHERE stream = ? AND seq > ? AND ptype != 'void' ORDER BY seq",
        [stream, int(applied.get(stream, 0))],
    ).fetchall()
    out: list[dict[str, Any]] = []
    for seq, ptype, body in rows:
        for item in json.loads(body)["items"]:
            out.append({"stream": stream, "seq": seq, "ptype": ptype, "case_id": item.get("case_id"),
                        "transition": item.get("transition"), "decided_at": item.get("decided_at")})
        void = make_package(key, hub_id, stream, int(seq), "void", True, [], now)
        db.execute("UPDATE hub_packages SET ptype = 'void', package_id = ?, body = ? WHERE stream = ? AND seq = ?",
                   [void["package_id"], canonical_json(void).decode("utf-8"), stream, seq])
    return out
