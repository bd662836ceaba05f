"""Grid reference data on disk: the incident category table and the street's thresholds."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from schemas.grid import CategoryInput, GridSettings
from server.domain.grid import GRID_INCIDENT
from server.domain.ids import now_china
from server.store import audit, changes, settings

_CATEGORY_COLS = (
    "code kind major_class_code major_class minor_class_code minor_class name time_unit time_amount"
    " closure_condition emergency handling_unit_suggestion active catalogue_version"
).split()
_UNIT_LABEL = {"working_hour": "个工作时", "working_day": "个工作日", "calendar_hour": "小时（自然时）"}
_KIND_LABEL = {"component": "部件", "event": "事件"}


def _category(row: Any) -> dict[str, Any]:
    c = dict(zip(_CATEGORY_COLS, row, strict=True))
    c["emergency"] = bool(c["emergency"])
    c["active"] = bool(c["active"])
    c["kind_label"] = _KIND_LABEL.get(c["kind"], c["kind"])
    c["time_limit"] = {"unit": c.pop("time_unit"), "amount": c.pop("time_amount")}
    c["time_limit_label"] = f"{c['time_limit']['amount']} {_UNIT_LABEL.get(c['time_limit']['unit'], '')}"
    return c


def list_categories(db: Database, include_inactive: bool = False) -> list[dict[str, Any]]:
    where = "" if include_inactive else " WHERE active = 1"
    rows = db.execute(
        f"SELECT {', '.join(_CATEGORY_COLS)} FROM grid_categories{where} ORDER BY kind DESC, code"
    ).fetchall()
    return [_category(r) for r in rows]


def get_category(db: Database, code: str) -> dict[str, Any] | None:
    row = db.execute(f"SELECT {', '.join(_CATEGORY_COLS)} FROM grid_categories WHERE code = ?", [code]).fetchone()
    return _category(row) if row else None


def catalogue_version(db: Database) -> str:
    row = db.execute("SELECT MAX(catalogue_version) FROM grid_categories").fetchone()
    return str(row[0] or "")


def save_category(db: Database, body: CategoryInput, *, actor: str, role: str, org_path: str) -> dict[str, Any]:
    """The district edits its category table (time limit, closure condition, emergency flag, active)."""
    from server.store.grid_schema import upsert_category

    before = get_category(db, body.code)
    version = f"district-{now_china():%Y%m%d%H%M%S}"
    upsert_category(db, body, version, active=body.active)
    after = get_category(db, body.code)
    audit.append(db, actor=actor, role=role, action="grid.category", object_type="grid_category",
                 object_id=body.code, org_path=org_path, before=before, after=after,
                 detail={"created": before is None, "version": version})
    changes.record(db, "grid_category", body.code, org_path)
    assert after is not None
    return after


def load_settings(db: Database) -> GridSettings:
    """The street's thresholds (``kind_settings`` of the grid kind); a key never set keeps its default."""
    return settings.load(db, GRID_INCIDENT, GridSettings)


def save_settings(db: Database, new: GridSettings, *, actor: str, role: str, org_path: str) -> GridSettings:
    return settings.save(db, GRID_INCIDENT, new, actor=actor, role=role, org_path=org_path, action="grid.settings")
