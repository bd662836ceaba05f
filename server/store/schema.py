"""Named, ordered migrations (sqlite-utils ``Migrations``), applied at start-up.

Each feature owns a migration set; ``MIGRATION_SETS`` fixes their order. A migration,
once released, is never edited: add a new one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

core = Migrations("streetnode.core")


@core()
def m001_meta_org_people(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE org_units (
            code TEXT PRIMARY KEY,
            parent_code TEXT REFERENCES org_units(code),
            name TEXT NOT NULL,
            tier TEXT NOT NULL,            -- district | street | community | grid
            kind TEXT NOT NULL,            -- government, street_office, residents_committee, grid,
                                           -- department, business_unit
            path TEXT NOT NULL UNIQUE,
            is_administrative_organ INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX org_units_parent ON org_units(parent_code);
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            org_unit TEXT NOT NULL REFERENCES org_units(code),
            org_path TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            pin_hash TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            revoked_at TEXT,
            device_id TEXT
        );
        CREATE INDEX tokens_user ON tokens(user_id);
        """
    )


@core()
def m002_audit_and_change_log(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            role TEXT NOT NULL,
            action TEXT NOT NULL,
            object_type TEXT NOT NULL,
            object_id TEXT NOT NULL,
            org_path TEXT NOT NULL DEFAULT '',
            on_behalf_of TEXT,
            before_digest TEXT,
            after_digest TEXT,
            legal_basis TEXT NOT NULL DEFAULT '',
            device_id TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        -- Append-only: the application never updates or deletes audit rows.
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TABLE change_log (
            node_seq INTEGER PRIMARY KEY AUTOINCREMENT,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            op TEXT NOT NULL,              -- put | delete
            org_path TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL
        );
        CREATE INDEX change_log_entity ON change_log(entity, entity_id);
        """
    )


@core()
def m003_cases(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE cases (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            number TEXT NOT NULL UNIQUE,
            org_path TEXT NOT NULL,
            owner_tier TEXT NOT NULL,
            state TEXT NOT NULL,
            version INTEGER NOT NULL,
            data TEXT NOT NULL DEFAULT '{}',
            clocks TEXT NOT NULL DEFAULT '{}',
            due_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            origin_node TEXT NOT NULL
        );
        CREATE INDEX cases_kind_state ON cases(kind, state);
        CREATE INDEX cases_org_path ON cases(org_path);
        CREATE TABLE case_events (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases(id),
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            transition TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            actor TEXT NOT NULL,
            role TEXT NOT NULL,
            org_unit TEXT NOT NULL,
            on_behalf_of TEXT,
            payload TEXT NOT NULL DEFAULT '{}',
            legal_basis TEXT NOT NULL DEFAULT '',
            device_time TEXT,
            node_time TEXT NOT NULL,
            hub_time TEXT,
            origin_node TEXT NOT NULL,
            device_id TEXT,
            UNIQUE (case_id, seq)
        );
        CREATE TRIGGER case_events_no_update BEFORE UPDATE ON case_events
            BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END;
        CREATE TRIGGER case_events_no_delete BEFORE DELETE ON case_events
            BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END;
        CREATE TABLE case_conflicts (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases(id),
            event TEXT NOT NULL,           -- the event that could not be applied, as received
            base_version INTEGER NOT NULL,
            current_version INTEGER NOT NULL,
            current_state TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL,
            resolved_at TEXT,
            resolution TEXT
        );
        CREATE TABLE case_counters (prefix TEXT PRIMARY KEY, n INTEGER NOT NULL);
        """
    )


@core()
def m004_calendar(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE calendar_versions (
            version TEXT PRIMARY KEY,
            source_notice TEXT NOT NULL DEFAULT '',
            published_at TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE calendar_entries (
            version TEXT NOT NULL REFERENCES calendar_versions(version),
            day TEXT NOT NULL,
            work INTEGER NOT NULL,
            reason TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (version, day)
        );
        """
    )


@core()
def m005_case_event_time_rules_and_parents(db: Database) -> None:
    """Event time for offline acts, the rules version of each event, child cases, and district decisions
    a street refused (they travel up so the district sees them; issue 9 "Event time", "The fold")."""
    db.executescript(
        """
        ALTER TABLE case_events ADD COLUMN rules_version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE case_events ADD COLUMN effective_time TEXT;        -- the clocks' time (NULL: node_time)
        ALTER TABLE case_events ADD COLUMN effective_basis TEXT NOT NULL DEFAULT '';
        ALTER TABLE case_events ADD COLUMN effective_provisional INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE cases ADD COLUMN parent_id TEXT REFERENCES cases(id);
        CREATE INDEX cases_parent ON cases(parent_id, kind);
        CREATE TABLE decision_refusals (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL,          -- not a foreign key: the case may be unknown at this street
            event_id TEXT NOT NULL,
            transition TEXT NOT NULL,
            code TEXT NOT NULL,
            reason TEXT NOT NULL,
            decision TEXT NOT NULL,         -- the decision as the hub sent it
            hub_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        """
    )


@core()
def m006_login_failures(db: Database) -> None:
    """Sign-in failures per (account name, client), replacing the per-account lock (server.store.login_guard)."""
    db.executescript(
        """
        CREATE TABLE login_failures (
            username TEXT NOT NULL,          -- as typed, normalised; also names that do not exist
            client TEXT NOT NULL,            -- the client's address
            failures INTEGER NOT NULL,       -- since the last lock or success
            locks INTEGER NOT NULL,          -- locks so far: each doubles the next one
            locked_until TEXT,
            last_at TEXT NOT NULL,
            PRIMARY KEY (username, client)
        );
        """
    )


@core()
def m007_calendar_cumulative_versions(db: Database) -> None:
    """Versions apply in publish order (``seq``) and say which years they complete; an earlier due date
    a recompute would set waits in ``calendar_earlier`` for a person to confirm (issue #10 points 1-2)."""
    db.executescript(
        """
        ALTER TABLE calendar_versions ADD COLUMN complete_years TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE calendar_versions ADD COLUMN seq INTEGER;
        UPDATE calendar_versions SET seq = rowid;
        CREATE UNIQUE INDEX calendar_versions_seq ON calendar_versions(seq);
        CREATE TABLE calendar_earlier (
            id TEXT PRIMARY KEY,
            version TEXT NOT NULL REFERENCES calendar_versions(version),
            case_id TEXT NOT NULL REFERENCES cases(id),
            clock TEXT NOT NULL,
            held_due_at TEXT NOT NULL,     -- the due date kept until a person confirms
            new_due_at TEXT NOT NULL,      -- the earlier due date the new calendar gives
            explanation TEXT NOT NULL,     -- how the earlier date was computed
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | confirmed | superseded
            resolved_at TEXT,
            resolved_by TEXT,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX calendar_earlier_case ON calendar_earlier(case_id, status);
        CREATE INDEX calendar_earlier_status ON calendar_earlier(status, created_at);
        """
    )


MIGRATION_SETS: list[Migrations] = [core]


def register(migrations: Migrations) -> None:
    """Feature modules register their own migration set after the core one."""
    if all(m.name != migrations.name for m in MIGRATION_SETS):
        MIGRATION_SETS.append(migrations)


def apply_migrations(db: Database) -> None:
    _import_feature_migrations()
    for migrations in MIGRATION_SETS:
        migrations.apply(db)


def pending_migrations(db: Database) -> list[tuple[str, str]]:
    _import_feature_migrations()
    return [(m.name, p.name) for m in MIGRATION_SETS for p in m.pending(db)]


def applied_migrations(db: Database) -> list[tuple[str, str, str]]:
    _import_feature_migrations()
    return [(m.name, a.name, a.applied_at) for m in MIGRATION_SETS for a in m.applied(db)]


def _import_feature_migrations() -> None:
    """Import the modules whose migration sets must follow the core set (import order = apply order)."""
    import importlib

    for module in FEATURE_MIGRATION_MODULES:
        importlib.import_module(module)
    from server.features import install  # the node's kinds and handlers, wherever its store is opened

    install()


# Feature stores that define migration sets, in apply order.
FEATURE_MIGRATION_MODULES: list[str] = [
    "server.store.hall_schema",
    "server.store.grid_schema",
    "server.store.platform_schema",  # after the features whose settings it moves
    "sync.leg_b_schema",
    "sync.store_schema",
]
