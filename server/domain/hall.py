"""The services-hall application (办件) as a case kind, declared as data (domain.md §1.7).

Stages after the Guangdong V1.0 process data: 申办 → 预审 (pass / return with reasons) → 预约 →
现场核验原件 → 受理 | 不予受理 (written reasons) | 补正告知 (one-time) → 承办 → 特别程序 (clock paused)
→ 延期 (head approval) → 办结 → 领取登记 → 评价.

Three tiers: a community station receives on the applicant's behalf (代办, ``on_behalf_of``), the
street hall accepts and decides street items, district items are handed up to the implementing
department (an ownership-transfer event computed here, never taken from the client) and their
decision comes back down to the window that received them.

Clocks run side by side from receipt: ``acceptance`` (5 WD, 行政许可法 art. 32), ``promised``
(承诺时限) and ``statutory`` (法定时限), whose durations come from the catalogue item and are put
into the creating event by the intake handler. Explicit acceptance restarts the two decision
clocks; deemed acceptance (a ``Timer``) does not, so they count "from the day of receipt".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.hall import TRANSITION_PAYLOADS as P
from schemas.hall import HallSettings
from server.domain.clock_explain import fmt_instant
from server.domain.clock_rules import clock_due, expired, extension_refusal
from server.domain.clocks import EXTENSION_RULES, ClockSpec, ClockUnit
from server.domain.engine import (
    CREATE,
    SYSTEM_ROLE,
    CaseKind,
    CaseView,
    ClockAction,
    ClockEffect,
    Draft,
    Event,
    Timer,
    Transition,
)
from server.domain.roles import Role, Tier
from server.domain.views import KindViews, ViewColumn

KIND = "service_application"
R = Role

ART32 = "《中华人民共和国行政许可法》第三十二条"
ART42 = "《中华人民共和国行政许可法》第四十二条"
ART44 = "《中华人民共和国行政许可法》第四十四条"
ART45 = "《中华人民共和国行政许可法》第四十五条"
EXTENSION = EXTENSION_RULES["行政许可"]  # art. 42: +10 working days, once, with the head's approval
MAX_EXTENSION_WD = EXTENSION.cap
# art. 45: procedures never counted in the limit, whether or not the item's guide lists them
ART45_KINDS = ("听证", "招标", "拍卖", "检验", "检测", "检疫", "鉴定", "专家评审")
SPECIAL_KEY = "special"  # the pause key of a special procedure: end_special resumes exactly it
DEEMED_NOTE = "视为受理，自收到申请材料之日起计算"
CORRECTION_RESET = "收到补正材料，自收到补正之日起重新计算"
ACCEPT_RESET = "受理申请，办结时限自受理之日起计算"

# Fields the creating event sets from the catalogue and the intake; no later event may change them,
# or a client could relabel a district item as a street item to decide it at the street.
PROTECTED_FIELDS = frozenset({
    "item_code", "item_name", "item_version", "item_level", "item_type", "item_accepted_at",
    "promised_limit_wd", "statutory_limit_wd", "originals_required", "home_path", "district_path",
    "applicant_ref", "applicant_name_masked", "channel", "item_legal_basis", "special_steps",
})
ROUTED_TRANSITIONS = frozenset({"submit", "hand_up", "decide"})

# States in which the acceptance decision is still owed: deemed acceptance may happen here.
AWAITING_ACCEPTANCE = frozenset({"submitted", "pre_passed", "appointment", "onsite_checked", "handed_up",
                                 "correction_received"})

STATES: dict[str, str] = {
    "submitted": "已申办",
    "pre_passed": "预审通过",
    "pre_returned": "预审退回",
    "appointment": "已预约",
    "onsite_checked": "已核验原件",
    "correction_notice": "补正告知",
    "correction_received": "已补正",
    "handed_up": "已报送区级部门",
    "accepted": "已受理",
    "deemed_accepted": "视为受理",
    "not_accepted": "不予受理",
    "in_approval": "审批中",
    "special_procedure": "特别程序",
    "decided": "已办结",
    "delivered": "已送达（邀请评价）",
}
TERMINAL = frozenset({"not_accepted", "delivered"})


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


# --- guards (pure; a Chinese message means "no") ----------------------------------------


def _tier(draft: Draft) -> Tier | None:
    return draft.principal.tier if draft.principal is not None else None


def _submit_tier_allowed(view: CaseView, draft: Draft) -> str | None:
    accepted_at = draft.payload.get("item_accepted_at") or []
    tier = _tier(draft)
    if tier is None or tier.value not in accepted_at:
        return "该事项不能在本层级窗口受理"
    return None


def tier_for_level(view: CaseView, draft: Draft) -> str | None:
    """District items are accepted and decided by the district department, the rest by the street."""
    level = view.data.get("item_level")
    tier = _tier(draft)
    if level == "district" and tier is not Tier.DISTRICT:
        return "区级事项须报送区级部门受理和审批"
    if level != "district" and tier is not Tier.STREET:
        return "街道事项由街道政务服务中心受理和审批"
    return None


def _district_item(view: CaseView, draft: Draft) -> str | None:
    return None if view.data.get("item_level") == "district" else "只有区级事项需要报送区级部门"


def _originals_verified(view: CaseView, draft: Draft) -> str | None:
    verified = draft.payload.get("verified")
    if not isinstance(verified, list) or not all(isinstance(v, str) for v in verified):
        return "verified 须为已核验原件的材料名称列表"
    missing = [m for m in view.data.get("originals_required", []) if m not in verified]
    if missing:
        return f"以下材料原件尚未核验：{'、'.join(missing)}；材料不全请出具补正告知"
    return None


def _items_listed(view: CaseView, draft: Draft) -> str | None:
    items = draft.payload.get("items")
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        return "补正告知须一次性列明全部需补正的材料（items）"
    return None


def _extension_within_limit(view: CaseView, draft: Draft) -> str | None:
    """Art. 42: one extension of at most 10 WD, decided before the statutory limit runs out.

    Several extensions adding up to 10 WD are refused: the article grants "可以延长十日" once, on the
    head's approval of the reasons given to the applicant; a second request is a second decision the
    law does not provide for. An extension after the deadline would hide a breach that already happened.
    """
    clock = view.clocks.get("statutory")
    if clock is None:
        days = draft.payload.get("days")
        ok = isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_EXTENSION_WD
        return None if ok else f"延长期限须为 1 至 {MAX_EXTENSION_WD} 个工作日"
    return extension_refusal(clock, EXTENSION, draft.payload.get("days"), draft,
                             clock_due(view, "statutory", draft.context))


def _within_acceptance_period(view: CaseView, draft: Draft) -> str | None:
    """Art. 32: after 5 WD without a correction notice the application is accepted by law; the rule holds
    here, not only in the deemed-acceptance timer, which may not have run (node off, late sync)."""
    due = expired(view, "acceptance", draft)
    if due is None or due.due_at is None:
        return None
    return (f"受理审查期限已于 {fmt_instant(due.due_at)} 届满，依法自收到申请材料之日起即为受理，"
            f"不能再要求补正（{ART32}）")


def _special_steps(view: CaseView) -> list[Mapping[str, Any]]:
    steps = view.data.get("special_steps") or []
    return [s for s in steps if isinstance(s, Mapping)]


def _declared_special_step(view: CaseView, draft: Draft) -> str | None:
    """Art. 45: only the item's declared special steps that are not counted in the limit, or the
    procedures the article names, may pause the clock; free text never does."""
    procedure = str(draft.payload.get("procedure") or "").strip()
    step = next((s for s in _special_steps(view) if s.get("name") == procedure), None)
    if step is not None:
        if step.get("pauses_clock"):
            return None
        return f"「{procedure}」按办事指南计入法定办结时限，不能暂停计时"
    if procedure in ART45_KINDS:
        return None
    declared = [str(s.get("name")) for s in _special_steps(view) if s.get("pauses_clock")]
    allowed = "、".join([*declared, *ART45_KINDS])
    return f"特别程序须为本事项办事指南列明的特殊环节或{ART45}所列程序：{allowed}"


def _special_record(data: Mapping[str, Any], payload: Mapping[str, Any]) -> tuple[str, str]:
    """The pause names the procedure and its article: the catalogue's basis for a declared step, else art. 45."""
    procedure = str(payload.get("procedure") or "").strip()
    steps = [s for s in data.get("special_steps") or [] if isinstance(s, Mapping)]
    step = next((s for s in steps if s.get("name") == procedure), None)
    basis = str(step.get("legal_basis") or "") if step is not None else ""
    return f"特别程序「{procedure}」", basis or ART45


def _outcome(view: CaseView, draft: Draft) -> str | None:
    outcome = draft.payload.get("outcome")
    if outcome not in ("approved", "refused"):
        return "办结结果须为 approved（准予）或 refused（不予）"
    if outcome == "refused" and not draft.payload.get("reasons"):
        return "不予许可（不予办理）须书面说明理由（reasons）"
    return None


def _delivery_method(view: CaseView, draft: Draft) -> str | None:
    if draft.payload.get("method") not in ("window", "courier", "e_licence", "post"):
        return "送达方式须为 window、courier、e_licence 或 post"
    return None


# --- routes: ownership transfer computed from the case, never from the client ----------


def _to_district(view: CaseView, draft: Draft) -> str | None:
    return str(view.data.get("district_path") or "") or None


def _back_home(view: CaseView, draft: Draft) -> str | None:
    return str(view.data.get("home_path") or "") or None


# --- invariants (checked on the view after the event) -------------------------------------


def _one_correction_notice(view: CaseView, event: Event) -> str | None:
    if len(view.actors_of("correction_notice")) > 1:
        return "补正告知应当一次性告知，不得多次要求补正（行政许可法第三十二条）"
    return None


def _no_client_routing(view: CaseView, event: Event) -> str | None:
    if "_org_path" in event.payload and event.transition not in ROUTED_TRANSITIONS:
        return "不能通过此操作变更事项归属"
    return None


def _protected_fields(view: CaseView, event: Event) -> str | None:
    if event.transition == "submit":
        return None
    touched = sorted(PROTECTED_FIELDS & set(event.payload))
    return f"不能修改申办时确定的事项信息：{'、'.join(touched)}" if touched else None


# --- the kind -----------------------------------------------------------------------------


def _start(clock: str, field: str | None = None) -> ClockEffect:
    return ClockEffect(clock, "start", amount_field=field)


def _decision(action: ClockAction, reason: str = "") -> tuple[ClockEffect, ...]:
    """The promised and statutory clocks move together (domain.md §1.7: they run side by side)."""
    if action in ("start", "reset"):  # the durations come from the item, carried by the creating event
        return (ClockEffect("promised", action, amount_field="promised_limit_wd", reason=reason),
                ClockEffect("statutory", action, amount_field="statutory_limit_wd", basis_field="item_legal_basis",
                            reason=reason))
    return (ClockEffect("promised", action, reason=reason), ClockEffect("statutory", action, reason=reason))


def _special(action: ClockAction) -> tuple[ClockEffect, ...]:
    return tuple(ClockEffect(c, action, key=SPECIAL_KEY, describe=_special_record) for c in ("promised", "statutory"))


ALL_WAITING = _fs("submitted", "pre_passed", "appointment", "onsite_checked", "handed_up")
ACCEPTED = _fs("accepted", "deemed_accepted")

TRANSITIONS: dict[str, Transition] = {t.name: t for t in (
    Transition("submit", "submitted", _fs(CREATE), _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER), "申办",
               required=("item_code", "applicant_ref"), guards=(_submit_tier_allowed,),
               clocks=(_start("acceptance"), *_decision("start"))),
    Transition("pre_review_pass", "pre_passed", _fs("submitted"), _fs(R.WINDOW_CLERK), "预审通过",
               tiers=_fs(Tier.STREET),
               payload=P["pre_review_pass"]),
    Transition("pre_review_return", "pre_returned", _fs("submitted"), _fs(R.WINDOW_CLERK), "预审退回",
               tiers=_fs(Tier.STREET), required=("reasons",),
               clocks=(ClockEffect("acceptance", "stop"), *_decision("pause")),
               payload=P["pre_review_return"]),
    Transition("resubmit", "submitted", _fs("pre_returned"), _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER),
               "重新提交", clocks=(ClockEffect("acceptance", "reset"), *_decision("reset")),
               payload=P["resubmit"]),
    Transition("book_appointment", "appointment", _fs("pre_passed"), _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER),
               "预约", required=("slot",),
               payload=P["book_appointment"]),
    Transition("onsite_check", "onsite_checked", _fs("pre_passed", "appointment"),
               _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER), "现场核验原件", required=("verified",),
               guards=(_originals_verified,),
               payload=P["onsite_check"]),
    Transition("correction_notice", "correction_notice", ALL_WAITING, _fs(R.WINDOW_CLERK, R.DISTRICT_APPROVER),
               "一次性补正告知", required=("items",), guards=(_items_listed, _within_acceptance_period),
               legal_basis=ART32, clocks=(ClockEffect("acceptance", "stop"), *_decision("pause")),
               payload=P["correction_notice"]),
    Transition("receive_correction", "correction_received", _fs("correction_notice"),
               _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER, R.DISTRICT_APPROVER), "补正受理", legal_basis=ART32,
               clocks=(ClockEffect("acceptance", "reset", reason=CORRECTION_RESET),
                       *_decision("reset", CORRECTION_RESET)),
               payload=P["receive_correction"], receipt_field="received_on"),
    Transition("hand_up", "handed_up", _fs("onsite_checked", "correction_received"), _fs(R.WINDOW_CLERK),
               "报送区级部门", tiers=_fs(Tier.STREET), guards=(_district_item,), route=_to_district,
               payload=P["hand_up"]),
    Transition("accept", "accepted", _fs("onsite_checked", "correction_received", "handed_up"),
               _fs(R.WINDOW_CLERK, R.DISTRICT_APPROVER), "受理", guards=(tier_for_level,),
               clocks=(ClockEffect("acceptance", "stop"), *_decision("reset", ACCEPT_RESET)),
               payload=P["accept"]),
    Transition("deem_accept", "deemed_accepted", AWAITING_ACCEPTANCE, _fs(SYSTEM_ROLE), "视为受理",
               legal_basis=ART32, clocks=(ClockEffect("acceptance", "stop", reason="视为受理"),
                                          *_decision("note", DEEMED_NOTE))),
    Transition("not_accept", "not_accepted", AWAITING_ACCEPTANCE, _fs(R.WINDOW_CLERK, R.DISTRICT_APPROVER),
               "不予受理", required=("reasons",), guards=(tier_for_level,), legal_basis=ART32,
               clocks=(ClockEffect("acceptance", "stop"), *_decision("stop")),
               payload=P["not_accept"]),
    Transition("start_handling", "in_approval", ACCEPTED, _fs(R.STREET_HANDLER, R.DISTRICT_APPROVER),
               "承办", required=("opinion",), guards=(tier_for_level,),
               payload=P["start_handling"]),
    Transition("start_special", "special_procedure", _fs("in_approval"),
               _fs(R.STREET_HANDLER, R.STREET_ADMIN, R.DISTRICT_APPROVER), "特别程序",
               required=("procedure", "reason", "notice"), guards=(tier_for_level, _declared_special_step),
               legal_basis=ART45, clocks=_special("pause"), payload=P["start_special"]),
    Transition("end_special", "in_approval", _fs("special_procedure"),
               _fs(R.STREET_HANDLER, R.STREET_ADMIN, R.DISTRICT_APPROVER), "特别程序结束",
               required=("result",), guards=(tier_for_level,), clocks=_special("resume"),
               payload=P["end_special"]),
    Transition("extend", "in_approval", _fs("in_approval"), _fs(R.STREET_ADMIN, R.DISTRICT_APPROVER),
               "延期（负责人批准）", required=("days", "reason"),
               guards=(tier_for_level, _extension_within_limit), legal_basis=ART42,
               clocks=(ClockEffect("promised", "extend", amount_field="days"),
                       ClockEffect("statutory", "extend", amount_field="days")),
               payload=P["extend"]),
    Transition("decide", "decided", _fs("in_approval"), _fs(R.STREET_ADMIN, R.DISTRICT_APPROVER), "办结",
               required=("outcome",), guards=(tier_for_level, _outcome), route=_back_home,
               clocks=(*_decision("stop"), _start("delivery")),
               payload=P["decide"]),
    Transition("deliver", "delivered", _fs("decided"), _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER), "领取登记",
               required=("method",), guards=(_delivery_method,), legal_basis=ART44,
               clocks=(ClockEffect("delivery", "stop"),),
               payload=P["deliver"]),
)}

SERVICE_APPLICATION = (
    CaseKind(
        name=KIND,
        label_zh="政务服务办件",
        states=STATES,
        transitions=TRANSITIONS,
        clocks={
            "acceptance": ClockSpec("acceptance", ClockUnit.WORKING_DAY, 5, "受理审查（逾期视为受理）", ART32),
            # durations are per case (the item's limits); these defaults are never used
            "promised": ClockSpec("promised", ClockUnit.WORKING_DAY, 1, "承诺办结时限", "服务承诺"),
            # the legal basis shown is the item's own 设定依据, carried by the creating event
            "statutory": ClockSpec("statutory", ClockUnit.WORKING_DAY, 1, "法定办结时限", extension=EXTENSION),
            "delivery": ClockSpec("delivery", ClockUnit.WORKING_DAY, 10, "送达证件（结果）", ART44),
        },
        invariants=(_one_correction_notice, _no_client_routing, _protected_fields),
        terminal=TERMINAL,
        timers=(Timer("deem_accept", AWAITING_ACCEPTANCE, "acceptance"),),
        views=KindViews(
            columns=(ViewColumn("item_name", "事项", "data.item_name"),
                     ViewColumn("applicant", "申请人", "data.applicant_name_masked"),
                     ViewColumn("channel", "渠道", "data.channel"),
                     ViewColumn("received_at", "申办时间", "created_at")),
            resident_fields=("item_name",),
            # the deadline the applicant and the clerk watch: acceptance until accepted, then the promise
            current_clock={"accepted": "promised", "deemed_accepted": "promised", "in_approval": "promised",
                           "special_procedure": "promised", "decided": "delivery"},
            default_clock="acceptance",
        ),
        settings_model=HallSettings,
    )
)
