"""``/hub/v1``: the district hub's endpoints for street nodes (leg B) and for district staff.

Node endpoints take signed raw bodies (``sync.wire``) and need no sign-in: the node's enrolled Ed25519
key is the credential, checked before anything is decompressed or parsed. They answer signed raw
bodies. Staff endpoints are ordinary JSON with bearer tokens. On a street node every ``/hub/v1`` path
answers a 404 envelope ``not_a_hub``. Importing this module also installs the nightly sync job's
start-up hook (``sync.scheduler``).

    POST /hub/v1/up/begin      signed BeginRequest  -> signed BeginReply (countersig, where to resume)
    POST /hub/v1/up/batch      signed UpBatch       -> signed BatchAck {acked_through_seq, counts}
    POST /hub/v1/down/pull     signed PullRequest   -> signed PullReply {packages[], streams, has_more}
    POST /api/v1/hub-sync/run  (street) {batch_rows?} -> {summary}: a session now, as the nightly job runs it
    GET  /api/v1/hub-sync/status (street) pending rows, lag, conflicts, last run
    GET  /hub/v1/identity      the hub's sheet (ids and public keys a street pins)
    GET  /hub/v1/nodes         enrolled street nodes with lag, clock and audit state
    POST /hub/v1/nodes         EnrolNodeRequest -> {node}
    GET  /hub/v1/records       ?entity=case&node_id=&limit= received street records (personal fields sealed)
    GET  /hub/v1/conflicts     open conflict records
    POST /hub/v1/publish       publish what changed (catalogue, directory, calendars) -> {published}
    POST /hub/v1/cases/{case_id}/decisions   DecisionRequest -> {event_id, stream, seq}
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import anyio
from pydantic import Field
from starlette.responses import Response

from schemas.common import Input
from schemas.sync_leg_b import BeginRequest, DecisionRequest, EnrolNodeRequest, PullRequest, UpBatch
from server.domain.crypto import b64url_decode
from server.domain.ids import now_china
from server.domain.roles import Role
from server.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    StreetnodeError,
    Unauthorized,
    ValidationFailed,
)
from server.node import node_key
from server.store.scope import under
from server.store.seed import get_meta
from server.web.endpoint import PUBLIC, Endpoint, RequestContext, query_int
from sync.hub import HubError, HubSide, enrol_node, handle_begin, open_node_message, sign_reply
from sync.hub_publish import DecisionRefused, publish_decision, publish_pending
from sync.hub_receive import pull_packages, receive_batch
from sync.pairing import hub_sheet
from sync.replication import SyncBusy, SyncNotPaired, run_sync
from sync.status import street_status
from sync.transport import HubProblem, HubUnreachable


class SyncRunRequest(Input):
    batch_rows: int = Field(500, ge=1, le=500, description="rows per up-batch")


MAX_NODE_BODY = 8 * 1024 * 1024  # a 5 MB batch, compressed, with room to spare
DISTRICT = frozenset({Role.DISTRICT_ADMIN, Role.DISTRICT_APPROVER})
ADMIN = frozenset({Role.DISTRICT_ADMIN})
STREET_SYNC = frozenset({Role.STREET_ADMIN})
_BY_STATUS: dict[int, type[StreetnodeError]] = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                                409: Conflict, 413: PayloadTooLarge, 422: ValidationFailed,
                                                502: BadGateway, 503: ServiceUnavailable}
_CLASSES: dict[tuple[int, str], type[StreetnodeError]] = {}


def _error(status: int, code: str, message: str, field: str) -> StreetnodeError:
    """An error of the right status carrying our stable ``code`` (bad_signature, unknown_node …)."""
    key = (status, code)
    if key not in _CLASSES:
        _CLASSES[key] = type(f"HubError_{code}", (_BY_STATUS.get(status, BadRequest),), {"code": code})
    return _CLASSES[key](message, field=field)


def _hub(ctx: RequestContext) -> HubSide:
    if ctx.settings.role != "district":
        raise _error(404, "not_a_hub", "本节点不是区级枢纽", "path")
    side = ctx.services.extra.get("hub_side")
    if side is None:  # the id streets pinned is the database's, whatever the config file says
        hub_id = ctx.store.read(lambda db: get_meta(db, "node_id")) or ctx.services.node_id
        side = ctx.services.extra["hub_side"] = HubSide(hub_id, node_key(ctx.settings))
    return side  # type: ignore[no-any-return]


async def _raw(ctx: RequestContext) -> bytes:
    chunks, size = [], 0
    async for chunk in ctx.request.stream():
        size += len(chunk)
        if size > MAX_NODE_BODY:
            raise _error(413, "payload_too_large", f"请求体超过上限 {MAX_NODE_BODY} 字节", "body")
        chunks.append(chunk)
    return b"".join(chunks)


async def _node_call(ctx: RequestContext, purpose: str, model: Any, apply: Any) -> Response:
    hub = _hub(ctx)
    body = await _raw(ctx)
    headers = dict(ctx.request.headers)
    try:
        msg = ctx.store.read(lambda db: open_node_message(db, body, headers, purpose, model))
        result = await ctx.store.awrite(lambda db: apply(db, hub, msg, now_china()))
    except HubError as exc:
        raise _error(exc.status, exc.code, exc.message_zh, exc.field) from None
    out, out_headers = sign_reply(hub, result, body)
    return Response(out, headers=out_headers, media_type="application/octet-stream")


async def up_begin(ctx: RequestContext) -> Response:
    return await _node_call(ctx, "up_begin", BeginRequest, handle_begin)


async def up_batch(ctx: RequestContext) -> Response:
    return await _node_call(ctx, "up_batch", UpBatch,
                            lambda db, hub, msg, now: receive_batch(db, hub, msg, "http", now))


async def down_pull(ctx: RequestContext) -> Response:
    return await _node_call(ctx, "down_pull", PullRequest, lambda db, hub, msg, now: pull_packages(db, hub, msg))


async def identity(ctx: RequestContext) -> dict[str, Any]:
    _hub(ctx)
    sheet = ctx.store.read(lambda db: hub_sheet(ctx.settings, db, str(ctx.request.base_url).rstrip("/")))
    return {"ok": True, "hub": sheet}


async def list_nodes(ctx: RequestContext) -> dict[str, Any]:
    _hub(ctx)
    rows = ctx.store.query(
        "SELECT n.node_id, n.org_unit, n.org_path, n.key_id, n.enrolled_at, n.revoked_at, n.epoch,"
        " n.acked_through_seq, n.last_seen_at, n.clock_offset_ms, n.clock_suspect, n.audit_seq, n.down_applied,"
        " (SELECT COUNT(*) FROM sync_conflicts c WHERE c.node_id = n.node_id AND c.resolved_at IS NULL) AS conflicts"
        " FROM hub_nodes n ORDER BY n.node_id")
    for r in rows:
        r["down_applied"] = json.loads(r["down_applied"])
        r["clock_suspect"] = bool(r["clock_suspect"])
    return {"ok": True, "nodes": rows}


async def add_node(ctx: RequestContext) -> dict[str, Any]:
    _hub(ctx)
    body: EnrolNodeRequest = ctx.body
    p = ctx.user()
    try:
        public = b64url_decode(body.public_key)
        enc = b64url_decode(body.enc_public_key) if body.enc_public_key else None
    except ValueError:
        raise _error(422, "validation_error", "公钥不是有效的 base64url", "public_key") from None
    try:
        node = await ctx.store.awrite(lambda db: enrol_node(
            db, node_id=body.node_id, org_unit=body.org_unit, public_key=public, enc_public_key=enc,
            actor=p.user_id, role=p.role.value, now=now_china()))
    except HubError as exc:
        raise _error(exc.status, exc.code, exc.message_zh, exc.field) from None
    return {"ok": True, "node": node}


async def list_records(ctx: RequestContext) -> dict[str, Any]:
    _hub(ctx)
    p, q = ctx.user(), ctx.query
    limit = query_int(q.get("limit"), 100, 1, 1000)
    where, params = under("org_path", p.org_path)
    sql = ("SELECT entity, entity_id, node_id, op, org_path, data, sealed IS NOT NULL AS has_personal, node_seq,"
           f" updated_at FROM hub_records WHERE ({where} OR org_path = '')")
    for key in ("entity", "node_id"):
        if q.get(key):
            sql += f" AND {key} = ?"
            params.append(q[key])
    rows = ctx.store.query(sql + " ORDER BY updated_at DESC LIMIT ?", [*params, min(max(limit, 1), 500)])
    for r in rows:
        r["data"] = json.loads(r["data"]) if r["data"] else None
        r["has_personal"] = bool(r["has_personal"])
    return {"ok": True, "records": rows}


async def list_conflicts(ctx: RequestContext) -> dict[str, Any]:
    _hub(ctx)
    rows = ctx.store.query("SELECT id, kind, node_id, entity, entity_id, node_seq, detail, created_at"
                           " FROM sync_conflicts WHERE resolved_at IS NULL ORDER BY created_at DESC LIMIT 200")
    for r in rows:
        r["detail"] = json.loads(r["detail"])
    return {"ok": True, "conflicts": rows}


async def publish(ctx: RequestContext) -> dict[str, Any]:
    hub = _hub(ctx)
    done = await ctx.store.awrite(lambda db: publish_pending(db, hub.key, hub.hub_id, now_china()))
    return {"ok": True, "published": [{"stream": s, "seq": n} for s, n in done]}


async def run_now(ctx: RequestContext) -> dict[str, Any]:
    """A street admin starts a session with the hub now (the same run as the nightly job)."""
    if ctx.settings.role != "street":
        raise _error(404, "not_a_street", "区级枢纽不向上同步", "path")
    body: SyncRunRequest = ctx.body
    try:
        summary = await anyio.to_thread.run_sync(lambda: run_sync(ctx.store, ctx.settings, trigger="manual",
                                                                  batch_rows=body.batch_rows))
    except SyncNotPaired as exc:
        raise _error(409, "not_paired", str(exc), "hub") from None
    except SyncBusy as exc:
        raise _error(409, "sync_busy", str(exc), "hub") from None
    except HubProblem as exc:
        status = 503 if isinstance(exc, HubUnreachable) else 502
        raise _error(status, "hub_unreachable" if status == 503 else "hub_refused", exc.message_zh, "hub") from None
    return {"ok": True, "summary": asdict(summary)}


async def street_sync_status(ctx: RequestContext) -> dict[str, Any]:
    if ctx.settings.role != "street":
        raise _error(404, "not_a_street", "区级枢纽请查看 /hub/v1/nodes", "path")
    return {"ok": True, **ctx.store.read(lambda db: street_status(db, ctx.settings, now_china()))}


async def decide(ctx: RequestContext) -> dict[str, Any]:
    hub = _hub(ctx)
    body: DecisionRequest = ctx.body
    p, case_id = ctx.user(), ctx.path["case_id"]
    try:
        out = await ctx.store.awrite(lambda db: publish_decision(db, hub.key, hub.hub_id, case_id, body, p,
                                                                 now_china()))
    except DecisionRefused as exc:
        raise _error(exc.status, "decision_refused", exc.message, exc.field) from None
    return {"ok": True, **out}


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/hub/v1/up/begin", up_begin, PUBLIC, "街道节点开始同步（签名请求）", raw_body=True,
             writes=True, tags=("hub",)),
    Endpoint("POST", "/hub/v1/up/batch", up_batch, PUBLIC, "街道节点上传变更批次（签名请求）", raw_body=True,
             writes=True, tags=("hub",)),
    Endpoint("POST", "/hub/v1/down/pull", down_pull, PUBLIC, "街道节点拉取下发包（签名请求）", raw_body=True,
             tags=("hub",)),
    Endpoint("GET", "/hub/v1/identity", identity, PUBLIC, "区级枢纽的标识与公钥", tags=("hub",)),
    Endpoint("GET", "/hub/v1/nodes", list_nodes, ADMIN, "已登记的街道节点及同步状态", tags=("hub",)),
    Endpoint("POST", "/hub/v1/nodes", add_node, ADMIN, "登记街道节点（交换密钥）", body=EnrolNodeRequest,
             writes=True, tags=("hub",)),
    Endpoint("GET", "/hub/v1/records", list_records, DISTRICT, "已汇集的街道记录", tags=("hub",)),
    Endpoint("GET", "/hub/v1/conflicts", list_conflicts, ADMIN, "待处理的同步冲突", tags=("hub",)),
    Endpoint("POST", "/hub/v1/publish", publish, ADMIN, "发布区级数据（目录、日历、事项清单）", writes=True,
             tags=("hub",)),
    Endpoint("POST", "/api/v1/hub-sync/run", run_now, STREET_SYNC, "立即与区级枢纽同步", body=SyncRunRequest,
             writes=True, tags=("sync",)),
    Endpoint("GET", "/api/v1/hub-sync/status", street_sync_status, STREET_SYNC | {Role.SUPERVISOR},
             "与区级枢纽的同步状态", tags=("sync",)),
    Endpoint("POST", "/hub/v1/cases/{case_id}/decisions", decide, DISTRICT, "对街道提交区级的事项作出决定",
             body=DecisionRequest, writes=True, tags=("hub",)),
]
