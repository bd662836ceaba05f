"""The storage seam's contract (server/store/repos.py), one test per promise, over every implementation.

Today the only implementation is SQLite; a PostgreSQL-backed city hub adds a ``Backend`` to
``BACKENDS`` and must pass this file unchanged. A backend runs a function of the repositories inside
one transaction (``run``), committed when it returns and rolled back when it raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from server.domain.calendar import WorkCalendar
from server.domain.engine import Draft, RuleViolation
from server.domain.ids import CHINA_TZ, uuid7
from server.domain.roles import Principal, Role
from server.store.repos import HubRecord, HubRow, Repositories
from tests.kinds_for_tests import TEST_PERMIT

T = TypeVar("T")
AT = datetime(2026, 11, 2, 9, 0, tzinfo=CHINA_TZ)
PATH = "/440100/440106/440106001"
CLERK = Principal(user_id="u-clerk", username="clerk", role=Role.WINDOW_CLERK, org_unit="440106001", org_path=PATH)


@dataclass
class Backend:
    run: Callable[[Callable[[Repositories], Any]], Any]
    calendar: WorkCalendar
    enrol_node: Callable[[str], None]  # a street node the hub knows (hub_nodes), for acknowledgements


def _sqlite_backend(tmp: Path) -> Iterator[Backend]:
    from server.domain.crypto import SigningKey
    from server.store.calendars import current_calendar
    from server.store.db import Store
    from server.store.repos_sqlite import repos_for
    from server.store.seed import init_node
    from sync.hub import enrol_node

    with Store(tmp / "contract.db") as store:
        store.write(lambda db: init_node(db, role="district", node_id="hub", org_unit="", demo=True))
        street = store.query("SELECT code FROM org_units WHERE kind = 'street_office' ORDER BY code LIMIT 1")[0]

        def run(fn: Callable[[Repositories], T]) -> T:
            return store.write(lambda db: fn(repos_for(db)))

        def enrol(node_id: str) -> None:
            key = SigningKey.generate().public_raw
            store.write(lambda db: enrol_node(db, node_id=node_id, org_unit=street["code"], public_key=key,
                                              enc_public_key=None, actor="admin", role="district_admin", now=AT))

        yield Backend(run=run, calendar=store.read(current_calendar), enrol_node=enrol)


BACKENDS = {"sqlite": _sqlite_backend}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from BACKENDS[request.param](tmp_path)


class Boom(Exception):
    pass


def _fails(fn: Callable[[Repositories], Any]) -> Callable[[Repositories], None]:
    def run(r: Repositories) -> None:
        fn(r)
        raise Boom

    return run


# --- audit log ---------------------------------------------------------------------------------------


def _entry(r: Repositories, n: int) -> int:
    return r.audit.append(actor="u", role="window_clerk", action="test.write", object_type="t", object_id=str(n),
                          after={"n": n}, detail={"n": n})


def test_audit_entries_form_a_chain_whose_head_is_counter_signable(backend: Backend) -> None:
    start, _ = backend.run(lambda r: r.audit.head())
    seqs = [backend.run(functools.partial(_entry, n=n)) for n in range(3)]
    assert seqs == [start + 1, start + 2, start + 3]
    head_seq, head_hash = backend.run(lambda r: r.audit.head())
    assert head_seq == seqs[-1] and backend.run(lambda r: r.audit.hash_at(head_seq)) == head_hash
    assert backend.run(lambda r: r.audit.hash_at(head_seq + 1)) is None
    status = backend.run(lambda r: r.audit.verify())
    assert status.ok and status.entries == head_seq and status.head_hash == head_hash


def test_a_rolled_back_transaction_leaves_no_audit_entry(backend: Backend) -> None:
    before = backend.run(lambda r: r.audit.head())
    with pytest.raises(Boom):
        backend.run(_fails(lambda r: _entry(r, 9)))
    assert backend.run(lambda r: r.audit.head()) == before


def test_held_entries_are_not_chained_and_become_one_envelope_entry(backend: Backend) -> None:
    def submit(r: Repositories) -> tuple[int, int, list[str]]:
        before, _ = r.audit.head()
        with r.audit.hold() as held:
            assert _entry(r, 1) == 0 and _entry(r, 2) == 0
            assert r.audit.head()[0] == before  # held, not chained
        seq = r.audit.append_envelope(held.entries, {"submission_id": "s1", "status": "created"}, actor="u",
                                      role="window_clerk", object_id="s1", org_path=PATH, device_id="d1",
                                      after={"payload_sha256": "x"})
        return before, seq, [e["action"] for e in held.entries]

    before, seq, actions = backend.run(submit)
    assert seq == before + 1 and actions == ["test.write", "test.write"]
    assert backend.run(lambda r: r.audit.verify()).ok
    plain = backend.run(lambda r: r.audit.append_envelope([], {"submission_id": "s2", "status": "stale_version"},
                                                          actor="u", role="r", object_id="s2", org_path=PATH,
                                                          device_id=None, after={}))
    assert plain == seq + 1 and backend.run(lambda r: r.audit.verify()).ok


# --- change log --------------------------------------------------------------------------------------


def _change(r: Repositories, entity_id: str) -> int:
    return r.changes.record("case", entity_id, PATH)


def test_change_log_hands_out_increasing_seqs_and_pages_them_in_order(backend: Backend) -> None:
    start = backend.run(lambda r: r.changes.high_seq())
    seqs = [backend.run(functools.partial(_change, entity_id=f"c{i}")) for i in range(5)]
    assert seqs == sorted(seqs) and seqs[0] > start and len(set(seqs)) == 5
    assert backend.run(lambda r: r.changes.high_seq()) == seqs[-1]
    page = backend.run(lambda r: r.changes.after(seqs[0], 3))
    assert [c.node_seq for c in page] == seqs[1:4]
    assert (page[0].entity, page[0].entity_id, page[0].op, page[0].org_path) == ("case", "c1", "put", PATH)
    deleted = backend.run(lambda r: r.changes.record("case", "c1", PATH, op="delete"))
    assert backend.run(lambda r: r.changes.after(deleted - 1, 10))[0].op == "delete"


def test_raising_the_floor_skips_seqs_a_hub_already_acknowledged(backend: Backend) -> None:
    high = backend.run(lambda r: r.changes.high_seq())
    backend.run(lambda r: r.changes.raise_floor(high + 100))
    assert backend.run(lambda r: r.changes.record("case", "after-restore")) == high + 101
    backend.run(lambda r: r.changes.raise_floor(5))  # lower than what exists: no effect
    assert backend.run(lambda r: r.changes.record("case", "next")) == high + 102


# --- hub records ---------------------------------------------------------------------------------------


def _row(seq: int, sha: str, entity_id: str = "c1", node: str = "street-a") -> HubRow:
    return HubRow(node, seq, "e1", "b1", "case", entity_id, "put", "record", PATH, "2026-11-02T09:00:00+08:00",
                  '{"state": "submitted"}', None, sha, "2026-11-02T09:01:00+08:00")


def _rec(entity_id: str, node: str, seq: int, state: str) -> HubRecord:
    return HubRecord("case", entity_id, node, "put", PATH, f'{{"state": "{state}"}}', None, seq, f"t{seq}")


def test_hub_keeps_the_first_copy_of_each_node_seq(backend: Backend) -> None:
    backend.run(lambda r: r.hub.add_rows([_row(1, "a"), _row(2, "b", "c2")]))
    backend.run(lambda r: r.hub.add_rows([_row(2, "changed", "c9"), _row(3, "c", "c3")]))
    assert backend.run(lambda r: r.hub.rows_between("street-a", 0, 3)) == {
        1: ("a", "case", "c1"), 2: ("b", "case", "c2"), 3: ("c", "case", "c3")}
    assert set(backend.run(lambda r: r.hub.rows_between("street-a", 1, 2))) == {2}
    assert backend.run(lambda r: r.hub.rows_between("street-b", 0, 3)) == {}


def test_hub_record_changes_only_for_its_owner_and_a_seq_not_older(backend: Backend) -> None:
    backend.run(lambda r: r.hub.upsert([_rec("c1", "street-a", 5, "submitted")]))
    backend.run(lambda r: r.hub.upsert([_rec("c1", "street-a", 4, "stale")]))  # older seq: ignored
    backend.run(lambda r: r.hub.upsert([_rec("c1", "street-b", 9, "hijack")]))  # another node: ignored
    got = backend.run(lambda r: r.hub.record("case", "c1"))
    assert got is not None and (got.node_id, got.node_seq, got.data) == ("street-a", 5, '{"state": "submitted"}')
    backend.run(lambda r: r.hub.upsert([_rec("c1", "street-a", 7, "accepted")]))
    got = backend.run(lambda r: r.hub.record("case", "c1"))
    assert got is not None and got.node_seq == 7 and "accepted" in (got.data or "")
    assert backend.run(lambda r: r.hub.record("case", "nobody")) is None


def test_hub_finds_ids_already_owned_by_another_node_in_long_lists(backend: Backend) -> None:
    mine = [_rec(f"a{i}", "street-a", i + 1, "x") for i in range(1200)]
    backend.run(lambda r: r.hub.upsert(mine + [_rec("b1", "street-b", 1, "x")]))
    asked = ["zz", "b1", *(f"a{i}" for i in range(0, 1200, 7))]
    owners = backend.run(lambda r: r.hub.owners_elsewhere("case", asked, "street-b"))
    assert owners == {f"a{i}": "street-a" for i in range(0, 1200, 7)}
    assert backend.run(lambda r: r.hub.owners_elsewhere("case", asked, "street-a")) == {"b1": "street-b"}


def test_hub_batches_and_conflicts_are_idempotent_and_acks_are_kept(backend: Backend) -> None:
    backend.enrol_node("street-a")
    for _ in range(2):
        backend.run(lambda r: r.hub.add_batch("batch-1", "street-a", "s1", 0, 3, 3, "t", "http"))
        backend.run(lambda r: r.hub.add_conflict("seq_reused", "street-a", "case", "c1", 2, {"why": "test"}, AT,
                                                 "conflict-1"))
    backend.run(lambda r: r.hub.set_acked("street-a", 3, "t"))
    assert backend.run(lambda r: r.hub.acked_through("street-a")) == 3
    assert backend.run(lambda r: r.hub.conflict("conflict-1")) == {
        "id": "conflict-1", "kind": "seq_reused", "node_id": "street-a", "entity": "case", "entity_id": "c1",
        "node_seq": 2, "detail": {"why": "test"}}
    assert backend.run(lambda r: r.hub.conflict("nothing")) is None


# --- event store ----------------------------------------------------------------------------------------


def _draft(transition: str, base_version: int | None = None, **payload: Any) -> Draft:
    return Draft(transition, payload, CLERK, AT, uuid7(), base_version=base_version)


def test_event_store_appends_folds_and_turns_a_stale_version_into_a_conflict(backend: Backend) -> None:
    cal = backend.calendar
    view, number = backend.run(lambda r: r.events.create_case(TEST_PERMIT, _draft("submit", title="许可"),
                                                              org_path=PATH, node_id="n1", calendar=cal))
    assert view.state == "submitted" and view.version == 1 and number
    accepted = backend.run(lambda r: r.events.transition(view.id, _draft("accept", 1), node_id="n1", calendar=cal))
    assert accepted.view is not None and accepted.view.state == "accepted" and accepted.conflict_id is None
    assert accepted.event is not None and accepted.event.origin_node == "n1"
    stale = backend.run(lambda r: r.events.transition(view.id, _draft("reject", 1, reason="迟到"), node_id="n1",
                                                      calendar=cal))
    assert stale.conflict_id and stale.event is None
    events = backend.run(lambda r: r.events.events(view.id))
    assert [e.transition for e in events] == ["submit", "accept"] and [e.seq for e in events] == [1, 2]
    kind, folded = backend.run(lambda r: r.events.view(view.id))
    assert kind.name == TEST_PERMIT.name and (folded.state, folded.version) == ("accepted", 2)
    row = backend.run(lambda r: r.events.case(view.id))
    assert row is not None and (row["state"], row["version"], row["number"]) == ("accepted", 2, number)


def test_event_store_refuses_unknown_cases_and_rolls_back_with_the_transaction(backend: Backend) -> None:
    cal = backend.calendar
    with pytest.raises(RuleViolation) as info:
        backend.run(lambda r: r.events.view("no-such-case"))
    assert info.value.kind == "not_found"
    assert backend.run(lambda r: r.events.case("no-such-case")) is None
    draft = _draft("submit", title="不会留下")
    with pytest.raises(Boom):
        backend.run(_fails(lambda r: r.events.create_case(TEST_PERMIT, draft, org_path=PATH, node_id="n1",
                                                          calendar=cal, case_id="rolled-back")))
    assert backend.run(lambda r: r.events.case("rolled-back")) is None
    assert backend.run(lambda r: r.events.events("rolled-back")) == []


def test_event_store_answers_a_replayed_event_id_and_refuses_a_reused_one(backend: Backend) -> None:
    cal = backend.calendar
    view, _ = backend.run(lambda r: r.events.create_case(TEST_PERMIT, _draft("submit", title="许可"),
                                                         org_path=PATH, node_id="n1", calendar=cal))
    other, _ = backend.run(lambda r: r.events.create_case(TEST_PERMIT, _draft("submit", title="另一件"),
                                                          org_path=PATH, node_id="n1", calendar=cal))
    accept = _draft("accept", 1)
    first = backend.run(lambda r: r.events.transition(view.id, accept, node_id="n1", calendar=cal))
    again = backend.run(lambda r: r.events.transition(view.id, accept, node_id="n1", calendar=cal))
    assert again.event is not None and first.event is not None and again.event.id == first.event.id
    assert again.view is not None and again.view.version == 2
    reused = Draft("reject", {"reason": "换了内容"}, CLERK, AT, accept.event_id)
    for case_id, draft in ((view.id, reused), (other.id, accept)):  # another act; another case
        with pytest.raises(RuleViolation) as info:
            backend.run(lambda r, c=case_id, d=draft: r.events.transition(c, d, node_id="n1", calendar=cal))
        assert info.value.code == "id_conflict"
    assert [e.transition for e in backend.run(lambda r: r.events.events(view.id))] == ["submit", "accept"]
    assert len(backend.run(lambda r: r.events.events(other.id))) == 1


def test_event_store_finds_child_cases_under_their_parent(backend: Backend) -> None:
    from server.domain.engine import PARENT
    from tests.store.test_case_platform_store import OPINION

    cal = backend.calendar
    parent, _ = backend.run(lambda r: r.events.create_case(TEST_PERMIT, _draft("submit", title="许可"),
                                                           org_path=PATH, node_id="n1", calendar=cal))
    kids = [backend.run(lambda r, q=q: r.events.create_case(
        OPINION, Draft("ask", {PARENT: parent.id, "question": q}, CLERK, AT, uuid7()), org_path=PATH, node_id="n1",
        calendar=cal))[0].id for q in ("通行", "噪声")]
    assert {c["id"] for c in backend.run(lambda r: r.events.children(parent.id))} == set(kids)
    assert [c["kind"] for c in backend.run(lambda r: r.events.children(parent.id, kind=OPINION.name))] == \
        [OPINION.name] * 2
    assert backend.run(lambda r: r.events.children(parent.id, kind="other")) == []
    assert backend.run(lambda r: r.events.children(kids[0])) == []
