"""The node's change log: what sync carries up to the hub and down to tablets.

Rows are appended in the same transaction as the change they describe; ``node_seq``
is the server sequence that cursors and checkpoints use (never a clock).
"""

from __future__ import annotations

from sqlite_utils import Database

from server.domain.ids import now_china


def record(db: Database, entity: str, entity_id: str, org_path: str = "", op: str = "put") -> int:
    cur = db.execute(
        "INSERT INTO change_log (entity, entity_id, op, org_path, at) VALUES (?, ?, ?, ?, ?)",
        [entity, entity_id, op, org_path, now_china().isoformat()],
    )
    return int(cur.lastrowid or 0)


def high_seq(db: Database) -> int:
    row = db.execute("SELECT COALESCE(MAX(node_seq), 0) FROM change_log").fetchone()
    return int(row[0])
