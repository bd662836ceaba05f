"""The SQLite implementation of the storage seam (server/store/repos.py) — the embedded default.

Each class wraps one open ``sqlite_utils.Database`` inside the caller's transaction. The event store
and the audit chain delegate to the existing store modules (``server.store.cases``,
``server.store.audit``), so there is one implementation of each rule; the SQLite dialect that the sync
code used to spell out itself (``sqlite_sequence``, ``INSERT OR IGNORE``, ``ON CONFLICT … DO UPDATE``)
is here, where a PostgreSQL adapter will say it its own way (a sequence's ``setval``, ``ON CONFLICT DO
NOTHING``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import WorkCalendar
from server.domain.engine import CaseKind, CaseView, Draft, Event
from server.store import audit, cases, changes
from server.store.repos import ChainStatus, ChangeRow, HubRecord, HubRow, Repositories, Transition

__all__ = ["SqliteAuditLog", "SqliteChangeLog", "SqliteEventStore", "SqliteHubRecords", "repos_for"]


class SqliteEventStore:
    def __init__(self, db: Database):
        self.db = db

    def create_case(self, kind: CaseKind, draft: Draft, *, org_path: str, node_id: str, calendar: WorkCalendar,
                    case_id: str | None = None) -> tuple[CaseView, str]:
        return cases.create_case(self.db, kind, draft, org_path=org_path, node_id=node_id, calendar=calendar,
                                 case_id=case_id)

    def transition(self, case_id: str, draft: Draft, *, node_id: str, calendar: WorkCalendar) -> Transition:
        r = cases.transition(self.db, case_id, draft, node_id=node_id, calendar=calendar)
        return Transition(r.view, r.event, r.conflict_id, r.conflict_reason)

    def view(self, case_id: str) -> tuple[CaseKind, CaseView]:
        kind, view, _row = cases.load_view(self.db, case_id)
        return kind, view

    def events(self, case_id: str) -> list[Event]:
        return cases.load_events(self.db, case_id)

    def case(self, case_id: str) -> dict[str, Any] | None:
        return cases.case_row(self.db, case_id)

    def children(self, case_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        return cases.children(self.db, case_id, kind)


class SqliteAuditLog:
    def __init__(self, db: Database):
        self.db = db

    def append(self, *, actor: str, role: str, action: str, object_type: str, object_id: str, org_path: str = "",
               before: Any = None, after: Any = None, legal_basis: str = "", on_behalf_of: str | None = None,
               device_id: str | None = None, detail: dict[str, Any] | None = None) -> int:
        return audit.append(self.db, actor=actor, role=role, action=action, object_type=object_type,
                            object_id=object_id, org_path=org_path, before=before, after=after,
                            legal_basis=legal_basis, on_behalf_of=on_behalf_of, device_id=device_id, detail=detail)

    def head(self) -> tuple[int, str]:
        return audit.head(self.db)

    def hash_at(self, seq: int) -> str | None:
        row = self.db.execute("SELECT hash FROM audit_log WHERE seq = ?", [seq]).fetchone()
        return str(row[0]) if row else None

    def verify(self) -> ChainStatus:
        r = audit.verify_chain(self.db)
        return ChainStatus(r.ok, r.entries, r.head_hash, r.broken_at, r.reason)

    def hold(self) -> audit.Held:
        return audit.Held(self.db)

    def append_envelope(self, effects: list[dict[str, Any]], envelope: dict[str, Any], *, actor: str, role: str,
                        object_id: str, org_path: str, device_id: str | None, after: Any) -> int:
        return audit.append_envelope(self.db, effects, envelope, actor=actor, role=role, object_id=object_id,
                                     org_path=org_path, device_id=device_id, after=after)


class SqliteChangeLog:
    def __init__(self, db: Database):
        self.db = db

    def record(self, entity: str, entity_id: str, org_path: str = "", op: str = "put") -> int:
        return changes.record(self.db, entity, entity_id, org_path, op)

    def high_seq(self) -> int:
        return changes.high_seq(self.db)

    def after(self, node_seq: int, limit: int) -> list[ChangeRow]:
        rows = self.db.execute("SELECT node_seq, entity, entity_id, op, org_path, at FROM change_log"
                               " WHERE node_seq > ? ORDER BY node_seq LIMIT ?", [node_seq, limit]).fetchall()
        return [ChangeRow(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def raise_floor(self, node_seq: int) -> None:
        # change_log.node_seq is AUTOINCREMENT: SQLite hands out max(sqlite_sequence.seq, max(rowid)) + 1.
        cur = self.db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'change_log' AND seq < ?",
                              [node_seq, node_seq])
        if cur.rowcount == 0 and not self.db.execute(
                "SELECT 1 FROM sqlite_sequence WHERE name = 'change_log'").fetchone():
            self.db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('change_log', ?)", [node_seq])


_HUB_ROW_COLS = ("node_id, node_seq, epoch, batch_id, entity, entity_id, op, kind, org_path, at, data, sealed,"
                 " row_sha256, received_at")
_HUB_RECORD_COLS = "entity, entity_id, node_id, op, org_path, data, sealed, node_seq, updated_at"


class SqliteHubRecords:
    def __init__(self, db: Database):
        self.db = db

    def rows_between(self, node_id: str, after_seq: int, to_seq: int) -> dict[int, tuple[str, str, str]]:
        return {int(seq): (sha, entity, eid) for seq, sha, entity, eid in self.db.execute(
            "SELECT node_seq, row_sha256, entity, entity_id FROM hub_rows WHERE node_id = ? AND node_seq > ?"
            " AND node_seq <= ?", [node_id, after_seq, to_seq]).fetchall()}

    def add_rows(self, rows: Sequence[HubRow]) -> None:
        self.db.conn.executemany(
            f"INSERT OR IGNORE INTO hub_rows ({_HUB_ROW_COLS}) VALUES ({', '.join('?' * 14)})",
            [[r.node_id, r.node_seq, r.epoch, r.batch_id, r.entity, r.entity_id, r.op, r.kind, r.org_path, r.at,
              r.data, r.sealed, r.row_sha256, r.received_at] for r in rows])

    def add_batch(self, batch_id: str, node_id: str, session_id: str, after_seq: int, to_seq: int, rows: int,
                  received_at: str, via: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO hub_batches (batch_id, node_id, session_id, after_seq, to_seq, rows,"
                        " received_at, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [batch_id, node_id, session_id, after_seq, to_seq, rows, received_at, via])

    def set_acked(self, node_id: str, acked_through_seq: int, at: str) -> None:
        self.db.execute("UPDATE hub_nodes SET acked_through_seq = ?, last_seen_at = ? WHERE node_id = ?",
                        [acked_through_seq, at, node_id])

    def acked_through(self, node_id: str) -> int | None:
        row = self.db.execute("SELECT acked_through_seq FROM hub_nodes WHERE node_id = ?", [node_id]).fetchone()
        return int(row[0]) if row else None

    def owners_elsewhere(self, entity: str, entity_ids: Iterable[str], node_id: str) -> dict[str, str]:
        ids = list(entity_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):  # entity = ? AND id IN (…): the primary key's index, not a scan
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            out.update({eid: owner for eid, owner in self.db.execute(
                f"SELECT entity_id, node_id FROM hub_records WHERE entity = ? AND entity_id IN ({marks})"
                " AND node_id != ?", [entity, *chunk, node_id]).fetchall()})
        return out

    def upsert(self, records: Sequence[HubRecord]) -> None:
        # Counters, never clocks: a later node_seq of the owning node wins (sync.md §4.3).
        self.db.conn.executemany(
            f"INSERT INTO hub_records ({_HUB_RECORD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(entity, entity_id) DO UPDATE SET op = excluded.op, org_path = excluded.org_path,"
            " data = excluded.data, sealed = excluded.sealed, node_seq = excluded.node_seq,"
            " updated_at = excluded.updated_at"
            " WHERE excluded.node_seq >= hub_records.node_seq AND hub_records.node_id = excluded.node_id",
            [[r.entity, r.entity_id, r.node_id, r.op, r.org_path, r.data, r.sealed, r.node_seq, r.updated_at]
             for r in records])

    def record(self, entity: str, entity_id: str) -> HubRecord | None:
        row = self.db.execute(f"SELECT {_HUB_RECORD_COLS} FROM hub_records WHERE entity = ? AND entity_id = ?",
                              [entity, entity_id]).fetchone()
        return HubRecord(*row) if row else None

    def add_conflict(self, kind: str, node_id: str | None, entity: str | None, entity_id: str | None,
                     node_seq: int | None, detail: dict[str, Any], now: datetime, conflict_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO sync_conflicts (id, kind, node_id, entity, entity_id, node_seq, detail, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [conflict_id, kind, node_id, entity, entity_id, node_seq,
             json.dumps(detail, ensure_ascii=False, default=str), now.isoformat()])

    def conflict(self, conflict_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, kind, node_id, entity, entity_id, node_seq, detail FROM sync_conflicts"
                              " WHERE id = ?", [conflict_id]).fetchone()
        if row is None:
            return None
        keys = ("id", "kind", "node_id", "entity", "entity_id", "node_seq")
        return {**dict(zip(keys, row[:6], strict=True)), "detail": json.loads(row[6])}


def repos_for(db: Database) -> Repositories:
    """The repositories over ``db``'s current transaction. The one place the implementation is chosen:
    a PostgreSQL-backed hub adds its branch here and passes tests/store/test_repository_contract.py."""
    return Repositories(events=SqliteEventStore(db), audit=SqliteAuditLog(db), changes=SqliteChangeLog(db),
                        hub=SqliteHubRecords(db))
