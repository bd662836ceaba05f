"""Clock facts for guards, and the legal rules clocks share between case kinds.

Guards stay pure functions of (view, draft): the store puts the node's working calendar and the
case's office hours into ``Draft.context`` (``CALENDAR`` / ``OFFICE_HOURS``), and ``clock_due``
computes a clock's due date from them exactly as the case page shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from server.domain.calendar import OfficeHours, WorkCalendar, builtin_calendar
from server.domain.clock_effects import StartAt
from server.domain.clock_explain import UNIT_COUNT_ZH, fmt_instant
from server.domain.clocks import ClockState, DueDate, ExtensionRule, compute_due
from server.domain.engine import CaseView, Draft, Guard

CALENDAR = "calendar"  # Draft.context key: the node's current WorkCalendar
OFFICE_HOURS = "office_hours"  # Draft.context key: OfficeHours of the case's unit (None = standard)


def draft_time(draft: Draft) -> datetime:
    """When the proposed act happens, for deadline rules: the effective time once drafts carry one."""
    effective = getattr(draft, "effective_time", None)
    return effective if isinstance(effective, datetime) else draft.node_time


def clock_due(view: CaseView, name: str, context: Mapping[str, object]) -> DueDate | None:
    """The due date of clock ``name`` of ``view`` (None if it never started), under the context's calendar.

    Without a calendar in the context (a caller outside the store) the builtin State Council calendar is
    used, so a rule never silently passes for want of a date.
    """
    clock = view.clocks.get(name)
    if clock is None:
        return None
    calendar = context.get(CALENDAR)
    hours = context.get(OFFICE_HOURS)
    return compute_due(
        clock,
        calendar if isinstance(calendar, WorkCalendar) else builtin_calendar(),
        hours if isinstance(hours, OfficeHours) else None,
    )


def expired(view: CaseView, name: str, draft: Draft) -> DueDate | None:
    """The clock's due date if it had run out before the draft's time, else None."""
    due = clock_due(view, name, draft.context)
    if due is None or due.due_at is None:
        return None
    return due if draft_time(draft) > due.due_at else None


def extension_refusal(clock: ClockState, rule: ExtensionRule, amount: object, draft: Draft,
                      due: DueDate | None) -> str | None:
    """Why an extension of ``amount`` units may not be granted now, or None.

    One extension per clock: the statutes read "经…负责人批准，可以延长…日" as a single decision
    (行政许可法 art. 42; OGI2019 art. 33), so a second one is refused even when the sum stays within
    the cap. The extension must be decided while the limit runs: after the due date the breach stands.
    """
    words = UNIT_COUNT_ZH[clock.spec.unit]
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        return "延长期限须为正整数"
    if rule.once and clock.extensions:
        first = clock.extensions[0]
        return (f"延长期限只能批准一次：已于 {fmt_instant(first.at)} 延长 {first.amount} {words}"
                f"（{rule.legal_basis}）")
    used = sum(e.amount for e in clock.extensions)
    if used + amount > rule.cap:
        return f"延长不得超过 {rule.cap} {words}（{rule.legal_basis}）"
    if due is not None and due.due_at is not None and draft_time(draft) > due.due_at:
        return (f"「{clock.spec.label_zh}」已于 {fmt_instant(due.due_at)} 届满，期限届满后不能再延长"
                f"（{rule.legal_basis}：延长须在期限内决定）")
    if rule.needs_notice and not draft.payload.get("notified_on"):
        return "延长答复期限须告知申请人：请填写告知日期（notified_on）"
    return None


def extension_guard(clock_name: str, amount_field: str = "days") -> Guard:
    """A guard applying the clock's ``ClockSpec.extension`` rule to ``payload[amount_field]``."""

    def guard(view: CaseView, draft: Draft) -> str | None:
        clock = view.clocks.get(clock_name)
        if clock is None or clock.spec.extension is None:
            return "该时限不能延长"
        due = clock_due(view, clock_name, draft.context)
        return extension_refusal(clock, clock.spec.extension, draft.payload.get(amount_field), draft, due)

    return guard


# OGI2019 art. 31 and 国办公开办函〔2015〕207号: the receipt date by channel (domain.md §1.6, §3.1).
OGI2019_ART31 = "《中华人民共和国政府信息公开条例》第三十一条"
RECEIPT_RULES_ZH: dict[str, str] = {
    "in_person": f"当面提交的，以提交之日为收到申请之日（{OGI2019_ART31}）",
    "post_registered": f"以邮寄方式提交的，以行政机关签收之日为收到申请之日（{OGI2019_ART31}）",
    "post_ordinary": f"以平常信函等无需签收的邮寄方式提交的，以与申请人确认之日为收到申请之日（{OGI2019_ART31}）",
    "web": f"通过互联网渠道提交的，以双方确认之日为收到申请之日（{OGI2019_ART31}）",
    "fax": f"通过传真提交的，以双方确认之日为收到申请之日（{OGI2019_ART31}）",
    "email": "通过电子邮件提交的，以电子邮件系统收到之日为收到申请之日（国办公开办函〔2015〕207号）",
    "proxy_community": "由社区代收的，以街道政府信息公开工作机构确认收到之日为收到申请之日（国办公开办函〔2015〕207号）",
}
OGI_RECEIPT = StartAt("received_on", rule_zh="以收到申请之日起算", by_field="channel", rules_zh=RECEIPT_RULES_ZH)
