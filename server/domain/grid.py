"""The grid incident (网格事件) case kind, declared as data, with its rules as pure guards and invariants.

The seven stages of CJ/T 315-2009 → GB/T 30428.8 (信息收集 → 案卷建立 → 任务派遣 → 任务处理 →
处理反馈 → 核查结案; domain.md §1.9) as states and transitions:

    reported ─受理→ verifying ─核实→ verified ─立案→ filed ─派遣→ dispatched ─签收→ handling ─反馈→ handled
       └──────────────── 不立案 → not_filed          returned ←回退─┘  │   ↑             │
                                                      └─再派遣→ dispatched  挂账 ⇄ 复核       受理员派核查
    handled → checking ─核查通过→ checked ─结案(值班长)→ closed;  核查不通过/返工 → handling
    any early state ─并单→ merged (the kept case records an 并入 event)

Rules the engine enforces whatever the client (domain.md §1.9, §4 数字城管):
- the handler never closes; closing needs an on-site check by a grid member who did not handle the
  case, after the last feedback, and the shift leader's (值班长) sign-off;
- feedback carries at least one after-photo; the check carries a photo taken near the incident;
- 挂账 needs a written reason and the shift leader's approval, and expires: after the review period
  the engine itself returns the case for re-justification (12345 lesson: parked cases are hidden);
- the handling clock runs from the first dispatch in the category's own unit (工作时, 工作日 or, for
  emergencies, 自然小时) and is not restarted by a return ("ping-pong" must not reset the SLA).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.grid import IMAGE_MIMES, PREVENTIVE_PAYLOADS, TRANSITION_PAYLOADS, GridSettings
from server.domain.clocks import ClockSpec, ClockUnit
from server.domain.engine import (
    CREATE,
    SAME_STATE,
    SYSTEM_ROLE,
    CaseKind,
    CaseView,
    ClockEffect,
    Draft,
    Event,
    Guard,
    Refusal,
    Timer,
    Transition,
)
from server.domain.grid_geo import distance_m, distance_to_polygon_m, point_in_polygon
from server.domain.grid_rules import MERGEABLE_STATES, NOT_A_TASK, Report, duplicate_problem, offered_to
from server.domain.roles import Role
from server.domain.views import KindViews, ViewColumn

KIND = "grid_incident"
PREVENTIVE_KIND = "grid_preventive"
R = Role
HANDLER_ROLES = frozenset({R.STREET_HANDLER, R.DISPATCHER, R.GRID_MEMBER})
VERIFIER_ROLES = frozenset({R.WINDOW_CLERK, R.SHIFT_LEADER, R.GRID_MEMBER})
HANDLING_TRANSITIONS = ("accept_task", "feedback", "request_on_account")
DISPATCH_TARGET_KINDS = {"department": "区职能部门", "business_unit": "街道一队三中心", "grid": "网格"}

STATES: dict[str, str] = {
    "reported": "已上报",
    "verifying": "待核实",
    "verified": "已核实",
    "not_filed": "不予立案",
    "filed": "已立案",
    "dispatched": "已派遣",
    "returned": "已回退",
    "handling": "处置中",
    "on_account_requested": "申请挂账",
    "on_account": "挂账",
    "on_account_expired": "挂账到期待复核",
    "handled": "已反馈",
    "checking": "待核查",
    "checked": "核查通过",
    "closed": "已结案",
    "merged": "已并单",
}
TERMINAL = frozenset({"not_filed", "closed", "merged"})

CLOCKS = {
    # Defaults; each case gets its category's own limit at creation (engine ``_clocks`` override).
    "handle": ClockSpec("handle", ClockUnit.WORKING_DAY, 5, "处置时限", "GB/T 30428.8 案件处置时限"),
    "on_account": ClockSpec("on_account", ClockUnit.CALENDAR_DAY, 30, "挂账复核期"),
}


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


def _violation(code: str, message: str, field: str) -> Refusal:
    return Refusal(message, code, field)


# --- guards (pure: they return a refusal, never raise; payload shapes are the models' job) ----------


def has_image(photos: Any) -> bool:
    return isinstance(photos, list) and any(isinstance(p, Mapping) and p.get("mime") in IMAGE_MIMES for p in photos)


def _report_valid(view: CaseView, draft: Draft) -> Refusal | None:
    """A report: at least one photo, a known active category, a location inside the reporter's grid."""
    p = draft.payload
    if not has_image(p.get("photos")):
        return _violation("photo_required", "上报须至少附一张现场照片（图片附件）", "attachments")
    category = draft.context.get("category")
    if not category or not category.get("active", True):
        return _violation("unknown_category", f"未知的事件类别：{p.get('category_code')}", "payload.category_code")
    location = p.get("location")
    if not isinstance(location, Mapping) or "lng" not in location or "lat" not in location:
        return _violation("location_required", "缺少事件位置", "payload.location")
    grid = draft.context.get("grid") or {}
    polygon = (grid.get("data") or {}).get("polygon")
    point = (float(location["lng"]), float(location["lat"]))
    if polygon and not point_in_polygon(point, polygon):
        off = distance_to_polygon_m(point, polygon)
        return _violation("outside_grid", f"位置不在您负责的网格（{grid.get('name', '')}）内，相距约 {off:.0f} 米",
                         "payload.location")
    return None


def _file_needs_verification(view: CaseView, draft: Draft) -> str | None:
    # Emergencies are filed at once (应急处置: 先处置后核实); others only after an on-site verification.
    if view.data.get("emergency"):
        return None
    if view.state != "verified":
        return "非紧急事件须经网格员现场核实后方可立案"
    if view.data.get("genuine") is False:
        return "核实结果为不属实，不能立案，请作不予立案处理"
    return None


def _dispatch_target(view: CaseView, draft: Draft) -> Refusal | None:
    unit = draft.context.get("unit")
    if unit is None or unit.get("kind") not in DISPATCH_TARGET_KINDS:
        return _violation("bad_unit", "处置单位须为区职能部门、街道一队三中心或本网格", "payload.unit_code")
    street = "/".join(view.org_path.split("/")[:2])
    if unit["kind"] == "grid" and unit["path"] != view.org_path:
        return _violation("bad_unit", "只能派遣给事件所在网格（属地管理）", "payload.unit_code")
    if unit["kind"] == "business_unit" and not unit["path"].startswith(street + "/"):
        return _violation("bad_unit", "只能派遣给本街道的一队三中心", "payload.unit_code")
    return None


def _handler_fits_target(view: CaseView, draft: Draft) -> str | None:
    """Who may act for the unit a case is dispatched to: that grid's members; for a department or a
    一队三中心 unit its street handler (承办人), or the dispatcher recording on the unit's behalf."""
    target = draft.context.get("target") or {}
    principal = draft.principal
    if principal is None:
        return None
    if target.get("kind") == "grid":
        if principal.role != R.GRID_MEMBER or principal.org_unit != target.get("code"):
            return f"该事件已派遣给{target.get('name', '网格')}，须由该网格的网格员处置"
        return None
    if principal.role == R.GRID_MEMBER:
        return f"该事件已派遣给{target.get('name', '处置单位')}，网格员不能代为处置"
    if principal.role == R.DISPATCHER and draft.on_behalf_of != target.get("code"):
        return "派遣员代处置单位登记时，须注明代为登记的单位（on_behalf_of = 处置单位代码）"
    return None


def _near_incident(field: str) -> Guard:
    def guard(view: CaseView, draft: Draft) -> Refusal | None:
        here, there = draft.payload.get(field), view.data.get("location")
        if not isinstance(here, Mapping) or not isinstance(there, Mapping):
            return None  # shape is the payload model's job
        limit = int((draft.context.get("settings") or {}).get("check_radius_m", 100))
        gap = distance_m((float(here["lng"]), float(here["lat"])), (float(there["lng"]), float(there["lat"])))
        if gap > limit:
            return _violation("check_far_away", f"核查位置距事件位置约 {gap:.0f} 米，超过 {limit} 米，须到现场核查",
                             f"payload.{field}")
        return None

    return guard


def _duplicate_mergeable(view: CaseView, draft: Draft) -> Refusal | None:
    """On the kept case: the other report is a possible duplicate of it (same category, near, recent)."""
    other = draft.context.get("other")
    if other is None or other.get("kind") != KIND:
        return _violation("merge_unknown", "未找到要并入的事件", "payload.merged_case")
    kept = Report.from_data(view.id, view.org_path, view.state, view.data, view.events[0].node_time)
    duplicate = Report.from_data(other["id"], other["org_path"], other["state"], other["data"],
                                 datetime.fromisoformat(other["reported_at"]))
    problem = duplicate_problem(kept, duplicate, draft.context.get("settings") or {})
    if problem:
        return _violation("merge_not_duplicate", problem, "payload.merged_case")
    return None


def _kept_case_recorded_merge(view: CaseView, draft: Draft) -> Refusal | None:
    other = draft.context.get("other")
    if other is None or view.id not in other.get("absorbed", ()):
        return _violation("merge_unrecorded", "并单须在保留的事件上同时登记，请使用并单功能办理", "payload.merged_into")
    return None


# --- invariants (checked on the case *after* the event) --------------------------------


def handlers(view: CaseView) -> set[str]:
    return set(view.actors_of(*HANDLING_TRANSITIONS))


def _last(view: CaseView, *transitions: str) -> Event | None:
    return next((e for e in reversed(view.events) if e.transition in transitions), None)


def _handler_never_closes(view: CaseView, event: Event) -> str | None:
    if event.transition == "close" and event.actor in handlers(view):
        return "处置人不能结案（处置与结案分离）"
    return None


def _checker_is_not_handler(view: CaseView, event: Event) -> str | None:
    if event.transition in ("check_pass", "check_fail") and event.actor in handlers(view):
        return "现场核查须由处置人以外的网格员进行"
    return None


def _close_needs_check_and_sign_off(view: CaseView, event: Event) -> str | None:
    if event.transition != "close":
        return None
    if event.role != R.SHIFT_LEADER:
        return "结案须由值班长签批"
    feedback, check = _last(view, "feedback"), _last(view, "check_pass")
    if feedback is None or not has_image(feedback.payload.get("after_photos")):
        return "结案须有附处置后照片的处置反馈"
    if check is None or check.seq < feedback.seq:
        return "结案须在最近一次处置反馈之后经网格员现场核查通过"
    if check.role != R.GRID_MEMBER or check.actor in handlers(view):
        return "结案须经处置人以外的网格员现场核查"
    return None


# --- the kind ---------------------------------------------------------------------------


def _t(name: str, to: str, frm: frozenset[str], roles: frozenset[str], label: str,
       clocks: tuple[ClockEffect, ...] = (), guards: tuple[Guard, ...] = ()) -> Transition:
    return Transition(name, to, frm, roles, label, clocks=clocks, guards=guards, payload=TRANSITION_PAYLOADS.get(name),
                      legal_basis="GB/T 30428.8 数字化城市管理 案件立案、处置和结案")


HANDLE = ClockEffect("handle", "start")
_HANDLING = (_handler_fits_target,)

GRID_INCIDENT = (CaseKind(
    name=KIND,
    label_zh="网格事件",
    states=STATES,
    clocks=CLOCKS,
    terminal=TERMINAL,
    number_prefix="WG",
    timers=(Timer("expire_on_account", _fs("on_account"), "on_account"),),
    invariants=(_handler_never_closes, _checker_is_not_handler, _close_needs_check_and_sign_off),
    views=KindViews(
        columns=(ViewColumn("category", "类别", "data.category.name"),
                 ViewColumn("description", "描述", "data.description"),
                 ViewColumn("grid_code", "网格", "data.grid_code"),
                 ViewColumn("emergency", "紧急", "data.emergency"),
                 ViewColumn("reported_at", "上报时间", "created_at")),
        resident_fields=("category_code", "description"),
        current_clock={"on_account": "on_account"},
        default_clock="handle",
        hidden_actions=NOT_A_TASK,
        action_filter=offered_to,
    ),
    settings_model=GridSettings,
    transitions={t.name: t for t in (
        _t("report", "reported", _fs(CREATE), _fs(R.GRID_MEMBER), "上报", guards=(_report_valid,)),
        _t("accept", "verifying", _fs("reported"), _fs(R.WINDOW_CLERK), "受理（派网格员核实）"),
        _t("verify", "verified", _fs("verifying"), _fs(R.GRID_MEMBER), "现场核实"),
        _t("file", "filed", _fs("reported", "verifying", "verified"), _fs(R.SHIFT_LEADER), "立案",
           guards=(_file_needs_verification,)),
        _t("not_file", "not_filed", _fs("reported", "verifying", "verified"), _fs(R.SHIFT_LEADER), "不予立案"),
        _t("dispatch", "dispatched", _fs("filed"), _fs(R.DISPATCHER), "派遣", clocks=(HANDLE,),
           guards=(_dispatch_target,)),
        # No clock effect: the handling limit keeps running from the first dispatch (12345 lesson).
        _t("redispatch", "dispatched", _fs("returned"), _fs(R.DISPATCHER), "重新派遣", guards=(_dispatch_target,)),
        _t("return", "returned", _fs("dispatched", "handling"), HANDLER_ROLES, "回退派遣员", guards=_HANDLING),
        _t("accept_task", "handling", _fs("dispatched"), HANDLER_ROLES, "签收", guards=_HANDLING),
        _t("request_on_account", "on_account_requested", _fs("handling", "on_account_expired"), HANDLER_ROLES,
           "申请挂账", guards=_HANDLING),
        _t("approve_on_account", "on_account", _fs("on_account_requested"), _fs(R.SHIFT_LEADER), "批准挂账",
           clocks=(ClockEffect("handle", "pause"), ClockEffect("on_account", "reset"))),
        _t("reject_on_account", "handling", _fs("on_account_requested"), _fs(R.SHIFT_LEADER), "不批准挂账"),
        _t("expire_on_account", "on_account_expired", _fs("on_account"), _fs(SYSTEM_ROLE), "挂账到期",
           clocks=(ClockEffect("handle", "resume"), ClockEffect("on_account", "stop"))),
        _t("lift_on_account", "handling", _fs("on_account"), _fs(R.SHIFT_LEADER), "解除挂账",
           clocks=(ClockEffect("handle", "resume"), ClockEffect("on_account", "stop"))),
        _t("feedback", "handled", _fs("handling", "on_account_expired"), HANDLER_ROLES, "处置反馈",
           clocks=(ClockEffect("handle", "stop"), ClockEffect("on_account", "stop")), guards=_HANDLING),
        _t("request_check", "checking", _fs("handled"), _fs(R.WINDOW_CLERK, R.SHIFT_LEADER), "派网格员核查"),
        _t("check_pass", "checked", _fs("checking"), _fs(R.GRID_MEMBER), "核查通过",
           guards=(_near_incident("check_location"),)),
        _t("check_fail", "handling", _fs("checking"), _fs(R.GRID_MEMBER), "核查不通过（返工）",
           clocks=(ClockEffect("handle", "reset"),), guards=(_near_incident("check_location"),)),
        _t("close", "closed", _fs("checked"), _fs(R.SHIFT_LEADER), "结案"),
        _t("rework", "handling", _fs("handled", "checked"), _fs(R.SHIFT_LEADER), "返工",
           clocks=(ClockEffect("handle", "reset"),)),
        _t("merge", "merged", MERGEABLE_STATES, VERIFIER_ROLES, "并单（并入其他事件）",
           guards=(_kept_case_recorded_merge,)),
        _t("absorb", SAME_STATE, frozenset(STATES) - TERMINAL, VERIFIER_ROLES, "并入重复上报",
           guards=(_duplicate_mergeable,)),
    )},
))


# --- preventive work turned from a hot spot (源头治理) ----------------------------------

PREVENTIVE_STATES = {"assigned": "已布置", "completed": "已完成待验收", "closed": "已验收", "cancelled": "已撤销"}


def _p(name: str, to: str, frm: frozenset[str], roles: frozenset[str], label: str,
       clocks: tuple[ClockEffect, ...] = ()) -> Transition:
    return Transition(name, to, frm, roles, label, clocks=clocks, payload=PREVENTIVE_PAYLOADS.get(name))


GRID_PREVENTIVE = (CaseKind(
    name=PREVENTIVE_KIND,
    label_zh="预防性任务",
    states=PREVENTIVE_STATES,
    clocks={"prevent": ClockSpec("prevent", ClockUnit.WORKING_DAY, 10, "预防性任务完成时限")},
    terminal=_fs("closed", "cancelled"),
    views=KindViews(
        columns=(ViewColumn("category", "类别", "data.category_name"),
                 ViewColumn("measure", "预防措施", "data.measure"),
                 ViewColumn("unit", "负责单位", "data.unit_name")),
        default_clock="prevent",
    ),
    transitions={t.name: t for t in (
        _p("plan", "assigned", _fs(CREATE), _fs(R.SHIFT_LEADER, R.STREET_ADMIN), "布置预防性任务",
           clocks=(ClockEffect("prevent", "start"),)),
        _p("complete", "completed", _fs("assigned"), HANDLER_ROLES, "完成", clocks=(ClockEffect("prevent", "stop"),)),
        _p("accept_work", "closed", _fs("completed"), _fs(R.SHIFT_LEADER), "验收"),
        _p("reopen", "assigned", _fs("completed"), _fs(R.SHIFT_LEADER), "退回重做",
           clocks=(ClockEffect("prevent", "reset"),)),
        _p("cancel", "cancelled", _fs("assigned", "completed"), _fs(R.SHIFT_LEADER, R.STREET_ADMIN), "撤销",
           clocks=(ClockEffect("prevent", "stop"),)),
    )},
))


def clock_spec_for(time_limit: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The ``_clocks`` entry for a category's limit, e.g. {"unit": "working_hour", "duration": 5, ...}."""
    unit = ClockUnit(str(time_limit["unit"]))
    amount = int(time_limit["amount"])
    return {"unit": unit.value, "duration": amount, "label_zh": f"处置时限（{name}）"}
