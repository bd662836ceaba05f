"""The built-in down-package types: calendar, directory, case decisions, void, and hub tables.

Each type has a hub-side collector (what the hub publishes now) and a street-side applier (how one item
lands at a street, inside the package's transaction). Appliers raise ``ItemRefused`` with a Chinese
message for anything they cannot apply; they never overwrite silently.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlite_utils import Database

from server.domain.engine import Draft, RuleViolation
from server.domain.roles import Principal, Role, Tier, path_within
from server.store import org
from server.store.calendars import current_calendar, publish_version
from server.store.cases import transition
from sync.packages import ApplyContext, ItemRefused, PackageType, register_type

__all__ = ["register_hub_table"]


# --- calendar: district-published working-calendar versions -----------------------------------------------


def _collect_calendars(db: Database) -> list[tuple[str, str, list[dict[str, Any]]]]:
    out = []
    for version, notice, complete_years in db.execute(
        "SELECT version, source_notice, complete_years FROM calendar_versions ORDER BY seq"
    ).fetchall():
        entries = [
            {"day": d, "work": bool(w), "reason": r, "name": n}
            for d, w, r, n in db.execute(
                "SELECT day, work, reason, name FROM calendar_entries WHERE version = ? ORDER BY day", [version]
            ).fetchall()
        ]
        out.append((f"calendar:{version}", "all", [{"version": version, "source_notice": notice,
                                                    "complete_years": json.loads(complete_years or "[]"),
                                                    "entries": entries}]))
    return out


def _apply_calendar(db: Database, item: dict[str, Any], ctx: ApplyContext) -> list[tuple[str, str]]:
    version, entries = str(item.get("version", "")), item.get("entries")
    if not version or not isinstance(entries, list):
        raise ItemRefused("malformed", "日历版本数据不完整", "calendar item needs version and entries")
    existing = db.execute("SELECT 1 FROM calendar_versions WHERE version = ?", [version]).fetchone()
    if existing:
        have = [
            {"day": d, "work": bool(w), "reason": r, "name": n}
            for d, w, r, n in db.execute(
                "SELECT day, work, reason, name FROM calendar_entries WHERE version = ? ORDER BY day", [version]
            ).fetchall()
        ]
        if have == sorted(entries, key=lambda e: str(e.get("day"))):
            return [("calendar", version)]  # already here (applied before): idempotent
        raise ItemRefused("calendar_differs", f"日历版本 {version} 已存在且内容不同",
                          f"calendar version {version} exists with other entries")
    try:
        for e in entries:
            date.fromisoformat(str(e["day"]))
        publish_version(db, version=version, entries=entries, source_notice=str(item.get("source_notice", "")),
                        complete_years=[int(y) for y in item.get("complete_years") or []],
                        actor=f"hub:{ctx.hub_id}", role="system", now=ctx.now)
    except (KeyError, TypeError, ValueError) as exc:
        raise ItemRefused("malformed", f"日历版本 {version} 数据错误", str(exc)) from exc
    return [("calendar", version)]


register_type(PackageType("calendar", atomic=True, apply_item=_apply_calendar, hub_owned=frozenset({"calendar"}),
                          collect=_collect_calendars))


# --- directory: the org tree ------------------------------------------------------------------------------


def _collect_directory(db: Database) -> list[tuple[str, str, list[dict[str, Any]]]]:
    units = [
        {"code": c, "parent_code": p, "name": n, "tier": t, "kind": k, "path": path,
         "is_administrative_organ": bool(a), "data": json.loads(d)}
        for c, p, n, t, k, path, a, d in db.execute(
            "SELECT code, parent_code, name, tier, kind, path, is_administrative_organ, data FROM org_units"
            " ORDER BY length(path) - length(replace(path, '/', '')), path"
        ).fetchall()
    ]
    return [("directory", "all", units)] if units else []


def _apply_unit(db: Database, item: dict[str, Any], ctx: ApplyContext) -> list[tuple[str, str]]:
    # A street holds the district root, the departments and its own subtree (server.store.seed).
    path, tier, kind = str(item.get("path", "")), str(item.get("tier", "")), str(item.get("kind", ""))
    depth = len([p for p in path.split("/") if p])
    street_path = org.path_of(db, ctx.street_code) if ctx.street_code else None
    mine = depth == 1 or (depth == 2 and kind == "department") or (
        street_path is not None and path_within(path, street_path))
    if not mine:
        return []
    try:
        org.upsert_unit(db, code=str(item["code"]), name=str(item["name"]), tier=Tier(tier), kind=kind,
                        parent=item.get("parent_code"), is_administrative_organ=bool(item.get("is_administrative_organ")),
                        data=item.get("data") or {})
    except (KeyError, ValueError) as exc:
        raise ItemRefused("malformed", f"组织单元 {item.get('code')} 数据错误", str(exc)) from exc
    return [("org_unit", str(item["code"]))]


register_type(PackageType("directory", atomic=True, apply_item=_apply_unit, hub_owned=frozenset({"org_unit"}),
                          collect=_collect_directory))


# --- case decisions: the district decides a case a street handed up --------------------------------------


def _decided_at(item: dict[str, Any], ctx: ApplyContext) -> tuple[datetime, str]:
    """The decision took effect when the district made it, not when this street synced (issue 9 "Event
    time": a statutory clock stopped at the street's sync time stops days late)."""
    raw = item.get("decided_at")
    try:
        at = datetime.fromisoformat(str(raw)) if raw else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or at > ctx.now:
        return ctx.now, "按本街道收到区级决定的时间计时（决定未载明有效的作出时间）"
    return at, f"按区级部门作出决定的时间 {at:%Y-%m-%d %H:%M} 计时（街道于 {ctx.now:%Y-%m-%d %H:%M} 同步收到）"


def _apply_decision(db: Database, item: dict[str, Any], ctx: ApplyContext) -> list[tuple[str, str]]:
    """Apply the district's decision; one the street cannot apply is recorded so that it travels back up to
    the district with the next up-sync (``decision_refusals``), never only as a local note."""
    try:
        actor = item["actor"]
        principal = Principal(user_id=str(actor["user_id"]), username=str(actor.get("username", "")),
                              role=Role(actor["role"]), org_unit=str(actor["org_unit"]),
                              org_path=str(actor["org_path"]), display_name=str(actor.get("display_name", "")))
        at, basis = _decided_at(item, ctx)
        draft = Draft(transition=str(item["transition"]), payload=dict(item.get("payload") or {}),
                      principal=principal, node_time=ctx.now, event_id=str(item["event_id"]),
                      base_version=int(item["base_version"]), legal_basis=str(item.get("legal_basis", "")),
                      effective_time=at, effective_basis=basis)
        case_id = str(item["case_id"])
    except (KeyError, TypeError, ValueError) as exc:
        return _refused(db, item, ctx, "malformed", "区级决定数据不完整", str(exc))
    if principal.tier is not Tier.DISTRICT:
        return _refused(db, item, ctx, "not_district", "区级决定必须由区级人员作出",
                        "a decision must come from district staff")
    db.execute("SAVEPOINT case_decision")
    try:
        # A stale base_version becomes a case_conflicts record inside transition(): never a silent winner.
        transition(db, case_id, draft, node_id=f"hub:{ctx.hub_id}", calendar=current_calendar(db))
    except RuleViolation as exc:
        db.execute("ROLLBACK TO SAVEPOINT case_decision")
        db.execute("RELEASE SAVEPOINT case_decision")
        return _refused(db, item, ctx, exc.code, exc.message, f"decision on case {case_id}: {exc.code}")
    db.execute("RELEASE SAVEPOINT case_decision")
    return []


def _refused(db: Database, item: dict[str, Any], ctx: ApplyContext, code: str, message_zh: str,
             message_en: str) -> list[tuple[str, str]]:
    from server.domain.canonical import canonical_json, sha256_hex
    from server.store import changes
    from sync.packages import record_conflict

    case_id, event_id = str(item.get("case_id", "")), str(item.get("event_id", ""))
    refusal_id = sha256_hex(canonical_json(["decision_refusal", ctx.hub_id, ctx.stream, ctx.seq, event_id]))[:32]
    row = db.execute("SELECT org_path FROM cases WHERE id = ?", [case_id]).fetchone()
    org_path = str(row[0]) if row else ""
    db.execute(
        "INSERT OR IGNORE INTO decision_refusals (id, case_id, event_id, transition, code, reason, decision, hub_id,"
        " stream, seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [refusal_id, case_id, event_id, str(item.get("transition", "")), code, message_zh,
         json.dumps(item, ensure_ascii=False, default=str), ctx.hub_id, ctx.stream, ctx.seq, ctx.now.isoformat()],
    )
    changes.record(db, "decision_refusal", refusal_id, org_path)  # the next up-sync carries it to the district
    record_conflict(db, "package_item", None, "case_decision", event_id or None, None,
                    {"stream": ctx.stream, "seq": ctx.seq, "code": code, "message": message_zh,
                     "detail": message_en, "item": item, "refusal_id": refusal_id}, ctx.now)
    return []


register_type(PackageType("case_decision", atomic=False, apply_item=_apply_decision))


# --- catalogue: the services hall's item catalogue (server.store.hall_catalogue owns the tables) --------


def _collect_catalogue(db: Database) -> list[tuple[str, str, list[dict[str, Any]]]]:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'catalogue_items'").fetchone():
        return []
    # Published items only: one withdrawn since the last package travels as a tombstone (``tombstone_key``).
    items = [{"code": c, "catalogue_version": v, "spec": json.loads(spec)} for c, v, spec in db.execute(
        "SELECT code, catalogue_version, spec FROM catalogue_items WHERE is_current = 1 AND status = 'published'"
        " ORDER BY code").fetchall()]
    return [("catalogue", "all", items)] if items else []


def _apply_catalogue_item(db: Database, item: dict[str, Any], ctx: ApplyContext) -> list[tuple[str, str]]:
    from pydantic import ValidationError

    from schemas.reference import ServiceItemSpec
    from server.store import hall_catalogue

    if item.get("_deleted"):  # withdrawn at the district (停止办理)
        code = str(item.get("code", ""))
        try:
            hall_catalogue.withdraw_item(db, code, reason="区级停止办理", actor="hub", role="system", now=ctx.now)
        except LookupError:
            pass  # never had it: nothing to withdraw
        return [("catalogue_item", code)]
    try:
        spec = ServiceItemSpec.model_validate(item["spec"])
        code, version = str(item["code"]), str(item["catalogue_version"])
    except (KeyError, ValidationError) as exc:
        raise ItemRefused("malformed", f"事项 {item.get('code')} 数据不符合要求", str(exc)[:200]) from exc
    current = hall_catalogue.current_spec(db, code)
    if current is None or current[0] != spec:  # the same revision again (or the shipped baseline): nothing to do
        hall_catalogue.apply_item(db, spec, catalogue_version=version, now=ctx.now)
    return [("catalogue_item", code)]


register_type(PackageType("catalogue", atomic=False, apply_item=_apply_catalogue_item,
                          hub_owned=frozenset({"catalogue_item"}), collect=_collect_catalogue, tombstone_key="code"))


# --- void: a package the hub lost when it was restored from a backup --------------------------------------


def _apply_void(db: Database, item: dict[str, Any], ctx: ApplyContext) -> list[tuple[str, str]]:
    from sync.packages import record_conflict

    record_conflict(db, "package_lost", ctx.node_id, None, None, None,
                    {"stream": ctx.stream, "seq": ctx.seq, "message": "区级枢纽从备份恢复，此序号的下发包已丢失"},
                    ctx.now)
    return []


register_type(PackageType("void", atomic=True, apply_item=_apply_void))


# --- hub tables: whole-table snapshots the district owns (the services catalogue …) ----------------------


def register_hub_table(table: str, key: str, *, ptype: str | None = None, entity: str | None = None) -> PackageType:
    """Publish every row of ``table`` from the hub; streets upsert by ``key`` and delete tombstoned rows.

    ``entity`` is the change-log entity name a street must never author for this table.
    """
    name = ptype or f"table:{table}"

    def collect(db: Database) -> list[tuple[str, str, list[dict[str, Any]]]]:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone():
            return []
        cur = db.execute(f"SELECT * FROM [{table}] ORDER BY [{key}]")
        names = [d[0] for d in cur.description]
        return [(name, "all", [dict(zip(names, r, strict=True)) for r in cur.fetchall()])]

    def apply_row(db: Database, item: dict[str, Any], ctx: ApplyContext) -> list[tuple[str, str]]:
        cols = {r[1] for r in db.execute(f"PRAGMA table_info([{table}])").fetchall()}
        if not cols:
            raise ItemRefused("no_table", f"本节点没有数据表 {table}", f"table {table} missing on this node")
        if key not in item:
            raise ItemRefused("malformed", f"{table} 数据缺少主键 {key}", f"row without {key}")
        if item.get("_deleted"):
            db.execute(f"DELETE FROM [{table}] WHERE [{key}] = ?", [item[key]])
            return [(entity or table, str(item[key]))]
        names = [c for c in item if c in cols]
        updates = ", ".join(f"[{c}] = excluded.[{c}]" for c in names if c != key) or f"[{key}] = excluded.[{key}]"
        db.execute(
            f"INSERT INTO [{table}] ({', '.join(f'[{c}]' for c in names)}) VALUES ({', '.join('?' for _ in names)})"
            f" ON CONFLICT([{key}]) DO UPDATE SET {updates}",
            [item[c] for c in names],
        )
        return [(entity or table, str(item[key]))]

    return register_type(PackageType(name, atomic=True, apply_item=apply_row,
                                     hub_owned=frozenset({entity or table}), collect=collect, tombstone_key=key))


# The district's incident category table (time limits, closure conditions, emergency flags): edits at the
# hub reach every street; a street never authors it (a case keeps its category snapshot, so an edit never
# moves an open deadline).
register_hub_table("grid_categories", "code", ptype="grid_categories", entity="grid_category")
