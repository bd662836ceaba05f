"""Start-up and shutdown hooks for the running node (scheduler, node identity)."""

from __future__ import annotations

import gc

from server.web.endpoint import Services

STARTUP_HOOKS: list = []
SHUTDOWN_HOOKS: list = []


async def startup(services: Services) -> None:
    for hook in STARTUP_HOOKS:
        await hook(services)
    # Long-lived objects (route table, kinds, settings) leave the GC's young generations,
    # so collections during request bursts stay short (STYLE.md measurement note).
    gc.freeze()


async def shutdown(services: Services) -> None:
    for hook in SHUTDOWN_HOOKS:
        await hook(services)
