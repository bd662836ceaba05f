"""``create_app(settings)``: the node's ASGI application, assembled from explicit config."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from server.config import Settings
from server.domain.engine import RuleViolation
from server.errors import StreetnodeError
from server.features import install as install_features
from server.store.db import Store
from server.web.endpoint import Services, make_route
from server.web.openapi import build_openapi
from server.web.routes import all_endpoints
from server.web.rules import on_rule_violation
from server.web.static import pwa_app

log = logging.getLogger("streetnode")

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
}
_HTTP_ZH = {404: "未找到请求的地址", 405: "不支持该请求方法"}


async def on_streetnode_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StreetnodeError)
    return JSONResponse(exc.envelope(), status_code=exc.status)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = _HTTP_ZH.get(exc.status_code, str(exc.detail))
    body = {"ok": False, "error": message, "errors": [{"field": "path", "message": message}], "code": code,
            "status": exc.status_code}
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = {"ok": False, "error": "服务器内部错误，已记录", "errors": [], "code": "internal", "status": 500}
    return JSONResponse(body, status_code=500)


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """Build the app. The store opens in the lifespan (or is passed in already open)."""
    install_features()
    own_store = store is None
    store = store or Store(settings.db_path)
    services = Services(settings=settings, store=store, node_id=settings.node_id)
    endpoints = all_endpoints()
    openapi_doc = build_openapi(endpoints)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_doc)

    routes: list[Any] = [make_route(ep, services) for ep in endpoints]
    routes.append(Route("/api/v1/openapi.json", openapi, methods=["GET"], name="openapi"))
    routes.append(Mount("/", app=pwa_app(), name="pwa"))  # last: everything else is the PWA

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if own_store:
            store.open()
        from server.web import lifecycle

        await lifecycle.startup(services)
        try:
            yield {"services": services}
        finally:
            await lifecycle.shutdown(services)
            if own_store:
                store.close()

    app = Starlette(
        routes=routes,
        exception_handlers={
            StreetnodeError: on_streetnode_error,
            RuleViolation: on_rule_violation,  # the engine's refusals: one mapping for every route
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.endpoints = endpoints
    return app
