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
    changes.record(db, "catalogue_item", code)
    return version


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
    """The current revision, parsed once per process: revisions never change once written."""
    row = db.execute("SELECT version, catalogue_version, spec FROM catalogue_items WHERE code = ? AND is_current = 1",
                     [code]).fetchone()
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


def search_items(
    db: Database, q: str = "", item_type: str = "", level: str = "", limit: int = 50
) -> list[dict[str, Any]]:
    """Current items matching ``q``; full-text hits are ranked with name matches first (bm25)."""
    cols = ", ".join(f"c.{c.strip()}" for c in _LIST_COLS.split(","))
    sql = f"SELECT {cols} FROM catalogue_items c"
    params: list[Any] = []
    q = q.strip()
    order = "c.code"
    if len(q) >= 3:
        # a quoted FTS5 string is a phrase: user input cannot inject query syntax
        sql += (" JOIN (SELECT code, bm25(catalogue_fts, 0.0, 10.0, 1.0) AS rank FROM catalogue_fts"
                " WHERE catalogue_fts MATCH ?) f ON f.code = c.code")
        params.append('"' + q.replace('"', '""') + '"')
        order = "f.rank, c.code"
    sql += " WHERE c.is_current = 1"
    if q and len(q) < 3:  # a trigram index cannot match one or two characters
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql += " AND (c.name LIKE ? ESCAPE '\\' OR c.code LIKE ? ESCAPE '\\' OR c.basic_code LIKE ? ESCAPE '\\')"
        params += [like, like, like]
    if item_type:
        sql += " AND c.item_type = ?"
        params.append(item_type)
    if level:
        sql += " AND c.level = ?"
        params.append(level)
    sql += f" ORDER BY {order} LIMIT ?"
    params.append(limit)
    return [_row(r, False) for r in db.execute(sql, params).fetchall()]
