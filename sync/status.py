"""``streetnode sync status``: what an operator needs to know at a glance, from the database alone."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.config import Settings
from server.store import changes
from server.store.seed import get_meta
from sync import checkpoints
from sync.countersigs import check_countersigned
from sync.pairing import street_side

__all__ = ["hub_status", "street_status"]


def _table(db: Database, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None


def _open_conflicts(db: Database) -> dict[str, int]:
    out = {k: int(n) for k, n in db.execute(
        "SELECT kind, COUNT(*) FROM sync_conflicts WHERE resolved_at IS NULL GROUP BY kind").fetchall()}
    cases = db.execute("SELECT COUNT(*) FROM case_conflicts WHERE resolved_at IS NULL").fetchone()[0]
    if cases:
        out["case"] = int(cases)
    return out


def _quarantine(db: Database) -> int | None:
    # Leg A keeps refused tablet envelopes in a quarantine table; count what is there, if it exists here.
    for name in ("quarantine", "sync_quarantine"):
        if _table(db, name):
            return int(db.execute(f"SELECT COUNT(*) FROM [{name}]").fetchone()[0])
    return None


def _last_session(db: Database) -> dict[str, Any] | None:
    row = db.execute("SELECT session_id, trigger, stage, started_at, finished_at, error, stats FROM sync_sessions"
                     " ORDER BY started_at DESC LIMIT 1").fetchone()
    if row is None:
        return None
    out = dict(row)
    stats = json.loads(out.pop("stats"))
    out["summary"] = {k: stats.get(k) for k in ("rows_sent", "batches", "acked_through_seq", "packages_applied",
                                                "package_errors", "clock_suspect", "countersigned_seq") if k in stats}
    return out


def street_status(db: Database, settings: Settings, now: datetime) -> dict[str, Any]:
    side = street_side(settings, db)
    high = changes.high_seq(db)
    acked = 0
    if side is not None:
        ck = checkpoints.load(db, checkpoints.replication_id("up", side.node_id, side.pin.hub_id, side.key.key_id))
        acked = ck.source_last_seq if ck else 0
    oldest = db.execute("SELECT MIN(at) FROM change_log WHERE node_seq > ?", [acked]).fetchone()[0]
    lag = int((now - datetime.fromisoformat(oldest)).total_seconds()) if oldest else 0
    inbox = db.execute("SELECT COUNT(*) FROM sync_inbox WHERE applied_at IS NULL").fetchone()[0]
    refused = [json.loads(r[0]) | {"stream": r[1], "seq": r[2]} for r in db.execute(
        "SELECT result, stream, seq FROM sync_inbox WHERE applied_at IS NULL AND result IS NOT NULL").fetchall()]
    sig = db.execute("SELECT audit_seq, received_at FROM sync_countersigs ORDER BY audit_seq DESC LIMIT 1").fetchone()
    return {
        "role": "street",
        "paired": side is not None,
        "hub": {"hub_id": side.pin.hub_id, "key_id": side.pin.key_id, "url": side.pin.url} if side else None,
        "last_sync": get_meta(db, "last_sync"),
        "last_session": _last_session(db),
        "high_seq": high,
        "acked_through_seq": acked,
        "pending_rows": high - acked if high > acked else 0,
        "lag_seconds": lag,
        "packages_waiting": int(inbox),
        "packages_refused": refused,
        "conflicts": _open_conflicts(db),
        "quarantine": _quarantine(db),
        "countersigned": {"audit_seq": sig[0], "at": sig[1]} if sig else None,
        "countersig_mismatches": check_countersigned(db),
    }


def hub_status(db: Database) -> dict[str, Any]:
    nodes = [dict(r) for r in db.execute(
        "SELECT node_id, org_unit, key_id, acked_through_seq, last_seen_at, clock_suspect, audit_seq, revoked_at"
        " FROM hub_nodes ORDER BY node_id").fetchall()]
    streams = {s: int(n) for s, n in db.execute("SELECT stream, MAX(seq) FROM hub_packages GROUP BY stream")}
    return {"role": "district", "nodes": nodes, "streams": streams, "conflicts": _open_conflicts(db),
            "rows": int(db.execute("SELECT COUNT(*) FROM hub_rows").fetchone()[0])}
