"""OpenAPI 3.1 document generated from the route table and its pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from schemas.common import ErrorEnvelope
from server import __version__
from server.web.endpoint import Endpoint


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    components: dict[str, Any] = {}
    error_ref = _schema(ErrorEnvelope, components)
    paths: dict[str, Any] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": re.sub(r"[^a-zA-Z0-9]+", "_", f"{ep.method}_{ep.path}").strip("_"),
            "tags": list(ep.tags),
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": _schema(ep.response, components)}}
                    if ep.response
                    else {"application/json": {}},
                },
                "4XX": {"description": "错误信封", "content": {"application/json": {"schema": error_ref}}},
            },
        }
        params = re.findall(r"{(\w+)}", ep.path)
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(ep.body, components)}},
            }
        if ep.roles is not None:
            op["security"] = [{"bearer": []}]
            op["x-roles"] = sorted(r.value for r in ep.roles)
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "streetnode", "version": __version__, "description": "街道政务节点 API"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
