"""The hash-chained audit log (DESIGN.md §5).

``hash = sha256(prev_hash || canonical_json(entry))`` where ``entry`` is every column
except ``hash`` itself. Entries are appended inside the same transaction as the change
they describe, so a change without its audit entry cannot commit. ``verify_chain``
walks the log and reports the first broken link: an edited row (its hash no longer
matches), a deleted row (a gap in ``seq`` or a ``prev_hash`` that does not match).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from server.domain.canonical import canonical_json, digest
from server.domain.ids import now_china

GENESIS = "0" * 64

_COLUMNS = (
    "seq",
    "prev_hash",
    "at",
    "actor",
    "role",
    "action",
    "object_type",
    "object_id",
    "org_path",
    "on_behalf_of",
    "before_digest",
    "after_digest",
    "legal_basis",
    "device_id",
    "detail",
)


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    body = {k: entry.get(k) for k in _COLUMNS}
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(body)).hexdigest()


def head(db: Database) -> tuple[int, str]:
    row = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def append(
    db: Database,
    *,
    actor: str,
    role: str,
    action: str,
    object_type: str,
    object_id: str,
    org_path: str = "",
    before: Any = None,
    after: Any = None,
    legal_basis: str = "",
    on_behalf_of: str | None = None,
    device_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one entry; must run inside the writer's transaction. Returns its seq.

    Only digests of before/after are kept: the audit log must never become a second
    copy of residents' personal data.
    """
    seq, prev = head(db)
    entry: dict[str, Any] = {
        "seq": seq + 1,
        "prev_hash": prev,
        "at": now_china().isoformat(),
        "actor": actor,
        "role": role,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "org_path": org_path,
        "on_behalf_of": on_behalf_of,
        "before_digest": digest(before) if before is not None else None,
        "after_digest": digest(after) if after is not None else None,
        "legal_basis": legal_basis,
        "device_id": device_id,
        "detail": json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
    }
    entry["hash"] = entry_hash(prev, entry)
    cols = ", ".join(entry)
    marks = ", ".join("?" for _ in entry)
    db.execute(f"INSERT INTO audit_log ({cols}) VALUES ({marks})", list(entry.values()))
    return int(entry["seq"])


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    head_hash: str
    broken_at: int | None = None
    reason: str = ""


def verify_chain(db: Database) -> ChainReport:
    prev = GENESIS
    expected_seq = 1
    count = 0
    cur = db.execute(f"SELECT {', '.join(_COLUMNS)}, hash FROM audit_log ORDER BY seq")
    names = [*_COLUMNS, "hash"]
    for raw in cur:
        row = dict(zip(names, raw, strict=True))
        seq = row["seq"]
        if seq != expected_seq:
            return ChainReport(False, count, prev, expected_seq, f"第 {expected_seq} 条记录缺失（被删除）")
        if row["prev_hash"] != prev:
            return ChainReport(False, count, prev, seq, f"第 {seq} 条记录的前序哈希与上一条不符")
        if entry_hash(prev, row) != row["hash"]:
            return ChainReport(False, count, prev, seq, f"第 {seq} 条记录内容被修改（哈希不符）")
        prev = row["hash"]
        expected_seq += 1
        count += 1
    return ChainReport(True, count, prev)
