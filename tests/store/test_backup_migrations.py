"""Migrations are ordered and idempotent; backup and restore work and give a new epoch."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlite_utils import Database

from server.cli import main
from server.config import Settings
from server.store.db import Store, connect
from server.store.schema import applied_migrations, apply_migrations, pending_migrations


def run(settings: Settings, *args: str) -> str:
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_migrations_apply_in_order_once(tmp_path: Path) -> None:
    db = Database(connect(tmp_path / "m.db"))
    apply_migrations(db)
    first = applied_migrations(db)
    apply_migrations(db)
    assert applied_migrations(db) == first and pending_migrations(db) == []
    names = [name for mset, name, _ in first if mset == "streetnode.core"]
    assert names == sorted(names) and names[0].startswith("m001")
    db.conn.close()


def test_migrate_list_shows_applied(settings: Settings) -> None:
    out = run(settings, "migrate", "--list")
    assert "[x] streetnode.core:m001_meta_org_people" in out and "[ ]" not in out
    assert "数据库已是最新" in run(settings, "migrate")


def test_init_twice_changes_nothing(settings: Settings) -> None:
    out = run(settings, "init", "--demo")
    assert "未做改动" in out


def test_backup_while_open_then_restore_gives_new_epoch(settings: Settings, tmp_path: Path) -> None:
    with Store(settings.db_path) as store:
        epoch_before = store.query("SELECT value FROM meta WHERE key = 'epoch'")[0]["value"]
        users_before = store.query("SELECT COUNT(*) AS n FROM users")[0]["n"]
        target = tmp_path / "backups" / "node-20261129.db"
        out = run(settings, "backup", str(target))  # online: the store is open meanwhile
        assert target.exists() and "已备份" in out
        store.write(lambda db: db.execute("DELETE FROM tokens"))
    settings.db_path.unlink()
    out = run(settings, "restore", str(target), "--yes")
    assert "新纪元" in out
    with Store(settings.db_path) as store:
        epoch_after = store.query("SELECT value FROM meta WHERE key = 'epoch'")[0]["value"]
        assert store.query("SELECT COUNT(*) AS n FROM users")[0]["n"] == users_before
    assert epoch_after != epoch_before
    assert "审计链完整" in run(settings, "audit", "verify")


def test_restore_refuses_a_file_that_is_not_a_database(settings: Settings, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "restore", str(junk), "--yes"])
    assert result.exit_code != 0 and "备份文件" in result.output
