"""CouchDB-style replication logs, kept at both ends (sync.md §1.1, §4.3).

A checkpoint says "replication R, in session S, has durably applied everything through seq N", with a
capped history of earlier sessions. Where to resume is decided by comparing the two ends' logs:

- same latest session at both ends → resume from the lower of the two ``source_last_seq``;
- else the newest session both histories share → the lower of its two ``recorded_seq``;
- nothing in common (a peer restored from backup, a new peer) → from 0: a full replication, which is
  safe because applying is idempotent on ``(node_id, node_seq)``.

A checkpoint is written only after the target has committed (pouchdb#1240: a checkpoint written
before the data skipped changes forever). Counters, never clocks, decide (morango).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

from server.domain.ids import now_china

__all__ = ["HISTORY_LIMIT", "CheckpointRecord", "common_seq", "load", "replication_id", "save"]

HISTORY_LIMIT = 50  # couch_rep keeps 50 sessions


@dataclass
class CheckpointRecord:
    replication_id: str
    session_id: str
    source_last_seq: int
    history: list[dict[str, Any]] = field(default_factory=list)
    peer_epoch: str | None = None

    def as_wire(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "source_last_seq": self.source_last_seq, "history": self.history}


def replication_id(direction: str, source: str, target: str, source_key_id: str) -> str:
    """Hash of what makes a replication itself: direction, both ends, the source's key."""
    return hashlib.sha256(f"{direction}|{source}|{target}|{source_key_id}".encode()).hexdigest()[:32]


def load(db: Database, rep_id: str) -> CheckpointRecord | None:
    row = db.execute(
        "SELECT session_id, source_last_seq, history_json, peer_epoch FROM sync_checkpoint WHERE replication_id = ?",
        [rep_id],
    ).fetchone()
    if row is None:
        return None
    return CheckpointRecord(rep_id, row[0], int(row[1]), json.loads(row[2]), row[3])


def save(db: Database, rep_id: str, session_id: str, seq: int, *, peer_epoch: str | None = None,
         written: int = 0, failures: int = 0) -> CheckpointRecord:
    """Advance the checkpoint of ``rep_id`` to ``seq`` for ``session_id`` (inside the apply's transaction)."""
    now = now_china().isoformat()
    current = load(db, rep_id)
    history = list(current.history) if current else []
    entry = history[0] if history and history[0].get("session_id") == session_id else None
    if entry is None:
        entry = {"session_id": session_id, "start_time": now, "start_last_seq": current.source_last_seq
                 if current else 0, "docs_written": 0, "doc_write_failures": 0}
        history.insert(0, entry)
    entry.update(end_time=now, end_last_seq=seq, recorded_seq=seq)
    entry["docs_written"] = int(entry.get("docs_written", 0)) + written
    entry["doc_write_failures"] = int(entry.get("doc_write_failures", 0)) + failures
    history = history[:HISTORY_LIMIT]
    db.execute(
        "INSERT INTO sync_checkpoint (replication_id, session_id, source_last_seq, history_json, peer_epoch,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(replication_id) DO UPDATE SET"
        " session_id = excluded.session_id, source_last_seq = excluded.source_last_seq,"
        " history_json = excluded.history_json, peer_epoch = COALESCE(excluded.peer_epoch, peer_epoch),"
        " updated_at = excluded.updated_at",
        [rep_id, session_id, seq, json.dumps(history, ensure_ascii=False), peer_epoch, now],
    )
    return CheckpointRecord(rep_id, session_id, seq, history, peer_epoch)


def _recorded(history: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in history:
        sid = entry.get("session_id")
        if isinstance(sid, str) and sid not in out:
            out[sid] = int(entry.get("recorded_seq", 0))
    return out


def common_seq(local: dict[str, Any] | None, remote: dict[str, Any] | None) -> int:
    """Where a replication may resume, from the two ends' logs (wire form: session_id, source_last_seq,
    history). Pure; see the module docstring for the rule."""
    if not local or not remote:
        return 0
    if local.get("session_id") == remote.get("session_id"):
        return min(int(local.get("source_last_seq", 0)), int(remote.get("source_last_seq", 0)))
    mine, theirs = _recorded(local.get("history", [])), _recorded(remote.get("history", []))
    for entry in local.get("history", []):  # newest first
        sid = entry.get("session_id")
        if sid in theirs:
            return min(mine[sid], theirs[sid])
    return 0
