"""Child cases, the rules version and event time on disk, a verify that compares clocks, due dates and the
owner tier, and a timer that fires on a provisional (unpublished-year) due date saying so."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from server.config import Settings
from server.domain.engine import CREATE, PARENT, CaseKind, Draft, RuleViolation, Transition
from server.domain.ids import CHINA_TZ, uuid7
from server.domain.kinds import register
from server.domain.roles import Principal, Role
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.kinds_for_tests import TEST_PERMIT

AT = datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ)
OPINION = register(CaseKind(
    name="test_opinion", label_zh="测试第三方意见", parent_kind=TEST_PERMIT.name, rules_version=3,
    states={"asked": "已征求", "answered": "已回复"},
    transitions={t.name: t for t in (
        Transition("ask", "asked", frozenset({CREATE}), frozenset({Role.WINDOW_CLERK}), "征求意见"),
        Transition("answer", "answered", frozenset({"asked"}), frozenset({Role.WINDOW_CLERK}), "回复"),
    )},
))


@pytest.fixture
def s(settings: Settings):  # type: ignore[no-untyped-def]
    with Store(settings.db_path) as store:
        yield store


def clerk(s: Store) -> Principal:
    user = s.read(lambda db: get_user_by_name(db, "clerk"))
    assert user is not None
    return user.principal()


def create(s: Store, kind: CaseKind, at: datetime = AT, **payload: Any) -> str:
    p = clerk(s)

    def write(db: Any) -> str:
        d = Draft(kind.creating[0].name, payload, p, at, uuid7())
        return cases.create_case(db, kind, d, org_path=p.org_path, node_id="n", calendar=current_calendar(db))[0].id

    return s.write(write)


def test_child_cases_hang_under_an_existing_parent_of_the_declared_kind(s: Store) -> None:
    permit = create(s, TEST_PERMIT, title="占道施工许可")
    first = create(s, OPINION, **{PARENT: permit, "question": "是否影响通行"})
    second = create(s, OPINION, at=AT + timedelta(hours=1), **{PARENT: permit, "question": "噪声"})
    assert [c["id"] for c in s.read(lambda db: cases.children(db, permit))] == [first, second]
    assert s.read(lambda db: cases.children(db, permit, kind="other")) == []
    assert s.query("SELECT parent_id FROM cases WHERE id = ?", [first])[0]["parent_id"] == permit
    assert s.query("SELECT rules_version FROM case_events WHERE case_id = ?", [first])[0]["rules_version"] == 3
    assert s.read(lambda db: cases.rebuild_case(db, first, current_calendar(db), AT)) == {}
    before = s.query("SELECT COUNT(*) AS n FROM cases")[0]["n"]
    for parent, code in ((uuid7(), "unknown_parent"), (first, "unknown_parent")):  # missing; wrong kind
        with pytest.raises(RuleViolation) as err:
            create(s, OPINION, **{PARENT: parent})
        assert (err.value.code, err.value.field) == (code, f"payload.{PARENT}")
    assert s.query("SELECT COUNT(*) AS n FROM cases")[0]["n"] == before


def test_a_child_is_created_only_under_a_parent_the_actor_may_see(s: Store) -> None:
    permit = create(s, TEST_PERMIT, title="占道施工许可")
    s.write(lambda db: db.execute("UPDATE cases SET org_path = '440106/440106099000' WHERE id = ?", [permit]))
    with pytest.raises(RuleViolation) as err:
        create(s, OPINION, **{PARENT: permit})
    assert (err.value.kind, err.value.field) == ("forbidden", f"payload.{PARENT}")


@pytest.mark.parametrize(("column", "value", "diff"), [
    ("due_at", "'2030-01-01T00:00:00+08:00'", "due_at"),
    ("owner_tier", "'district'", "owner_tier"),
    ("clocks", "json_set(clocks, '$.decide.due_at', '2030-01-01T00:00:00+08:00')", "clocks"),
])
def test_verify_finds_a_cache_row_whose_clocks_due_date_or_tier_drifted(s: Store, column: str, value: str,
                                                                         diff: str) -> None:
    cid = create(s, TEST_PERMIT, title="测试")
    assert s.read(lambda db: cases.rebuild_case(db, cid, current_calendar(db), AT)) == {}
    s.write(lambda db: db.execute(f"UPDATE cases SET {column} = {value} WHERE id = ?", [cid]))
    assert diff in s.read(lambda db: cases.rebuild_case(db, cid, current_calendar(db), AT))


def test_deemed_acceptance_on_a_due_date_in_an_unpublished_year_says_it_was_provisional(s: Store) -> None:
    received = datetime(2026, 12, 28, 10, 0, tzinfo=CHINA_TZ)  # 5 working days run into 2027 (not published)
    cid = create(s, TEST_PERMIT, at=received, title="跨年申请")
    clock = s.read(lambda db: cases.case_row(db, cid))["clocks"]["decide"]  # type: ignore[index]
    assert clock["provisional"] is True
    fired = s.write(lambda db: cases.fire_timers(db, current_calendar(db), received + timedelta(days=20), "n"))
    assert fired == 1
    event = s.query("SELECT transition, effective_time, effective_basis, effective_provisional FROM case_events"
                    " WHERE case_id = ? ORDER BY seq DESC LIMIT 1", [cid])[0]
    assert event["transition"] == "deem" and event["effective_provisional"] == 1
    assert event["effective_time"] == clock["due_at"]
    assert event["effective_basis"].endswith("；届满日所在年度的节假日安排尚未发布，为暂定日期")
    stored = json.loads(s.query("SELECT data FROM cases WHERE id = ?", [cid])[0]["data"])
    assert stored == {"title": "跨年申请"}


def test_verify_does_not_flag_a_closed_case_whose_dates_came_from_an_earlier_calendar(s: Store) -> None:
    from server.store.calendars import publish_version

    cid = create(s, TEST_PERMIT, title="测试")
    p = clerk(s)
    s.write(lambda db: cases.transition(db, cid, Draft("reject", {"reason": "材料不齐"}, p, AT + timedelta(hours=1),
                                                       uuid7()), node_id="n", calendar=current_calendar(db)))
    s.write(lambda db: publish_version(db, version="tianhe-2027-v1", source_notice="国办发明电", actor="admin",
                                       role="district_admin", now=AT, entries=[
                                           {"day": "2027-01-01", "work": False, "reason": "statutory", "name": "元旦"}]))
    assert s.read(lambda db: current_calendar(db)).version == "tianhe-2027-v1"
    assert s.read(lambda db: cases.rebuild_case(db, cid, current_calendar(db), AT)) == {}
    s.write(lambda db: db.execute("UPDATE cases SET clocks = json_set(clocks, '$.decide.duration', 99) WHERE id = ?",
                                  [cid]))
    assert "clocks" in s.read(lambda db: cases.rebuild_case(db, cid, current_calendar(db), AT))  # facts still count
