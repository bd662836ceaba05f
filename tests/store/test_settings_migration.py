"""One settings table: the hall's ``meta`` value and the grid's ``grid_settings`` rows move into
``kind_settings`` (values copied, old places removed), and each kind reads its own declared model."""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database

from schemas.grid import GridSettings
from schemas.hall import HallSettings
from server.domain.grid import GRID_INCIDENT
from server.domain.hall import SERVICE_APPLICATION
from server.store import settings
from server.store.db import connect
from server.store.schema import MIGRATION_SETS, _import_feature_migrations, apply_migrations


def test_existing_hall_and_grid_settings_are_copied_into_the_one_table(tmp_path: Path) -> None:
    db = Database(connect(tmp_path / "old.db"))
    _import_feature_migrations()
    for migrations in MIGRATION_SETS:  # a node as it was before the settings table existed
        if migrations.name != "streetnode.platform":
            migrations.apply(db)
    db.execute("INSERT INTO meta (key, value) VALUES ('hall.rectification_wd', '7')")
    db.execute("INSERT INTO grid_settings (key, value, updated_at, updated_by) VALUES"
               " ('hotspot_min_reports', '5', '2026-11-01T09:00:00+08:00', 'u1'),"
               " ('check_radius_m', '250', '2026-11-01T09:00:00+08:00', 'u1')")
    apply_migrations(db)
    apply_migrations(db)  # idempotent
    assert settings.load(db, SERVICE_APPLICATION, HallSettings).rectification_wd == 7
    grid = settings.load(db, GRID_INCIDENT, GridSettings)
    assert grid.hotspot_min_reports == 5 and grid.check_radius_m == 250
    assert grid.duplicate_radius_m == GridSettings().duplicate_radius_m  # never set: the model's default
    assert db.execute("SELECT COUNT(*) FROM meta WHERE key = 'hall.rectification_wd'").fetchone()[0] == 0
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'grid_settings'").fetchone()


def test_saving_settings_is_audited_and_logged_for_sync(tmp_path: Path) -> None:
    db = Database(connect(tmp_path / "new.db"))
    apply_migrations(db)
    new = GridSettings(hotspot_min_reports=4)
    settings.save(db, GRID_INCIDENT, new, actor="u1", role="street_admin", org_path="440106/440106006000",
                  action="grid.settings")
    assert settings.load(db, GRID_INCIDENT, GridSettings) == new
    (detail,) = db.execute("SELECT detail FROM audit_log WHERE action = 'grid.settings'").fetchone()
    assert "hotspot_min_reports" in detail
    assert db.execute("SELECT COUNT(*) FROM change_log WHERE entity = 'kind_settings'").fetchone()[0] == 1
