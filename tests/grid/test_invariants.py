"""The grid kind's rules against every role, in the pure engine (no UI, no endpoint can bypass them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from schemas.reference import load_incident_categories
from server.domain.engine import CREATE, SYSTEM_ROLE, CaseView, Draft, RuleViolation, apply_event, decide
from server.domain.grid import GRID_INCIDENT, clock_spec_for
from server.domain.ids import CHINA_TZ, uuid7
from server.domain.roles import ROLE_TIER, Principal, Role
from server.store.db import Store
from tests.conftest import Logins
from tests.grid.helpers import CHECK, FEEDBACK, GRID, INSIDE, case, photo, send_report, step, walk_to_handled

STREET = "440106/440106006000"
GRID_PATH = f"{STREET}/440106006001/{GRID}"
PATHS = {"district": "440106", "street": STREET, "community": f"{STREET}/440106006001", "grid": GRID_PATH}
UNIT_OF_TIER = {"district": "440106", "street": "440106006000", "community": "440106006001", "grid": GRID}
ALL_ROLES = sorted(ROLE_TIER, key=str)
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=CHINA_TZ)
POLYGON = [[113.3405, 23.1303], [113.34183, 23.1303], [113.34183, 23.1333], [113.3405, 23.1333], [113.3405, 23.1303]]
CATEGORY = next(c for c in load_incident_categories() if c.code == "SJ0102").model_dump()
CONTEXT: dict[str, Any] = {
    "settings": {"check_radius_m": 100, "duplicate_radius_m": 50, "duplicate_window_hours": 24},
    "grid": {"code": GRID, "name": "第一网格", "data": {"polygon": POLYGON}},
    "category": {**CATEGORY, "active": True},
    "unit": {"code": "440106006000-enforcement_team", "kind": "business_unit", "name": "石牌街综合执法队",
             "path": f"{STREET}/440106006000-enforcement_team"},
}
CONTEXT["target"] = CONTEXT["unit"]


def who(role: Role, user: str | None = None) -> Principal:
    tier = ROLE_TIER[role].value
    return Principal(user_id=user or f"u-{role.value}", username=role.value, role=role, org_unit=UNIT_OF_TIER[tier],
                     org_path=PATHS[tier])


def act(view: CaseView | None, p: Principal | None, transition: str, minutes: int,
        context: dict[str, Any] | None = None, **payload: Any) -> CaseView:
    draft = Draft(transition, payload, p, T0 + timedelta(minutes=minutes), uuid7(), context=context or CONTEXT,
                  on_behalf_of=None)
    event = decide(GRID_INCIDENT, view, draft, "case-1", GRID_PATH)
    return apply_event(GRID_INCIDENT, view, event, GRID_PATH)


def reported() -> CaseView:
    payload = {"category_code": "SJ0102", "location": INSIDE, "description": "垃圾", "photos": [photo()],
               "_org_path": GRID_PATH, "_clocks": {"handle": clock_spec_for(CATEGORY["time_limit"], "暴露垃圾")}}
    return act(None, who(Role.GRID_MEMBER, "reporter"), "report", 0, **payload)


def checked(handler: Principal | None = None, checker: Principal | None = None) -> CaseView:
    v = reported()
    v = act(v, who(Role.WINDOW_CLERK), "accept", 1)
    v = act(v, who(Role.GRID_MEMBER, "verifier"), "verify", 2, genuine=True)
    v = act(v, who(Role.SHIFT_LEADER), "file", 3)
    v = act(v, who(Role.DISPATCHER), "dispatch", 4, unit_code=CONTEXT["unit"]["code"])
    handler = handler or who(Role.STREET_HANDLER, "the-handler")
    v = act(v, handler, "accept_task", 5)
    v = act(v, handler, "feedback", 6, **FEEDBACK)
    v = act(v, who(Role.WINDOW_CLERK), "request_check", 7)
    return act(v, checker or who(Role.GRID_MEMBER, "checker"), "check_pass", 8, **CHECK)


def payload_for(transition: str) -> dict[str, Any]:
    """A valid payload for each transition, so only the role decides."""
    return {
        "verify": {"genuine": True}, "not_file": {"not_filed_reason_code": "other", "not_filed_reason": "x"},
        "dispatch": {"unit_code": CONTEXT["unit"]["code"]}, "redispatch": {"unit_code": CONTEXT["unit"]["code"]},
        "return": {"return_reason_code": "other", "return_reason": "x"},
        "request_on_account": {"on_account_reason": "x"}, "reject_on_account": {"decision_reason": "x"},
        "feedback": FEEDBACK, "check_pass": CHECK, "check_fail": {"rework_reason": "x", **CHECK},
        "rework": {"rework_reason": "x"}, "merge": {"merged_into": "other"}, "absorb": {"merged_case": "other"},
    }.get(transition, {})


CLIENT_TRANSITIONS = sorted(n for n, t in GRID_INCIDENT.transitions.items() if not t.system and n != "report")


@pytest.mark.parametrize("role", ALL_ROLES, ids=str)
@pytest.mark.parametrize("transition", CLIENT_TRANSITIONS)
def test_every_transition_refuses_every_role_it_does_not_name(transition: str, role: Role) -> None:
    t = GRID_INCIDENT.transitions[transition]
    state = sorted(t.from_states)[0]
    view = replace(reported(), state=state)
    draft = Draft(transition, payload_for(transition), who(role), T0 + timedelta(hours=1), uuid7(), context=CONTEXT)
    try:
        decide(GRID_INCIDENT, view, draft, "case-1", GRID_PATH)
    except RuleViolation as exc:
        assert (exc.code == "role_not_allowed") == (role not in t.roles), f"{role} {transition}: {exc.message}"
    else:
        assert role in t.roles


@pytest.mark.parametrize("role", ALL_ROLES, ids=str)
def test_only_a_grid_member_reports(role: Role) -> None:
    draft = Draft("report", {"category_code": "SJ0102", "location": INSIDE, "description": "垃圾",
                             "photos": [photo()]}, who(role), T0, uuid7(), context=CONTEXT)
    if role is Role.GRID_MEMBER:
        decide(GRID_INCIDENT, None, draft, "c", GRID_PATH)
    else:
        with pytest.raises(RuleViolation) as exc:
            decide(GRID_INCIDENT, None, draft, "c", GRID_PATH)
        assert exc.value.code in ("role_not_allowed", "out_of_scope")


@pytest.mark.parametrize("role", ALL_ROLES, ids=str)
def test_only_the_shift_leader_closes_a_checked_case(role: Role) -> None:
    view = checked()
    if role is Role.SHIFT_LEADER:
        assert act(view, who(role), "close", 9).state == "closed"
    else:
        with pytest.raises(RuleViolation):
            act(view, who(role), "close", 9)


@pytest.mark.parametrize("role", ALL_ROLES, ids=str)
def test_the_handler_never_closes_whatever_role_they_hold_now(role: Role) -> None:
    """Staff rotate: the person who handled the case may be the shift leader by the time it is checked."""
    view = checked(handler=who(Role.STREET_HANDLER, "rotating"))
    with pytest.raises(RuleViolation) as exc:
        act(view, who(role, "rotating"), "close", 9)
    assert exc.value.code in ("invariant", "role_not_allowed")
    if role is Role.SHIFT_LEADER:
        assert exc.value.code == "invariant" and "处置人不能结案" in exc.value.message


@pytest.mark.parametrize("role", ALL_ROLES, ids=str)
def test_the_on_site_check_is_by_a_grid_member_other_than_the_handler(role: Role) -> None:
    grid_target = {**CONTEXT, "unit": {"code": GRID, "kind": "grid", "name": "第一网格", "path": GRID_PATH}}
    grid_target["target"] = grid_target["unit"]
    member = who(Role.GRID_MEMBER, "member-a")
    v = reported()
    for name, p, extra in [("accept", who(Role.WINDOW_CLERK), {}), ("verify", member, {"genuine": True}),
                           ("file", who(Role.SHIFT_LEADER), {}), ("dispatch", who(Role.DISPATCHER),
                                                                  {"unit_code": GRID}),
                           ("accept_task", member, {}), ("feedback", member, FEEDBACK),
                           ("request_check", who(Role.WINDOW_CLERK), {})]:
        v = act(v, p, name, len(v.events), grid_target, **extra)
    with pytest.raises(RuleViolation) as own:
        act(v, member, "check_pass", 20, grid_target, **CHECK)
    assert own.value.code == "invariant"
    if role is Role.GRID_MEMBER:
        assert act(v, who(role, "member-b"), "check_pass", 20, grid_target, **CHECK).state == "checked"
    else:
        with pytest.raises(RuleViolation) as other:
            act(v, who(role, "member-b"), "check_pass", 20, grid_target, **CHECK)
        assert other.value.code == "role_not_allowed"


def test_the_engine_alone_fires_the_on_account_expiry() -> None:
    view = replace(reported(), state="on_account")
    with pytest.raises(RuleViolation) as exc:
        act(view, who(Role.SHIFT_LEADER), "expire_on_account", 5)
    assert exc.value.code == "system_only"
    draft = Draft("expire_on_account", {}, None, T0 + timedelta(days=40), uuid7(), context=CONTEXT)
    assert decide(GRID_INCIDENT, view, draft, "case-1", GRID_PATH).role == SYSTEM_ROLE


def test_kind_declares_every_state_reachable_and_terminal_states_final() -> None:
    reachable = {t.to_state for t in GRID_INCIDENT.transitions.values()} - {"__same__"}
    assert reachable == set(GRID_INCIDENT.states)
    for t in GRID_INCIDENT.transitions.values():
        assert not (t.from_states & GRID_INCIDENT.terminal), t.name
    assert GRID_INCIDENT.creating[0].from_states == {CREATE}


def test_role_change_of_the_handler_is_caught_through_the_api(client: TestClient, auth: Logins,
                                                              store: Store) -> None:
    """The same rule on a real node: the handler is later made shift leader and tries to close."""
    cid = send_report(client, auth)
    walk_to_handled(client, auth, cid)
    step(client, auth, "clerk", cid, "request_check")
    step(client, auth, "grid1", cid, "check_pass", **CHECK)
    store.write(lambda db: db.execute("UPDATE users SET role = 'shift_leader' WHERE username = 'handler'"))
    auth.tokens.pop("handler", None)
    refused = step(client, auth, "handler", cid, "close", expect=422)
    assert refused["errors"][0]["rule"] == "invariant" and "处置人不能结案" in refused["error"]
    assert case(store, cid)["state"] == "checked"
