"""Tables of the generic case machinery, applied after every feature's own set (it moves their data).

- ``kind_settings``: one settings table for every kind (``server.store.settings``); the hall's
  ``meta`` key ``hall.rectification_wd`` and the grid's ``grid_settings`` rows are copied in and the
  old places removed, so there is one source.
- Work-list indexes: the list pages by due date or by last update (keyset), so both orders have a
  covering index, and a narrow scope reads its own range (``store.scope.under``) from another.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from server.store.schema import register

platform = Migrations("streetnode.platform")


def _has_table(db: Database, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None


@platform()
def m001_kind_settings(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE kind_settings (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,          -- JSON
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            PRIMARY KEY (kind, key)
        );
        """
    )
    row = db.execute("SELECT value FROM meta WHERE key = 'hall.rectification_wd'").fetchone()
    if row is not None:
        db.execute("INSERT INTO kind_settings VALUES ('service_application', 'rectification_wd', ?,"
                   " datetime('now'), 'migration')", [str(int(row[0]))])
        db.execute("DELETE FROM meta WHERE key = 'hall.rectification_wd'")
    if _has_table(db, "grid_settings"):
        db.execute("INSERT INTO kind_settings (kind, key, value, updated_at, updated_by)"
                   " SELECT 'grid_incident', key, CAST(CAST(value AS INTEGER) AS TEXT), updated_at, updated_by"
                   " FROM grid_settings")
        db.execute("DROP TABLE grid_settings")


@platform()
def m002_worklist_indexes(db: Database) -> None:
    db.executescript(
        """
        -- covering: a page's ids come from the index alone (server.store.worklist.page)
        CREATE INDEX cases_due ON cases(COALESCE(due_at, '~'), id, kind, state, org_path, due_at);
        CREATE INDEX cases_updated ON cases(updated_at, id, kind, state, org_path, due_at);
        CREATE INDEX cases_scope ON cases(org_path, kind, state, due_at, updated_at, id);
        """
    )


register(platform)
