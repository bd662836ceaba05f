"""The district hub's side of leg B: enrolled nodes, signed node messages, the session handshake.

Order of every node message (DESIGN §6 rule 5): look up the signer's enrolled key → verify the
signature over the raw bytes (``sync.wire``) → decompress → parse (pydantic) → apply in one transaction.
``handle_begin`` opens a session: it measures the node's clock offset, counter-signs the node's audit
chain head (flagging a chain that got shorter or changed, DESIGN §5), pads streams a restored hub lost,
publishes what changed, and answers where the up-replication resumes. Receiving batches and serving
packages: ``sync.hub_receive``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlite_utils import Database

from schemas.sync_leg_b import BeginRequest
from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import ED25519, SigningKey, b64url_decode, b64url_encode, key_id_of
from server.store import audit
from server.store.seed import get_meta
from sync import checkpoints, wire
from sync.errors import SyncError
from sync.hub_publish import pad_stream, publish_pending, stream_high
from sync.packages import record_conflict

__all__ = ["HubError", "HubSide", "countersign", "enrol_node", "handle_begin", "node_public_key",
           "open_node_message", "sign_reply"]

CLOCK_SUSPECT_MS = 5 * 60 * 1000  # sync.md §4.5: |offset| > 5 min


class HubError(SyncError):
    """Refusal of a node message: ``status`` 401 (signature), 403 (node), 404 (not a hub), 422 (shape)."""

    def __init__(self, status: int, code: str, field: str, message_zh: str, message_en: str = "") -> None:
        super().__init__(message_zh, message_en, code=code, field=field, status=status)


@dataclass(frozen=True)
class HubSide:
    hub_id: str
    key: SigningKey


def enrol_node(db: Database, *, node_id: str, org_unit: str, public_key: bytes, enc_public_key: bytes | None,
               actor: str, role: str, now: datetime) -> dict[str, Any]:
    """Register (or re-key) a street node at the hub. Re-enrolling with a new key is a key rotation."""
    unit = db.execute("SELECT path, kind FROM org_units WHERE code = ?", [org_unit]).fetchone()
    if unit is None or unit[1] != "street_office":
        raise HubError(422, "unknown_street", "org_unit", f"组织单元 {org_unit} 不是本区的街道")
    if len(public_key) != 32 or (enc_public_key is not None and len(enc_public_key) != 32):
        raise HubError(422, "bad_key", "public_key", "公钥格式错误（应为 32 字节，base64url 编码）")
    kid = key_id_of(public_key)
    if db.execute("SELECT 1 FROM hub_revoked_keys WHERE key_id = ?", [kid]).fetchone():
        raise HubError(403, "key_revoked", "public_key",
                       f"密钥 {kid} 已被吊销，不能再次登记；请在新机器上生成新的节点密钥后登记")
    db.execute(
        "INSERT INTO hub_nodes (node_id, org_unit, org_path, public_key, key_id, enc_public_key, enrolled_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET org_unit = excluded.org_unit,"
        " org_path = excluded.org_path, public_key = excluded.public_key, key_id = excluded.key_id,"
        " enc_public_key = COALESCE(excluded.enc_public_key, enc_public_key), revoked_at = NULL",
        [node_id, org_unit, unit[0], b64url_encode(public_key), kid,
         b64url_encode(enc_public_key) if enc_public_key else None, now.isoformat()],
    )
    audit.append(db, actor=actor, role=role, action="sync.enrol_node", object_type="node", object_id=node_id,
                 org_path=unit[0], detail={"key_id": kid, "org_unit": org_unit})
    return {"node_id": node_id, "org_unit": org_unit, "org_path": unit[0], "key_id": kid}


def _node(db: Database, node_id: str) -> dict[str, Any]:
    row = db.execute("SELECT * FROM hub_nodes WHERE node_id = ?", [node_id]).fetchone()
    if row is None:
        raise HubError(403, "unknown_node", "x-streetnode-signer", f"节点 {node_id} 未在区级枢纽登记")
    node = dict(row)
    if node["revoked_at"]:
        raise HubError(403, "node_revoked", "x-streetnode-signer", f"节点 {node_id} 已被吊销")
    return node


def node_public_key(db: Database, node_id: str) -> bytes:
    return b64url_decode(_node(db, node_id)["public_key"])


def open_node_message(db: Database, body: bytes, headers: Mapping[str, str], purpose: str,
                      model: type[BaseModel]) -> Any:
    """Verify, then decompress, then parse a node's message; the signer must be the node it names."""
    try:
        signer = wire.signer_of(headers)
        obj = wire.open_message(body, headers, node_public_key(db, signer), purpose)
    except wire.WireError as exc:
        status = 401 if isinstance(exc, wire.BadSignature) else 400
        raise HubError(status, "bad_signature" if status == 401 else "bad_body", exc.field, exc.message_zh,
                       exc.message_en) from None
    try:
        msg = model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise HubError(422, "validation_error", ".".join(str(p) for p in err["loc"]), f"数据不符合要求：{err['msg']}") from None
    if getattr(msg, "node_id", signer) != signer:
        raise HubError(403, "signer_mismatch", "node_id", "签名节点与数据中的节点不符")
    return msg


def sign_reply(hub: HubSide, obj: dict[str, Any], request_body: bytes) -> tuple[bytes, dict[str, str]]:
    # Binding the reply to the request's hash: an old ack can never be replayed as the answer to a new batch.
    return wire.sign_message(hub.key, hub.hub_id, "reply", {**obj, "request_sha256": sha256_hex(request_body)})


def countersign(hub: HubSide, node_id: str, seq: int, head_hash: str, now: datetime) -> dict[str, Any]:
    body = {"node_id": node_id, "hub_id": hub.hub_id, "audit_seq": seq, "audit_hash": head_hash,
            "at": now.isoformat()}
    return {**body, "sig": {"alg": ED25519, "key_id": hub.key.key_id,
                            "value": b64url_encode(hub.key.sign(canonical_json(body)))}}


def _check_audit(db: Database, node: dict[str, Any], req: BeginRequest, now: datetime) -> None:
    prev_seq, prev_hash = node["audit_seq"], node["audit_hash"]
    if prev_seq is None:
        return
    head = req.audit_head
    # A chain that got shorter, or the same length with another hash, was rewritten (DESIGN §5).
    if head.seq < prev_seq or (head.seq == prev_seq and head.hash != prev_hash):
        record_conflict(db, "audit_regression", node["node_id"], "audit_log", str(head.seq), None,
                        {"countersigned_seq": prev_seq, "countersigned_hash": prev_hash, "reported_seq": head.seq,
                         "reported_hash": head.hash, "node_epoch": req.epoch, "previous_epoch": node["epoch"]}, now)


def handle_begin(db: Database, hub: HubSide, req: BeginRequest, now: datetime) -> dict[str, Any]:
    """Start of a session: clock offset, audit head counter-signed, streets ahead of a restored hub padded,
    pending publications appended; answers where to resume."""
    if req.hub_id != hub.hub_id:
        raise HubError(403, "wrong_hub", "hub_id", f"数据发往区级枢纽 {req.hub_id}，本枢纽为 {hub.hub_id}")
    node = _node(db, req.node_id)
    rep_id = checkpoints.replication_id("up", req.node_id, hub.hub_id, node["key_id"])
    if req.replication_id != rep_id:
        raise HubError(422, "replication_id", "replication_id", "复制标识不符（节点密钥或枢纽已变更）")
    offset_ms = _offset_ms(req.created_at, now)
    suspect = offset_ms is None or abs(offset_ms) > CLOCK_SUSPECT_MS
    _check_audit(db, node, req, now)
    sig = countersign(hub, req.node_id, req.audit_head.seq, req.audit_head.hash, now)
    db.execute("INSERT INTO hub_countersigs (node_id, audit_seq, audit_hash, body, at) VALUES (?, ?, ?, ?, ?)",
               [req.node_id, req.audit_head.seq, req.audit_head.hash, json.dumps(sig), now.isoformat()])
    streams = {"all": 0, f"node:{req.node_id}": 0}
    for stream in streams:
        applied = int(req.down_applied.get(stream, 0))
        pad_stream(db, hub.key, hub.hub_id, stream, applied, now)
        checkpoints.save(db, checkpoints.replication_id("down:" + stream, hub.hub_id, req.node_id, hub.key.key_id),
                         req.session_id, applied)
    publish_pending(db, hub.key, hub.hub_id, now)
    db.execute(
        "UPDATE hub_nodes SET epoch = ?, last_seen_at = ?, clock_offset_ms = ?, clock_suspect = ?, audit_seq = ?,"
        " audit_hash = ?, down_applied = ? WHERE node_id = ?",
        [req.epoch, now.isoformat(), offset_ms, int(suspect), req.audit_head.seq, req.audit_head.hash,
         json.dumps(req.down_applied), req.node_id],
    )
    mine = checkpoints.load(db, rep_id)
    return {
        "type": "up_begin_ok", "hub_id": hub.hub_id, "hub_epoch": get_meta(db, "epoch") or "",
        "node_id": req.node_id, "acked_through_seq": int(node["acked_through_seq"]),
        "checkpoint": mine.as_wire() if mine else None, "countersig": sig,
        "streams": {s: stream_high(db, s) for s in streams}, "server_time": now.isoformat(),
        "clock_offset_ms": offset_ms or 0, "clock_suspect": suspect,
    }


def _offset_ms(street_time: str, now: datetime) -> int | None:
    try:
        then = datetime.fromisoformat(street_time)
    except ValueError:
        return None
    if then.utcoffset() is None:
        return None
    return int((now - then).total_seconds() * 1000)
