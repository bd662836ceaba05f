"""Endpoints as data: one ``Endpoint`` per route, wrapped into Starlette routes in one place.

The wrapper authenticates the bearer token, checks the role against the endpoint's
allowed set, reads the body with a size limit, validates it with the endpoint's pydantic
model (unknown fields are errors) and hands a ``RequestContext`` to the handler. Handlers
stay thin: parse -> domain -> store -> respond. The same table feeds the OpenAPI document
and the role x endpoint matrix test.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.config import Settings
from server.domain.ids import now_china
from server.domain.roles import Principal, Role, can_see
from server.errors import (
    ClientDisconnected,
    MalformedJSON,
    OutOfScope,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    field_errors_from_pydantic,
)
from server.errors import Forbidden as ForbiddenError
from server.store import users
from server.store.db import Store

PUBLIC: frozenset[Role] | None = None  # roles=None: no sign-in needed


@dataclass
class Services:
    """What the app hands every handler: built once by ``create_app`` from Settings."""

    settings: Settings
    store: Store
    node_id: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestContext:
    request: Request
    services: Services
    principal: Principal | None
    body: Any
    token: str | None = None

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def path(self) -> dict[str, Any]:
        return dict(self.request.path_params)

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    def user(self) -> Principal:
        if self.principal is None:
            raise Unauthorized("需要登录")
        return self.principal

    def require_scope(self, org_path: str) -> None:
        """The one place request handlers check scope (DESIGN.md §3)."""
        if not can_see(self.user(), org_path):
            raise OutOfScope("该记录不在您的管辖范围内", field="org_path")


Handler = Callable[[RequestContext], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role] | None
    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    writes: bool = False  # state-changing: must write one audit entry on success
    tags: tuple[str, ...] = ()
    raw_body: bool = False  # the handler reads the request body itself (uploads)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


async def read_limited(request: Request, limit: int, message: str) -> bytes:
    """The request body, refused with 413 as soon as it grows past ``limit`` (never buffered whole)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(message, field="body")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected("客户端在请求体传完前断开连接", field="body") from None
    return b"".join(chunks)


def query_int(value: str | None, default: int, low: int, high: int) -> int:
    """A numeric query parameter clamped to [low, high]; anything but ASCII digits is the default.

    ``str.isdigit`` alone accepts "²" and other digits ``int()`` refuses (a 500 on six endpoints once).
    """
    if not value or not (value.isascii() and value.isdigit()):
        return default
    return min(max(int(value), low), high)


def ascii_int(value: str | None) -> int | None:
    """A header's decimal integer (Content-Length), or None when it is not plain ASCII digits."""
    return int(value) if value and value.isascii() and value.isdigit() else None


async def read_json(request: Request, limit: int) -> Any:
    declared = ascii_int(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"请求体超过上限 {limit} 字节", field="body")
    ctype = request.headers.get("content-type", "")
    if ctype and "json" not in ctype:
        raise UnsupportedMediaType("请求体必须是 application/json", field="content-type")
    raw = await read_limited(request, limit, f"请求体超过上限 {limit} 字节")
    if not raw.strip():
        raise MalformedJSON("缺少 JSON 请求体", field="body")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJSON(f"JSON 格式错误：{exc}", field="body") from None
    except RecursionError:  # thousands of nested brackets in a few KB
        raise MalformedJSON("JSON 嵌套层次过深", field="body") from None
    except ValueError:  # an integer of more than 4,300 digits (CPython's int-parsing limit)
        raise MalformedJSON("JSON 中的数字过长", field="body") from None


def parse_model(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("请求数据不符合要求", field_errors_from_pydantic(exc)) from None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(services: Services, request: Request) -> tuple[Principal, str]:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("需要登录：缺少 Authorization: Bearer 凭证", field="authorization")
    found = services.store.read(lambda db: users.lookup_token(db, token, now_china()))
    if found.user is None:
        raise Unauthorized(found.problem or "登录凭证无效", field="authorization")
    return found.user.principal(), token


def to_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    if isinstance(result, dict) and "ok" not in result:
        result = {"ok": True, **result}
    return JSONResponse(result)


def make_route(ep: Endpoint, services: Services) -> Route:
    async def asgi_endpoint(request: Request) -> Response:
        principal: Principal | None = None
        token: str | None = None
        if ep.roles is not None:
            principal, token = authenticate(services, request)
            if principal.role not in ep.roles:
                raise ForbiddenError("当前角色无权访问此功能", field="role")
        body: Any = None
        if ep.body is not None and not ep.raw_body:
            body = parse_model(ep.body, await read_json(request, services.settings.max_json_bytes))
        ctx = RequestContext(request=request, services=services, principal=principal, body=body, token=token)
        return to_response(await ep.handler(ctx))

    return Route(ep.path, asgi_endpoint, methods=[ep.method], name=ep.name)


def token_ttl(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.token_ttl_minutes)
