"""The route table: every endpoint of the node, in one place (STYLE.md, after datasette).

Feature modules export ``ENDPOINTS``; add a module here to mount its endpoints. The
PWA static mount is added last by ``create_app``.
"""

from __future__ import annotations

import importlib

from server.web.endpoint import Endpoint

ENDPOINT_MODULES: list[str] = [
    "server.web.api_core",
    "server.web.api_cases",
    "server.web.api_calendar",
    "server.web.api_hall",
    "server.web.api_track",
    "server.web.api_grid",
    "server.web.api_hub",
    "server.web.api_sync",
]


def all_endpoints() -> list[Endpoint]:
    out: list[Endpoint] = []
    for name in ENDPOINT_MODULES:
        out.extend(importlib.import_module(name).ENDPOINTS)
    return out
