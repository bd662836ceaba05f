"""Group commit never acknowledges a write that was rolled back (DESIGN.md §4: one writer, group commit).

A trigger's ``RAISE(ROLLBACK)`` ends the whole transaction, not only the job's SAVEPOINT, so it is
the real SQLite way to make one job destroy the group's transaction (as disk full or an I/O error
would). The group is made to form deterministically: a first job holds the writer until every other
job is queued, so they are drained together into one group.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from server.store.db import Store


def _probe_table(db: Database) -> None:
    db.execute("CREATE TABLE probe (name TEXT PRIMARY KEY)")
    db.execute("CREATE TABLE probe_log (name TEXT)")
    db.execute(
        "CREATE TRIGGER probe_refuses_poison BEFORE INSERT ON probe WHEN NEW.name LIKE 'poison%'"
        " BEGIN SELECT RAISE(ROLLBACK, 'poisoned write'); END"
    )


def _insert(name: str) -> Any:
    def fn(db: Database) -> str:
        db.execute("INSERT INTO probe (name) VALUES (?)", [name])
        return name

    return fn


def _held_group(store: Store, fns: list[Any]) -> list[Future[Any]]:
    """Queue ``fns`` while the writer is held by a first job, so they run as one group."""
    started, release = threading.Event(), threading.Event()

    def hold(db: Database) -> None:
        started.set()
        assert release.wait(10)

    first = store.submit(hold)
    assert started.wait(10)
    futures = [store.submit(fn) for fn in fns]
    release.set()
    first.result(timeout=10)
    for f in futures:
        f.exception(timeout=10)  # wait for every outcome
    return futures


def _names_on_disk(path: Path) -> set[str]:
    conn = sqlite3.connect(str(path))
    try:
        return {r[0] for r in conn.execute("SELECT name FROM probe")}
    finally:
        conn.close()


def test_a_job_that_destroys_the_transaction_fails_alone_and_its_neighbours_really_commit(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    with Store(path).open(migrate=False) as store:
        store.write(_probe_table)
        names = ["a1", "a2", "a3", "poison", "b1", "b2"]
        futures = _held_group(store, [_insert(n) for n in names])
    reported = {n for n, f in zip(names, futures, strict=True) if f.exception() is None}
    failed = {n for n, f in zip(names, futures, strict=True) if f.exception() is not None}
    assert failed == {"poison"}
    assert "poisoned write" in str(futures[3].exception())
    # reopened from disk: everything reported committed is there, the refused write is not
    assert _names_on_disk(path) == reported == {"a1", "a2", "a3", "b1", "b2"}


def test_a_job_that_swallows_the_lost_transaction_is_not_reported_committed(tmp_path: Path) -> None:
    path = tmp_path / "node.db"

    def swallow(db: Database) -> str:
        try:
            db.execute("INSERT INTO probe (name) VALUES ('poison-swallowed')")
        except sqlite3.IntegrityError:
            pass  # a careless write function: the transaction is gone, but it carries on
        return "swallowed"

    with Store(path).open(migrate=False) as store:
        store.write(_probe_table)
        futures = _held_group(store, [_insert("c1"), swallow, _insert("c2")])
    assert futures[0].result() == "c1" and futures[2].result() == "c2"
    assert futures[1].exception() is not None
    assert _names_on_disk(path) == {"c1", "c2"}


def test_an_ordinary_error_is_undone_by_its_savepoint_and_the_group_commits_once(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    runs: list[str] = []

    def counted(name: str) -> Any:
        def fn(db: Database) -> str:
            runs.append(name)
            return str(_insert(name)(db))

        return fn

    def duplicate(db: Database) -> None:
        db.execute("INSERT INTO probe (name) VALUES ('d1')")  # d1 already written by the first job

    with Store(path).open(migrate=False) as store:
        store.write(_probe_table)
        futures = _held_group(store, [counted("d1"), duplicate, counted("d2")])
    assert isinstance(futures[1].exception(), sqlite3.IntegrityError)
    assert runs == ["d1", "d2"]  # nothing was rerun: the transaction survived
    assert _names_on_disk(path) == {"d1", "d2"}


def test_every_earlier_job_is_rerun_alone_and_its_own_failure_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    attempts: list[int] = []

    def fails_on_rerun(db: Database) -> str:
        attempts.append(1)
        if len(attempts) > 1:
            raise RuntimeError("second run refused")
        return str(_insert("e1")(db))

    with Store(path).open(migrate=False) as store:
        store.write(_probe_table)
        futures = _held_group(store, [fails_on_rerun, _insert("e2"), _insert("poison")])
    assert len(attempts) == 2
    with pytest.raises(RuntimeError, match="second run refused"):
        futures[0].result()
    assert futures[1].result() == "e2"
    assert _names_on_disk(path) == {"e2"}
