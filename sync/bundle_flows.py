"""``streetnode bundle export|import`` at both ends: what goes into a bundle and how it is applied.

Street → hub (``up``): the session's begin message and every batch since the hub's last acknowledgement,
signed by the node exactly as over HTTP, sealed to the district's key. Until the hub's answer comes back
in a down-bundle, each export carries everything still unacknowledged (harmless twice).

Hub → street (``down``): the node's packages after what it last reported applying, and a hub-signed
state (``acked_through_seq``, the hub's checkpoint, the latest counter-signature), sealed to the street's
``node-enc`` key. The street checkpoints the acknowledged seq (rewinding if the hub's epoch changed, so
what a restored hub lacks is exported again), stores the packages and applies them in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from schemas.sync_leg_b import BeginRequest, UpBatch
from server.config import Settings
from server.domain.crypto import EncryptionKeyPair, b64url_decode
from server.domain.ids import uuid7
from server.node import node_key
from server.store import audit, changes
from server.store.db import Store
from server.store.seed import get_meta, set_meta
from sync import checkpoints, down_apply, up_batches, wire
from sync.bundle import BundleError, pack_message, peek_manifest, read_bundle, unpack_message, write_bundle
from sync.countersigs import store_countersig
from sync.hub import HubError, HubSide, handle_begin, node_public_key, open_node_message
from sync.hub_publish import publish_pending
from sync.hub_receive import receive_batch
from sync.packages import PackageRefused, record_conflict
from sync.pairing import StreetSide, street_enc_key, street_side
from sync.replication import up_replication_id

__all__ = ["export_down", "export_up", "import_down", "import_up"]

Now = Callable[[], datetime]


def _side(store: Store, settings: Settings) -> StreetSide:
    side = store.read(lambda db: street_side(settings, db))
    if side is None:
        raise BundleError("本节点尚未与区级枢纽配对", "this street node has not pinned a hub")
    return side


def _hub(store: Store, settings: Settings) -> HubSide:
    return HubSide(store.read(lambda db: get_meta(db, "node_id")) or settings.node_id, node_key(settings))


def export_up(store: Store, settings: Settings, path: Path, now: Now) -> dict[str, Any]:
    side = _side(store, settings)
    rep_id, session_id = up_replication_id(side), uuid7()

    def read(db: Database) -> tuple[dict[str, Any], list[up_batches.BuiltBatch]]:
        ck = checkpoints.load(db, rep_id)
        seq, head_hash = audit.head(db)
        begin = {"type": "up_begin", "node_id": side.node_id, "hub_id": side.pin.hub_id, "epoch": side.epoch,
                 "replication_id": rep_id, "session_id": session_id, "checkpoint": ck.as_wire() if ck else None,
                 "high_seq": changes.high_seq(db), "audit_head": {"seq": seq, "hash": head_hash},
                 "down_applied": down_apply.down_applied(db, side.node_id), "created_at": now().isoformat()}
        built, after, cache = [], ck.source_last_seq if ck else 0, {}  # type: ignore[var-annotated]
        while (b := up_batches.build_batch(db, side, after, session_id=session_id, replication_id=rep_id,
                                           now=now(), table_cache=cache)) is not None:
            built.append(b)
            after = b.to_seq
        return begin, built

    begin, built = store.read(read)
    messages = [pack_message(*wire.sign_message(side.key, side.node_id, "up_batch", b.batch)) for b in built]
    rows = sum(len(b.batch["rows"]) for b in built)
    contents = {"batches": len(built), "rows": rows, "after_seq": built[0].batch["after_seq"] if built else None,
                "to_seq": built[-1].to_seq if built else None, "audit_seq": begin["audit_head"]["seq"]}
    write_bundle(path, direction="up", sender=side.node_id, recipient=side.pin.hub_id, key=side.key,
                 recipient_public=side.pin.district_enc, created_at=now(), contents=contents,
                 payload={"begin": pack_message(*wire.sign_message(side.key, side.node_id, "up_begin", begin)),
                          "batches": messages})

    def record(db: Database) -> None:
        for b in built:
            for c in b.local_conflicts:
                record_conflict(db, "hub_owned_local", side.node_id, c["entity"], c["entity_id"], c["node_seq"],
                                {"message": "本节点自行修改了区级发布的数据，已报区级枢纽"}, now(),
                                conflict_id=f"hubowned-{c['node_seq']}")
        _session(db, session_id, "bundle_export", contents, now())

    store.write(record)
    return {"file": str(path), **contents}


def import_up(store: Store, settings: Settings, path: Path, now: Now) -> dict[str, Any]:
    hub = _hub(store, settings)
    district = EncryptionKeyPair.load(settings.key_dir / "district-enc.key")
    sender = str(peek_manifest(path).get("from", ""))
    try:
        public = store.read(lambda db: node_public_key(db, sender))
    except HubError as exc:
        raise BundleError(f"发送节点未登记或已吊销：{exc.message_zh}", f"sender {sender!r} not enrolled") from None
    bundle = read_bundle(path, sender_public=public, recipient=district, expect_direction="up", expect_to=hub.hub_id)

    def verify(db: Database) -> tuple[BeginRequest, list[UpBatch]]:
        begin = open_node_message(db, *unpack_message(bundle.payload.get("begin")), "up_begin", BeginRequest)
        batches = [open_node_message(db, *unpack_message(m), "up_batch", UpBatch)
                   for m in bundle.payload.get("batches", [])]
        return begin, batches

    try:  # every inner signature checks out before anything is applied
        begin, batches = store.read(verify)
    except HubError as exc:
        raise BundleError(f"同步包内的数据无法验证：{exc.message_zh}", f"inner message refused: {exc}") from None

    def apply(db: Database) -> dict[str, Any]:
        handle_begin(db, hub, begin, now())
        totals: dict[str, int] = {}
        acked = 0
        for batch in batches:
            ack = receive_batch(db, hub, batch, "bundle", now())
            acked = ack["acked_through_seq"]
            for k, v in ack["counts"].items():
                totals[k] = totals.get(k, 0) + v
        return {"node_id": begin.node_id, "batches": len(batches), "counts": totals, "acked_through_seq": acked}

    try:
        return store.write(apply)
    except HubError as exc:
        raise BundleError(f"同步包被拒绝：{exc.message_zh}", str(exc)) from None


def export_down(store: Store, settings: Settings, path: Path, node_id: str, now: Now) -> dict[str, Any]:
    hub = _hub(store, settings)
    store.write(lambda db: publish_pending(db, hub.key, hub.hub_id, now()))

    def read(db: Database) -> dict[str, Any]:
        node = db.execute("SELECT * FROM hub_nodes WHERE node_id = ? AND revoked_at IS NULL", [node_id]).fetchone()
        if node is None:
            raise BundleError(f"节点 {node_id} 未在区级枢纽登记", f"node {node_id} not enrolled")
        node = dict(node)
        if not node["enc_public_key"]:
            raise BundleError(f"节点 {node_id} 未登记加密公钥，无法生成下发包", f"node {node_id} has no enc key")
        applied = json.loads(node["down_applied"])
        packages = [json.loads(r[0]) for stream in ("all", f"node:{node_id}") for r in db.execute(
            "SELECT body FROM hub_packages WHERE stream = ? AND seq > ? ORDER BY seq",
            [stream, int(applied.get(stream, 0))]).fetchall()]
        ck = checkpoints.load(db, checkpoints.replication_id("up", node_id, hub.hub_id, node["key_id"]))
        sig = db.execute("SELECT body FROM hub_countersigs WHERE node_id = ? ORDER BY rowid DESC LIMIT 1",
                         [node_id]).fetchone()
        state = {"type": "bundle_state", "node_id": node_id, "hub_id": hub.hub_id,
                 "hub_epoch": get_meta(db, "epoch") or "", "acked_through_seq": int(node["acked_through_seq"]),
                 "checkpoint": ck.as_wire() if ck else None, "countersig": json.loads(sig[0]) if sig else None,
                 "request_sha256": "bundle"}
        return {"node": node, "packages": packages, "state": state}

    got = store.read(read)
    contents = {"packages": len(got["packages"]), "acked_through_seq": got["state"]["acked_through_seq"]}
    write_bundle(path, direction="down", sender=hub.hub_id, recipient=node_id, key=hub.key,
                 recipient_public=b64url_decode(got["node"]["enc_public_key"]), created_at=now(), contents=contents,
                 payload={"state": pack_message(*wire.sign_message(hub.key, hub.hub_id, "reply", got["state"])),
                          "packages": got["packages"]})
    return {"file": str(path), "node_id": node_id, **contents}


def import_down(store: Store, settings: Settings, path: Path, now: Now) -> dict[str, Any]:
    side = _side(store, settings)
    bundle = read_bundle(path, sender_public=side.pin.public_key, recipient=street_enc_key(settings),
                         expect_direction="down", expect_to=side.node_id)
    try:
        state = wire.open_message(*unpack_message(bundle.payload.get("state")), side.pin.public_key, "reply")
        acked = int(state["acked_through_seq"])
        hub_epoch = str(state["hub_epoch"])
        if state.get("node_id") != side.node_id:
            raise ValueError(f"state for node {state.get('node_id')}")
    except (wire.WireError, KeyError, TypeError, ValueError) as exc:
        raise BundleError("同步包内的枢纽状态无法验证", f"bundle state refused: {exc}") from None
    packages = bundle.payload.get("packages", [])
    rep_id, session_id = up_replication_id(side), uuid7()

    def receive(db: Database) -> int:
        if state.get("countersig"):
            store_countersig(db, side, state["countersig"], now())
        local = checkpoints.load(db, rep_id)
        if local is None or local.peer_epoch != hub_epoch or acked > local.source_last_seq:
            # Only the hub's own acknowledgement moves the checkpoint; a new hub epoch may move it back.
            checkpoints.save(db, rep_id, session_id, acked, peer_epoch=hub_epoch)
        return down_apply.store_packages(db, side, packages, now())

    try:
        received = store.write(receive)
    except PackageRefused as exc:
        raise BundleError(f"同步包内的下发包无法验证：{exc.message_zh}", exc.message_en) from None
    applied, errors = down_apply.apply_all(store, side, session_id, now)
    contents = {"packages": len(packages), "received": received, "applied": applied, "errors": errors,
                "acked_through_seq": acked}
    at = now()

    def finish(db: Database) -> None:
        _session(db, session_id, "bundle_import", contents, at)
        set_meta(db, "last_sync", at.isoformat())

    store.write(finish)
    return contents


def _session(db: Database, session_id: str, trigger: str, stats: dict[str, Any], at: datetime) -> None:
    db.execute("INSERT INTO sync_sessions (session_id, trigger, stage, started_at, updated_at, finished_at, stats)"
               " VALUES (?, ?, 'completed', ?, ?, ?, ?)",
               [session_id, trigger, at.isoformat(), at.isoformat(), at.isoformat(),
                json.dumps(stats, ensure_ascii=False)])
