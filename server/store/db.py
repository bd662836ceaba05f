"""SQLite storage with one writer and many readers (DESIGN.md §4).

All writes go through ``Store.write(fn)``: ``fn`` receives the writer's
``sqlite_utils.Database`` and runs inside a transaction on the single writer thread.
The writer drains its queue and commits several functions in one transaction
(each in its own SAVEPOINT, so one failure never undoes its neighbours): group commit
keeps ingest fast without giving up "a domain write, its audit entry and its
change-log row commit together". A failure that ends the whole transaction reruns
its neighbours alone (``_run_group``), so no caller is told "committed" for a write
that was rolled back. Write functions must therefore touch nothing but the database.
Reads use per-thread connections of their own.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

T = TypeVar("T")
log = logging.getLogger("streetnode.store")

_MAX_GROUP = 64


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves) with our pragmas."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class _Job:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Database], Any]):
        self.fn = fn
        self.future: Future[Any] = Future()


class Store:
    """The node's database. ``open()`` applies migrations and starts the writer thread."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._writer_db: Database | None = None
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------
    def open(self, migrate: bool = True) -> Store:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_db = Database(connect(self.path))
        if migrate:
            from server.store.schema import apply_migrations

            apply_migrations(self._writer_db)
        self._thread = threading.Thread(target=self._run, name="streetnode-writer", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        if self._writer_db is not None:
            self._writer_db.conn.close()
            self._writer_db = None
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self.open() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------
    def submit(self, fn: Callable[[Database], T]) -> Future[T]:
        if self._thread is None:
            raise RuntimeError("store is not open")
        job = _Job(fn)
        self._queue.put(job)
        return job.future

    def write(self, fn: Callable[[Database], T]) -> T:
        """Run ``fn(db)`` in one transaction on the writer thread and return its result."""
        if threading.current_thread() is self._thread:
            assert self._writer_db is not None
            return fn(self._writer_db)  # nested call from inside a write function
        return self.submit(fn).result()

    async def awrite(self, fn: Callable[[Database], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def _run(self) -> None:
        db = self._writer_db
        assert db is not None
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            while len(jobs) < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            # A job whose caller already gave up (request cancelled before its write began) is
            # skipped: nothing was accepted. Once running it can no longer be cancelled, so an
            # accepted write always commits and a retry sees it as a duplicate.
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            try:
                self._run_group(db, jobs)
            except BaseException as exc:  # pragma: no cover - keep the single writer alive
                log.exception("writer group failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    @staticmethod
    def _run_group(db: Database, jobs: list[_Job]) -> None:
        """Commit ``jobs`` together; a job that destroys the transaction never takes others with it.

        A failure that SQLite confines to the job (a constraint, a Python error) is undone by the
        job's SAVEPOINT and the group goes on. A failure that ends the whole transaction (disk full,
        I/O error, a trigger's ``RAISE(ROLLBACK)``) also rolls back the jobs that ran before it in
        this group: their results must not be reported, so each of them is run again alone, in a
        transaction of its own; the jobs after the culprit form a new group. A job is reported
        committed only after the COMMIT that contains its writes has succeeded.
        """
        pending = jobs
        while pending:
            pending = Store._run_batch(db, pending)

    @staticmethod
    def _run_batch(db: Database, jobs: list[_Job]) -> list[_Job]:
        """Run ``jobs`` in one transaction; returns the jobs still to run (after a lost transaction)."""
        conn = db.conn
        done: list[tuple[_Job, bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:  # pragma: no cover - disk gone, database locked for 10 s
            for job in jobs:
                job.future.set_exception(exc)
            return []
        for i, job in enumerate(jobs):
            sp = f"job_{i}"
            conn.execute(f"SAVEPOINT {sp}")
            try:
                value = job.fn(db)
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {sp}")
                    conn.execute(f"RELEASE SAVEPOINT {sp}")
                    done.append((job, False, exc))
                    continue
                Store._transaction_lost(db, done, culprit=(job, exc))
                return jobs[i + 1:]
            if not conn.in_transaction:  # the job swallowed the error that ended the transaction
                lost = RuntimeError("写入过程中事务被数据库终止，本次写入未生效")
                Store._transaction_lost(db, done, culprit=(job, lost))
                return jobs[i + 1:]
            conn.execute(f"RELEASE SAVEPOINT {sp}")
            done.append((job, True, value))
        try:
            conn.execute("COMMIT")
        except BaseException as exc:  # pragma: no cover - I/O error at commit
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job, _ok, _v in done:
                job.future.set_exception(exc)
            return []
        for job, ok, value in done:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        return []

    @staticmethod
    def _transaction_lost(db: Database, done: list[tuple[_Job, bool, Any]],
                          culprit: tuple[_Job, BaseException]) -> None:
        """The transaction is gone: fail the culprit, rerun alone each earlier job that had succeeded."""
        if db.conn.in_transaction:  # pragma: no cover - defensive: never leave a half transaction open
            db.conn.execute("ROLLBACK")
        job, exc = culprit
        job.future.set_exception(exc)
        for earlier, ok, value in done:
            if ok:
                Store._run_alone(db, earlier)
            else:  # it failed inside its own savepoint: that failure stands
                earlier.future.set_exception(value)

    @staticmethod
    def _run_alone(db: Database, job: _Job) -> None:
        """One job in its own transaction (write functions touch only the database, so a rerun is safe)."""
        conn = db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            value = job.fn(db)
            if not conn.in_transaction:
                raise RuntimeError("写入过程中事务被数据库终止，本次写入未生效")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            job.future.set_exception(exc)
        else:
            job.future.set_result(value)

    # -- reads -----------------------------------------------------------
    def reader(self) -> Database:
        """This thread's read connection."""
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            with self._readers_lock:
                self._readers.append(conn)
            db = Database(conn)
            self._local.db = db
        return db

    def read(self, fn: Callable[[Database], T]) -> T:
        return fn(self.reader())

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.reader().execute(sql, params).fetchall()]

    # -- maintenance -----------------------------------------------------
    def backup_to(self, target: Path) -> None:
        """Online backup (sqlite3 backup API) that readers and the writer survive."""
        target.parent.mkdir(parents=True, exist_ok=True)
        src = connect(self.path)
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
