"""A test-only case kind that exercises every engine feature (real kinds arrive with features)."""

from __future__ import annotations

from server.domain.clocks import ClockSpec, ClockUnit
from server.domain.engine import (
    CREATE,
    SYSTEM_ROLE,
    CaseKind,
    CaseView,
    ClockEffect,
    Draft,
    Event,
    Timer,
    Transition,
)
from server.domain.kinds import register
from server.domain.roles import Role

R = Role


def _fs(*items: str) -> frozenset[str]:
    return frozenset(items)


def _handler_never_closes(view: CaseView, event: Event) -> str | None:
    if event.transition == "close" and event.actor in view.actors_of("handle"):
        return "承办人不能自行结案"
    return None


def _positive_days(view: CaseView, draft: Draft) -> str | None:
    days = draft.payload.get("days")
    if not isinstance(days, int) or not 1 <= days <= 10:
        return "延长天数须为 1 至 10 的整数"
    return None


TEST_PERMIT = register(
    CaseKind(
        name="test_permit",
        label_zh="测试许可",
        states={
            "submitted": "已申请",
            "accepted": "已受理",
            "paused": "特别程序",
            "handled": "已办理",
            "closed": "已办结",
            "rejected": "不予受理",
        },
        clocks={"decide": ClockSpec("decide", ClockUnit.WORKING_DAY, 5, "办理时限", "测试依据")},
        transitions={
            "submit": Transition("submit", "submitted", _fs(CREATE),
                                 _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER), "申请", required=("title",),
                                 clocks=(ClockEffect("decide", "start"),)),
            "accept": Transition("accept", "accepted", _fs("submitted"), _fs(R.WINDOW_CLERK), "受理",
                                 tiers=_fs("street")),
            "deem": Transition("deem", "accepted", _fs("submitted"), _fs(SYSTEM_ROLE), "视为受理"),
            "reject": Transition("reject", "rejected", _fs("submitted"), _fs(R.WINDOW_CLERK), "不予受理",
                                 required=("reason",), clocks=(ClockEffect("decide", "stop"),)),
            "pause": Transition("pause", "paused", _fs("accepted"), _fs(R.STREET_HANDLER), "特别程序",
                                clocks=(ClockEffect("decide", "pause"),)),
            "resume": Transition("resume", "accepted", _fs("paused"), _fs(R.STREET_HANDLER), "特别程序结束",
                                 clocks=(ClockEffect("decide", "resume"),)),
            "extend": Transition("extend", "accepted", _fs("accepted"), _fs(R.STREET_ADMIN), "延期",
                                 required=("days", "reason"), guards=(_positive_days,),
                                 clocks=(ClockEffect("decide", "extend", amount_field="days"),)),
            "handle": Transition("handle", "handled", _fs("accepted"), _fs(R.STREET_HANDLER, R.STREET_ADMIN),
                                 "办理"),
            "close": Transition("close", "closed", _fs("handled"), _fs(R.STREET_HANDLER, R.STREET_ADMIN), "办结",
                                clocks=(ClockEffect("decide", "stop"),)),
        },
        invariants=(_handler_never_closes,),
        terminal=_fs("closed", "rejected"),
        timers=(Timer("deem", _fs("submitted"), "decide"),),
    )
)
