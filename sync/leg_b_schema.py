"""Tables of leg B (street node ⇄ district hub); both roles get all of them, each uses its own half.

Both ends:
- ``sync_checkpoint``: the CouchDB replication log, one row per replication id, written only after a
  durable apply (sync.md §4.3), with ``history`` capped at 50 sessions.
- ``sync_conflicts``: what could not be applied silently (never a silent winner, DESIGN §6 rule 1).

Street: ``sync_sessions`` (named, persisted stages; a rerun resumes), ``sync_inbox`` (down-packages
fetched, then applied strictly in order), ``sync_hub_owned`` (records written by packages: echoes,
never re-authored), ``sync_countersigs`` (the hub's signatures over this node's audit head).

Hub: ``hub_nodes`` (enrolled street nodes and their keys), ``hub_rows`` (every row received,
``UNIQUE(node_id, node_seq)``), ``hub_records`` (the current content of each street record),
``hub_batches`` (received batches), ``hub_packages`` (the ordered, signed publication log),
``hub_published`` (digest of what each package type last published), ``hub_countersigs``.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from server.store.schema import register

syncb = Migrations("streetnode.syncb")


@syncb()
def m001_leg_b(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE sync_checkpoint (
            replication_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL,
            source_last_seq INTEGER NOT NULL,
            history_json TEXT NOT NULL DEFAULT '[]',
            peer_epoch TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE sync_conflicts (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,              -- seq_reused, out_of_scope, hub_owned, package_item, audit_regression …
            node_id TEXT,
            entity TEXT,
            entity_id TEXT,
            node_seq INTEGER,
            detail TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            resolved_at TEXT,
            resolution TEXT
        );
        CREATE INDEX sync_conflicts_open ON sync_conflicts(resolved_at, kind);

        CREATE TABLE sync_sessions (
            session_id TEXT PRIMARY KEY,
            trigger TEXT NOT NULL,           -- manual | nightly | retry | bundle
            stage TEXT NOT NULL,             -- last stage completed
            started_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT,
            hub_id TEXT,
            hub_epoch TEXT,
            stats TEXT NOT NULL DEFAULT '{}',
            error TEXT
        );
        CREATE TABLE sync_inbox (
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            package_id TEXT NOT NULL,
            base_seq INTEGER NOT NULL,
            ptype TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            body TEXT NOT NULL,              -- the signed package as received
            received_at TEXT NOT NULL,
            applied_at TEXT,
            result TEXT,
            PRIMARY KEY (stream, seq)
        );
        CREATE TABLE sync_hub_owned (
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (entity, entity_id)
        );
        CREATE TABLE sync_countersigs (
            audit_seq INTEGER NOT NULL,
            audit_hash TEXT NOT NULL,
            hub_id TEXT NOT NULL,
            body TEXT NOT NULL,
            received_at TEXT NOT NULL,
            PRIMARY KEY (hub_id, audit_seq)
        );

        CREATE TABLE hub_nodes (
            node_id TEXT PRIMARY KEY,
            org_unit TEXT NOT NULL,
            org_path TEXT NOT NULL,
            public_key TEXT NOT NULL,
            key_id TEXT NOT NULL,
            enc_public_key TEXT,
            enrolled_at TEXT NOT NULL,
            revoked_at TEXT,
            epoch TEXT,
            acked_through_seq INTEGER NOT NULL DEFAULT 0,
            down_applied TEXT NOT NULL DEFAULT '{}',
            last_seen_at TEXT,
            clock_offset_ms INTEGER,
            clock_suspect INTEGER NOT NULL DEFAULT 0,
            audit_seq INTEGER,
            audit_hash TEXT
        );
        CREATE TABLE hub_rows (
            node_id TEXT NOT NULL,
            node_seq INTEGER NOT NULL,
            epoch TEXT NOT NULL,
            batch_id TEXT NOT NULL,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            op TEXT NOT NULL,
            kind TEXT NOT NULL,
            org_path TEXT NOT NULL,
            at TEXT NOT NULL,
            data TEXT,
            sealed TEXT,
            row_sha256 TEXT NOT NULL,
            received_at TEXT NOT NULL,
            UNIQUE (node_id, node_seq)
        );
        CREATE TABLE hub_records (
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            node_id TEXT NOT NULL,
            op TEXT NOT NULL,
            org_path TEXT NOT NULL,
            data TEXT,
            sealed TEXT,
            node_seq INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (entity, entity_id)
        );
        CREATE INDEX hub_records_path ON hub_records(entity, org_path);
        CREATE TABLE hub_batches (
            batch_id TEXT PRIMARY KEY,
            node_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            after_seq INTEGER NOT NULL,
            to_seq INTEGER NOT NULL,
            rows INTEGER NOT NULL,
            received_at TEXT NOT NULL,
            via TEXT NOT NULL                -- http | bundle
        );
        CREATE TABLE hub_packages (
            stream TEXT NOT NULL,
            seq INTEGER NOT NULL,
            package_id TEXT NOT NULL UNIQUE,
            ptype TEXT NOT NULL,
            body TEXT NOT NULL,              -- the signed package, canonical JSON
            created_at TEXT NOT NULL,
            PRIMARY KEY (stream, seq)
        );
        CREATE TABLE hub_published (
            ptype TEXT NOT NULL,
            stream TEXT NOT NULL,
            digest TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (ptype, stream)
        );
        CREATE TABLE hub_countersigs (
            node_id TEXT NOT NULL,
            audit_seq INTEGER NOT NULL,
            audit_hash TEXT NOT NULL,
            body TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX hub_countersigs_node ON hub_countersigs(node_id, audit_seq);
        """
    )


@syncb()
def m002_revoked_node_keys(db: Database) -> None:
    """Keys of street nodes the district revoked (a stolen machine): refused for good, also on re-enrolment."""
    db.executescript(
        """
        CREATE TABLE hub_revoked_keys (
            key_id TEXT PRIMARY KEY,
            node_id TEXT NOT NULL,
            public_key TEXT NOT NULL,
            revoked_at TEXT NOT NULL,
            reason TEXT NOT NULL,
            revoked_by TEXT NOT NULL
        );
        """
    )


register(syncb)
