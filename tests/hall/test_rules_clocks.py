"""Services-hall clock rules on a real store, with dates worked by hand around 2026 National Day.

2026 (State Council notice, as in chinese_calendar 1.11): 中秋节 09-25..09-27 and 国庆节 10-01..10-07
rest; make-up working days Sunday 09-20 and Saturday 10-10. An application received and accepted on
Thursday 2026-09-24 (day 0) counts 09-28, 09-29, 09-30, 10-08, 10-09, 10-10, 10-12 … as working
days 1, 2, 3, 4, 5, 6, 7 …
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from server.config import Settings
from server.domain.engine import Draft, RuleViolation
from server.domain.ids import CHINA_TZ, uuid7
from server.store import cases as case_store
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.hall.helpers import MINIMUM_LIVING, ORIGINALS, submitted

ART32 = "《中华人民共和国行政许可法》第三十二条"
ART42 = "《中华人民共和国行政许可法》第四十二条"
ART45 = "《中华人民共和国行政许可法》第四十五条"
LIVING_BASIS = ("《社会救助暂行办法》（国务院令第649号）、《最低生活保障审核确认办法》（民发〔2021〕57号）、"
                "《广州市最低生活保障办法》")
# Acceptance restarts the decision clocks: the record says so (行政许可法 art. 42 counts from acceptance).
ACCEPTED = "重新计时：2026-09-24 10:15 受理申请，办结时限自受理之日起计算；原起算时间 2026-09-24 10:00"


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)


def act(store: Store, username: str, case_id: str, transition: str, when: datetime,
        **payload: Any) -> case_store.TransitionResult:
    user = store.read(lambda db: get_user_by_name(db, username))
    assert user is not None
    draft = Draft(transition=transition, payload=payload, principal=user.principal(), node_time=when,
                  event_id=uuid7())
    return store.write(lambda db: case_store.transition(db, case_id, draft, node_id="n",
                                                        calendar=current_calendar(db)))


def refused(store: Store, username: str, case_id: str, transition: str, when: datetime, **payload: Any) -> str:
    with pytest.raises(RuleViolation) as caught:
        act(store, username, case_id, transition, when, **payload)
    return caught.value.message


def clocks(store: Store, case_id: str) -> dict[str, Any]:
    row = store.read(lambda db: case_store.case_row(db, case_id))
    assert row is not None
    return row["clocks"]  # type: ignore[no-any-return]


def version(store: Store) -> str:
    return store.read(lambda db: current_calendar(db).version)


def accepted_on_sept_24(store: Store, settings: Settings) -> str:
    cid = submitted(store, settings, "clerk", MINIMUM_LIVING, at=at(9, 24))["case_id"]
    act(store, "clerk", cid, "pre_review_pass", at(9, 24, 10, 5))
    act(store, "clerk", cid, "onsite_check", at(9, 24, 10, 10), verified=ORIGINALS[MINIMUM_LIVING])
    act(store, "clerk", cid, "accept", at(9, 24, 10, 15))
    act(store, "handler", cid, "start_handling", at(9, 24, 11), opinion="符合条件")
    return cid


# --- 5. extensions (行政许可法 art. 42) ------------------------------------------------------------


def test_an_extension_after_the_statutory_deadline_is_refused(store: Store, settings: Settings) -> None:
    cid = accepted_on_sept_24(store, settings)
    # 30 WD from 09-24: the 30th working day is Thursday 11-12.
    assert clocks(store, cid)["statutory"]["due_at"] == "2026-11-12T23:59:59+08:00"
    message = refused(store, "admin", cid, "extend", at(11, 13, 9), days=5, reason="需入户核查")
    assert message == (f"「法定办结时限」已于 2026-11-12 23:59:59 届满，期限届满后不能再延长（{ART42}：延长须在期限内决定）")
    assert clocks(store, cid)["statutory"]["due_at"] == "2026-11-12T23:59:59+08:00"  # the breach stands


def test_one_extension_within_the_limit_is_explained_and_a_second_is_refused(store: Store,
                                                                             settings: Settings) -> None:
    cid = accepted_on_sept_24(store, settings)
    act(store, "admin", cid, "extend", at(11, 12, 16), days=6, reason="需入户核查家庭经济状况")
    statutory = clocks(store, cid)["statutory"]
    # +6 WD from 11-12: 11-13, 11-16 … 11-20.
    assert statutory["due_at"] == "2026-11-20T23:59:59+08:00"
    assert statutory["explanation"] == (
        f"法定办结时限（{LIVING_BASIS}）；{ACCEPTED}；起算日（第0日）：2026-09-24（星期四），当日不计入；"
        "按工作日计 30 日；跳过：2026-09-25至2026-09-27 中秋节休假、2026-10-01至2026-10-07 国庆节休假、周末 11 天；"
        "2026-10-10（星期六）为调休上班日，计入；"
        f"延长 6 个工作日（需入户核查家庭经济状况，2026-11-12 16:00 决定，{ART42}）；合计 36 个工作日；"
        f"截止：2026-11-20（星期五）24:00前；日历版本：{version(store)}"
    )
    # Art. 42 grants one extension: 6 + 2 stays under 10 WD but is a second decision, refused.
    message = refused(store, "admin", cid, "extend", at(11, 16), days=2, reason="再延")
    assert message == f"延长期限只能批准一次：已于 2026-11-12 16:00 延长 6 个工作日（{ART42}）"


# --- 6. correction notice after the acceptance period (art. 32) --------------------------------------


def test_a_correction_notice_after_five_working_days_is_refused_before_the_timer_runs(
        store: Store, settings: Settings) -> None:
    cid = submitted(store, settings, "clerk", MINIMUM_LIVING, at=at(9, 24))["case_id"]
    # 5 WD from 09-24: 09-28, 09-29, 09-30, 10-08, 10-09 (09-25..27 is 中秋节).
    assert clocks(store, cid)["acceptance"]["due_at"] == "2026-10-09T23:59:59+08:00"
    message = refused(store, "clerk", cid, "correction_notice", at(10, 10, 9), items=["收入证明"])
    assert message == ("受理审查期限已于 2026-10-09 23:59:59 届满，依法自收到申请材料之日起即为受理，"
                       f"不能再要求补正（{ART32}）")
    assert store.query("SELECT state FROM cases WHERE id = ?", [cid])[0]["state"] == "submitted"


def test_a_correction_within_the_period_restarts_the_clocks_with_a_record(store: Store,
                                                                          settings: Settings) -> None:
    cid = submitted(store, settings, "clerk", MINIMUM_LIVING, at=at(9, 24))["case_id"]
    act(store, "clerk", cid, "correction_notice", at(10, 9, 17), items=["收入证明"])
    act(store, "clerk", cid, "receive_correction", at(10, 12, 9, 30))
    acceptance = clocks(store, cid)["acceptance"]
    # 5 WD from Monday 10-12: 10-13 … 10-16, 10-19.
    assert acceptance["due_at"] == "2026-10-19T23:59:59+08:00"
    assert acceptance["explanation"] == (
        f"受理审查（逾期视为受理）（{ART32}）；重新计时：2026-10-12 09:30 收到补正材料，自收到补正之日起重新计算（{ART32}）；"
        "原起算时间 2026-09-24 10:00；起算日（第0日）：2026-10-12（星期一），当日不计入；按工作日计 5 日；"
        f"跳过：周末 2 天；截止：2026-10-19（星期一）24:00前；日历版本：{version(store)}"
    )


def test_deemed_acceptance_says_the_decision_clocks_count_from_receipt(store: Store, settings: Settings) -> None:
    cid = submitted(store, settings, "clerk", MINIMUM_LIVING, at=at(9, 24))["case_id"]
    fired = store.write(lambda db: case_store.fire_timers(db, current_calendar(db), at(10, 10, 0, 5), "n"))
    assert fired >= 1
    c = clocks(store, cid)
    assert "视为受理，自收到申请材料之日起计算（《中华人民共和国行政许可法》第三十二条）" in c["statutory"]["explanation"]
    assert "起算日（第0日）：2026-09-24（星期四）" in c["statutory"]["explanation"]  # not restarted
    assert "停止（视为受理）" in c["acceptance"]["explanation"]


# --- 7 and 8. special procedures (art. 45) ---------------------------------------------------------


def test_only_declared_special_steps_or_article_45_procedures_pause_the_clock(store: Store,
                                                                            settings: Settings) -> None:
    cid = accepted_on_sept_24(store, settings)
    notice = {"reason": "公示", "notice": "已书面告知申请人"}
    free = refused(store, "handler", cid, "start_special", at(10, 9, 15), procedure="入户调查", **notice)
    assert free == (f"特别程序须为本事项办事指南列明的特殊环节或{ART45}所列程序："
                    "社区公示、听证、招标、拍卖、检验、检测、检疫、鉴定、专家评审")
    counted = refused(store, "handler", cid, "start_special", at(10, 9, 15), procedure="居民家庭经济状况核对", **notice)
    assert counted == "「居民家庭经济状况核对」按办事指南计入法定办结时限，不能暂停计时"
    act(store, "handler", cid, "start_special", at(10, 9, 15), procedure="专家评审", **notice)
    assert f"（特别程序「专家评审」，{ART45}）" in clocks(store, cid)["statutory"]["explanation"]


def test_a_paused_clock_shows_days_used_and_left_and_the_procedure_with_its_basis(store: Store,
                                                                                 settings: Settings) -> None:
    cid = accepted_on_sept_24(store, settings)
    act(store, "handler", cid, "start_special", at(10, 9, 15), procedure="社区公示", reason="公示 7 日",
        notice="已书面告知申请人：公示期不计入办理时限")
    paused = clocks(store, cid)["statutory"]
    assert paused["status"] == "paused" and paused["due_at"] is None
    assert paused["explanation"] == (
        f"法定办结时限（{LIVING_BASIS}）；{ACCEPTED}；起算日（第0日）：2026-09-24（星期四），当日不计入；"
        "按工作日计 30 日；跳过：2026-09-25至2026-09-27 中秋节休假、2026-10-01至2026-10-07 国庆节休假；"
        "暂停：自 2026-10-09 15:00 起（特别程序「社区公示」，公示期 7 日，不计入审核确认时限），"
        "计时暂停中（已用 5 个工作日，剩余 25 个工作日）；截止：计时暂停中，恢复计时后确定；"
        f"日历版本：{version(store)}"
    )
    act(store, "handler", cid, "end_special", at(10, 20), result="公示无异议")
    statutory = clocks(store, cid)["statutory"]
    # 10-10 (make-up Saturday) and 10-12..10-20 are suspended: 8 WD; 25 more from 10-20 end on 11-24.
    assert statutory["due_at"] == "2026-11-24T23:59:59+08:00"
    assert ("暂停：2026-10-09 15:00至2026-10-20 10:00（特别程序「社区公示」，公示期 7 日，不计入审核确认时限），"
            "2026-10-10至2026-10-20 不计入（8 个工作日）") in statutory["explanation"]


def test_a_correction_received_by_post_restarts_from_the_day_signed_for(store: Store, settings: Settings) -> None:
    cid = submitted(store, settings, "clerk", MINIMUM_LIVING, at=at(9, 24))["case_id"]
    act(store, "clerk", cid, "correction_notice", at(10, 9, 17), items=["收入证明"])
    # Signed for on Saturday 10-10 (a make-up working day), registered on Monday 10-12.
    act(store, "clerk", cid, "receive_correction", at(10, 12, 9, 30), received_on="2026-10-10")
    acceptance = clocks(store, cid)["acceptance"]
    assert acceptance["due_at"] == "2026-10-16T23:59:59+08:00"  # 10-12 … 10-16
    assert acceptance["explanation"].startswith(
        f"受理审查（逾期视为受理）（{ART32}）；重新计时：2026-10-10 收到补正材料，自收到补正之日起重新计算（{ART32}）；"
        "原起算时间 2026-09-24 10:00；起算日（第0日）：2026-10-10（星期六），当日不计入；")
