"""The audit chain catches edits and deletions made directly in the SQLite file."""

from __future__ import annotations

import sqlite3

from click.testing import CliRunner

from server.cli import main
from server.config import Settings
from server.store import audit
from server.store.db import Store


def add_entries(settings: Settings, n: int) -> None:
    with Store(settings.db_path) as store:
        for i in range(n):
            store.write(lambda db, i=i: audit.append(db, actor="u", role="window_clerk", action="test.write",
                                                     object_type="thing", object_id=str(i), after={"i": i}))


def verify(settings: Settings) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "audit", "verify"])
    return result.exit_code, result.output


def tamper(settings: Settings, sql: str) -> None:
    conn = sqlite3.connect(settings.db_path)
    # Whoever edits the file can drop the append-only triggers; the chain must still tell.
    conn.executescript("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_intact_chain_verifies(settings: Settings) -> None:
    add_entries(settings, 5)
    code, out = verify(settings)
    assert code == 0 and "审计链完整" in out


def test_edited_row_is_reported_as_first_broken_link(settings: Settings) -> None:
    add_entries(settings, 5)
    tamper(settings, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4")
    code, out = verify(settings)
    assert code == 1 and "第 4 条" in out and "被修改" in out


def test_deleted_row_is_reported(settings: Settings) -> None:
    add_entries(settings, 5)
    tamper(settings, "DELETE FROM audit_log WHERE seq = 3")
    code, out = verify(settings)
    assert code == 1 and "第 3 条" in out and "缺失" in out


def test_deleted_tail_with_rehashed_row_is_still_caught(settings: Settings) -> None:
    """Rewriting one row's hash to match its new content breaks the next row's prev_hash."""
    add_entries(settings, 5)
    with Store(settings.db_path) as store:
        rows = store.query("SELECT * FROM audit_log WHERE seq = 3")
    row = dict(rows[0])
    row["actor"] = "forged"
    new_hash = audit.entry_hash(row["prev_hash"], row)
    tamper(settings, f"UPDATE audit_log SET actor = 'forged', hash = '{new_hash}' WHERE seq = 3")
    code, out = verify(settings)
    assert code == 1 and "第 4 条" in out and "前序哈希" in out


def test_a_failed_write_leaves_no_audit_entry(settings: Settings) -> None:
    with Store(settings.db_path) as store:
        before = store.query("SELECT COUNT(*) AS n FROM audit_log")[0]["n"]

        def failing(db):  # type: ignore[no-untyped-def]
            audit.append(db, actor="u", role="r", action="a", object_type="t", object_id="1")
            raise ValueError("domain rule refused the change")

        try:
            store.write(failing)
        except ValueError:
            pass
        assert store.query("SELECT COUNT(*) AS n FROM audit_log")[0]["n"] == before
