"""Tables of sync leg A (tablet ⇄ street node): devices, submissions, quarantine, blobs, alerts.

Idempotency lives in the database, not in check-then-insert code (sync.md §4.1, the Kobo race):
``submissions.id`` is the client's submission id and ``(device_id, device_seq)`` is unique.
Envelope bodies are kept encrypted under the node's data key (``*_enc`` columns, DESIGN §4): a
submission may carry an applicant's ID-card number, and the raw envelope is kept so the device's
signature can be checked again later, not so it can be read in clear.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from server.store.schema import register

sync_migrations = Migrations("streetnode.sync")


@sync_migrations()
def m001_devices_submissions_quarantine(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE device_enrolments (
            id TEXT PRIMARY KEY,
            code_hash TEXT NOT NULL UNIQUE,     -- sha256 of the one-time code; the code is shown once
            label TEXT NOT NULL DEFAULT '',
            org_unit TEXT NOT NULL,
            org_path TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            device_id TEXT
        );
        CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            label TEXT NOT NULL DEFAULT '',
            alg TEXT NOT NULL,                  -- Ed25519 | ECDSA-P256-SHA256
            public_key TEXT NOT NULL,           -- base64url, raw (32 bytes) or uncompressed P-256 point
            key_id TEXT NOT NULL UNIQUE,
            org_unit TEXT NOT NULL,
            org_path TEXT NOT NULL,
            enrolment_id TEXT NOT NULL REFERENCES device_enrolments(id),
            enrolled_by TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by TEXT,
            revoke_reason TEXT,
            last_seen_at TEXT,
            last_user_id TEXT,
            seq_high INTEGER NOT NULL DEFAULT 0,     -- highest device_seq seen (signature verified)
            clock_offset_ms INTEGER,                 -- node time minus device time, last measured
            clock_suspect INTEGER NOT NULL DEFAULT 0,
            clock_checked_at TEXT
        );
        CREATE TABLE submissions (
            id TEXT PRIMARY KEY,                -- submission_id (client UUIDv7)
            device_id TEXT NOT NULL REFERENCES devices(id),
            device_seq INTEGER NOT NULL,
            root_id TEXT NOT NULL,
            supersedes TEXT,
            kind TEXT NOT NULL,
            form_id TEXT NOT NULL,
            form_version TEXT NOT NULL,
            org_path TEXT NOT NULL,
            user_id TEXT NOT NULL,              -- the signed-in user the device acted for
            payload_sha256 TEXT NOT NULL,
            envelope_enc TEXT NOT NULL,         -- the envelope as received, under the node's data key
            status TEXT NOT NULL,               -- created | stale_version | awaiting_blobs
            node_seq INTEGER,                   -- change_log seq of the receipt
            receipt TEXT,                       -- the signed receipt (JSON), once complete
            record_enc TEXT,                    -- what the intake handler returned (a query code!), encrypted
            created_at_device TEXT NOT NULL,
            clock_suspect INTEGER NOT NULL DEFAULT 0,
            received_at TEXT NOT NULL,
            completed_at TEXT,
            UNIQUE (device_id, device_seq)
        );
        CREATE INDEX submissions_status ON submissions(status);
        CREATE INDEX submissions_org_path ON submissions(org_path);
        CREATE TABLE submission_attachments (
            submission_id TEXT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mime TEXT NOT NULL,
            PRIMARY KEY (submission_id, name)
        );
        CREATE INDEX submission_attachments_sha ON submission_attachments(sha256);
        CREATE TABLE quarantine (
            id TEXT PRIMARY KEY,
            dedupe_key TEXT NOT NULL UNIQUE,    -- the same rejected item sent again is kept once
            submission_id TEXT,                 -- as sent; may be malformed
            device_id TEXT,
            device_seq INTEGER,                 -- only when the device's signature verified
            status TEXT NOT NULL,               -- the result the device got: invalid | forbidden | id_conflict
            reason TEXT NOT NULL,               -- stable code, e.g. bad_signature, revoked_device
            errors TEXT NOT NULL DEFAULT '[]',
            payload_sha256 TEXT,
            body_enc TEXT NOT NULL,             -- the rejected envelope, under the node's data key
            original_body_enc TEXT,             -- id_conflict: the body already accepted under that id
            user_id TEXT,
            org_path TEXT NOT NULL DEFAULT '',
            received_at TEXT NOT NULL,
            resolved_at TEXT,
            resolution TEXT
        );
        CREATE INDEX quarantine_device ON quarantine(device_id, device_seq);
        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mime TEXT NOT NULL,
            uploaded_by TEXT NOT NULL,
            device_id TEXT,
            stored_at TEXT NOT NULL
        );
        CREATE TABLE sync_alerts (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,                 -- seq_gap | clock_suspect
            device_id TEXT NOT NULL,
            from_seq INTEGER,
            to_seq INTEGER,
            message TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE INDEX sync_alerts_device ON sync_alerts(device_id, resolved_at);
        """
    )


register(sync_migrations)
