"""Organisation units: district -> street -> community -> grid, departments, business units."""

from __future__ import annotations

import json
from datetime import time
from typing import Any

from sqlite_utils import Database

from server.domain.calendar import OfficeHours
from server.domain.roles import Tier
from server.store.scope import under


def upsert_unit(
    db: Database,
    *,
    code: str,
    name: str,
    tier: Tier,
    kind: str,
    parent: str | None = None,
    is_administrative_organ: bool = False,
    data: dict[str, Any] | None = None,
) -> str:
    """Insert or update one unit; its path is its parent's path plus its code. Returns the path."""
    parent_path = ""
    if parent is not None:
        row = db.execute("SELECT path FROM org_units WHERE code = ?", [parent]).fetchone()
        if row is None:
            raise ValueError(f"unknown parent org unit {parent}")
        parent_path = row[0] + "/"
    path = parent_path + code
    db.execute(
        "INSERT INTO org_units (code, parent_code, name, tier, kind, path, is_administrative_organ, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(code) DO UPDATE SET parent_code=excluded.parent_code, name=excluded.name,"
        " tier=excluded.tier, kind=excluded.kind, path=excluded.path,"
        " is_administrative_organ=excluded.is_administrative_organ, data=excluded.data",
        [code, parent, name, tier.value, kind, path, int(is_administrative_organ),
         json.dumps(data or {}, ensure_ascii=False)],
    )
    return path


def get_unit(db: Database, code: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT code, parent_code, name, tier, kind, path, is_administrative_organ, data FROM org_units"
        " WHERE code = ?",
        [code],
    ).fetchone()
    if row is None:
        return None
    keys = ["code", "parent_code", "name", "tier", "kind", "path", "is_administrative_organ", "data"]
    unit = dict(zip(keys, row, strict=True))
    unit["data"] = json.loads(unit["data"])
    unit["is_administrative_organ"] = bool(unit["is_administrative_organ"])
    return unit


def path_of(db: Database, code: str) -> str | None:
    row = db.execute("SELECT path FROM org_units WHERE code = ?", [code]).fetchone()
    return row[0] if row else None


def list_units(db: Database, under_path: str, tier: str | None = None) -> list[dict[str, Any]]:
    where, params = under("path", under_path)
    sql = f"SELECT code, parent_code, name, tier, kind, path FROM org_units WHERE {where}"
    if tier:
        sql += " AND tier = ?"
        params.append(tier)
    sql += " ORDER BY path"
    return [dict(r) for r in db.execute(sql, params).fetchall()]


def office_hours_for(db: Database, org_path: str) -> OfficeHours | None:
    """Office hours of the deepest unit on ``org_path`` that declares them (``data.office_hours``:
    [["08:30", "12:00"], ["14:00", "17:30"]]); None means the standard hours. Working-hour clocks
    (grid SLAs in 工作时) count only these periods."""
    codes = [c for c in org_path.split("/") if c]
    if not codes:
        return None
    marks = ", ".join("?" for _ in codes)
    rows = db.execute(
        f"SELECT path, json_extract(data, '$.office_hours') FROM org_units WHERE code IN ({marks})"
        " AND json_extract(data, '$.office_hours') IS NOT NULL ORDER BY length(path) DESC LIMIT 1",
        codes,
    ).fetchall()
    if not rows:
        return None
    periods = json.loads(rows[0][1])
    return OfficeHours(tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in periods))
