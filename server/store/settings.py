"""One settings table for every kind: ``kind_settings(kind, key, value)``, validated by the model the
kind declares (``CaseKind.settings_model``).

Before this the hall kept its settings in ``meta`` and the grid in a ``grid_settings`` table of its
own; migration ``streetnode.platform/m001_kind_settings`` moved both here. A key never set keeps the
model's default; every change is audited with before and after and goes into the change log.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel
from sqlite_utils import Database

from server.domain.engine import CaseKind
from server.domain.ids import now_china
from server.store import audit, changes

M = TypeVar("M", bound=BaseModel)


def _model(kind: CaseKind) -> type[BaseModel]:
    if kind.settings_model is None:
        raise ValueError(f"{kind.name} declares no settings")
    return kind.settings_model


def load(db: Database, kind: CaseKind, model: type[M]) -> M:
    """The kind's settings as ``model`` (its declared settings model)."""
    if _model(kind) is not model:
        raise TypeError(f"{kind.name} declares {_model(kind).__name__}, not {model.__name__}")
    stored = {k: json.loads(v) for k, v in db.execute(
        "SELECT key, value FROM kind_settings WHERE kind = ?", [kind.name]).fetchall() if k in model.model_fields}
    return model.model_validate(stored)


def save(db: Database, kind: CaseKind, new: M, *, actor: str, role: str, org_path: str,
         action: str | None = None) -> M:
    """Store every field of ``new``; ``action`` names the audit entry (default "<kind>.settings")."""
    before = load(db, kind, type(new))
    now = now_china().isoformat()
    for key, value in new.model_dump(mode="json").items():
        db.execute(
            "INSERT INTO kind_settings (kind, key, value, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(kind, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,"
            " updated_by = excluded.updated_by",
            [kind.name, key, json.dumps(value, ensure_ascii=False), now, actor],
        )
    old, fresh = before.model_dump(mode="json"), new.model_dump(mode="json")
    audit.append(db, actor=actor, role=role, action=action or f"{kind.name}.settings", object_type="kind_settings",
                 object_id=kind.name, org_path=org_path, before=old, after=fresh,
                 detail={k: v for k, v in fresh.items() if old.get(k) != v})
    changes.record(db, "kind_settings", kind.name, org_path)
    return new
