"""Sync leg A endpoints (tablet ⇄ street node): enrolment, outbox, blobs, changes (DESIGN §6).

Thin: parse → ``sync.devices`` / ``sync.outbox`` / ``sync.blobs`` / ``sync.changes_feed`` → respond.
Tablets send the signed-in user's bearer token and ``X-Device-Id`` naming their enrolled device.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from schemas.envelope import OUTBOX_MAX_ENVELOPES, OutboxRequest, OutboxResponse
from schemas.sync_leg_a import EnrolmentRequest, RegisterDeviceRequest, RevokeDeviceRequest
from server.domain.crypto import b64url_encode
from server.domain.ids import now_china
from server.domain.roles import ADMINS, STAFF_ROLES, Role, can_see, path_within
from server.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from server.node import data_key, node_key
from server.store import audit
from server.web.endpoint import PUBLIC, Endpoint, RequestContext, ascii_int, read_json, read_limited
from sync import changes_feed, devices, outbox
from sync.blobs import BlobStore, check_mime, check_sha256, parse_content_range

DEVICE_ADMINS = ADMINS
OVERSEERS = ADMINS | {Role.SUPERVISOR}


def leg_a(ctx: RequestContext) -> outbox.OutboxServices:
    """The node's keys and blob store, loaded once per app."""
    svc = ctx.services.extra.get("sync.leg_a")
    if svc is None:
        s = ctx.settings
        svc = outbox.OutboxServices(node_id=ctx.services.node_id, node_key=node_key(s), data_key=data_key(s),
                                    blobs=BlobStore(s.blob_dir, s.max_attachment_bytes),
                                    max_attachment_bytes=s.max_attachment_bytes)
        ctx.services.extra["sync.leg_a"] = svc
    return svc  # type: ignore[no-any-return]


def _device(ctx: RequestContext, *, allow_revoked: bool = False) -> devices.Device:
    """The enrolled device named by X-Device-Id, which must belong to the signed-in user's units (a device
    of an unrelated unit cannot be borrowed to upload, or to have an upload audited under its name)."""
    device_id = ctx.request.headers.get("x-device-id", "").strip()
    if not device_id:
        raise BadRequest("缺少 X-Device-Id：请在已登记的设备上同步", field="x-device-id")
    device = ctx.store.read(lambda db: devices.get_device(db, device_id))
    if not (allow_revoked and device is not None):
        device = devices.require_active(device, device_id)
    p = ctx.user()
    if not (path_within(device.org_path, p.org_path) or path_within(p.org_path, device.org_path)):
        raise Forbidden("本设备登记的单位与您的管辖范围无关", field="x-device-id")
    return device


def _ca_fingerprint(data_dir: Path) -> str | None:
    ca = data_dir / "tls" / "ca.pem"
    if not ca.is_file():
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(ca.read_bytes()).fingerprint(hashes.SHA256()).hex()


# --- devices -----------------------------------------------------------------------------------------


async def create_enrolment(ctx: RequestContext) -> dict[str, Any]:
    body: EnrolmentRequest = ctx.body
    p = ctx.user()
    now = now_china()
    made = await ctx.store.awrite(lambda db: devices.create_enrolment(
        db, p, org_unit=body.org_unit, label=body.label, ttl=timedelta(minutes=body.ttl_minutes), now=now))
    key = leg_a(ctx).node_key
    qr = {
        "v": 1, "type": "streetnode.enrolment", "node_url": str(ctx.request.base_url).rstrip("/"),
        "node_id": ctx.services.node_id, "node_key_id": key.key_id, "node_public_key": b64url_encode(key.public_raw),
        "code": made["code"], "expires_at": made["expires_at"], "ca_sha256": _ca_fingerprint(ctx.settings.data_dir),
    }
    text = json.dumps(qr, ensure_ascii=False, separators=(",", ":"))
    svg = None
    try:
        import segno

        svg = segno.make(text, error="m").svg_inline(scale=4)
    except ImportError:  # pragma: no cover - segno is a dependency; the PWA can draw the QR itself
        pass
    return {"ok": True, **made, "qr_payload": text, "qr": qr, "qr_svg": svg}


async def register_device(ctx: RequestContext) -> dict[str, Any]:
    body: RegisterDeviceRequest = ctx.body
    now = now_china()
    device = await ctx.store.awrite(lambda db: devices.register_device(
        db, code=body.code, public_key=body.public_key, alg=body.alg, label=body.label, now=now))
    key = leg_a(ctx).node_key
    return {"ok": True, "device_id": device.id, "key_id": device.key_id, "org_unit": device.org_unit,
            "org_path": device.org_path, "label": device.label, "registered_at": device.registered_at,
            "node_id": ctx.services.node_id, "node_key_id": key.key_id,
            "node_public_key": b64url_encode(key.public_raw)}


async def list_devices(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    return {"ok": True, "devices": ctx.store.read(lambda db: devices.list_devices(db, p.org_path))}


async def revoke_device(ctx: RequestContext) -> dict[str, Any]:
    body: RevokeDeviceRequest = ctx.body
    p = ctx.user()
    device_id = ctx.path["device_id"]
    now = now_china()
    device = await ctx.store.awrite(lambda db: devices.revoke_device(db, p, device_id, body.reason, now))
    return {"ok": True, "device": device.public()}


async def list_quarantine(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    rows = ctx.store.query(
        "SELECT id, submission_id, device_id, device_seq, status, reason, errors, payload_sha256, org_path,"
        " received_at, resolved_at FROM quarantine WHERE org_path = '' OR org_path = ? OR substr(org_path, 1, ?) = ?"
        " ORDER BY received_at DESC LIMIT 200", [p.org_path, len(p.org_path) + 1, p.org_path + "/"])
    for row in rows:
        row["errors"] = json.loads(row["errors"])
    return {"ok": True, "items": rows}


# --- outbox ------------------------------------------------------------------------------------------


def _device_time(header: str | None) -> datetime | None:
    if not header:
        return None
    text = header.strip()
    try:
        if text.isdigit():  # epoch milliseconds, as Date.now() gives them
            return datetime.fromtimestamp(int(text) / 1000, tz=now_china().tzinfo)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise BadRequest("X-Device-Time 应为 RFC 3339 时间或毫秒时间戳", field="x-device-time") from None
    if value.utcoffset() is None:
        raise BadRequest("X-Device-Time 须带时区", field="x-device-time")
    return value


async def post_outbox(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    device = _device(ctx, allow_revoked=True)  # a revoked device's items are quarantined, not refused
    raw = await read_json(ctx.request, outbox.OUTBOX_MAX_BYTES)
    envelopes = raw.get("envelopes") if isinstance(raw, dict) else None
    if isinstance(envelopes, list) and len(envelopes) > OUTBOX_MAX_ENVELOPES:
        raise PayloadTooLarge(f"每批最多 {OUTBOX_MAX_ENVELOPES} 条，请分批上传", field="envelopes")
    if not isinstance(raw, dict) or set(raw) != {"envelopes"} or not isinstance(envelopes, list) or not envelopes:
        # items are not parsed here: each is verified and judged on its own (a non-object is one invalid item)
        raise ValidationFailed("请求体应为 {\"envelopes\": [信封, …]}（1 至 100 条）", field="envelopes")
    now = now_china()
    device_time = _device_time(ctx.request.headers.get("x-device-time"))
    offset_ms = round((now - device_time).total_seconds() * 1000) if device_time else None
    clock_suspect = offset_ms is not None and abs(offset_ms) > devices.CLOCK_SUSPECT_MS
    svc = leg_a(ctx)
    principal = replace(p, device_id=device.id)
    checked = [outbox.check_item(e, device, principal, now, svc.max_attachment_bytes) for e in envelopes]
    # Only a measurement can clear the flag: the header, or an envelope stamped in the future.
    suspect: bool | None = clock_suspect or any(c.clock_suspect for c in checked)
    if offset_ms is None and not suspect:
        suspect = None
    results, checkpoint = await ctx.store.awrite(lambda db: outbox.store_batch(
        db, svc, device, principal, checked, now, clock_offset_ms=offset_ms, clock_suspect=suspect))
    return {"ok": True, "results": results, "write_checkpoint": checkpoint, "node_id": ctx.services.node_id,
            "server_time": now.isoformat(), "clock": {"offset_ms": offset_ms, "suspect": bool(suspect)}}


# --- blobs -------------------------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    return await read_limited(request, limit, f"附件超过上限 {limit} 字节")


def _lock(ctx: RequestContext, sha256: str) -> asyncio.Lock:
    locks: dict[str, asyncio.Lock] = ctx.services.extra.setdefault("sync.blob_locks", {})
    return locks.setdefault(sha256, asyncio.Lock())


async def get_blob(ctx: RequestContext) -> Response:
    """GET: the file, for staff who may see a submission that names it. HEAD: present, or resume offset."""
    p = ctx.user()
    sha = check_sha256(ctx.path["sha256"])
    blobs = leg_a(ctx).blobs
    if ctx.request.method == "HEAD":
        if blobs.has(sha):
            size = str(blobs.path(sha).stat().st_size)
            return Response(status_code=200, headers={"Content-Length": size, "Upload-Offset": size})
        return Response(status_code=404, headers={"Upload-Offset": str(blobs.offset(sha))})

    def visible(db: Database) -> str | None:
        row = db.execute("SELECT mime, uploaded_by FROM blobs WHERE sha256 = ?", [sha]).fetchone()
        if row is None:
            return None
        if row["uploaded_by"] == p.user_id:
            return str(row["mime"])
        paths = db.execute("SELECT s.org_path FROM submissions s JOIN submission_attachments a ON a.submission_id"
                           " = s.id WHERE a.sha256 = ?", [sha]).fetchall()
        return str(row["mime"]) if any(can_see(p, r[0]) for r in paths) else None

    mime = ctx.store.read(visible)
    if mime is None or not blobs.has(sha):
        raise NotFound("未找到该附件", field="sha256")
    # nosniff + a sandbox: whatever hides behind a JPEG header is never run as a page or script
    return FileResponse(blobs.path(sha), media_type=mime, headers={
        "Cache-Control": "private, max-age=31536000", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'"})


async def put_blob(ctx: RequestContext) -> Response:
    """Whole file (PUT without Content-Range) or one chunk (PUT/PATCH with Content-Range)."""
    p = ctx.user()
    device = _device(ctx)
    sha = check_sha256(ctx.path["sha256"])
    mime = check_mime(ctx.request.headers.get("content-type"))
    svc = leg_a(ctx)
    blobs = svc.blobs
    if blobs.has(sha):  # content-addressed: identical photos dedupe for free
        size = blobs.path(sha).stat().st_size
        return JSONResponse({"ok": True, "sha256": sha, "complete": True, "size": size, "offset": size},
                            headers={"Upload-Offset": str(size)})
    declared = ctx.request.headers.get("content-length")
    rng = parse_content_range(ctx.request.headers.get("content-range"),
                              ascii_int(declared), svc.max_attachment_bytes)
    if rng is None and ctx.request.method == "PATCH":
        raise BadRequest("分段上传须带 Content-Range", field="content-range")
    data = await _read_body(ctx.request, rng.length if rng else svc.max_attachment_bytes)
    start, total = (rng.start, rng.total) if rng else (0, len(data))
    if rng is not None and len(data) != rng.length:
        raise BadRequest("请求体长度与 Content-Range 不符", field="content-range")
    async with _lock(ctx, sha):
        offset = await run_in_threadpool(blobs.write_chunk, sha, start, data)
        if offset < total:
            return JSONResponse({"ok": True, "sha256": sha, "complete": False, "offset": offset}, status_code=202,
                                headers={"Upload-Offset": str(offset)})
        size = await run_in_threadpool(blobs.finish, sha, mime)
    now = now_china()

    def register(db: Database) -> list[dict[str, Any]]:
        cur = db.execute("INSERT OR IGNORE INTO blobs (sha256, size, mime, uploaded_by, device_id, stored_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)", [sha, size, mime, p.user_id, device.id, now.isoformat()])
        if cur.rowcount:
            audit.append(db, actor=p.user_id, role=p.role.value, action="sync.blob_stored", object_type="blob",
                         object_id=sha, org_path=device.org_path, device_id=device.id,
                         detail={"size": size, "mime": mime})
        return outbox.complete_awaiting(db, svc, sha, now)

    completed = await ctx.store.awrite(register)
    return JSONResponse({"ok": True, "sha256": sha, "complete": True, "size": size, "offset": size,
                         "completed": completed}, status_code=201, headers={"Upload-Offset": str(size)})


# --- changes -----------------------------------------------------------------------------------------


async def get_changes(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    device = _device(ctx)
    q = ctx.query
    limit = changes_feed.parse_limit(q.get("limit"))
    return ctx.store.read(lambda db: changes_feed.page(db, p, device, q.get("cursor") or None, limit))


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/sync/v1/devices/enrolments", create_enrolment, DEVICE_ADMINS, "生成平板登记码（一次性，含二维码）",
             body=EnrolmentRequest, writes=True, tags=("sync",)),
    Endpoint("POST", "/sync/v1/devices/register", register_device, PUBLIC, "平板用登记码登记本机公钥",
             body=RegisterDeviceRequest, writes=True, tags=("sync",)),
    Endpoint("GET", "/sync/v1/devices", list_devices, OVERSEERS, "本辖区已登记的设备及告警", tags=("sync",)),
    Endpoint("POST", "/sync/v1/devices/{device_id}/revoke", revoke_device, DEVICE_ADMINS, "停用设备",
             body=RevokeDeviceRequest, writes=True, tags=("sync",)),
    Endpoint("GET", "/sync/v1/quarantine", list_quarantine, OVERSEERS, "隔离区中的提交（待核查）", tags=("sync",)),
    Endpoint("POST", "/sync/v1/outbox", post_outbox, STAFF_ROLES, "上传一批签名提交（每条一个结果与回执）",
             body=OutboxRequest, response=OutboxResponse, writes=True, tags=("sync",), raw_body=True),
    Endpoint("GET", "/sync/v1/blobs/{sha256}", get_blob, STAFF_ROLES, "下载附件；HEAD 查询是否已存在及续传位置",
             tags=("sync",)),
    Endpoint("PUT", "/sync/v1/blobs/{sha256}", put_blob, STAFF_ROLES, "上传附件（整份或 Content-Range 分段）",
             writes=True, tags=("sync",), raw_body=True),
    Endpoint("PATCH", "/sync/v1/blobs/{sha256}", put_blob, STAFF_ROLES, "续传附件分段（Content-Range）",
             writes=True, tags=("sync",), raw_body=True),
    Endpoint("GET", "/sync/v1/changes", get_changes, STAFF_ROLES, "拉取本辖区的变更（游标分页，含删除标记）",
             tags=("sync",)),
]
