"""Node initialisation: identity, epoch, the org tree, and (with --demo) demo accounts.

A street node holds the district root, the departments (it routes work to them) and its
own street's subtree; the district hub holds every street. Demo data is Tianhe district
as it is (``server/data/tianhe_org.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from schemas.reference import DistrictOrgSpec, StreetSpec, load_tianhe_org
from server.domain.ids import now_china, uuid7
from server.domain.roles import Role, Tier
from server.store import audit, hall_catalogue, org, users

DEMO_PASSWORD = "demo1234"


def get_meta(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def set_meta(db: Database, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def new_epoch(db: Database, reason: str) -> str:
    """A new epoch tells tablets and the hub that this database is not the one they last saw."""
    epoch = uuid7()
    set_meta(db, "epoch", epoch)
    audit.append(db, actor="system", role="system", action="node.new_epoch", object_type="node",
                 object_id=get_meta(db, "node_id") or "", detail={"epoch": epoch, "reason": reason})
    return epoch


def seed_org(db: Database, spec: DistrictOrgSpec, street_code: str | None) -> int:
    """Load the district tree; a street node gets only its own street. Returns units written."""
    d = spec.district
    n = 0
    org.upsert_unit(db, code=d.code, name=d.name, tier=Tier.DISTRICT, kind="government",
                    is_administrative_organ=True, data={"full_name": d.full_name, "stat_code": d.stat_code})
    n += 1
    for dep in spec.departments:
        org.upsert_unit(db, code=dep.code, name=dep.name, tier=Tier.DISTRICT, kind="department", parent=d.code,
                        is_administrative_organ=dep.is_administrative_organ,
                        data={"full_name": dep.full_name, "duties": list(dep.duties)})
        n += 1
    for street in spec.streets:
        if street_code is not None and street.code != street_code:
            continue
        n += _seed_street(db, d.code, street)
    return n


def _seed_street(db: Database, district_code: str, street: StreetSpec) -> int:
    n = 1
    # The street office is a 派出机关: an administrative organ in its own right (domain.md §1.1).
    org.upsert_unit(db, code=street.code, name=street.short_name, tier=Tier.STREET, kind="street_office",
                    parent=district_code, is_administrative_organ=True,
                    data={"statistical_name": street.name, "pilot": street.pilot})
    for unit in street.business_units:
        org.upsert_unit(db, code=unit.code, name=unit.name, tier=Tier.STREET, kind="business_unit",
                        parent=street.code, data={"template": unit.template})
        n += 1
    for community in street.communities:
        # A residents' committee may receive on the street's behalf, never decide.
        org.upsert_unit(db, code=community.code, name=community.name, tier=Tier.COMMUNITY,
                        kind="residents_committee", parent=street.code, is_administrative_organ=False,
                        data={"centre": list(community.centre) if community.centre else None})
        n += 1
        for grid in community.grids:
            org.upsert_unit(db, code=grid.code, name=f"{community.name}{grid.name}", tier=Tier.GRID, kind="grid",
                            parent=community.code, data={"polygon": [list(p) for p in grid.polygon]})
            n += 1
    return n


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: Role
    org_unit: str


def demo_accounts(spec: DistrictOrgSpec, role: str, street_code: str) -> list[DemoAccount]:
    if role == "district":
        dept = next((d.code for d in spec.departments if "民政" in d.name), spec.departments[0].code)
        return [
            DemoAccount("district_admin", "区政务公开办 管理员", Role.DISTRICT_ADMIN, spec.district.code),
            DemoAccount("approver", "区民政局 审批人", Role.DISTRICT_APPROVER, dept),
        ]
    street = spec.street(street_code)
    gridded = [c for c in street.communities if c.grids]
    community = gridded[0] if gridded else street.communities[0]
    grid = community.grids[0].code if community.grids else community.code
    accounts = [
        DemoAccount("admin", f"{street.short_name} 管理员", Role.STREET_ADMIN, street.code),
        DemoAccount("clerk", "窗口受理员 陈晓敏", Role.WINDOW_CLERK, street.code),
        DemoAccount("handler", "承办人 李国强", Role.STREET_HANDLER, street.code),
        DemoAccount("reviewer", "保密审查员 周丽", Role.CONFIDENTIALITY_REVIEWER, street.code),
        DemoAccount("supervisor", "监察员 王建华", Role.SUPERVISOR, street.code),
        DemoAccount("leader", "值班长 黄志明", Role.SHIFT_LEADER, street.code),
        DemoAccount("dispatcher", "派遣员 刘洋", Role.DISPATCHER, street.code),
        DemoAccount("grid1", "网格员 张伟", Role.GRID_MEMBER, grid),
        DemoAccount("grid2", "网格员 林芳", Role.GRID_MEMBER, grid),
        DemoAccount("community1", f"{community.name} 社区工作者 何静", Role.COMMUNITY_WORKER, community.code),
    ]
    return accounts


def init_node(
    db: Database, *, role: str, node_id: str, org_unit: str, demo: bool, spec: DistrictOrgSpec | None = None
) -> dict[str, Any]:
    """Initialise an empty node; a second run changes nothing (idempotent)."""
    if get_meta(db, "node_id") is not None:
        return {"created": False, "node_id": get_meta(db, "node_id"), "org_unit": get_meta(db, "org_unit")}
    spec = spec or load_tianhe_org()
    if role == "street":
        street_code = org_unit or spec.pilot_streets[0].code
        spec.street(street_code)  # KeyError for an unknown street
    else:
        street_code = ""
    unit = street_code or spec.district.code
    set_meta(db, "node_id", node_id)
    set_meta(db, "role", role)
    set_meta(db, "org_unit", unit)
    set_meta(db, "created_at", now_china().isoformat())
    units = seed_org(db, spec, street_code or None)
    hall_catalogue.seed_catalogue(db)
    new_epoch(db, "init")
    accounts: list[DemoAccount] = []
    if demo:
        accounts = demo_accounts(spec, role, street_code)
        for acc in accounts:
            users.create_user(db, username=acc.username, display_name=acc.display_name, password=DEMO_PASSWORD,
                              role=acc.role, org_unit=acc.org_unit)
    audit.append(db, actor="system", role="system", action="node.init", object_type="node", object_id=node_id,
                 detail={"role": role, "org_unit": unit, "units": units, "demo": demo})
    return {"created": True, "node_id": node_id, "org_unit": unit, "units": units,
            "accounts": [(a.username, a.display_name, a.role.value) for a in accounts]}
