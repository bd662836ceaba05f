"""好差评: ratings of a service case by the resident, rectification of bad ones, appeals (domain.md §3.4).

- Five levels (GB/T 39734): 非常满意 5★ … 非常不满意 1★; 不满意 and 非常不满意 are 差评.
- National indicator template: online (整体满意度, 办事效率, 办事指南精确度, 办事便捷度, 平台操作性),
  offline (整体满意度, 服务效率, 服务水平, 服务态度). The set is versioned; no indicator may be added or
  removed without authorisation, so an unknown key is an error, not an extension.
- 一事多评: one rating per case stage (接件, 受理, 办结), given only through the resident's own channel
  (the receipt's token), never edited or deleted — an upheld appeal annotates, it does not delete.
- A bad rating opens a rectification case (谁办理、谁负责) with a configurable deadline; whoever fed
  back cannot close it, and an appeal against a rating is decided by a second reviewer.
"""

from __future__ import annotations

from server.domain.clocks import ClockSpec, ClockUnit
from server.domain.engine import CREATE, SYSTEM_ROLE, CaseKind, CaseView, ClockEffect, Event, Transition
from server.domain.roles import Role

INDICATOR_VERSION = "GB/T 39734-2020 附录B（全国模板）"
LEVELS: dict[int, str] = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD_LEVELS = frozenset({1, 2})
INDICATORS: dict[str, dict[str, str]] = {
    "online": {
        "overall": "整体满意度",
        "efficiency": "办事效率",
        "guide_accuracy": "办事指南精确度",
        "convenience": "办事便捷度",
        "usability": "平台操作性",
    },
    "offline": {
        "overall": "整体满意度",
        "efficiency": "服务效率",
        "service_level": "服务水平",
        "attitude": "服务态度",
    },
}
STAGES: dict[str, str] = {"receipt": "接件", "acceptance": "受理", "completion": "办结"}
DEFAULT_RECTIFICATION_WD = 15  # Sichuan and Zhejiang practice (domain.md §3.4); configurable per node

_WAITING = frozenset({"submitted", "pre_passed", "pre_returned", "appointment", "onsite_checked",
                      "correction_notice", "correction_received", "handed_up"})
_COMPLETED = frozenset({"decided", "delivered"})


def is_bad(level: int) -> bool:
    return level in BAD_LEVELS


def stage_open(stage: str, case_state: str) -> str | None:
    """Whether the resident can rate ``stage`` now (None) or why not (Chinese)."""
    if stage not in STAGES:
        return f"评价环节须为 {'、'.join(STAGES)} 之一"
    if stage == "acceptance" and case_state in _WAITING:
        return "尚未作出受理决定，暂不能评价受理环节"
    if stage == "completion" and case_state not in _COMPLETED:
        return "事项尚未办结，暂不能评价办结环节"
    return None


def check_indicators(channel: str, indicators: dict[str, int]) -> list[tuple[str, str]]:
    """Field errors for an indicator map: keys of the channel's template, values 1..5."""
    template = INDICATORS.get(channel)
    if template is None:
        return [("channel", "评价渠道须为 online（网上）或 offline（现场）")]
    errors = []
    for key, value in indicators.items():
        if key not in template:
            errors.append((f"indicators.{key}", f"「{channel}」评价没有该指标，可选：{'、'.join(template)}"))
        elif not isinstance(value, int) or isinstance(value, bool) or value not in LEVELS:
            errors.append((f"indicators.{key}", "指标评分须为 1 至 5 的整数"))
    return errors


def appeal_reviewer_problem(appellant_id: str, reviewer_id: str) -> str | None:
    """GB/T 39734 appeal and review: the one who appeals never decides their own appeal."""
    if appellant_id == reviewer_id:
        return "申诉须由申诉人以外的第二名审核人复核"
    return None


# --- the rectification case kind -------------------------------------------------------------


def _closer_is_not_the_one_who_fixed(view: CaseView, event: Event) -> str | None:
    if event.transition == "close" and event.actor in view.actors_of("feed_back"):
        return "整改反馈人不能自行办结整改（须由监察员或负责人核实）"
    return None


_FIXERS = frozenset({Role.WINDOW_CLERK, Role.STREET_HANDLER, Role.STREET_ADMIN, Role.DISTRICT_APPROVER})
_CHECKERS = frozenset({Role.SUPERVISOR, Role.STREET_ADMIN, Role.DISTRICT_ADMIN})

RECTIFICATION = (
    CaseKind(
        name="rating_rectification",
        label_zh="差评整改",
        states={"open": "待整改", "fed_back": "已反馈", "closed": "已办结", "voided": "申诉成立已撤销"},
        clocks={"rectify": ClockSpec("rectify", ClockUnit.WORKING_DAY, DEFAULT_RECTIFICATION_WD, "差评整改时限",
                                     "国办发〔2019〕51号")},
        transitions={t.name: t for t in (
            Transition("open", "open", frozenset({CREATE}), frozenset({SYSTEM_ROLE}), "差评自动转整改",
                       required=("rating_id", "case_id"),
                       clocks=(ClockEffect("rectify", "start", amount_field="deadline_wd"),)),
            Transition("feed_back", "fed_back", frozenset({"open"}), _FIXERS, "整改反馈",
                       required=("measure", "result")),
            Transition("rework", "open", frozenset({"fed_back"}), _CHECKERS, "退回重新整改",
                       required=("reason",)),
            Transition("close", "closed", frozenset({"fed_back"}), _CHECKERS, "核实办结",
                       required=("conclusion",), clocks=(ClockEffect("rectify", "stop"),)),
            Transition("void", "voided", frozenset({"open", "fed_back"}), _CHECKERS, "申诉成立，撤销整改",
                       required=("appeal_id", "reason"), clocks=(ClockEffect("rectify", "stop"),)),
        )},
        invariants=(_closer_is_not_the_one_who_fixed,),
        terminal=frozenset({"closed", "voided"}),
    )
)
