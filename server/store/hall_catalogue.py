"""The service-item catalogue: versioned, owned by the district hub (DESIGN.md §6 rule 4).

A street node receives the catalogue (seeded from the shipped demo catalogue, later through the
hub's down-packages via ``apply_item``) and never authors it; ``publish_item`` is the hub's edit.
Each edit is a new revision of the item; the previous one stays, marked not current. Search uses
an FTS5 trigram index (Chinese has no word boundaries), with LIKE for queries shorter than three
characters, which a trigram index cannot match.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from schemas.reference import ServiceItemSpec, load_service_catalogue
from server.domain.catalogue_search import is_pinyin_query, matched_alias, normalise, terms_for
from server.domain.ids import now_china
from server.store import audit, changes

_LIST_COLS = "code, version, basic_code, name, item_type, level, status, statutory_limit_wd, promised_limit_wd"


def _fts_body(spec: ServiceItemSpec) -> str:
    parts = [spec.basic_code, spec.item_type, spec.implementing_body, spec.handling_office,
             *spec.legal_basis, *spec.acceptance_conditions, *(m.name for m in spec.materials),
             spec.result_name or "", spec.note or ""]
    return "\n".join(p for p in parts if p)


def _write_revision(db: Database, spec: ServiceItemSpec, catalogue_version: str, now: datetime) -> int:
    code = spec.implementation_code
    row = db.execute("SELECT MAX(version) FROM catalogue_items WHERE code = ?", [code]).fetchone()
    version = int(row[0] or 0) + 1
    db.execute("UPDATE catalogue_items SET is_current = 0 WHERE code = ? AND is_current = 1", [code])
    db.execute(
        "INSERT INTO catalogue_items (code, version, catalogue_version, basic_code, name, item_type, level, status,"
        " statutory_limit_wd, promised_limit_wd, spec, is_current, published_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'published', ?, ?, ?, 1, ?)",
        [code, version, catalogue_version, spec.basic_code, spec.name, spec.item_type, spec.level,
         spec.statutory_limit_wd, spec.promised_limit_wd, spec.model_dump_json(), now.isoformat()],
    )
    db.execute("DELETE FROM catalogue_fts WHERE code = ?", [code])
    db.execute("INSERT INTO catalogue_fts (code, name, body) VALUES (?, ?, ?)", [code, spec.name, _fts_body(spec)])
    index_terms(db, code, spec.name, spec.aliases)
    changes.record(db, "catalogue_item", code)
    return version


def index_terms(db: Database, code: str, name: str, aliases: Any) -> None:
    """Replace the item's search terms (name, aliases, code, pinyin) with those of its current revision."""
    db.execute("DELETE FROM catalogue_terms WHERE code = ?", [code])
    db.conn.executemany(
        "INSERT INTO catalogue_terms (code, term, kind, weight) VALUES (?, ?, ?, ?)",
        [(code, t.term, t.kind, t.weight) for t in terms_for(name, aliases, code)],
    )


def _new_catalogue_version(db: Database, version: str, source: str, actor: str, now: datetime, note: str) -> None:
    db.execute(
        "INSERT INTO catalogue_versions (version, source, published_at, published_by, note) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(version) DO NOTHING",
        [version, source, now.isoformat(), actor, note],
    )


def seed_catalogue(db: Database) -> int:
    """Load the shipped catalogue into an empty node (idempotent). Returns the items written."""
    if db.execute("SELECT 1 FROM catalogue_versions LIMIT 1").fetchone():
        return 0
    spec = load_service_catalogue()
    now = now_china()
    _new_catalogue_version(db, spec.version, "builtin", "system", now, spec.code_note)
    for item in spec.items:
        _write_revision(db, item, spec.version, now)
    audit.append(db, actor="system", role="system", action="catalogue.seed", object_type="catalogue",
                 object_id=spec.version, detail={"items": len(spec.items)})
    return len(spec.items)


def publish_item(db: Database, spec: ServiceItemSpec, *, actor: str, role: str, now: datetime) -> dict[str, Any]:
    """The district's edit: a new revision under a new catalogue version, audited and logged for sync."""
    before = current_item(db, spec.implementation_code)
    catalogue_version = f"{now:%Y%m%d%H%M%S}-{spec.implementation_code}"
    _new_catalogue_version(db, catalogue_version, "district", actor, now, f"修订 {spec.name}")
    version = _write_revision(db, spec, catalogue_version, now)
    audit.append(db, actor=actor, role=role, action="catalogue.publish_item", object_type="catalogue_item",
                 object_id=spec.implementation_code, before=before["spec"] if before else None,
                 after=spec.model_dump(mode="json"), detail={"version": version, "catalogue": catalogue_version})
    return {"code": spec.implementation_code, "version": version, "catalogue_version": catalogue_version}


def withdraw_item(db: Database, code: str, *, reason: str, actor: str, role: str, now: datetime) -> dict[str, Any]:
    """The item stops being offered (停止办理): no new applications, gone from search; its revisions stay for
    the cases that used them, and publishing it again makes a new revision. At the hub this is the
    district's act; at a street it arrives as a deletion in the catalogue's down-package."""
    item = current_item(db, code)
    if item is None:
        raise LookupError(code)
    if item["status"] == "withdrawn":
        return {"code": code, "status": "withdrawn", "changed": False}
    db.execute("UPDATE catalogue_items SET status = 'withdrawn' WHERE code = ? AND is_current = 1", [code])
    db.execute("DELETE FROM catalogue_fts WHERE code = ?", [code])
    db.execute("DELETE FROM catalogue_terms WHERE code = ?", [code])
    audit.append(db, actor=actor, role=role, action="catalogue.withdraw_item", object_type="catalogue_item",
                 object_id=code, before={"status": item["status"]}, after={"status": "withdrawn"},
                 detail={"reason": reason, "version": item["version"]})
    changes.record(db, "catalogue_item", code)
    return {"code": code, "status": "withdrawn", "changed": True}


def apply_item(db: Database, spec: ServiceItemSpec, *, catalogue_version: str, now: datetime) -> int:
    """A street node applying an item revision received from the hub (the sync package applier calls this)."""
    _new_catalogue_version(db, catalogue_version, "hub", "hub", now, "")
    version = _write_revision(db, spec, catalogue_version, now)
    audit.append(db, actor="hub", role="system", action="catalogue.apply_item", object_type="catalogue_item",
                 object_id=spec.implementation_code, after=spec.model_dump(mode="json"),
                 detail={"version": version, "catalogue": catalogue_version})
    return version


def _row(row: Any, with_spec: bool) -> dict[str, Any]:
    item = dict(row)
    if with_spec:
        item["spec"] = json.loads(item["spec"])
    return item


def current_item(db: Database, code: str) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {_LIST_COLS}, catalogue_version, published_at, spec FROM catalogue_items"
        " WHERE code = ? AND is_current = 1",
        [code],
    ).fetchone()
    return _row(row, True) if row else None


_SPECS: dict[tuple[str, int, str], ServiceItemSpec] = {}  # (code, revision, catalogue version): immutable


def current_spec(db: Database, code: str) -> tuple[ServiceItemSpec, int] | None:
    """The current revision of a published item (None once withdrawn), parsed once per process: revisions
    never change once written."""
    row = db.execute("SELECT version, catalogue_version, spec FROM catalogue_items WHERE code = ? AND is_current = 1"
                     " AND status = 'published'", [code]).fetchone()
    if row is None:
        return None
    key = (code, int(row[0]), str(row[1]))
    spec = _SPECS.get(key)
    if spec is None:
        spec = _SPECS[key] = ServiceItemSpec.model_validate_json(row[2])
    return spec, key[1]


def item_history(db: Database, code: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT version, catalogue_version, published_at, is_current FROM catalogue_items WHERE code = ?"
        " ORDER BY version", [code]
    ).fetchall()
    return [dict(r) for r in rows]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_items(
    db: Database, q: str = "", item_type: str = "", level: str = "", limit: int = 50
) -> list[dict[str, Any]]:
    """Current items matching ``q`` by the words people use, best first.

    Rank 0 is an exact name, alias (俗称) or code; 1 a term starting with the query; 2 a term
    containing it; pinyin readings (``dbsq``, ``dibao``) one step after the words they read; and
    last, items whose guide mentions the query (trigram full text, bm25 with name matches first).
    Each row says which alias matched (``matched_alias``) so a list can show 「又称：低保」.
    """
    cols = ", ".join(f"c.{c.strip()}" for c in _LIST_COLS.split(","))
    extra = ("json_extract(c.spec, '$.aliases') AS aliases,"
             " (SELECT group_concat(term, ' ') FROM catalogue_terms t WHERE t.code = c.code AND t.kind = 'initials')"
             " AS initials")
    params: list[Any] = []
    term = normalise(q)
    if q.strip() and not term:
        return []  # only punctuation: nothing a person could have meant
    if term:
        like = _like(term)
        kinds = "" if is_pinyin_query(term) else " AND kind NOT IN ('initials', 'pinyin')"
        hits = (
            "SELECT code, MIN(CASE WHEN term = ? THEN 0 WHEN term LIKE ? ESCAPE '\\' THEN 1 ELSE 2 END"
            " + 2 * weight) AS rank, 0.0 AS score"
            f" FROM catalogue_terms WHERE term LIKE ? ESCAPE '\\'{kinds} GROUP BY code"
        )
        params += [term, like + "%", "%" + like + "%"]
        if len(q.strip()) >= 3:
            # a quoted FTS5 string is a phrase: user input cannot inject query syntax
            hits += (" UNION ALL SELECT code, 9 AS rank, bm25(catalogue_fts, 0.0, 10.0, 1.0) AS score"
                     " FROM catalogue_fts WHERE catalogue_fts MATCH ?")
            params.append('"' + q.strip().replace('"', '""') + '"')
        sql = (f"SELECT {cols}, {extra}, MIN(h.rank) AS rank, MIN(h.score) AS score"
               f" FROM catalogue_items c JOIN ({hits}) h ON h.code = c.code WHERE c.is_current = 1"
               " AND c.status = 'published'")
        order = "rank, score, c.code"
    else:
        sql = f"SELECT {cols}, {extra} FROM catalogue_items c WHERE c.is_current = 1 AND c.status = 'published'"
        order = "c.code"
    if item_type:
        sql += " AND c.item_type = ?"
        params.append(item_type)
    if level:
        sql += " AND c.level = ?"
        params.append(level)
    sql += (" GROUP BY c.code" if term else "") + f" ORDER BY {order} LIMIT ?"
    params.append(limit)
    out = []
    for r in db.execute(sql, params).fetchall():
        row = dict(r)
        row.pop("score", None)
        row.pop("rank", None)
        row["aliases"] = json.loads(row["aliases"]) if row.get("aliases") else []
        row["initials"] = (row.get("initials") or "").split()
        if term:
            row["matched_alias"] = matched_alias(term, row["name"], row["aliases"])
        out.append(row)
    return out
