"""Test-only case kinds: ``test_permit`` exercises every engine feature; ``test_request`` is a complete
new kind added the way real ones are (declaration, payload models, views, settings, intake, one Feature)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from schemas.common import Input
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
from server.domain.views import KindViews, ViewColumn
from server.features import Feature, install
from server.store.intake import CaseIntake, IntakeContext, case_intake

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


# --- a complete new kind, the way the next kinds are added ----------------------------------------
# 居民诉求 (a resident's request, simplified): everything it needs is below — the declaration with its
# views, its payload models, its settings model and its intake — and one ``Feature`` line. It has no
# web or store code of its own: the work list, case screen, events route, outbox and timers are the
# generic ones (tests/web/test_new_kind.py drives it end to end).

REQUEST = "test_request"


class RequestForm(Input):
    """What the window (or a community worker's tablet) records."""

    subject: str = Field(min_length=1, max_length=100, description="诉求事项")
    detail: str = Field(min_length=1, max_length=2000, description="具体内容")
    place: str | None = Field(None, max_length=200, description="地点")
    on_hold: bool | None = Field(None, description="居民同意暂缓（不自动督办）")


class AssignPayload(Input):
    unit: str = Field(min_length=1, max_length=100, description="承办单位")
    instruction: str | None = Field(None, max_length=500, description="办理要求")


class AnswerPayload(Input):
    answer: str = Field(min_length=1, max_length=2000, description="答复内容")


class RequestSettings(Input):
    answer_wd: int = Field(10, ge=1, le=60, description="答复时限（工作日）")


def _not_on_hold(view: CaseView, draft: Draft) -> str | None:
    return "居民已同意暂缓，不自动督办" if view.data.get("on_hold") else None


TEST_REQUEST = CaseKind(
    name=REQUEST,
    label_zh="居民诉求",
    states={"received": "已登记", "assigned": "已分派", "escalated": "超期督办", "answered": "已答复",
            "closed": "已办结"},
    clocks={"answer": ClockSpec("answer", ClockUnit.WORKING_DAY, 10, "答复时限", "测试依据")},
    transitions={t.name: t for t in (
        Transition("register", "received", _fs(CREATE), _fs(R.WINDOW_CLERK, R.COMMUNITY_WORKER), "登记",
                   required=("subject",), payload=RequestForm,
                   clocks=(ClockEffect("answer", "start"),)),
        Transition("assign", "assigned", _fs("received"), _fs(R.STREET_ADMIN), "分派",
                   required=("unit",), payload=AssignPayload),
        Transition("escalate", "escalated", _fs("assigned"), _fs(SYSTEM_ROLE), "超期督办", guards=(_not_on_hold,)),
        Transition("answer", "answered", _fs("assigned", "escalated"), _fs(R.STREET_HANDLER), "答复",
                   required=("answer",), payload=AnswerPayload,
                   clocks=(ClockEffect("answer", "stop"),)),
        Transition("close", "closed", _fs("answered"), _fs(R.STREET_ADMIN), "办结"),
    )},
    terminal=_fs("closed"),
    timers=(Timer("escalate", _fs("assigned"), "answer"),),
    number_prefix="SQ",
    views=KindViews(
        columns=(ViewColumn("subject", "诉求事项", "data.subject"), ViewColumn("unit", "承办单位", "data.unit"),
                 ViewColumn("received_at", "登记时间", "created_at")),
        resident_fields=("subject", "answer"),
        default_clock="answer",
    ),
    settings_model=RequestSettings,
)


def _build(db: Any, form: RequestForm, ctx: IntakeContext) -> CaseIntake:
    from server.store import settings

    days = settings.load(db, TEST_REQUEST, RequestSettings).answer_wd
    payload = {**form.model_dump(exclude_none=True), "_clocks": {"answer": {"duration": days}}}
    return CaseIntake(payload)


REQUEST_FEATURE = Feature("test_request", kinds=(TEST_REQUEST,),
                          intake={REQUEST: case_intake(TEST_REQUEST, RequestForm, _build)})
install([REQUEST_FEATURE])
