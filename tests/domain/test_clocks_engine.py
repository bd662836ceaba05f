"""What the clock engine gives the next statutes, through ``decide`` and the fold: a disclosure-on-request
kind declared as data (domain.md §1.6, §3.1) with receipt dates by channel, a reset on correction,
overlapping consultations, sub-clocks with their own timers, a decided later deadline, extensions
capped per regime and the 6-month litigation limit.

Hand-worked 2026 dates (chinese_calendar 1.11): 中秋节 09-25..27, 国庆节 10-01..07, make-up working
days Sunday 09-20 and Saturday 10-10; 清明节 04-04..06.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from server.domain.calendar import builtin_calendar
from server.domain.clock_effects import StartAt
from server.domain.clock_rules import OGI_RECEIPT, extension_guard
from server.domain.clocks import EXTENSION_RULES, ClockSpec, ClockUnit, clock_status, compute_due
from server.domain.engine import (
    CREATE,
    SAME_STATE,
    SYSTEM_ROLE,
    CaseKind,
    CaseView,
    ClockEffect,
    Draft,
    RuleViolation,
    Timer,
    Transition,
    apply_event,
    decide,
)
from server.domain.ids import CHINA_TZ, uuid7
from server.domain.roles import Principal, Role

CALENDAR = builtin_calendar()
OGI = "《中华人民共和国政府信息公开条例》"
ART30, ART32, ART33, ART34, ART35 = (f"{OGI}第三十条", f"{OGI}第三十二条", f"{OGI}第三十三条", f"{OGI}第三十四条",
                                     f"{OGI}第三十五条")
LITIGATION = "《中华人民共和国行政诉讼法》第四十六条"
R = Role


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


def _consult(key: str, reason: str) -> tuple[ClockEffect, ...]:
    return (ClockEffect("reply", "pause", key=key, reason=reason),
            ClockEffect(key, "start", start_at=StartAt("delivered_on", "自征求意见书送达之日起计算"), link="reply",
                        key=key))


def _answered(key: str, note: str = "") -> tuple[ClockEffect, ...]:
    resume = ClockEffect("reply", "resume", key=key)
    return (resume, ClockEffect("reply", "note", reason=note)) if note else (resume,)


CLERK, ADMIN = _fs(R.WINDOW_CLERK), _fs(R.STREET_ADMIN)
SYSTEM = _fs(SYSTEM_ROLE)
T = Transition
OGI_KIND = CaseKind(
    name="clock_demo_ogi",
    label_zh="依申请公开（时限演示）",
    states={"received": "已登记", "processing": "办理中", "correcting": "补正中", "abandoned": "视为放弃",
            "replied": "已答复"},
    clocks={
        "reply": ClockSpec("reply", ClockUnit.WORKING_DAY, 20, "答复期限", ART33, extension=EXTENSION_RULES["OGI2019"]),
        "correction": ClockSpec("correction", ClockUnit.WORKING_DAY, 7, "补正期限", ART30),
        "third_party": ClockSpec("third_party", ClockUnit.WORKING_DAY, 15, "第三方答复期限", ART32),
        "co_producer": ClockSpec("co_producer", ClockUnit.WORKING_DAY, 15, "共同制作机关答复期限", ART34),
        "litigation": ClockSpec("litigation", ClockUnit.MONTH, 6, "起诉期限", LITIGATION, roll_to_workday=True),
    },
    transitions={t.name: t for t in (
        T("receive", "received", _fs(CREATE), CLERK, "登记", required=("received_on", "channel"),
          clocks=(ClockEffect("reply", "start", start_at=OGI_RECEIPT),)),
        T("screen", "processing", _fs("received"), CLERK, "审查"),
        T("ask_correction", "correcting", _fs("received"), CLERK, "补正告知", legal_basis=ART30,
          clocks=(ClockEffect("reply", "pause", key="correction"),
                  ClockEffect("correction", "start", amount_field="period_wd", link="reply", key="correction",
                              start_at=StartAt("delivered_on", "自补正告知书送达之日起计算")))),
        T("correction_received", "processing", _fs("correcting"), CLERK, "收到补正", legal_basis=ART30,
          clocks=(ClockEffect("reply", "reset", reason="收到补正材料，自收到补正之日起重新计算",
                              start_at=StartAt("received_on", "以收到补正材料之日为准")),)),
        T("abandon", "abandoned", _fs("correcting"), SYSTEM, "视为放弃申请", legal_basis=ART30,
          clocks=(ClockEffect("reply", "stop", reason="申请人逾期未补正，视为放弃申请"),)),
        T("consult_third_party", SAME_STATE, _fs("processing"), CLERK, "征求第三方意见", legal_basis=ART32,
          clocks=_consult("third_party", "征求第三方意见")),
        T("consult_co_producer", SAME_STATE, _fs("processing"), CLERK, "征求共同制作机关意见", legal_basis=ART34,
          clocks=_consult("co_producer", "征求共同制作机关意见")),
        T("third_party_answered", SAME_STATE, _fs("processing"), CLERK, "第三方答复", clocks=_answered("third_party")),
        T("third_party_silent", SAME_STATE, _fs("processing"), SYSTEM, "第三方逾期未答复", legal_basis=ART32,
          clocks=_answered("third_party", "第三方逾期未提出意见，由行政机关依照条例规定决定")),
        T("co_producer_answered", SAME_STATE, _fs("processing"), CLERK, "共同制作机关答复",
          clocks=_answered("co_producer")),
        T("extend", SAME_STATE, _fs("processing"), ADMIN, "延长答复期限", required=("days", "reason"),
          legal_basis=EXTENSION_RULES["OGI2019"].legal_basis, guards=(extension_guard("reply"),),
          clocks=(ClockEffect("reply", "extend", amount_field="days"),)),
        T("set_later_deadline", SAME_STATE, _fs("processing"), ADMIN, "确定延迟答复期限", required=("deadline",),
          legal_basis=ART35, clocks=(ClockEffect("reply", "set_due", deadline_field="deadline",
                                                 reason="申请数量明显超过合理范围，确定合理的延迟答复期限"),)),
        T("reply", "replied", _fs("processing"), CLERK, "答复", required=("delivered_on",),
          clocks=(ClockEffect("reply", "stop", reason="已答复"),
                  ClockEffect("litigation", "start",
                              start_at=StartAt("delivered_on", "自答复送达申请人之日起计算")))),
    )},
    terminal=_fs("abandoned", "replied"),
    timers=(Timer("abandon", _fs("correcting"), "correction"),
            Timer("third_party_silent", _fs("processing"), "third_party")),
)


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)


def person(role: Role) -> Principal:
    return Principal(user_id=f"u-{role.value}", username=role.value, role=role, org_unit="440106006000",
                     org_path="440106/440106006000")


def run(view: CaseView | None, transition: str, when: datetime, role: Role | None = Role.WINDOW_CLERK,
        **payload: Any) -> CaseView:
    draft = Draft(transition=transition, payload=payload, principal=person(role) if role else None,
                  node_time=when, event_id=uuid7(), context={"calendar": CALENDAR})
    event = decide(OGI_KIND, view, draft, view.id if view else "case-1", "440106/440106006000")
    return apply_event(OGI_KIND, view, event, "440106/440106006000")


def explanation(view: CaseView, clock: str) -> str:
    return compute_due(view.clocks[clock], CALENDAR).explanation_zh


def due(view: CaseView, clock: str) -> datetime | None:
    return compute_due(view.clocks[clock], CALENDAR).due_at


def end_of(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 23, 59, 59, tzinfo=CHINA_TZ)


VERSION = CALENDAR.version


# --- 9. start at the receipt date the channel's rule gives ------------------------------------------


def test_registered_post_starts_on_the_day_signed_for_and_names_the_rule() -> None:
    # Signed for Friday 09-18, registered Monday 09-21. 20 WD: 09-20 (make-up Sunday) … 10-22.
    view = run(None, "receive", at(9, 21, 9), received_on="2026-09-18", channel="post_registered")
    assert due(view, "reply") == end_of(10, 22)
    assert explanation(view, "reply") == (
        f"答复期限（{ART33}）；起算日（第0日）：2026-09-18（星期五），当日不计入；"
        f"起算依据：以邮寄方式提交的，以行政机关签收之日为收到申请之日（{OGI}第三十一条）；按工作日计 20 日；"
        "跳过：2026-09-25至2026-09-27 中秋节休假、2026-10-01至2026-10-07 国庆节休假、周末 4 天；"
        "2026-09-20（星期日）为调休上班日，计入；2026-10-10（星期六）为调休上班日，计入；"
        f"截止：2026-10-22（星期四）24:00前；日历版本：{VERSION}"
    )


@pytest.mark.parametrize(("channel", "rule"), [
    ("email", "通过电子邮件提交的，以电子邮件系统收到之日为收到申请之日（国办公开办函〔2015〕207号）"),
    ("proxy_community", "由社区代收的，以街道政府信息公开工作机构确认收到之日为收到申请之日（国办公开办函〔2015〕207号）"),
    ("in_person", f"当面提交的，以提交之日为收到申请之日（{OGI}第三十一条）"),
])
def test_each_channel_names_its_receipt_rule(channel: str, rule: str) -> None:
    view = run(None, "receive", at(9, 21, 9), received_on="2026-09-18", channel=channel)
    assert f"起算依据：{rule}" in explanation(view, "reply")


# --- 10 and 12. correction: a sub-clock of its own, then a reset with a record ----------------------


def corrected_view() -> CaseView:
    view = run(None, "receive", at(9, 21, 9), received_on="2026-09-21", channel="in_person")
    return run(view, "ask_correction", at(9, 21, 16), delivered_on="2026-09-22", period_wd=7)


def test_the_correction_period_starts_at_delivery_and_is_linked_to_the_pause() -> None:
    view = corrected_view()
    assert view.clocks["reply"].is_paused("correction")
    # 7 WD from Tuesday 09-22: 09-23, 09-24, 09-28, 09-29, 09-30, 10-08, 10-09.
    assert due(view, "correction") == end_of(10, 9)
    assert explanation(view, "correction") == (
        f"补正期限（{ART30}）；起算日（第0日）：2026-09-22（星期二），当日不计入；起算依据：自补正告知书送达之日起计算；"
        "按工作日计 7 日；跳过：2026-09-25至2026-09-27 中秋节休假、2026-10-01至2026-10-07 国庆节休假；"
        "2026-09-21 16:00 「答复期限」因补正告知暂停期间的期限；"
        f"截止：2026-10-09（星期五）24:00前；日历版本：{VERSION}"
    )
    # the engine's timer for the sub-clock: no correction by then means the application is abandoned
    abandoned = run(view, "abandon", at(10, 10, 0, 5), role=None)
    assert abandoned.state == "abandoned"
    assert "计时已于 2026-10-10 00:05 停止（申请人逾期未补正，视为放弃申请）" in explanation(abandoned, "reply")


def test_a_correction_received_restarts_the_reply_period_with_its_record() -> None:
    view = run(corrected_view(), "correction_received", at(9, 30, 15), received_on="2026-09-29")
    # Day 0 is 09-29; 20 WD: 09-30, 10-08, 10-09, 10-10 (make-up Saturday), 10-12 … 10-30 (15), 11-02.
    assert due(view, "reply") == end_of(11, 2)
    text = explanation(view, "reply")
    assert text.startswith(
        f"答复期限（{ART33}）；重新计时：2026-09-29 收到补正材料，自收到补正之日起重新计算（{ART30}）；"
        "原起算时间 2026-09-21；起算日（第0日）：2026-09-29（星期二），当日不计入；起算依据：以收到补正材料之日为准；"
    )
    assert view.clocks["correction"].stopped_at is not None  # the sub-clock ends with the pause it belonged to


# --- 11 and 12. overlapping consultations, each with its own 15-WD sub-clock ------------------------


def consulting() -> CaseView:
    view = run(None, "receive", at(3, 2, 9), received_on="2026-03-02", channel="in_person")
    view = run(view, "screen", at(3, 2, 11))
    view = run(view, "consult_third_party", at(3, 4), delivered_on="2026-03-05")
    return run(view, "consult_co_producer", at(3, 6), delivered_on="2026-03-06")


def test_the_clock_resumes_only_when_every_consultation_is_closed() -> None:
    view = consulting()
    view = run(view, "third_party_answered", at(3, 10))
    reply = view.clocks["reply"]
    assert clock_status(reply, compute_due(reply, CALENDAR), at(3, 11)).state == "paused"
    assert view.clocks["third_party"].stopped_at == at(3, 10)
    view = run(view, "co_producer_answered", at(3, 13))
    # Counted 03-03, 03-04; suspended 03-05..03-13 (7 WD); then 03-16 … 04-03 (15), 04-07..09 (清明 04-04..06).
    assert due(view, "reply") == end_of(4, 9)
    assert (
        f"暂停：2026-03-04 10:00至2026-03-10 10:00（征求第三方意见，{ART32}）、"
        f"2026-03-06 10:00至2026-03-13 10:00（征求共同制作机关意见，{ART34}），各项暂停理由均消除后方恢复计时，"
        "2026-03-05至2026-03-13 不计入（7 个工作日）"
    ) in explanation(view, "reply")


def test_a_silent_third_party_is_handled_by_its_own_timer() -> None:
    view = run(None, "receive", at(3, 2, 9), received_on="2026-03-02", channel="in_person")
    view = run(run(view, "screen", at(3, 2, 11)), "consult_third_party", at(3, 4), delivered_on="2026-03-05")
    # 15 WD from 03-05: 03-06, 03-09..13, 03-16..20, 03-23..26.
    assert due(view, "third_party") == end_of(3, 26)
    view = run(view, "third_party_silent", at(3, 27, 0, 5), role=None)
    assert not view.clocks["reply"].is_paused()
    assert (f"2026-03-27 00:05 第三方逾期未提出意见，由行政机关依照条例规定决定（{ART32}）"
            in explanation(view, "reply"))


# --- 13 and 14. a decided later deadline; extensions with approver, notice and cap ------------------


def processing() -> CaseView:
    view = run(None, "receive", at(9, 21, 9), received_on="2026-09-21", channel="in_person")
    return run(view, "screen", at(9, 21, 11))


def test_an_extension_names_approver_notice_and_article_and_is_capped_for_ogi2019() -> None:
    view = processing()
    too_long = pytest.raises(RuleViolation, match="延长不得超过 20 个工作日")
    with too_long:
        run(view, "extend", at(10, 12), role=Role.STREET_ADMIN, days=21, reason="需调取档案", notified_on="2026-10-12")
    with pytest.raises(RuleViolation, match="请填写告知日期"):
        run(view, "extend", at(10, 12), role=Role.STREET_ADMIN, days=20, reason="需调取档案")
    view = run(view, "extend", at(10, 12), role=Role.STREET_ADMIN, days=20, reason="需调取档案",
               approver="工作机构负责人李明", notified_on="2026-10-13")
    assert (f"延长 20 个工作日（需调取档案，工作机构负责人李明批准，2026-10-12 10:00 决定，2026-10-13 告知申请人，"
            f"{EXTENSION_RULES['OGI2019'].legal_basis}）；合计 40 个工作日") in explanation(view, "reply")


def test_a_later_deadline_set_by_decision_replaces_the_count() -> None:
    view = run(processing(), "set_later_deadline", at(10, 12), role=Role.STREET_ADMIN, deadline="2026-12-31")
    assert due(view, "reply") == end_of(12, 31)
    assert explanation(view, "reply") == (
        f"答复期限（{ART33}）；起算日（第0日）：2026-09-21（星期一），当日不计入；"
        f"起算依据：当面提交的，以提交之日为收到申请之日（{OGI}第三十一条）；"
        f"截止日期由决定确定：申请数量明显超过合理范围，确定合理的延迟答复期限（2026-10-12 10:00 决定，{ART35}）；"
        f"截止：2026-12-31（星期四）24:00前；日历版本：{VERSION}"
    )


def test_the_litigation_limit_runs_six_months_from_delivery_and_rolls_past_national_day() -> None:
    view = run(processing(), "reply", at(4, 3), delivered_on="2026-04-03")
    # 04-03 + 6 months = 10-03, a Saturday in the National Day break: the period ends on 10-08.
    assert due(view, "litigation") == end_of(10, 8)
    assert explanation(view, "litigation") == (
        f"起诉期限（{LITIGATION}）；起算日（第0日）：2026-04-03（星期五），当日不计入；起算依据：自答复送达申请人之日起计算；"
        "按月计 6 个月（到期月的对应日为期间最后一日，没有对应日的为该月末日，《中华人民共和国民法典》第二百零二条）；"
        "期间最后一日为休息日的，以其后第一个工作日为最后一日（《中华人民共和国民法典》第二百零三条）；"
        "期间最后一日 2026-10-03（星期六）为休息日（国庆节），顺延至 2026-10-08（星期四）（《中华人民共和国民法典》第二百零三条）；"
        f"截止：2026-10-08（星期四）24:00前；日历版本：{VERSION}"
    )
