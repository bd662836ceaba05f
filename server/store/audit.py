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
import sqlite3
from contextvars import ContextVar, Token
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
    """Append one entry; must run inside the writer's transaction. Returns its seq (0 while held).

    Only digests of before/after are kept: the audit log must never become a second
    copy of residents' personal data.
    """
    entry: dict[str, Any] = {
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
        "detail": detail or {},
    }
    if _HOLDING.get() is db.conn:
        db.execute("INSERT INTO temp.audit_held (entry) VALUES (?)", [json.dumps(entry, ensure_ascii=False)])
        return 0
    return _chain(db, entry)


def _chain(db: Database, entry: dict[str, Any]) -> int:
    """Link ``entry`` (every column but seq, prev_hash and hash) to the head and insert it."""
    seq, prev = head(db)
    row = {"seq": seq + 1, "prev_hash": prev, **entry,
           "detail": json.dumps(entry.get("detail") or {}, ensure_ascii=False, sort_keys=True)}
    row["hash"] = entry_hash(prev, row)
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO audit_log ({cols}) VALUES ({marks})", list(row.values()))
    return int(row["seq"])


# --- one entry per submission ---------------------------------------------------------------------
# A tablet's envelope is one act: the outbox holds back the entries its intake handler appends and
# writes ONE entry that names the envelope and its effect (issue 9). Held entries wait in a TEMP table,
# not in memory, so a handler's own ROLLBACK TO SAVEPOINT also takes back the entries it had appended.

_HOLDING: ContextVar[sqlite3.Connection | None] = ContextVar("audit_holding", default=None)


class Held:
    """``with Held(db) as held:`` entries appended on ``db`` inside are held; ``held.entries`` after."""

    def __init__(self, db: Database):
        self.db = db
        self.entries: list[dict[str, Any]] = []
        self._token: Token[sqlite3.Connection | None] | None = None

    def __enter__(self) -> Held:
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS audit_held (n INTEGER PRIMARY KEY, entry TEXT NOT NULL)")
        self.db.execute("DELETE FROM temp.audit_held")
        self._token = _HOLDING.set(self.db.conn)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _HOLDING.reset(self._token)
        if self.db.conn.in_transaction:
            rows = self.db.execute("SELECT entry FROM temp.audit_held ORDER BY n").fetchall()
            self.entries = [json.loads(r[0]) for r in rows]
            self.db.execute("DELETE FROM temp.audit_held")


def append_envelope(
    db: Database, effects: list[dict[str, Any]], envelope: dict[str, Any], *, actor: str, role: str,
    object_id: str, org_path: str, device_id: str | None, after: Any,
) -> int:
    """The one entry of an accepted envelope.

    With effects, it is the first effect's own entry (``case.submit``, ``case.accept`` … exactly what
    the REST route writes) with ``detail.envelope`` added and any further effects (an emergency's
    ``grid.escalate``) listed in ``detail.also``; without one, a ``sync.<status>`` entry about the
    submission."""
    if effects:
        first, rest = effects[0], effects[1:]
        detail = {**(first.get("detail") or {}), "envelope": envelope}
        if rest:
            detail["also"] = [{k: e.get(k) for k in _EFFECT_KEYS} for e in rest]
        return _chain(db, {**first, "detail": detail})
    return _chain(db, {
        "at": now_china().isoformat(), "actor": actor, "role": role, "action": f"sync.{envelope['status']}",
        "object_type": "submission", "object_id": object_id, "org_path": org_path, "on_behalf_of": None,
        "before_digest": None, "after_digest": digest(after), "legal_basis": "", "device_id": device_id,
        "detail": {"envelope": envelope},
    })


_EFFECT_KEYS = ("action", "object_type", "object_id", "org_path", "on_behalf_of", "before_digest", "after_digest",
                "legal_basis", "detail")


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
