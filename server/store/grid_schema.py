"""Tables of grid management (网格化管理), and the seeding of the incident categories.

The incident itself is a case (``cases`` / ``case_events``); these tables hold what the case log
does not: the district's category table, the street's thresholds, a geographic index of incidents
(derived, written with the case), duplicate suggestions and merges, hot spots, patrol logs and the
emergency escalations that sync sends first. Grid members are ``users`` whose org unit is a grid.
"""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from schemas.reference import IncidentCategorySpec, load_incident_catalogue
from server.domain.ids import CHINA_TZ
from server.store.schema import register

grid = Migrations("streetnode.grid")


@grid()
def m001_grid_tables(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE grid_categories (
            code TEXT PRIMARY KEY,             -- BJ/SJ + minor class code (GB/T 30428.2 layout)
            kind TEXT NOT NULL,                -- component (部件) | event (事件)
            major_class_code TEXT NOT NULL,
            major_class TEXT NOT NULL,
            minor_class_code TEXT NOT NULL,
            minor_class TEXT NOT NULL,
            name TEXT NOT NULL,
            time_unit TEXT NOT NULL,           -- working_hour | working_day | calendar_hour
            time_amount INTEGER NOT NULL CHECK (time_amount > 0),
            closure_condition TEXT NOT NULL,
            emergency INTEGER NOT NULL DEFAULT 0,
            handling_unit_suggestion TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            catalogue_version TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE grid_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL
        );
        -- One row per incident, written with its creating event: the geo/time index for duplicates,
        -- hot spots and patrol links. Derived from the case log, so rebuildable.
        CREATE TABLE grid_incidents (
            case_id TEXT PRIMARY KEY REFERENCES cases(id),
            submission_id TEXT UNIQUE,
            org_path TEXT NOT NULL,
            grid_code TEXT NOT NULL,
            category_code TEXT NOT NULL,
            lng REAL NOT NULL,
            lat REAL NOT NULL,
            reported_at TEXT NOT NULL,
            reporter_id TEXT NOT NULL,
            emergency INTEGER NOT NULL DEFAULT 0,
            patrol_id TEXT
        );
        CREATE INDEX grid_incidents_cat_time ON grid_incidents(category_code, reported_at);
        CREATE INDEX grid_incidents_path ON grid_incidents(org_path);
        CREATE TABLE grid_duplicate_suggestions (
            case_id TEXT NOT NULL REFERENCES cases(id),
            candidate_id TEXT NOT NULL REFERENCES cases(id),
            distance_m REAL NOT NULL,
            hours_apart REAL NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',   -- open | merged | dismissed
            decided_by TEXT,
            decided_at TEXT,
            PRIMARY KEY (case_id, candidate_id)
        );
        CREATE TABLE grid_merges (
            id TEXT PRIMARY KEY,
            duplicate_id TEXT NOT NULL UNIQUE REFERENCES cases(id),
            kept_id TEXT NOT NULL REFERENCES cases(id),
            actor TEXT NOT NULL,
            role TEXT NOT NULL,
            distance_m REAL NOT NULL,
            hours_apart REAL NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            merged_at TEXT NOT NULL
        );
        CREATE TABLE grid_hotspots (
            id TEXT PRIMARY KEY,
            category_code TEXT NOT NULL,
            lng REAL NOT NULL,
            lat REAL NOT NULL,
            org_path TEXT NOT NULL,            -- grid of the latest report
            reports INTEGER NOT NULL DEFAULT 0,
            first_reported_at TEXT NOT NULL,
            last_reported_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open',   -- open | preventive
            preventive_case_id TEXT REFERENCES cases(id),
            updated_at TEXT NOT NULL
        );
        CREATE INDEX grid_hotspots_cat ON grid_hotspots(category_code);
        CREATE TABLE grid_hotspot_reports (
            case_id TEXT PRIMARY KEY REFERENCES cases(id),
            hotspot_id TEXT NOT NULL REFERENCES grid_hotspots(id),
            reported_at TEXT NOT NULL
        );
        CREATE INDEX grid_hotspot_reports_spot ON grid_hotspot_reports(hotspot_id, reported_at);
        CREATE TABLE grid_patrols (
            id TEXT PRIMARY KEY,               -- the patrol_log envelope's submission_id
            member_id TEXT NOT NULL REFERENCES users(id),
            grid_code TEXT NOT NULL,
            org_path TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            route TEXT NOT NULL DEFAULT '[]',
            distance_m REAL NOT NULL DEFAULT 0,
            points INTEGER NOT NULL DEFAULT 0,
            points_outside INTEGER NOT NULL DEFAULT 0,
            note TEXT NOT NULL DEFAULT '',
            received_at TEXT NOT NULL,
            device_id TEXT
        );
        CREATE INDEX grid_patrols_path ON grid_patrols(org_path, started_at);
        CREATE TABLE grid_patrol_findings (
            patrol_id TEXT NOT NULL REFERENCES grid_patrols(id),
            seq INTEGER NOT NULL,
            note TEXT NOT NULL,
            lng REAL,
            lat REAL,
            place TEXT,
            incident_id TEXT,                  -- case id = the incident_report's submission_id
            PRIMARY KEY (patrol_id, seq)
        );
        -- Emergencies escalate at once (domain.md §1.9 应急处置): sync sends these cases first and
        -- stamps synced_at when the hub has them.
        CREATE TABLE grid_escalations (
            id TEXT PRIMARY KEY REFERENCES cases(id),  -- the case id
            org_path TEXT NOT NULL,
            category_code TEXT NOT NULL,
            reason TEXT NOT NULL,
            escalated_at TEXT NOT NULL,
            synced_at TEXT
        );
        """
    )


def _category_row(spec: IncidentCategorySpec, version: str, active: bool, now: str) -> list[object]:
    return [spec.code, spec.kind, spec.major_class_code, spec.major_class, spec.minor_class_code,
            spec.minor_class, spec.name, spec.time_limit.unit, spec.time_limit.amount, spec.closure_condition,
            int(spec.emergency), spec.handling_unit_suggestion, int(active), version, now]


def upsert_category(db: Database, spec: IncidentCategorySpec, version: str, *, replace: bool = True,
                    active: bool = True) -> None:
    """Write one category (the district owns the table; a hub package brings changes down). A case keeps
    the snapshot of its category taken when it was reported, so a change never moves an open deadline."""
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    db.execute(
        f"{verb} INTO grid_categories (code, kind, major_class_code, major_class, minor_class_code, minor_class,"
        " name, time_unit, time_amount, closure_condition, emergency, handling_unit_suggestion, active,"
        " catalogue_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        _category_row(spec, version, active, datetime.now(CHINA_TZ).isoformat()),
    )


def seed_categories(db: Database) -> int:
    """Add the bundled demo categories that are missing; never overwrites a configured one (idempotent)."""
    catalogue = load_incident_catalogue()
    before = db.execute("SELECT COUNT(*) FROM grid_categories").fetchone()[0]
    for spec in catalogue.categories:
        upsert_category(db, spec, catalogue.version, replace=False)
    return int(db.execute("SELECT COUNT(*) FROM grid_categories").fetchone()[0]) - int(before)


@grid()
def m002_seed_categories(db: Database) -> None:
    seed_categories(db)


register(grid)
