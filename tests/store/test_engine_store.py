"""The case engine on a real SQLite file: append-only events, fold == cache, conflicts, timers."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.config import Settings
from server.domain.engine import Draft, RuleViolation
from server.domain.ids import CHINA_TZ, uuid7
from server.domain.roles import Principal, Role
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.kinds_for_tests import TEST_PERMIT


def principal(store: Store, username: str) -> Principal:
    user = store.read(lambda db: get_user_by_name(db, username))
    assert user is not None
    return user.principal()


def draft(p: Principal | None, transition: str, at: datetime, **payload: object) -> Draft:
    return Draft(transition=transition, payload=payload, principal=p, node_time=at, event_id=uuid7())


def new_case(store: Store, p: Principal, at: datetime) -> str:
    def create(db):  # type: ignore[no-untyped-def]
        view, _ = cases.create_case(db, TEST_PERMIT, draft(p, "submit", at, title="测试"), org_path=p.org_path,
                                    node_id="n", calendar=current_calendar(db))
        return view.id

    return store.write(create)


def step(store: Store, case_id: str, d: Draft) -> cases.TransitionResult:
    return store.write(lambda db: cases.transition(db, case_id, d, node_id="n", calendar=current_calendar(db)))


@pytest.fixture
def s(settings: Settings):  # type: ignore[no-untyped-def]
    with Store(settings.db_path) as store:
        yield store


AT = datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ)


def test_case_walks_its_lifecycle_and_cache_equals_fold(s: Store) -> None:
    clerk, handler, admin = principal(s, "clerk"), principal(s, "handler"), principal(s, "admin")
    cid = new_case(s, clerk, AT)
    step(s, cid, draft(clerk, "accept", AT + timedelta(hours=1)))
    step(s, cid, draft(handler, "pause", AT + timedelta(days=1)))
    step(s, cid, draft(handler, "resume", AT + timedelta(days=3)))
    step(s, cid, draft(admin, "extend", AT + timedelta(days=3), days=3, reason="需现场核查"))
    step(s, cid, draft(handler, "handle", AT + timedelta(days=4)))
    step(s, cid, draft(admin, "close", AT + timedelta(days=5)))
    row = s.read(lambda db: cases.case_row(db, cid))
    assert row is not None and row["state"] == "closed" and row["version"] == 7
    assert s.read(lambda db: cases.rebuild_case(db, cid, current_calendar(db), AT)) == {}
    clock = row["clocks"]["decide"]
    assert clock["status"] == "stopped" and "延长" in clock["explanation"]


def test_handler_can_never_close_their_own_case(s: Store) -> None:
    clerk, handler = principal(s, "clerk"), principal(s, "handler")
    cid = new_case(s, clerk, AT)
    step(s, cid, draft(clerk, "accept", AT))
    step(s, cid, draft(handler, "handle", AT))
    with pytest.raises(RuleViolation) as err:
        step(s, cid, draft(handler, "close", AT))
    assert err.value.code == "invariant"
    assert s.read(lambda db: cases.case_row(db, cid))["state"] == "handled"  # type: ignore[index]


@pytest.mark.parametrize(
    ("username", "transition", "code"),
    [
        ("grid1", "accept", "role_not_allowed"),
        ("handler", "accept", "role_not_allowed"),
        ("clerk", "handle", "role_not_allowed"),
        ("clerk", "close", "role_not_allowed"),
        ("clerk", "deem", "system_only"),
        ("handler", "resume", "wrong_state"),
        ("clerk", "fly", "unknown_transition"),
        ("clerk", "reject", "missing_field"),
    ],
)
def test_transitions_are_checked_and_nothing_is_written(s: Store, username: str, transition: str, code: str) -> None:
    cid = new_case(s, principal(s, "clerk"), AT)
    before = s.query("SELECT COUNT(*) AS n FROM audit_log")[0]["n"]
    with pytest.raises(RuleViolation) as err:
        step(s, cid, draft(principal(s, username), transition, AT))
    assert err.value.code == code
    assert s.query("SELECT COUNT(*) AS n FROM audit_log")[0]["n"] == before
    assert s.query("SELECT COUNT(*) AS n FROM case_events WHERE case_id = ?", [cid])[0]["n"] == 1


def test_guard_rejects_bad_extension(s: Store) -> None:
    clerk, admin = principal(s, "clerk"), principal(s, "admin")
    cid = new_case(s, clerk, AT)
    step(s, cid, draft(clerk, "accept", AT))
    with pytest.raises(RuleViolation) as err:
        step(s, cid, draft(admin, "extend", AT, days=99, reason="x"))
    assert err.value.code == "guard_failed"


def test_community_tier_may_receive_but_not_accept(s: Store) -> None:
    worker = principal(s, "community1")
    cid = new_case(s, worker, AT)  # 代办: a community station receives on the street's behalf
    with pytest.raises(RuleViolation) as err:
        step(s, cid, draft(worker, "accept", AT))
    assert err.value.kind == "forbidden"


def test_out_of_scope_principal_is_refused(s: Store) -> None:
    clerk = principal(s, "clerk")
    cid = new_case(s, clerk, AT)
    outsider = Principal("u", "x", Role.WINDOW_CLERK, "440106099000", "440106/440106099000")
    with pytest.raises(RuleViolation) as err:
        step(s, cid, draft(outsider, "accept", AT))
    assert err.value.code == "out_of_scope"


def test_concurrent_transitions_from_same_state_become_a_conflict_record(s: Store) -> None:
    clerk, admin = principal(s, "clerk"), principal(s, "admin")
    cid = new_case(s, clerk, AT)
    first = Draft("accept", {}, clerk, AT, uuid7(), base_version=1)
    second = Draft("reject", {"reason": "材料不齐"}, clerk, AT, uuid7(), base_version=1)
    assert step(s, cid, first).conflict_id is None
    result = step(s, cid, second)
    assert result.conflict_id is not None
    rows = s.query("SELECT * FROM case_conflicts WHERE case_id = ?", [cid])
    assert len(rows) == 1 and json.loads(rows[0]["event"])["transition"] == "reject"
    assert s.read(lambda db: cases.case_row(db, cid))["state"] == "accepted"  # type: ignore[index]
    del admin


def test_same_event_id_twice_is_applied_once(s: Store) -> None:
    clerk = principal(s, "clerk")
    cid = new_case(s, clerk, AT)
    d = draft(clerk, "accept", AT)
    step(s, cid, d)
    step(s, cid, d)
    assert s.query("SELECT COUNT(*) AS n FROM case_events WHERE case_id = ?", [cid])[0]["n"] == 2


def test_timer_makes_the_system_transition_when_the_clock_runs_out(s: Store) -> None:
    clerk = principal(s, "clerk")
    cid = new_case(s, clerk, AT)  # Monday 2026-09-28; 5 working days skip the National Day holiday
    early = s.write(lambda db: cases.fire_timers(db, current_calendar(db), AT + timedelta(days=5), "n"))
    assert early == 0
    late = s.write(lambda db: cases.fire_timers(db, current_calendar(db), AT + timedelta(days=30), "n"))
    assert late == 1
    events = s.query("SELECT transition, actor, role FROM case_events WHERE case_id = ? ORDER BY seq", [cid])
    assert events[-1] == {"transition": "deem", "actor": "system", "role": "system"}


def test_events_are_append_only_in_the_database(s: Store) -> None:
    cid = new_case(s, principal(s, "clerk"), AT)
    conn = sqlite3.connect(s.path)
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("UPDATE case_events SET to_state = 'closed' WHERE case_id = ?", [cid])
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("DELETE FROM case_events WHERE case_id = ?", [cid])
    conn.close()


_STEPS = st.lists(
    st.sampled_from(
        [("clerk", "accept"), ("handler", "pause"), ("handler", "resume"), ("admin", "handle"),
         ("admin", "close"), ("clerk", "reject"), ("admin", "extend"), ("handler", "handle")]
    ),
    max_size=8,
)


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS)
def test_every_case_rebuilt_from_the_log_equals_its_row(s: Store, steps: list[tuple[str, str]]) -> None:
    cid = new_case(s, principal(s, "clerk"), AT)
    at = AT
    for username, transition in steps:
        at += timedelta(hours=5)
        payload = {"reason": "理由", "days": 2} if transition in ("reject", "extend") else {}
        try:
            step(s, cid, draft(principal(s, username), transition, at, **payload))
        except RuleViolation:
            pass
    for row in s.query("SELECT id FROM cases"):
        assert s.read(lambda db, c=row["id"]: cases.rebuild_case(db, c, current_calendar(db), at)) == {}


def test_working_hour_clocks_use_the_office_hours_of_the_case_unit(s: Store) -> None:
    from server.domain.clocks import ClockSpec, ClockUnit
    from server.domain.engine import CREATE, CaseKind, ClockEffect, Transition
    from server.domain.kinds import register

    kind = register(CaseKind(
        name="test_hours", label_zh="工作时测试", states={"open": "处理中"},
        clocks={"fix": ClockSpec("fix", ClockUnit.WORKING_HOUR, 2, "处置时限")},
        transitions={"open": Transition("open", "open", frozenset({CREATE}), frozenset({Role.WINDOW_CLERK}),
                                        "上报", clocks=(ClockEffect("fix", "start"),))},
    ))
    clerk = principal(s, "clerk")
    street = clerk.org_path.split("/")[-1]
    s.write(lambda db: db.execute(
        "UPDATE org_units SET data = json_set(data, '$.office_hours', json(?)) WHERE code = ?",
        ['[["09:00", "12:00"]]', street]))
    at = datetime(2026, 11, 2, 11, 0, tzinfo=CHINA_TZ)  # Monday 11:00; one office hour left today

    def create(db):  # type: ignore[no-untyped-def]
        d = Draft("open", {}, clerk, at, uuid7())
        return cases.create_case(db, kind, d, org_path=clerk.org_path, node_id="n", calendar=current_calendar(db))[0]

    view = s.write(create)
    due = s.read(lambda db: cases.case_row(db, view.id))["clocks"]["fix"]["due_at"]  # type: ignore[index]
    assert due.startswith("2026-11-03T10:00")  # 11-12 Monday, then 09-10 Tuesday


def test_a_cancelled_write_never_kills_the_writer(s: Store) -> None:
    import asyncio
    import threading

    gate, running = threading.Event(), threading.Event()

    def block(db):  # type: ignore[no-untyped-def]
        running.set()
        return gate.wait(5)

    blocker = s.submit(block)  # occupies the writer, so the next write waits in the queue
    assert running.wait(5)

    async def cancelled() -> None:
        task = asyncio.ensure_future(s.awrite(lambda db: db.execute("INSERT INTO meta VALUES ('x', 'y')")))
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(cancelled())
    gate.set()
    blocker.result(timeout=5)
    assert s.write(lambda db: 42) == 42  # the writer is still alive
    assert s.query("SELECT COUNT(*) AS n FROM meta WHERE key = 'x'")[0]["n"] == 0  # cancelled before it ran


def test_a_client_cannot_move_a_case_through_reserved_payload_fields(s: Store) -> None:
    clerk = principal(s, "clerk")
    cid = new_case(s, clerk, AT)
    with pytest.raises(RuleViolation) as err:
        step(s, cid, draft(clerk, "accept", AT, _org_path="440106/440106001000"))
    assert err.value.code == "reserved_field" and err.value.field == "payload._org_path"
    assert s.read(lambda db: cases.case_row(db, cid))["org_path"] == clerk.org_path  # type: ignore[index]
