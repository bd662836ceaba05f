"""Core endpoints: health, sign-in, organisation, conflicts and audit head.

Generic case lists, detail and events live in ``server.web.api_cases``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlite_utils import Database

from schemas.auth import LoginRequest, LoginResponse, UserOut
from server import __version__
from server.domain.ids import now_china
from server.domain.roles import ROLE_LABELS, STAFF_ROLES, Role
from server.errors import AccountLocked, Unauthorized
from server.store import audit, login_guard, org, users
from server.store.schema import applied_migrations
from server.store.scope import under
from server.web.endpoint import PUBLIC, Endpoint, RequestContext, token_ttl


async def health(ctx: RequestContext) -> dict[str, Any]:
    # Called every few seconds by monitors and load balancers, also while heavy lists run: one small
    # query; the migration count cannot change while the node runs (migrations apply at start-up).
    extra = ctx.services.extra
    if "migrations" not in extra:
        extra["migrations"] = len(ctx.store.read(applied_migrations))

    def read(db: Database) -> dict[str, Any]:
        meta = {k: v for k, v in db.execute("SELECT key, value FROM meta").fetchall()}
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        return {"meta": meta, "journal_mode": mode, "migrations": extra["migrations"]}

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

    client = ctx.request.client.host if ctx.request.client else "unknown"
    lockout = timedelta(minutes=settings.lockout_minutes)

    def attempt(db: Database) -> tuple[str, Any]:
        if login_guard.locked_until(db, body.username, client, now):
            return "locked", None
        user = users.get_user_by_name(db, body.username)
        known = user is not None and user.active
        # an unknown name costs one scrypt too, so the answer's timing tells nothing about who exists
        ok = users.verify_password(body.password, user.password_hash if known and user else users.DUMMY_HASH)
        if not (known and ok):
            locked = login_guard.record_failure(db, body.username, client, now, settings.login_max_failures, lockout)
            if user is not None:
                audit.append(db, actor=user.id, role=user.role, action="auth.login_failed", object_type="user",
                             object_id=user.id, org_path=user.org_path, detail={"locked": locked, "client": client})
            return ("locked", None) if locked else ("bad", None)
        assert user is not None
        login_guard.clear(db, body.username, client)
        token, expires = users.issue_token(db, user.id, token_ttl(settings), body.device_id)
        audit.append(db, actor=user.id, role=user.role, action="auth.login", object_type="user",
                     object_id=user.id, org_path=user.org_path, device_id=body.device_id)
        return "ok", (user_out(user, db), token, expires)

    status, value = await ctx.store.awrite(attempt)
    if status == "locked":
        raise AccountLocked(
            f"本机连续登录失败次数过多，已暂停登录（至少 {settings.lockout_minutes} 分钟，再次失败时加倍）；"
            "如需立即解除，请联系街道管理员", field="username"
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


async def list_conflicts(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.user()
    where, params = under("c.org_path", p.org_path)
    rows = ctx.store.query(
        "SELECT k.id, k.case_id, k.base_version, k.current_version, k.current_state, k.reason, k.created_at,"
        f" k.resolved_at FROM case_conflicts k JOIN cases c ON c.id = k.case_id WHERE {where}"
        " ORDER BY k.created_at DESC LIMIT 200", params,
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
    Endpoint("GET", "/api/v1/conflicts", list_conflicts, STAFF_ROLES, "待处理的提交冲突", tags=("cases",)),
    Endpoint("GET", "/api/v1/audit/head", audit_head,
             frozenset({Role.DISTRICT_ADMIN, Role.STREET_ADMIN, Role.SUPERVISOR}), "审计链头", tags=("audit",)),
]
