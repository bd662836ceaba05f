"""The street side of leg B: one sync session as named, persisted stages (after morango).

    initializing → handshake → push → pull → apply → completed

The session and its last completed stage live in ``sync_sessions``; a run after a crash (kill -9, power
cut, network gone) resumes the unfinished session with the same session id (so both ends' replication
logs continue one history) and reports the stage it stopped after. Every stage is idempotent, and
progress inside a stage is held by checkpoints written only after the far side's durable apply:

- handshake: the hub counter-signs the audit head, and both ends' replication logs decide where the
  up-replication resumes (``sync.checkpoints.common_seq``, never beyond the hub's ``acked_through_seq``);
- push: batches of the change log, the next one built while the previous is in flight; the checkpoint
  follows the hub's contiguous ack, so a cut connection only means those rows are sent again;
- pull: down-packages, verified, into the inbox; apply: strictly in order, each in one transaction.

``run_sync`` is what the nightly job, ``streetnode sync`` and the tests call.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from schemas.sync_leg_b import BatchAck, BeginReply, PullReply
from server.config import Settings
from server.domain.ids import now_china, uuid7
from server.store import audit, changes
from server.store.db import Store
from server.store.repos_sqlite import repos_for
from server.store.seed import set_meta
from sync import checkpoints, down_apply, up_batches
from sync.countersigs import store_countersig
from sync.packages import PackageRefused, hub_owned_entities, record_conflict
from sync.pairing import StreetSide, street_side
from sync.transport import HubClient, HubRefused

__all__ = ["STAGES", "SyncBusy", "SyncNotPaired", "SyncSummary", "run_sync", "up_replication_id"]

_RUN_LOCK = threading.Lock()
STAGES = ("initializing", "handshake", "push", "pull", "apply", "completed")
Progress = Callable[[str, int, int], None]  # (stage, done, total)


class SyncNotPaired(Exception):
    """The street has not pinned a hub yet (``streetnode sync pair``)."""


class SyncBusy(Exception):
    """Another live process is running a session on this node."""


@dataclass
class SyncSummary:
    session_id: str = ""
    trigger: str = "manual"
    resumed_from: str | None = None
    stage: str = "initializing"
    rows_sent: int = 0
    batches: int = 0
    acked_through_seq: int = 0
    high_seq: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    packages_received: int = 0
    packages_applied: int = 0
    package_errors: list[str] = field(default_factory=list)
    countersigned_seq: int | None = None
    hub_epoch: str = ""
    clock_offset_ms: int = 0
    clock_suspect: bool = False
    seconds: float = 0.0


def up_replication_id(side: StreetSide) -> str:
    return checkpoints.replication_id("up", side.node_id, side.pin.hub_id, side.key.key_id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Session:
    def __init__(self, store: Store, trigger: str, now: Callable[[], datetime]):
        self.store, self.now = store, now
        row = store.query("SELECT session_id, stage, stats FROM sync_sessions WHERE finished_at IS NULL"
                          " ORDER BY started_at DESC LIMIT 1")
        self.summary = SyncSummary(trigger=trigger)
        if row:
            stats = json.loads(row[0]["stats"])
            owner = int(stats.get("owner_pid", 0))
            if owner and owner != os.getpid() and _pid_alive(owner):
                raise SyncBusy(f"另一同步进程（{owner}）正在进行")
            self.session_id, self.stage = row[0]["session_id"], row[0]["stage"]
            self.summary.resumed_from = self.stage
        else:
            self.session_id, self.stage = uuid7(), "initializing"
            at = now().isoformat()
            store.write(lambda db: db.execute(
                "INSERT INTO sync_sessions (session_id, trigger, stage, started_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                [self.session_id, trigger, "initializing", at, at]))
        self.summary.session_id = self.session_id
        self.save()

    def save(self, stage: str | None = None, error: str | None = None, db: Database | None = None) -> None:
        self.stage = stage or self.stage
        self.summary.stage = self.stage
        stats = json.dumps({**asdict(self.summary), "owner_pid": os.getpid()}, ensure_ascii=False)
        done = self.now().isoformat() if self.stage == "completed" else None
        args = [self.stage, self.now().isoformat(), stats, error, done, self.session_id]
        sql = ("UPDATE sync_sessions SET stage = ?, updated_at = ?, stats = ?, error = ?,"
               " finished_at = COALESCE(?, finished_at) WHERE session_id = ?")
        if db is not None:
            db.execute(sql, args)
        else:
            self.store.write(lambda d: d.execute(sql, args))


class Replicator:
    def __init__(self, store: Store, settings: Settings, client: HubClient, side: StreetSide, *,
                 trigger: str = "manual", now: Callable[[], datetime] = now_china, progress: Progress | None = None,
                 batch_rows: int = up_batches.MAX_BATCH_ROWS, batch_bytes: int = up_batches.MAX_BATCH_BYTES):
        self.store, self.settings, self.client, self.side = store, settings, client, side
        self.now, self.progress = now, progress or (lambda stage, done, total: None)
        self.batch_rows, self.batch_bytes = batch_rows, batch_bytes
        self.rep_id = up_replication_id(side)
        self.session = _Session(store, trigger, now)
        self.summary = self.session.summary
        self.start_seq = 0

    def run(self) -> SyncSummary:
        started = self.now()
        # Every stage runs, also on a resumed session: each is idempotent and its progress is held by
        # checkpoints, so a stage finished before the crash costs one request. The handshake must be redone
        # anyway — the hub may have been restored from a backup while this node was down.
        for step in (self.handshake, self.push, self.pull, self.apply):
            step()
        self.summary.seconds = round((self.now() - started).total_seconds(), 3)
        at = self.now().isoformat()

        def finish(db: Database) -> None:
            set_meta(db, "last_sync", at)
            self.session.save("completed", db=db)

        self.store.write(finish)
        return self.summary

    # -- stages ----------------------------------------------------------------------------------------
    def handshake(self) -> None:
        side = self.side

        def read(db: Database) -> dict[str, Any]:
            ck = checkpoints.load(db, self.rep_id)
            seq, head_hash = audit.head(db)
            return {"type": "up_begin", "node_id": side.node_id, "hub_id": side.pin.hub_id, "epoch": side.epoch,
                    "replication_id": self.rep_id, "session_id": self.session.session_id,
                    "checkpoint": ck.as_wire() if ck else None, "high_seq": changes.high_seq(db),
                    "audit_head": {"seq": seq, "hash": head_hash},
                    "down_applied": down_apply.down_applied(db, side.node_id), "created_at": self.now().isoformat()}

        req = self.store.read(read)
        reply = _parse(BeginReply, self.client.call("/hub/v1/up/begin", "up_begin", req))
        common = checkpoints.common_seq(req["checkpoint"], reply.checkpoint.model_dump() if reply.checkpoint else None)
        self.start_seq = min(common, reply.acked_through_seq)
        s = self.summary
        s.hub_epoch, s.clock_offset_ms, s.clock_suspect = reply.hub_epoch, reply.clock_offset_ms, reply.clock_suspect
        s.high_seq, s.acked_through_seq = req["high_seq"], self.start_seq

        def record(db: Database) -> None:
            store_countersig(db, side, reply.countersig.model_dump(), self.now())
            if reply.acked_through_seq > changes.high_seq(db):
                # This node was restored from a backup older than what the hub holds: new rows must never
                # reuse a seq the hub already acknowledged for other content.
                repos_for(db).changes.raise_floor(reply.acked_through_seq)
            local = checkpoints.load(db, self.rep_id)
            if local is None:
                _mark_baseline(db)
            if local is None or local.source_last_seq != self.start_seq or local.peer_epoch != reply.hub_epoch:
                checkpoints.save(db, self.rep_id, self.session.session_id, self.start_seq, peer_epoch=reply.hub_epoch)
            self.session.save("handshake" if self.session.stage == "initializing" else None, db=db)

        self.store.write(record)
        s.countersigned_seq = reply.countersig.audit_seq

    def push(self) -> None:
        cursor = self.start_seq
        total = self.store.read(lambda db: up_batches.pending_rows(db, cursor))
        done = 0
        cache: dict[str, str | None] = {}
        self.progress("push", 0, total)

        def build(after: int) -> up_batches.BuiltBatch | None:
            return self.store.read(lambda db: up_batches.build_batch(
                db, self.side, after, session_id=self.session.session_id, replication_id=self.rep_id,
                now=self.now(), max_rows=self.batch_rows, max_bytes=self.batch_bytes, table_cache=cache))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-send") as pool:
            current = build(cursor)
            while current is not None:
                inflight: Future[dict[str, Any]] = pool.submit(self.client.call, "/hub/v1/up/batch", "up_batch",
                                                               current.batch)
                upcoming = build(current.to_seq)  # built while the hub applies the previous batch
                ack = _parse(BatchAck, inflight.result())
                self._acked(current, ack)
                done += len(current.batch["rows"])
                self.progress("push", min(done, total), total)
                if ack.acked_through_seq < current.to_seq:  # the hub lacks an earlier range: resend from there
                    upcoming = build(ack.acked_through_seq)
                current = upcoming
        self.store.write(lambda db: self.session.save("push", db=db))

    def _acked(self, built: up_batches.BuiltBatch, ack: BatchAck) -> None:
        s = self.summary
        s.batches += 1
        s.rows_sent += len(built.batch["rows"])
        for k, v in ack.counts.items():
            s.counts[k] = s.counts.get(k, 0) + v
        s.acked_through_seq = ack.acked_through_seq

        def write(db: Database) -> None:
            at = self.now()
            for c in built.local_conflicts:
                record_conflict(db, "hub_owned_local", self.side.node_id, c["entity"], c["entity_id"], c["node_seq"],
                                {"message": "本节点自行修改了区级发布的数据，已报区级枢纽"}, at,
                                conflict_id=f"hubowned-{c['node_seq']}")
            # The checkpoint follows the hub's durable, contiguous ack, never what was merely sent.
            checkpoints.save(db, self.rep_id, self.session.session_id, ack.acked_through_seq,
                             peer_epoch=ack.hub_epoch, written=int(ack.counts.get("created", 0)))
            self.session.save(db=db)

        self.store.write(write)

    def pull(self) -> None:
        side = self.side
        for _ in range(10_000):  # bounded: at most 100 packages per request
            after = self.store.read(lambda db: {s: down_apply.last_received(db, s)
                                                for s in down_apply.streams_of(side.node_id)})
            reply = _parse(PullReply, self.client.call("/hub/v1/down/pull", "down_pull", {
                "type": "down_pull", "node_id": side.node_id, "hub_id": side.pin.hub_id, "after": after,
                "limit": 100}))
            if reply.packages:
                packages = reply.packages
                try:
                    n = self.store.write(lambda db, pk=packages: down_apply.store_packages(  # type: ignore[misc]
                        db, side, pk, self.now()))
                except PackageRefused as exc:
                    raise HubRefused(exc.message_zh, exc.message_en, exc.code) from exc
                self.summary.packages_received += n
            if not reply.has_more or not reply.packages:
                break
        self.store.write(lambda db: self.session.save("pull", db=db))

    def apply(self) -> None:
        def applied(result: dict[str, Any]) -> None:
            self.summary.packages_applied += 1
            self.progress("apply", self.summary.packages_applied, self.summary.packages_received)

        _n, errors = down_apply.apply_all(self.store, self.side, self.session.session_id, self.now, applied)
        self.summary.package_errors += errors
        self.store.write(lambda db: self.session.save("apply", db=db))


def _mark_baseline(db: Database) -> None:
    """Hub-owned records a node holds before its first session came with it (the shipped catalogue, the
    org tree of ``streetnode init``): they travel as echoes, not as records this street authored."""
    owned = sorted(hub_owned_entities())
    if owned:
        marks = ", ".join("?" for _ in owned)
        db.execute(f"INSERT OR IGNORE INTO sync_hub_owned (entity, entity_id, stream, seq) SELECT DISTINCT entity,"
                   f" entity_id, 'baseline', 0 FROM change_log WHERE entity IN ({marks})", owned)


def _parse(model: Any, obj: dict[str, Any]) -> Any:
    try:
        return model.model_validate({k: v for k, v in obj.items() if k != "request_sha256"})
    except ValidationError as exc:
        raise HubRefused("区级枢纽的答复格式错误", f"reply shape: {exc.errors()[0]['msg']}", "bad_reply") from None


def run_sync(store: Store, settings: Settings, *, client: HubClient | None = None, http_client: Any = None,
             trigger: str = "manual", now: Callable[[], datetime] = now_china, progress: Progress | None = None,
             batch_rows: int = up_batches.MAX_BATCH_ROWS, batch_bytes: int = up_batches.MAX_BATCH_BYTES) -> SyncSummary:
    """Run (or resume) one sync session with the pinned hub. Raises ``SyncNotPaired``, ``SyncBusy``,
    ``HubUnreachable`` or ``HubRefused``; the session then stays resumable."""
    if not _RUN_LOCK.acquire(blocking=False):  # the nightly job and an on-demand run in one process
        raise SyncBusy("本节点正在同步，请稍后再试")
    try:
        return _run_sync(store, settings, client=client, http_client=http_client, trigger=trigger, now=now,
                         progress=progress, batch_rows=batch_rows, batch_bytes=batch_bytes)
    finally:
        _RUN_LOCK.release()


def _run_sync(store: Store, settings: Settings, *, client: HubClient | None, http_client: Any, trigger: str,
              now: Callable[[], datetime], progress: Progress | None, batch_rows: int,
              batch_bytes: int) -> SyncSummary:
    side = store.read(lambda db: street_side(settings, db))
    if side is None:
        raise SyncNotPaired("本节点尚未与区级枢纽配对（streetnode sync pair）")
    own = client is None
    if client is None:
        if not side.pin.url:
            raise SyncNotPaired("未配置区级枢纽地址（hub_url）")
        client = HubClient(side.pin.url, side.key, side.node_id, side.pin.public_key, client=http_client)
    try:
        rep = Replicator(store, settings, client, side, trigger=trigger, now=now, progress=progress,
                         batch_rows=batch_rows, batch_bytes=batch_bytes)
        try:
            return rep.run()
        except Exception as exc:
            rep.session.save(error=str(exc)[:500])
            raise
    finally:
        if own:
            client.close()
