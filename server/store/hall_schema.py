"""Tables of the services hall: catalogue, applicants, materials, receipts, ratings, appeals.

The application itself is a case (``cases`` / ``case_events``); these tables hold what a case row
must not: personal data (encrypted, with blind indexes), the receipt's query code and rating
token, the catalogue with its versions and a trigram full-text index for Chinese substring search.
Ratings are append-only (国办发〔2019〕51号: never edited or deleted), enforced by triggers.
"""

from __future__ import annotations

import json

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from server.store.schema import register

hall = Migrations("streetnode.hall")


@hall()
def m001_catalogue(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE catalogue_versions (
            version TEXT PRIMARY KEY,
            source TEXT NOT NULL,              -- builtin | district | hub
            published_at TEXT NOT NULL,
            published_by TEXT NOT NULL DEFAULT 'system',
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE catalogue_items (
            code TEXT NOT NULL,                -- 实施编码
            version INTEGER NOT NULL,          -- revision of this item, 1, 2, ...
            catalogue_version TEXT NOT NULL REFERENCES catalogue_versions(version),
            basic_code TEXT NOT NULL,
            name TEXT NOT NULL,
            item_type TEXT NOT NULL,
            level TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'published',
            statutory_limit_wd INTEGER NOT NULL,
            promised_limit_wd INTEGER NOT NULL,
            spec TEXT NOT NULL,
            is_current INTEGER NOT NULL DEFAULT 1,
            published_at TEXT NOT NULL,
            PRIMARY KEY (code, version),
            CHECK (promised_limit_wd <= statutory_limit_wd)
        );
        CREATE INDEX catalogue_items_current ON catalogue_items(is_current, level, item_type);
        -- trigram: Chinese has no spaces, so substring search needs n-grams (SQLite >= 3.34)
        CREATE VIRTUAL TABLE catalogue_fts USING fts5(code UNINDEXED, name, body, tokenize='trigram');
        """
    )


@hall()
def m002_applications(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE hall_applicants (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL UNIQUE REFERENCES cases(id),
            name_enc TEXT NOT NULL,
            id_card_enc TEXT NOT NULL,
            phone_enc TEXT NOT NULL,
            address_enc TEXT NOT NULL,
            id_card_index TEXT NOT NULL,       -- HMAC blind index: find an applicant's cases
            phone_index TEXT NOT NULL,
            name_masked TEXT NOT NULL,
            id_card_masked TEXT NOT NULL,
            phone_masked TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX hall_applicants_id_card ON hall_applicants(id_card_index);
        CREATE INDEX hall_applicants_phone ON hall_applicants(phone_index);
        CREATE TABLE hall_applications (
            case_id TEXT PRIMARY KEY REFERENCES cases(id),
            item_code TEXT NOT NULL,
            item_version INTEGER NOT NULL,
            item_name TEXT NOT NULL,
            level TEXT NOT NULL,
            channel TEXT NOT NULL,             -- window | community_proxy
            received_by TEXT NOT NULL,
            on_behalf_of TEXT,
            applicant_id TEXT NOT NULL REFERENCES hall_applicants(id),
            created_at TEXT NOT NULL
        );
        CREATE INDEX hall_applications_item ON hall_applications(item_code);
        CREATE TABLE hall_materials (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases(id),
            material TEXT NOT NULL,
            file_name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mime TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (case_id, file_name)
        );
        CREATE TABLE hall_receipts (
            case_id TEXT PRIMARY KEY REFERENCES cases(id),
            query_code TEXT NOT NULL UNIQUE,
            rating_token_hash TEXT NOT NULL UNIQUE,
            rating_token_enc TEXT NOT NULL,    -- kept encrypted so the receipt can be reprinted
            issued_at TEXT NOT NULL,
            node_id TEXT NOT NULL,
            signed_body TEXT NOT NULL          -- canonical JSON the node signs (Ed25519) on each print
        );
        """
    )


@hall()
def m003_evaluation(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE hall_ratings (
            id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases(id),
            stage TEXT NOT NULL,
            channel TEXT NOT NULL,
            level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
            indicators TEXT NOT NULL DEFAULT '{}',
            comment TEXT NOT NULL DEFAULT '',
            problems TEXT NOT NULL DEFAULT '[]',
            indicator_version TEXT NOT NULL,
            responsible TEXT NOT NULL DEFAULT '',  -- who handled the rated stage (谁办理、谁负责)
            org_path TEXT NOT NULL,
            rectification_case_id TEXT,
            rated_at TEXT NOT NULL,
            UNIQUE (case_id, stage)               -- 一事一评 per stage
        );
        CREATE TRIGGER hall_ratings_no_update BEFORE UPDATE ON hall_ratings
            BEGIN SELECT RAISE(ABORT, 'ratings are never edited'); END;
        CREATE TRIGGER hall_ratings_no_delete BEFORE DELETE ON hall_ratings
            BEGIN SELECT RAISE(ABORT, 'ratings are never deleted'); END;
        CREATE TABLE hall_appeals (
            id TEXT PRIMARY KEY,
            rating_id TEXT NOT NULL REFERENCES hall_ratings(id),
            appellant_id TEXT NOT NULL,
            appellant_role TEXT NOT NULL,
            reason TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | upheld | rejected
            reviewer_id TEXT,
            review_reason TEXT,
            created_at TEXT NOT NULL,
            reviewed_at TEXT
        );
        CREATE UNIQUE INDEX hall_appeals_one_pending ON hall_appeals(rating_id) WHERE status = 'pending';
        """
    )


@hall()
def m004_catalogue_terms(db: Database) -> None:
    """Search terms per item (name, 俗称 aliases, code, pinyin): see server.domain.catalogue_search."""
    db.executescript(
        """
        CREATE TABLE catalogue_terms (
            code TEXT NOT NULL,                -- 实施编码 of the current revision
            term TEXT NOT NULL,                -- normalised: lower case, no spaces or punctuation
            kind TEXT NOT NULL,                -- name | alias | code | initials | pinyin
            weight INTEGER NOT NULL,           -- 0 for typed words, 1 for pinyin readings
            PRIMARY KEY (code, term)
        );
        CREATE INDEX catalogue_terms_term ON catalogue_terms(term);
        """
    )
    from server.store.hall_catalogue import index_terms

    for code, spec in db.execute("SELECT code, spec FROM catalogue_items WHERE is_current = 1").fetchall():
        parsed = json.loads(spec)
        index_terms(db, code, parsed["name"], parsed.get("aliases", ()))


register(hall)
