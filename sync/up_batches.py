"""Building up-batches from the street's change log (sync.md §4.3: ≤ 500 rows or 5 MB).

A batch covers the node_seq range ``(after_seq, to_seq]``; every seq in it is accounted for, so the hub
can acknowledge contiguously. Hub-owned records written by a package travel as ``echo`` (no content);
a hub-owned record this node wrote itself is sent as evidence and recorded as a conflict here too —
the street never authors a hub-owned record (DESIGN §6 rule 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.canonical import canonical_json
from server.domain.ids import uuid7
from sync import records
from sync.packages import hub_owned_entities
from sync.pairing import StreetSide

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_ROWS", "BuiltBatch", "build_batch", "pending_rows"]

MAX_BATCH_ROWS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
_ROW_OVERHEAD = 240  # bytes of keys, seq, hash and routing around a row's data


@dataclass
class BuiltBatch:
    batch: dict[str, Any]
    to_seq: int
    local_conflicts: list[dict[str, Any]] = field(default_factory=list)


def pending_rows(db: Database, after_seq: int) -> int:
    return int(db.execute("SELECT COUNT(*) FROM change_log WHERE node_seq > ?", [after_seq]).fetchone()[0])


def _echoes(db: Database, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    by_entity: dict[str, list[str]] = {}
    for entity, entity_id in keys:
        by_entity.setdefault(entity, []).append(entity_id)
    out: set[tuple[str, str]] = set()
    for entity, ids in by_entity.items():
        for start in range(0, len(ids), 500):  # entity = ? AND id IN (…) uses the primary key's index
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            out |= {(entity, i) for (i,) in db.execute(
                f"SELECT entity_id FROM sync_hub_owned WHERE entity = ? AND entity_id IN ({marks})",
                [entity, *chunk]).fetchall()}
    return out


def build_batch(db: Database, side: StreetSide, after_seq: int, *, session_id: str, replication_id: str,
                now: datetime, max_rows: int = MAX_BATCH_ROWS, max_bytes: int = MAX_BATCH_BYTES,
                table_cache: dict[str, str | None] | None = None) -> BuiltBatch | None:
    """The next batch after ``after_seq`` (read-only; the caller records ``local_conflicts``), or None."""
    log = db.execute("SELECT node_seq, entity, entity_id, op, org_path, at FROM change_log WHERE node_seq > ?"
                     " ORDER BY node_seq LIMIT ?", [after_seq, max_rows]).fetchall()
    if not log:
        return None
    owned = hub_owned_entities()
    owned_keys = [(e, i) for _s, e, i, *_ in log if e in owned]
    echoes = _echoes(db, owned_keys) if owned_keys else set()
    contents = records.expand(db, {(e, i) for _s, e, i, *_ in log if (e, i) not in echoes}, table_cache)
    rows: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    size = 0
    sealer = records.BatchSealer(side.pin.district_enc)
    for seq, entity, entity_id, op, org_path, at in log:
        key = (entity, entity_id)
        sealed = None
        if key in echoes:
            kind, clear = "echo", None
        elif key in contents:
            kind = "record"
            clear, personal = records.split_personal(contents[key])
            if personal:
                sealed = records.seal_personal(personal, sealer, side.node_id, entity, entity_id)
        else:
            kind, clear = "ref", None
        if entity in owned and kind != "echo":
            conflicts.append({"entity": entity, "entity_id": entity_id, "node_seq": seq})
        data_json = canonical_json(clear)
        row = {"seq": seq, "entity": entity, "id": entity_id, "op": op, "kind": kind, "org_path": org_path,
               "at": at, "data": clear, "sealed": sealed,
               "sha256": records.row_sha256(entity, entity_id, op, kind, org_path, data_json)}
        size += len(data_json) + (len(sealed["ct"]) + 120 if sealed else 0) + _ROW_OVERHEAD
        if rows and size > max_bytes:
            break
        rows.append(row)
    to_seq = int(rows[-1]["seq"])
    batch = {"type": "up_batch", "node_id": side.node_id, "hub_id": side.pin.hub_id, "epoch": side.epoch,
             "replication_id": replication_id, "session_id": session_id, "batch_id": uuid7(),
             "after_seq": after_seq, "to_seq": to_seq, "rows": rows, "created_at": now.isoformat()}
    return BuiltBatch(batch, to_seq, [c for c in conflicts if c["node_seq"] <= to_seq])
