"""Event time: the instant an act takes effect for the clocks, and the Chinese explanation of why.

An act done offline on Friday and synced on Monday happened on Friday (issue 9 "Event time"). The
record time (``node_time``) never changes meaning; the *effective* time is decided by the kind's rule
(``CaseKind.event_time``, default ``default_event_time``) and then settled: never after the record
time, never before the last recorded step (clocks do not run backwards).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from server.domain.ids import CHINA_TZ
from server.domain.refusals import RuleViolation

if TYPE_CHECKING:
    from server.domain.engine import CaseView, Draft, Transition

NODE_TIME_BASIS = "按节点记录时间计时"
EventTime = tuple[datetime, str, bool]  # (effective time, basis in Chinese, provisional)
EventTimeRule = Callable[["Transition", "CaseView | None", "Draft"], EventTime]


def _fmt(at: datetime) -> str:
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def _receipt_instant(raw: Any, field_name: str) -> datetime:
    """A receipt date (``2026-04-01``) or an aware date-time; a date counts from the start of that day."""
    try:
        if isinstance(raw, str) and len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(0), CHINA_TZ)
        at = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except ValueError:
        raise RuleViolation("invalid", "invalid_payload", f"{field_name}：日期格式不正确",
                            f"payload.{field_name}") from None
    if at.tzinfo is None:
        raise RuleViolation("invalid", "invalid_payload", f"{field_name}：日期时间须带时区", f"payload.{field_name}")
    return at


def default_event_time(transition: Transition, view: CaseView | None, draft: Draft) -> EventTime:
    """Which time the clocks take for this act, and why (in Chinese), in this order:

    1. a time the caller knows (a timer's due time; the district's decision time at the hub);
    2. the channel receipt date in the payload, for a transition that declares one
       (``Transition.receipt_field``: the day a registered letter was signed for, an e-mail received);
    3. the device's own time, when the last sync measured its clock and found it right (corrected by
       the measured offset);
    4. the node's record time.
    """
    if draft.effective_time is not None:
        return draft.effective_time, draft.effective_basis or "按指定时间计时", draft.effective_provisional
    name = transition.receipt_field
    if name is not None and draft.payload.get(name):
        at = _receipt_instant(draft.payload[name], name)
        if at > draft.node_time:
            raise RuleViolation("invalid", "invalid_payload", f"{name}：收到日期不能晚于今天", f"payload.{name}")
        return at, f"按收件渠道的收到日期 {at.astimezone(CHINA_TZ):%Y-%m-%d} 起算（{name}）", False
    if draft.device_time is not None and draft.device_clock_trusted:
        offset = timedelta(milliseconds=draft.device_offset_ms or 0)
        at = draft.device_time + offset
        return at, (f"按设备记录的办理时间 {_fmt(at)} 计时（设备时钟经同步核对，偏差约 "
                    f"{round(offset.total_seconds())} 秒，离线办理以办理时为准）"), False
    if draft.device_time is not None:
        return draft.node_time, NODE_TIME_BASIS + "（设备时钟未经核对或偏差过大，不采用设备时间）", False
    return draft.node_time, NODE_TIME_BASIS, False


def settle_event_time(rule: EventTimeRule, transition: Transition, view: CaseView | None, draft: Draft,
                      previous: datetime | None) -> EventTime:
    """The rule's answer, kept between the last step's clock time (``previous``) and the record time."""
    at, basis, provisional = rule(transition, view, draft)
    if at > draft.node_time:  # nothing takes effect after it was recorded (a device clock running fast)
        at, basis = draft.node_time, basis + "；晚于节点记录时间，按记录时间计"
    if previous is not None and at < previous:  # clocks never run backwards past a recorded step
        at, basis = previous, basis + f"；早于上一步的计时时间，按上一步时间 {_fmt(previous)} 计"
    return at, basis, provisional
