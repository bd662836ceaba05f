"""Core endpoints: health, sign-in, organisation, generic case reads and transitions."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from schemas.auth import LoginRequest, LoginResponse, UserOut
from schemas.cases import TransitionRequest
from server import __version__
from server.domain.engine import Draft
from server.domain.ids import now_china, uuid7
from server.domain.kinds import REGISTRY
from server.domain.roles import ROLE_LABELS, STAFF_ROLES, Principal, Role
from server.errors import AccountLocked, Conflict, NotFound, Unauthorized
from server.store import audit, org, users
from server.store import cases as case_store
from server.store.calendars import current_calendar
from server.store.schema import applied_migrations
from server.web.endpoint import PUBLIC, Endpoint, RequestContext, token_ttl
from server.web.rules import raise_for_violation


async def health(ctx: RequestContext) -> dict[str, Any]:
    def read(db: Database) -> dict[str, Any]:
        meta = {k: v for k, v in db.execute("SELECT key, value FROM meta").fetchall()}
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        return {
            "meta": meta,
            "journal_mode": mode,
            "migrations": len(applied_migrations(db)),
        }

    info = ctx.store.read(read)
    meta = info["meta"]
    return {
        "ok": True,
        "service": "streetnode",
        "version": __version__,
        "role": ctx.settings.role,
        "node_id": ctx.services.node_id,
        "org_unit": meta.get("org_unit", ctx.settings.org_unit),
        "epoch": meta.get("epoch"),
        "database": {"ok": True, "journal_mode": info["journal_mode"], "migrations": info["migrations"]},
        "last_sync": meta.get("last_sync"),
        "time": now_china().isoformat(),
    }


def user_out(u: users.UserRow, db: Database | None = None) -> UserOut:
    unit = org.get_unit(db, u.org_unit) if db is not None else None
    return UserOut(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        role_label=ROLE_LABELS.get(Role(u.role), u.role),
        org_unit=u.org_unit,
        org_path=u.org_path,
        org_name=unit["name"] if unit else "",
    )


async def login(ctx: RequestContext) -> LoginResponse:
    body: LoginRequest = ctx.body
    settings = ctx.settings
    now = now_china()

    def attempt(db: Database) -> tuple[str, Any]:
        user = users.get_user_by_name(db, body.username)
        if user is None or not user.active:
            return "bad", None
        if user.locked_until and user.locked_until > now.isoformat():
            return "locked", user.locked_until
        if not users.verify_password(body.password, user.password_hash):
            from datetime import timedelta

            locked = users.record_failure(
                db, user, settings.login_max_failures, timedelta(minutes=settings.lockout_minutes)
            )
            audit.append(db, actor=user.id, role=user.role, action="auth.login_failed", object_type="user",
                         object_id=user.id, org_path=user.org_path, detail={"locked": locked})
            return ("locked", None) if locked else ("bad", None)
        users.record_success(db, user)
        token, expires = users.issue_token(db, user.id, token_ttl(settings), body.device_id)
        audit.append(db, actor=user.id, role=user.role, action="auth.login", object_type="user",
                     object_id=user.id, org_path=user.org_path, device_id=body.device_id)
        return "ok", (user_out(user, db), token, expires)

    status, value = await ctx.store.awrite(attempt)
    if status == "locked":
        raise AccountLocked(
            f"连续登录失败次数过多，账号已锁定 {settings.lockout_minutes} 分钟", field="username"
        )
    if status == "bad":
        raise Unauthorized("用户名或密码错误", field="password")
    user, token, expires = value
    return LoginResponse(token=token, expires_at=expires.isoformat(), user=user)


async def logout(ctx: RequestContext) -> dict[str, Any]:
    principal, token = ctx.user(), ctx.token
    assert token is not None

    def revoke(db: Database) -> None:
        users.revoke_token(db, token)
        audit.append(db, actor=principal.user_id, role=principal.role.value, action="auth.logout",
                     object_type="user", object_id=principal.user_id, org_path=principal.org_path)

    await ctx.store.awrite(revoke)
    return {"ok": True}


async def me(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    def read(db: Database) -> UserOut:
        u = users.get_user(db, p.user_id)
        assert u is not None
        return user_out(u, db)

    return {"ok": True, "user": ctx.store.read(read).model_dump()}


async def key_encryption_key(ctx: RequestContext) -> dict[str, Any]:
    """The server half of the PWA's key wrapping (pwa.md §5): a per-user key the tablet never stores.

    The tablet wraps its local data key with this key *and* with its PIN-derived key, so a stolen
    tablet's IndexedDB opens neither without the user's PIN nor without a signed-in session. Derived
    from the node's data key (HMAC subkey of its own purpose), so nothing new is stored, and rotating
    the data key rotates every user's KEK.
    """
    p = ctx.user()
    from server.domain.crypto import b64url_encode
    from server.node import data_key

    kek = bytes.fromhex(data_key(ctx.settings).blind_index(p.user_id, "pwa.kek"))
    return {"ok": True, "kek": b64url_encode(kek), "kid": "v1", "alg": "A256GCM-KW"}


async def org_units(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    tier = ctx.query.get("tier")
    units = ctx.store.read(lambda db: org.list_units(db, p.org_path, tier))
    return {"ok": True, "units": units}


async def list_cases(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    q = ctx.query
    limit = min(max(int(q.get("limit", "50") or 50), 1), 500) if q.get("limit", "50").isdigit() else 50
    sql = (
        "SELECT id, kind, number, org_path, state, version, due_at, created_at, updated_at FROM cases"
        " WHERE (org_path = ? OR org_path LIKE ?)"
    )
    params: list[Any] = [p.org_path, p.org_path + "/%"]
    for key in ("kind", "state"):
        if q.get(key):
            sql += f" AND {key} = ?"
            params.append(q[key])
    sql += " ORDER BY created_at DESC LIMIT ?"
    params.append(limit)
    rows = ctx.store.query(sql, params)
    return {"ok": True, "cases": rows}


def _case_for(ctx: RequestContext, case_id: str) -> dict[str, Any]:
    case = ctx.store.read(lambda db: case_store.case_row(db, case_id))
    if case is None:
        raise NotFound("未找到该事项", field="case_id")
    ctx.require_scope(case["org_path"])
    return case


async def get_case(ctx: RequestContext) -> dict[str, Any]:
    case_id = ctx.path["case_id"]
    case = _case_for(ctx, case_id)
    events = ctx.store.query(
        "SELECT id, seq, transition, from_state, to_state, actor, role, org_unit, on_behalf_of, payload,"
        " legal_basis, device_time, node_time FROM case_events WHERE case_id = ? ORDER BY seq",
        [case_id],
    )
    kind = REGISTRY.get(case["kind"])
    p = ctx.user()
    available = (
        [{"name": t.name, "label": t.label_zh, "required": list(t.required)} for t in kind.available(case["state"], p.role)]
        if kind
        else []
    )
    state_label = kind.states.get(case["state"], case["state"]) if kind else case["state"]
    return {"ok": True, "case": {**case, "state_label": state_label}, "events": events, "available": available}


async def post_transition(ctx: RequestContext) -> dict[str, Any]:
    case_id = ctx.path["case_id"]
    body: TransitionRequest = ctx.body
    _case_for(ctx, case_id)
    result = await apply_transition(ctx, case_id, body)
    return result


async def apply_transition(ctx: RequestContext, case_id: str, body: TransitionRequest) -> dict[str, Any]:
    """Shared by every kind's transition endpoints: the engine decides, the store appends."""
    p: Principal = ctx.user()
    draft = Draft(
        transition=body.transition,
        payload=body.payload,
        principal=p,
        node_time=now_china(),
        event_id=body.event_id or uuid7(),
        on_behalf_of=body.on_behalf_of,
        device_time=body.device_time,
        device_id=p.device_id,
        base_version=body.base_version,
    )
    node_id = ctx.services.node_id

    def write(db: Database) -> case_store.TransitionResult:
        return case_store.transition(db, case_id, draft, node_id=node_id, calendar=current_calendar(db))

    with raise_for_violation():
        result = await ctx.store.awrite(write)
    if result.conflict_id:
        raise Conflict(
            f"提交冲突：{result.conflict_reason}；已记录为冲突待处理（{result.conflict_id}）",
            [{"field": "base_version", "message": result.conflict_reason, "conflict_id": result.conflict_id}],
        )
    assert result.view is not None and result.event is not None
    return {
        "ok": True,
        "case_id": case_id,
        "event_id": result.event.id,
        "state": result.view.state,
        "version": result.view.version,
    }


async def list_conflicts(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    rows = ctx.store.query(
        "SELECT k.id, k.case_id, k.base_version, k.current_version, k.current_state, k.reason, k.created_at,"
        " k.resolved_at FROM case_conflicts k JOIN cases c ON c.id = k.case_id"
        " WHERE (c.org_path = ? OR c.org_path LIKE ?) ORDER BY k.created_at DESC LIMIT 200",
        [p.org_path, p.org_path + "/%"],
    )
    return {"ok": True, "conflicts": rows}


async def audit_head(ctx: RequestContext) -> dict[str, Any]:
    seq, head_hash = ctx.store.read(audit.head)
    return {"ok": True, "seq": seq, "hash": head_hash}



ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/health", health, PUBLIC, "节点健康状态", tags=("core",)),
    Endpoint("POST", "/api/v1/auth/login", login, PUBLIC, "工作人员登录", body=LoginRequest,
             response=LoginResponse, writes=True, tags=("auth",)),
    Endpoint("POST", "/api/v1/auth/logout", logout, STAFF_ROLES, "退出登录（注销凭证）", writes=True,
             tags=("auth",)),
    Endpoint("GET", "/api/v1/auth/me", me, STAFF_ROLES, "当前用户", tags=("auth",)),
    Endpoint("GET", "/api/v1/auth/kek", key_encryption_key, STAFF_ROLES, "本机数据密钥的服务器端包裹密钥",
             tags=("auth",)),
    Endpoint("GET", "/api/v1/org/units", org_units, STAFF_ROLES, "本人管辖范围内的组织单元", tags=("org",)),
    Endpoint("GET", "/api/v1/cases", list_cases, STAFF_ROLES, "本人管辖范围内的事项", tags=("cases",)),
    Endpoint("GET", "/api/v1/cases/{case_id}", get_case, STAFF_ROLES, "事项详情与时间线", tags=("cases",)),
    Endpoint("POST", "/api/v1/cases/{case_id}/events", post_transition, STAFF_ROLES, "办理事项（状态流转）",
             body=TransitionRequest, writes=True, tags=("cases",)),
    Endpoint("GET", "/api/v1/conflicts", list_conflicts, STAFF_ROLES, "待处理的提交冲突", tags=("cases",)),
    Endpoint("GET", "/api/v1/audit/head", audit_head,
             frozenset({Role.DISTRICT_ADMIN, Role.STREET_ADMIN, Role.SUPERVISOR}), "审计链头", tags=("audit",)),
]
