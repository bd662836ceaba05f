"""``POST /sync/v1/outbox``: the one write path for envelopes from tablets and desks (sync.md §4.1–4.2).

Per item, in this order (a step that fails decides the item's result; one bad item never fails the
batch, and every rejected item is kept in ``quarantine``, never dropped):

1. ``check_item`` (no I/O): the device's signature on the raw JSON object, *before* parsing
   (``sync.envelopes.verify_envelope``); a revoked device → ``forbidden``; ``SubmissionEnvelope``;
   the envelope's device and user are the ones sending it; scope (``roles.can_see``).
2. ``store_batch`` (inside one ``Store.write``, one SAVEPOINT per item): ``INSERT … ON CONFLICT DO
   NOTHING`` into ``submissions`` — the database's ``UNIQUE(id)`` and ``UNIQUE(device_id,
   device_seq)`` decide ``duplicate`` (same payload hash: the original receipt) or ``id_conflict``
   (both bodies quarantined), not a check-then-insert race (kobotoolbox/kpi#5047); a stale
   ``supersedes`` → ``stale_version``; missing blobs → ``awaiting_blobs`` (kept, completed when the
   last blob arrives); then the kind's intake handler in the same transaction. A handler's
   ``invalid``/``forbidden`` rolls the item back to its savepoint: only the quarantine row remains.
3. Accepted items get a receipt signed with the node key over their ``change_log`` seq, and exactly
   one audit entry: the handler's own entries are held back (``audit.Held``) and folded into it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from schemas.envelope import SubmissionEnvelope
from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import DataKey, SigningKey
from server.domain.ids import uuid7
from server.domain.roles import Principal, can_see, path_within
from server.errors import field_errors_from_pydantic
from server.store import intake, users
from server.store.calendars import current_calendar
from server.store.repos import Repositories
from server.store.repos_sqlite import repos_for
from sync import devices
from sync.blobs import ALLOWED_MIME, BlobStore
from sync.envelopes import EnvelopeError, make_receipt, verify_envelope

__all__ = ["Checked", "OutboxServices", "check_item", "complete_awaiting", "store_batch"]

log = logging.getLogger("streetnode.sync")
OUTBOX_MAX_BYTES = 1024 * 1024  # sync.md §4.2: ≤ 1 MB of JSON per batch


@dataclass(frozen=True)
class OutboxServices:
    node_id: str
    node_key: SigningKey
    data_key: DataKey
    blobs: BlobStore
    max_attachment_bytes: int


@dataclass
class Checked:
    """One item after the checks that need no database: either an envelope or a rejection."""

    raw: Any
    submission_id: str
    envelope: SubmissionEnvelope | None = None
    status: str = ""  # "" = passed; else invalid | forbidden
    reason: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    device_seq: int | None = None  # only when the device's signature verified
    clock_suspect: bool = False


def _reject(c: Checked, status: str, reason: str, field_name: str, message: str) -> Checked:
    c.status, c.reason, c.errors = status, reason, [{"field": field_name, "message": message}]
    return c


def _utf8_safe(raw: Any) -> tuple[Any, bool]:
    """(``raw`` with any lone UTF-16 surrogate replaced by "?", whether it had one). Such a string cannot be
    hashed, stored or answered as UTF-8; left in, one bad item broke its whole batch with a 500."""
    text = json.dumps(raw, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.loads(text.encode("utf-8", "replace").decode("utf-8")), True
    return raw, False


def check_item(
    raw: Any, device: devices.Device, principal: Principal, now: datetime, max_attachment_bytes: int
) -> Checked:
    raw, garbled = _utf8_safe(raw)
    sent_id = raw.get("submission_id") if isinstance(raw, dict) else None
    c = Checked(raw=raw, submission_id=sent_id[:200] if isinstance(sent_id, str) else "")
    if garbled:
        return _reject(c, "invalid", "encoding", "envelope",
                       "提交内容含有无法编码的字符（孤立的代理字符），请在平板上重新保存后再上传")
    try:
        verify_envelope(raw, device.public_raw, expected_alg=device.alg)
    except EnvelopeError as exc:  # unknown alg, bad payload hash, bad signature, not JSON
        c.status, c.reason, c.errors = "invalid", exc.code, [exc.to_field_error()]
        return c
    seq = raw.get("device_seq")
    if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1:
        c.device_seq = seq
    if not device.active:  # sync.md §4.4: after revocation, quarantine — not rejection
        return _reject(c, "forbidden", "revoked_device", "device_id", "该设备已被停用，提交已隔离待核查")
    try:
        env = SubmissionEnvelope.model_validate(raw)
    except ValidationError as exc:
        c.status, c.reason = "invalid", "schema"
        c.errors = [{"field": e["field"] if e["field"] != "body" else "envelope", "message": e["message"]}
                    for e in field_errors_from_pydantic(exc)]
        return c
    c.envelope = env
    if env.device_id != device.id:
        return _reject(c, "invalid", "device_mismatch", "device_id", "信封中的设备编号与本设备不符")
    if env.user_id != principal.user_id:
        return _reject(c, "forbidden", "user_mismatch", "user_id", "该提交由另一名工作人员创建，请由其本人登录后上传")
    if not can_see(principal, env.org_path) or not path_within(env.org_path, device.org_path):
        return _reject(c, "forbidden", "out_of_scope", "org_path", "提交的所属单位不在您或本设备的管辖范围内")
    for i, att in enumerate(env.attachments):
        if att.mime not in ALLOWED_MIME:
            return _reject(c, "invalid", "attachment_type", f"attachments[{i}].mime",
                           "附件类型须为 JPEG、PNG 图片或 PDF 文件")
        if att.size > max_attachment_bytes:
            return _reject(c, "invalid", "attachment_size", f"attachments[{i}].size",
                           f"附件超过上限 {max_attachment_bytes} 字节")
    # sync.md §4.5: a device time ahead of the node's is impossible for a real event.
    c.clock_suspect = (env.created_at_device - now).total_seconds() * 1000 > devices.CLOCK_SUSPECT_MS
    return c


# --- inside the write transaction ------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    svc: OutboxServices
    device: devices.Device
    principal: Principal
    now: datetime
    repos: Repositories  # the audit chain and change log, through the storage seam (DESIGN.md §10)
    clock_offset_ms: int | None = None  # this sync's measurement of the device clock (node minus device)
    clock_suspect: bool | None = None

    def device_clock(self, c: Checked) -> tuple[bool, int | None]:
        """(trusted, offset): a device's own time counts for an act only when its clock was measured and
        found right (issue 9 "Event time"); an envelope stamped in the future makes it suspect."""
        offset = self.clock_offset_ms if self.clock_offset_ms is not None else self.device.clock_offset_ms
        suspect = self.clock_suspect if self.clock_suspect is not None else self.device.clock_suspect
        return offset is not None and not suspect and not c.clock_suspect, offset


def _enc(svc: OutboxServices, value: Any, aad: str) -> str:
    return svc.data_key.encrypt_field(canonical_json(value).decode("utf-8"), aad)


def _quarantine(db: Database, b: _Batch, c: Checked, *, status: str, reason: str,
                errors: list[dict[str, Any]], original_body_enc: str | None = None) -> None:
    qid = uuid7()
    env = c.envelope
    payload_sha = c.raw.get("payload_sha256") if isinstance(c.raw, dict) else None
    cur = db.execute(
        "INSERT INTO quarantine (id, dedupe_key, submission_id, device_id, device_seq, status, reason, errors,"
        " payload_sha256, body_enc, original_body_enc, user_id, org_path, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING",
        [qid, sha256_hex(reason.encode() + b"\n" + canonical_json(c.raw)), c.submission_id or None,
         b.device.id, c.device_seq, status, reason, json.dumps(errors, ensure_ascii=False),
         payload_sha if isinstance(payload_sha, str) else None, _enc(b.svc, c.raw, f"quarantine:{qid}"),
         original_body_enc, b.principal.user_id, env.org_path if env else "", b.now.isoformat()],
    )
    if cur.rowcount:  # the same rejected item sent again is kept (and audited) once
        b.repos.audit.append(actor=b.principal.user_id, role=b.principal.role.value, action="sync.quarantine",
                             object_type="quarantine", object_id=qid, org_path=env.org_path if env else "",
                             device_id=b.device.id, after={"submission_id": c.submission_id, "reason": reason},
                             detail={"status": status, "reason": reason, "submission_id": c.submission_id})
        b.repos.changes.record("quarantine", qid, env.org_path if env else "")


def _result(submission_id: str, status: str, *, receipt: Any = None, errors: list[dict[str, Any]] | None = None,
            record: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"submission_id": submission_id, "status": status, "receipt": receipt,
                           "current_head": None, "errors": [{"field": e["field"], "message": e["message"]}
                                                            for e in errors or []]}
    record = dict(record or {})
    if "current_head" in record:
        out["current_head"] = record.pop("current_head")
    if "conflict_id" in record:
        out["conflict_id"] = record["conflict_id"]
    if record:
        out["record"] = record
    return out


def _stored_result(db: Database, svc: OutboxServices, row: sqlite3.Row, status: str) -> dict[str, Any]:
    record = json.loads(svc.data_key.decrypt_field(row["record_enc"], f"record:{row['id']}")) \
        if row["record_enc"] else {}
    errors = record.pop("_errors", [])
    receipt = json.loads(row["receipt"]) if row["receipt"] else None
    return _result(row["id"], status, receipt=receipt, errors=errors, record=record)


def _current_head(db: Database, root_id: str) -> str | None:
    row = db.execute(
        "SELECT s.id FROM submissions s WHERE s.root_id = ? AND s.status = 'created' AND NOT EXISTS"
        " (SELECT 1 FROM submissions n WHERE n.supersedes = s.id AND n.status = 'created')"
        " ORDER BY s.received_at DESC LIMIT 1", [root_id]
    ).fetchone()
    return row[0] if row else None


def _insert(db: Database, b: _Batch, c: Checked) -> bool:
    env = c.envelope
    assert env is not None
    cur = db.execute(
        "INSERT INTO submissions (id, device_id, device_seq, root_id, supersedes, kind, form_id, form_version,"
        " org_path, user_id, payload_sha256, envelope_enc, status, created_at_device, clock_suspect, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?) ON CONFLICT DO NOTHING",
        [env.submission_id, b.device.id, env.device_seq, env.root_id, env.supersedes, env.kind, env.form_id,
         env.form_version, env.org_path, b.principal.user_id, env.payload_sha256,
         _enc(b.svc, c.raw, f"submission:{env.submission_id}"), env.created_at_device.isoformat(),
         int(c.clock_suspect), b.now.isoformat()],
    )
    if cur.rowcount == 0:
        return False
    for att in env.attachments:
        db.execute("INSERT INTO submission_attachments (submission_id, name, sha256, size, mime) VALUES (?, ?, ?, ?, ?)",
                   [env.submission_id, att.name, att.sha256, att.size, att.mime])
    return True


def _on_existing(db: Database, b: _Batch, c: Checked) -> dict[str, Any]:
    """The insert hit a unique constraint: a replay, an id collision or a reused device_seq."""
    env = c.envelope
    assert env is not None
    row = db.execute("SELECT * FROM submissions WHERE id = ?", [env.submission_id]).fetchone()
    if row is None:  # UNIQUE(device_id, device_seq): another submission already holds this seq
        other = db.execute("SELECT envelope_enc FROM submissions WHERE device_id = ? AND device_seq = ?",
                           [b.device.id, env.device_seq]).fetchone()
        errors = [{"field": "device_seq", "message": f"本设备的第 {env.device_seq} 号已用于另一条提交，两份均已保留待核查"}]
        _quarantine(db, b, c, status="id_conflict", reason="device_seq_reused", errors=errors,
                    original_body_enc=other[0] if other else None)
        return _result(c.submission_id, "id_conflict", errors=errors)
    if row["payload_sha256"] != env.payload_sha256:  # never replace, never drop (CommCare lesson)
        errors = [{"field": "submission_id", "message": "节点上已有同一编号但内容不同的提交，两份均已保留待核查"}]
        _quarantine(db, b, c, status="id_conflict", reason="id_conflict", errors=errors,
                    original_body_enc=row["envelope_enc"])
        return _result(c.submission_id, "id_conflict", errors=errors)
    if row["status"] == "awaiting_blobs":
        return _try_complete(db, b, c, row)
    return _stored_result(db, b.svc, row, "duplicate" if row["status"] == "created" else row["status"])


def _try_complete(db: Database, b: _Batch, c: Checked, row: Any) -> dict[str, Any]:
    shas = [r[0] for r in db.execute("SELECT sha256 FROM submission_attachments WHERE submission_id = ?",
                                     [row["id"]]).fetchall()]
    missing = b.svc.blobs.missing(shas)
    if missing:
        errors = [{"field": "attachments", "message": f"尚缺 {len(missing)} 个附件，上传后将自动处理"}]
        return _result(row["id"], "awaiting_blobs", errors=errors)
    return _complete(db, b, c, received_at=datetime.fromisoformat(row["received_at"]))


def _complete(db: Database, b: _Batch, c: Checked, *, received_at: datetime) -> dict[str, Any]:
    """Run the kind's intake handler; on success write the receipt, else leave only quarantine."""
    env = c.envelope
    assert env is not None
    sid = env.submission_id
    handler = intake.handler_for(env.kind)
    db.execute("SAVEPOINT outbox_handler")
    record: dict[str, Any]
    effects: list[dict[str, Any]] = []
    if handler is None:
        status, errors, record = "invalid", [{"field": "kind", "message": f"未知的提交类型：{env.kind}"}], {}
    else:
        ictx = intake.IntakeContext(
            node_id=b.svc.node_id, principal=b.principal, received_at=received_at, calendar=current_calendar(db),
            device_id=b.device.id, device_time=env.created_at_device,
            device_clock_trusted=b.device_clock(c)[0], device_offset_ms=b.device_clock(c)[1],
            services={"data_key": b.svc.data_key, "blob_dir": b.svc.blobs.root, "blob_path": b.svc.blobs.path,
                      "max_attachment_bytes": b.svc.max_attachment_bytes, "envelope": c.raw, "submission_id": sid,
                      "attachments": [a.model_dump() for a in env.attachments]},
        )
        held = b.repos.audit.hold()  # the handler's own entries become part of the envelope's one entry
        try:
            with held as kept:
                outcome = handler(db, dict(c.raw["payload"]), ictx)
        except sqlite3.OperationalError:
            raise  # disk or lock trouble: fail the whole write, the tablet retries the batch
        except Exception as exc:  # a handler bug must not block every later item of the device
            log.exception("intake handler for %s failed on %s", env.kind, sid)
            if not db.conn.in_transaction:
                raise
            status, record = "invalid", {}
            errors = [{"field": "payload", "message": f"节点处理该提交时出错，已隔离待核查（{type(exc).__name__}）"}]
        else:
            status, errors, record = outcome.status, list(outcome.errors), dict(outcome.record)
            effects = kept.entries
    if status == "awaiting_blobs":  # the handler found a blob named in the payload missing
        db.execute("ROLLBACK TO SAVEPOINT outbox_handler")
        db.execute("RELEASE SAVEPOINT outbox_handler")
        for sha in record.get("missing_blobs", []):
            db.execute("INSERT INTO submission_attachments (submission_id, name, sha256, size, mime)"
                       " VALUES (?, ?, ?, 0, 'application/octet-stream') ON CONFLICT DO NOTHING",
                       [sid, f"payload:{sha}", sha])
        db.execute("UPDATE submissions SET status = 'awaiting_blobs' WHERE id = ?", [sid])
        return _result(sid, "awaiting_blobs", errors=errors)
    if status not in ("created", "stale_version"):
        db.execute("ROLLBACK TO SAVEPOINT outbox_handler")
        db.execute("RELEASE SAVEPOINT outbox_handler")
        db.execute("DELETE FROM submissions WHERE id = ?", [sid])
        bad = status if status in ("invalid", "forbidden", "id_conflict") else "invalid"
        _quarantine(db, b, c, status=bad, reason="handler_" + bad if handler else "unknown_kind", errors=errors)
        return _result(sid, bad, errors=errors)
    db.execute("RELEASE SAVEPOINT outbox_handler")
    return _accept(db, b, c, status, errors, record, received_at, effects)


def _accept(db: Database, b: _Batch, c: Checked, status: str, errors: list[dict[str, Any]],
            record: dict[str, Any], received_at: datetime, effects: list[dict[str, Any]] | None = None,
            ) -> dict[str, Any]:
    env = c.envelope
    assert env is not None
    node_seq = b.repos.changes.record("submission", env.submission_id, env.org_path)
    receipt = make_receipt(submission_id=env.submission_id, node_id=b.svc.node_id, node_seq=node_seq,
                           received_at=received_at, payload_sha256=env.payload_sha256, key=b.svc.node_key)
    kept = {**record, "_errors": errors} if errors else record
    db.execute(
        "UPDATE submissions SET status = ?, node_seq = ?, receipt = ?, record_enc = ?, completed_at = ? WHERE id = ?",
        [status, node_seq, json.dumps(receipt, ensure_ascii=False), _enc(b.svc, kept, f"record:{env.submission_id}"),
         b.now.isoformat(), env.submission_id],
    )
    # One submission, one audit entry: the envelope (what was signed, its seq and receipt seq) and its
    # effect (the intake handler's entry, e.g. ``case.accept``, the same as the REST route writes).
    b.repos.audit.append_envelope(
        list(effects or []),
        {"submission_id": env.submission_id, "kind": env.kind, "status": status, "device_seq": env.device_seq,
         "node_seq": node_seq, "payload_sha256": env.payload_sha256},
        actor=b.principal.user_id, role=b.principal.role.value, object_id=env.submission_id, org_path=env.org_path,
        device_id=b.device.id, after={"payload_sha256": env.payload_sha256, "node_seq": node_seq},
    )
    return _result(env.submission_id, status, receipt=receipt, errors=errors, record=record)


def _store_one(db: Database, b: _Batch, c: Checked) -> dict[str, Any]:
    if c.status:
        _quarantine(db, b, c, status=c.status, reason=c.reason, errors=c.errors)
        return _result(c.submission_id, c.status, errors=c.errors)
    env = c.envelope
    assert env is not None
    if not _insert(db, b, c):
        return _on_existing(db, b, c)
    if env.supersedes is not None:
        prior = db.execute("SELECT root_id FROM submissions WHERE id = ?", [env.supersedes]).fetchone()
        head = _current_head(db, env.root_id)
        if prior is None or prior[0] != env.root_id:
            db.execute("DELETE FROM submissions WHERE id = ?", [env.submission_id])
            errors = [{"field": "supersedes", "message": "被替换的版本不在节点上，或不属于同一记录"}]
            _quarantine(db, b, c, status="invalid", reason="unknown_supersedes", errors=errors)
            return _result(env.submission_id, "invalid", errors=errors)
        if head is not None and head != env.supersedes:  # sync.md §4.1: edits rebase on the current head
            errors = [{"field": "supersedes", "message": "该记录已有更新的版本，请在最新版本上修改"}]
            return _accept(db, b, c, "stale_version", errors, {"current_head": head}, b.now)
    if intake.handler_for(env.kind) is not None and env.attachments:
        missing = b.svc.blobs.missing([a.sha256 for a in env.attachments])
        if missing:
            db.execute("UPDATE submissions SET status = 'awaiting_blobs' WHERE id = ?", [env.submission_id])
            errors = [{"field": "attachments", "message": f"尚缺 {len(missing)} 个附件，上传后将自动处理"}]
            return _result(env.submission_id, "awaiting_blobs", errors=errors)
    return _complete(db, b, c, received_at=b.now)


def store_batch(
    db: Database, svc: OutboxServices, device: devices.Device, principal: Principal, items: list[Checked],
    now: datetime, *, clock_offset_ms: int | None, clock_suspect: bool | None,
) -> tuple[list[dict[str, Any]], int]:
    """Store every checked item (in order); returns (results, write checkpoint).

    ``clock_suspect`` None: this sync measured nothing about the device's clock (no header, no
    envelope from the future), so the device keeps its previous flag.
    """
    b = _Batch(svc, device, principal, now, repos_for(db), clock_offset_ms, clock_suspect)
    results = []
    for c in items:
        db.execute("SAVEPOINT outbox_item")
        results.append(_store_one(db, b, c))
        db.execute("RELEASE SAVEPOINT outbox_item")
        if c.device_seq is not None:
            devices.note_seq(db, device, c.device_seq, now)
    devices.note_clock(db, device, offset_ms=clock_offset_ms, suspect=clock_suspect, user_id=principal.user_id,
                       now=now)
    seqs = [r["receipt"]["node_seq"] for r in results if r.get("receipt")]
    return results, max(seqs) if seqs else b.repos.changes.high_seq()


def complete_awaiting(db: Database, svc: OutboxServices, sha256: str, now: datetime) -> list[dict[str, Any]]:
    """After ``sha256`` arrived: complete every submission that was waiting only for blobs."""
    rows = db.execute(
        "SELECT DISTINCT s.* FROM submissions s JOIN submission_attachments a ON a.submission_id = s.id"
        " WHERE a.sha256 = ? AND s.status = 'awaiting_blobs' ORDER BY s.received_at", [sha256]
    ).fetchall()
    out = []
    for row in rows:
        device = devices.get_device(db, row["device_id"])
        user = users.get_user(db, row["user_id"])
        if device is None or user is None:
            continue
        raw = json.loads(svc.data_key.decrypt_field(row["envelope_enc"], f"submission:{row['id']}"))
        c = Checked(raw=raw, submission_id=row["id"], envelope=SubmissionEnvelope.model_validate(raw),
                    device_seq=int(row["device_seq"]))
        b = _Batch(svc, device, user.principal(device.id), now, repos_for(db))
        db.execute("SAVEPOINT outbox_item")
        out.append(_try_complete(db, b, c, row))
        db.execute("RELEASE SAVEPOINT outbox_item")
    return out
