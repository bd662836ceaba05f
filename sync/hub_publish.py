"""The hub's publication log: ordered, signed down-packages per stream (sync.md §4.3).

``publish_pending`` asks every package type's collector what the hub holds now and appends a package
wherever that differs from what was last published (a digest per publication key), so the catalogue,
directory and calendars reach the streets without an operator step. ``publish_decision`` sends the
district's decision on a handed-up case to the one street that owns it. ``pad_stream`` fills seqs a
street has applied but a restored hub no longer holds with ``void`` packages, so no stream ever has a gap.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from schemas.sync_leg_b import DecisionRequest
from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import SigningKey
from server.domain.ids import uuid7
from server.domain.roles import Principal, path_within
from server.store import audit
from sync.packages import TYPES, make_package

__all__ = ["DecisionRefused", "append_package", "pad_stream", "publish_decision", "publish_pending",
           "stream_high"]


class DecisionRefused(Exception):
    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


def stream_high(db: Database, stream: str) -> int:
    row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM hub_packages WHERE stream = ?", [stream]).fetchone()
    return int(row[0])


def append_package(db: Database, key: SigningKey, hub_id: str, stream: str, ptype: str, atomic: bool,
                   items: list[dict[str, Any]], now: datetime) -> int:
    seq = stream_high(db, stream) + 1
    pkg = make_package(key, hub_id, stream, seq, ptype, atomic, items, now)
    db.execute("INSERT INTO hub_packages (stream, seq, package_id, ptype, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
               [stream, seq, pkg["package_id"], ptype, canonical_json(pkg).decode("utf-8"), now.isoformat()])
    return seq


def _previous_items(db: Database, stream: str, seq: int) -> list[dict[str, Any]]:
    row = db.execute("SELECT body FROM hub_packages WHERE stream = ? AND seq = ?", [stream, seq]).fetchone()
    return list(json.loads(row[0])["items"]) if row else []


def publish_pending(db: Database, key: SigningKey, hub_id: str, now: datetime) -> list[tuple[str, int]]:
    """Append a package for every publication whose content changed; returns (stream, seq) appended."""
    out: list[tuple[str, int]] = []
    for ptype in list(TYPES.values()):
        if ptype.collect is None:
            continue
        for pub_key, stream, items in ptype.collect(db):
            digest = sha256_hex(canonical_json(items))
            row = db.execute("SELECT digest, seq FROM hub_published WHERE ptype = ? AND stream = ?",
                             [pub_key, stream]).fetchone()
            if row is not None and row[0] == digest:
                continue
            to_send = list(items)
            if ptype.tombstone_key and row is not None:
                k = ptype.tombstone_key
                now_keys = {str(i.get(k)) for i in items}
                gone = [i for i in _previous_items(db, stream, int(row[1])) if str(i.get(k)) not in now_keys
                        and not i.get("_deleted")]
                to_send += [{k: i[k], "_deleted": True} for i in gone]
            seq = append_package(db, key, hub_id, stream, ptype.name, ptype.atomic, to_send, now)
            db.execute("INSERT INTO hub_published (ptype, stream, digest, seq) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT(ptype, stream) DO UPDATE SET digest = excluded.digest, seq = excluded.seq",
                       [pub_key, stream, digest, seq])
            out.append((stream, seq))
    return out


def pad_stream(db: Database, key: SigningKey, hub_id: str, stream: str, through: int, now: datetime) -> int:
    """A street has applied through ``through`` but this hub holds less (restored from a backup): fill the
    missing seqs with ``void`` packages so the next real package follows without a gap. Returns padded count."""
    padded = 0
    while stream_high(db, stream) < through:
        append_package(db, key, hub_id, stream, "void", True, [], now)
        padded += 1
    return padded


def _street_paths(db: Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT path FROM org_units WHERE kind = 'street_office'").fetchall()]


def publish_decision(db: Database, key: SigningKey, hub_id: str, case_id: str, req: DecisionRequest,
                     principal: Principal, now: datetime) -> dict[str, Any]:
    """The district decides a case a street handed up; the decision goes down to that street only."""
    row = db.execute("SELECT node_id, org_path, data FROM hub_records WHERE entity = 'case' AND entity_id = ?",
                     [case_id]).fetchone()
    if row is None:
        raise DecisionRefused(404, "case_id", "区级枢纽尚未收到该事项")
    node_id, org_path, data = row[0], row[1], json.loads(row[2] or "{}")
    # One writer per record (DESIGN §6 rule 4): the district decides only cases handed up to it.
    if any(path_within(org_path, p) for p in _street_paths(db)):
        raise DecisionRefused(409, "case_id", "该事项仍由街道办理，尚未提交区级")
    if not path_within(org_path, principal.org_path):
        raise DecisionRefused(403, "case_id", "该事项不在您的管辖范围内")
    version = int(data.get("version", 0))
    if req.base_version != version:
        raise DecisionRefused(409, "base_version",
                              f"区级掌握的事项版本为 {version}，提交基于 {req.base_version}，请刷新后再决定")
    item = {
        "case_id": case_id, "event_id": uuid7(), "transition": req.transition, "payload": req.payload,
        "base_version": req.base_version, "legal_basis": req.legal_basis, "decided_at": now.isoformat(),
        "actor": {"user_id": principal.user_id, "username": principal.username, "role": principal.role.value,
                  "org_unit": principal.org_unit, "org_path": principal.org_path,
                  "display_name": principal.display_name},
    }
    stream = f"node:{node_id}"
    seq = append_package(db, key, hub_id, stream, "case_decision", False, [item], now)
    audit.append(db, actor=principal.user_id, role=principal.role.value, action="sync.case_decision",
                 object_type="case", object_id=case_id, org_path=org_path, after=item,
                 legal_basis=req.legal_basis, detail={"stream": stream, "seq": seq})
    return {"case_id": case_id, "event_id": item["event_id"], "stream": stream, "seq": seq}
