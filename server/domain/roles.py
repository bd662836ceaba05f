"""Roles, tiers and the one scope rule.

Scope is by org path: a unit's path is its ancestors' codes joined by "/", e.g.
``440106/440106005/440106005001/440106005001-G01`` (district/street/community/grid).
A principal may see a record when the record's org path lies under the principal's
scope path. This module is the single place where that rule lives (DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"


class Role(StrEnum):
    DISTRICT_ADMIN = "district_admin"
    DISTRICT_APPROVER = "district_approver"  # 区职能部门审批人
    STREET_ADMIN = "street_admin"
    WINDOW_CLERK = "window_clerk"  # 受理员
    STREET_HANDLER = "street_handler"  # 承办人
    CONFIDENTIALITY_REVIEWER = "confidentiality_reviewer"  # 保密审查员
    SUPERVISOR = "supervisor"  # 监察
    SHIFT_LEADER = "shift_leader"  # 值班长: files and closes grid cases
    DISPATCHER = "dispatcher"  # 派遣员
    GRID_MEMBER = "grid_member"  # 网格员
    COMMUNITY_WORKER = "community_worker"  # 社区工作者: receives on the street's behalf, never decides
    RESIDENT = "resident"  # anonymous; never an account


ROLE_LABELS: dict[Role, str] = {
    Role.DISTRICT_ADMIN: "区级管理员",
    Role.DISTRICT_APPROVER: "区职能部门审批人",
    Role.STREET_ADMIN: "街道管理员",
    Role.WINDOW_CLERK: "窗口受理员",
    Role.STREET_HANDLER: "街道承办人",
    Role.CONFIDENTIALITY_REVIEWER: "保密审查员",
    Role.SUPERVISOR: "监察员",
    Role.SHIFT_LEADER: "值班长",
    Role.DISPATCHER: "派遣员",
    Role.GRID_MEMBER: "网格员",
    Role.COMMUNITY_WORKER: "社区工作者",
    Role.RESIDENT: "居民",
}

# The tier each staff role works at; a user's org unit must be of this tier.
ROLE_TIER: dict[Role, Tier] = {
    Role.DISTRICT_ADMIN: Tier.DISTRICT,
    Role.DISTRICT_APPROVER: Tier.DISTRICT,
    Role.STREET_ADMIN: Tier.STREET,
    Role.WINDOW_CLERK: Tier.STREET,
    Role.STREET_HANDLER: Tier.STREET,
    Role.CONFIDENTIALITY_REVIEWER: Tier.STREET,
    Role.SUPERVISOR: Tier.STREET,
    Role.SHIFT_LEADER: Tier.STREET,
    Role.DISPATCHER: Tier.STREET,
    Role.GRID_MEMBER: Tier.GRID,
    Role.COMMUNITY_WORKER: Tier.COMMUNITY,
}

STAFF_ROLES: frozenset[Role] = frozenset(ROLE_TIER)
STREET_STAFF: frozenset[Role] = frozenset(r for r, t in ROLE_TIER.items() if t is Tier.STREET)
DISTRICT_STAFF: frozenset[Role] = frozenset({Role.DISTRICT_ADMIN, Role.DISTRICT_APPROVER})
ADMINS: frozenset[Role] = frozenset({Role.DISTRICT_ADMIN, Role.STREET_ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who is acting: a signed-in staff member (or a device acting for one)."""

    user_id: str
    username: str
    role: Role
    org_unit: str
    org_path: str
    display_name: str = ""
    device_id: str | None = None

    @property
    def tier(self) -> Tier:
        return ROLE_TIER.get(self.role, Tier.GRID)


def path_within(path: str, scope: str) -> bool:
    """True when ``path`` equals ``scope`` or lies below it (whole segments only)."""
    return path == scope or path.startswith(scope.rstrip("/") + "/")


def can_see(principal: Principal, org_path: str) -> bool:
    return path_within(org_path, principal.org_path)


def tier_of_path(org_path: str) -> Tier:
    depth = len([p for p in org_path.split("/") if p])
    return [Tier.DISTRICT, Tier.STREET, Tier.COMMUNITY, Tier.GRID][min(max(depth, 1), 4) - 1]
