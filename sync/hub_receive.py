"""The hub receives up-batches durably and idempotently, and serves down-packages (sync.md §4.3).

``receive_batch`` stores each row once per ``(node_id, node_seq)`` — the database enforces it — and
answers a contiguous ``acked_through_seq``: a batch advances it only when it starts at or below it, so
the street never checkpoints past a hole. A row that arrives again with the same hash is a duplicate;
one whose seq now names another record (a street restored from backup) is a ``seq_reused`` conflict
with both kept; rows outside the node's street, or of a hub-owned type, are kept as evidence and
recorded as conflicts, never applied; a record id another node already sent is an ``id_collision``.
The hub's checkpoint and the node's acked seq are written in the same transaction as the rows.
Rows, records, batches and conflicts are kept through the ``HubRecords`` repository (the storage seam
a PostgreSQL-backed city hub replaces, DESIGN.md §10), not by SQL here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from schemas.sync_leg_b import PullRequest, UpBatch, UpRow
from server.domain.canonical import canonical_json, sha256_hex
from server.domain.roles import path_within
from server.store.repos import HubRecord, HubRecords, HubRow
from server.store.repos_sqlite import repos_for
from server.store.seed import get_meta
from sync import checkpoints
from sync.hub import HubError, HubSide, _node
from sync.hub_publish import stream_high
from sync.packages import hub_owned_entities

__all__ = ["pull_packages", "receive_batch"]


def _stable_id(*parts: object) -> str:
    return sha256_hex(canonical_json([str(p) for p in parts]))[:32]


def _check_shape(batch: UpBatch) -> list[UpRow]:
    rows = sorted(batch.rows, key=lambda r: r.seq)
    if batch.to_seq < batch.after_seq or any(not batch.after_seq < r.seq <= batch.to_seq for r in rows):
        raise HubError(422, "validation_error", "rows", "批次中的序号超出声明范围")
    if len({r.seq for r in rows}) != len(rows):
        raise HubError(422, "validation_error", "rows", "批次中有重复的序号")
    return rows


def receive_batch(db: Database, hub: HubSide, batch: UpBatch, via: str, now: datetime) -> dict[str, Any]:
    if batch.hub_id != hub.hub_id:
        raise HubError(403, "wrong_hub", "hub_id", f"数据发往区级枢纽 {batch.hub_id}，本枢纽为 {hub.hub_id}")
    node = _node(db, batch.node_id)
    rows = _check_shape(batch)
    node_id, at = batch.node_id, now.isoformat()
    repo = repos_for(db).hub
    existing = repo.rows_between(node_id, batch.after_seq, batch.to_seq)
    others = [r[0] for r in db.execute("SELECT path FROM org_units WHERE kind = 'street_office' AND path != ?",
                                       [node["org_path"]]).fetchall()]
    owned = hub_owned_entities()
    scope: dict[str, bool] = {}
    counts = {"created": 0, "duplicate": 0, "updated": 0, "conflict": 0, "refused": 0}
    new_rows: list[HubRow] = []
    to_apply: dict[tuple[str, str], HubRecord] = {}
    for r in rows:
        data = json.dumps(r.data, ensure_ascii=False, separators=(",", ":")) if r.data is not None else None
        sealed = json.dumps(r.sealed, separators=(",", ":")) if r.sealed else None
        prev = existing.get(r.seq)
        if prev is None:
            new_rows.append(HubRow(node_id, r.seq, batch.epoch, batch.batch_id, r.entity, r.id, r.op, r.kind,
                                   r.org_path, r.at, data, sealed, r.sha256, at))
            counts["created"] += 1
        elif prev[0] == r.sha256:
            counts["duplicate"] += 1
            continue
        elif (prev[1], prev[2]) != (r.entity, r.id):
            repo.add_conflict("seq_reused", node_id, r.entity, r.id, r.seq,
                              {"stored": {"entity": prev[1], "id": prev[2], "sha256": prev[0]},
                               "received": r.model_dump(), "epoch": batch.epoch}, now,
                              _stable_id("seq_reused", node_id, r.seq, r.sha256))
            counts["conflict"] += 1
        else:
            counts["updated"] += 1  # the same record resent with newer content
        if r.kind == "echo":
            continue
        if r.entity in owned:
            repo.add_conflict("hub_owned", node_id, r.entity, r.id, r.seq,
                              {"message": "街道节点不能自行修改区级发布的数据", "row": r.model_dump()}, now,
                              _stable_id("hub_owned", node_id, r.seq))
            counts["refused"] += 1
            continue
        foreign = scope.get(r.org_path)
        if foreign is None:  # rows of a batch share a few org paths: decide each once
            foreign = scope[r.org_path] = bool(r.org_path) and any(path_within(r.org_path, p) for p in others)
        if foreign:
            repo.add_conflict("out_of_scope", node_id, r.entity, r.id, r.seq,
                              {"message": "记录属于其他街道", "org_path": r.org_path}, now,
                              _stable_id("out_of_scope", node_id, r.seq))
            counts["refused"] += 1
            continue
        to_apply[(r.entity, r.id)] = HubRecord(r.entity, r.id, node_id, r.op, r.org_path, data, sealed, r.seq, at)
    repo.add_rows(new_rows)
    _apply_records(repo, node_id, to_apply, counts, now)
    acked = int(node["acked_through_seq"])
    if batch.after_seq <= acked:  # contiguous: never acknowledge past a hole
        acked = max(acked, batch.to_seq)
    repo.add_batch(batch.batch_id, node_id, batch.session_id, batch.after_seq, batch.to_seq, len(rows), at, via)
    repo.set_acked(node_id, acked, at)
    rep_id = checkpoints.replication_id("up", node_id, hub.hub_id, node["key_id"])
    checkpoints.save(db, rep_id, batch.session_id, acked, peer_epoch=batch.epoch, written=counts["created"],
                     failures=counts["refused"] + counts["conflict"])
    return {"type": "up_ack", "hub_id": hub.hub_id, "hub_epoch": get_meta(db, "epoch") or "", "node_id": node_id,
            "batch_id": batch.batch_id, "acked_through_seq": acked, "counts": counts, "server_time": at}


def _apply_records(repo: HubRecords, node_id: str, to_apply: dict[tuple[str, str], HubRecord],
                   counts: dict[str, int], now: datetime) -> None:
    """Upsert the hub's current copy of each record; a later node_seq wins (counters, never clocks)."""
    by_entity: dict[str, list[str]] = {}
    for entity, eid in to_apply:
        by_entity.setdefault(entity, []).append(eid)
    for entity, ids in by_entity.items():
        for eid, owner in repo.owners_elsewhere(entity, ids, node_id).items():
            rec = to_apply.pop((entity, eid))
            repo.add_conflict("id_collision", node_id, entity, eid, rec.node_seq,
                              {"message": "另一街道节点已提交同一标识的记录", "owner": owner}, now,
                              _stable_id("id_collision", node_id, entity, eid))
            counts["conflict"] += 1
    repo.upsert(list(to_apply.values()))


def pull_packages(db: Database, hub: HubSide, req: PullRequest) -> dict[str, Any]:
    """Packages after the node's seqs on its two streams (every street's, and its own), oldest first."""
    if req.hub_id != hub.hub_id:
        raise HubError(403, "wrong_hub", "hub_id", f"请求发往区级枢纽 {req.hub_id}，本枢纽为 {hub.hub_id}")
    _node(db, req.node_id)
    streams = ["all", f"node:{req.node_id}"]
    unknown = sorted(set(req.after) - set(streams))
    if unknown:
        raise HubError(403, "stream_forbidden", "after", f"无权读取下发流 {unknown[0]}")
    packages: list[dict[str, Any]] = []
    has_more = False
    for stream in streams:
        room = req.limit - len(packages)
        rows = db.execute("SELECT body FROM hub_packages WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?",
                          [stream, int(req.after.get(stream, 0)), room + 1]).fetchall() if room > 0 else []
        has_more = has_more or len(rows) > room or (room <= 0 and stream_high(db, stream) > req.after.get(stream, 0))
        packages += [json.loads(r[0]) for r in rows[:room]]
    return {"type": "down_pull_ok", "hub_id": hub.hub_id, "packages": packages,
            "streams": {s: stream_high(db, s) for s in streams}, "has_more": has_more}
