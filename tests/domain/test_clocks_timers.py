"""Sub-clocks fire their own timers on a real store: an unanswered correction notice ends the
application as abandoned; a silent third party lets the reply clock run again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from server.domain.engine import Draft
from server.domain.ids import uuid7
from server.domain.kinds import REGISTRY
from server.store import cases as case_store
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.domain.test_clocks_engine import OGI_KIND, at


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(REGISTRY, OGI_KIND.name, OGI_KIND)  # only for this test: other suites list the kinds
    yield


def draft(store: Store, transition: str, when: datetime, **payload: Any) -> Draft:
    user = store.read(lambda db: get_user_by_name(db, "clerk"))
    assert user is not None
    return Draft(transition=transition, payload=payload, principal=user.principal(), node_time=when, event_id=uuid7())


def new_case(store: Store, when: datetime, **payload: Any) -> str:
    d = draft(store, "receive", when, **payload)
    assert d.principal is not None
    path = d.principal.org_path
    return store.write(lambda db: case_store.create_case(db, OGI_KIND, d, org_path=path, node_id="n",
                                                          calendar=current_calendar(db))[0].id)


def step(store: Store, case_id: str, transition: str, when: datetime, **payload: Any) -> None:
    d = draft(store, transition, when, **payload)
    store.write(lambda db: case_store.transition(db, case_id, d, node_id="n", calendar=current_calendar(db)))


def fire(store: Store, when: datetime) -> int:
    return store.write(lambda db: case_store.fire_timers(db, current_calendar(db), when, "n"))


def state(store: Store, case_id: str) -> dict[str, Any]:
    row = store.read(lambda db: case_store.case_row(db, case_id))
    assert row is not None
    return row


def test_the_correction_period_timer_abandons_the_application(store: Store, registered: None) -> None:
    cid = new_case(store, at(9, 21, 9), received_on="2026-09-21", channel="in_person")
    step(store, cid, "ask_correction", at(9, 21, 16), delivered_on="2026-09-22", period_wd=7)
    assert state(store, cid)["clocks"]["correction"]["due_at"] == "2026-10-09T23:59:59+08:00"
    assert fire(store, at(10, 9, 23, 0)) == 0  # the last day of the period is the applicant's
    assert fire(store, at(10, 10, 0, 5)) == 1
    row = state(store, cid)
    assert row["state"] == "abandoned"
    assert "停止（申请人逾期未补正，视为放弃申请）" in row["clocks"]["reply"]["explanation"]


def test_a_silent_third_party_lets_the_reply_clock_run_again(store: Store, registered: None) -> None:
    cid = new_case(store, at(3, 2, 9), received_on="2026-03-02", channel="in_person")
    step(store, cid, "screen", at(3, 2, 11))
    step(store, cid, "consult_third_party", at(3, 4), delivered_on="2026-03-05")
    assert state(store, cid)["clocks"]["reply"]["status"] == "paused"
    assert fire(store, at(3, 27, 0, 5)) == 1  # 15 WD from 03-05 ended on 03-26
    reply = state(store, cid)["clocks"]["reply"]
    assert reply["status"] == "running" and reply["due_at"] is not None
    assert "第三方逾期未提出意见" in reply["explanation"]
