"""Start-up and shutdown hooks for the running node (scheduler, node identity)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any

from server.web.endpoint import Services

STARTUP_HOOKS: list[Callable[[Services], Coroutine[Any, Any, None]]] = []
SHUTDOWN_HOOKS: list[Callable[[Services], Coroutine[Any, Any, None]]] = []


async def startup(services: Services) -> None:
    for hook in STARTUP_HOOKS:
        await hook(services)
    # Long-lived objects (route table, kinds, settings) leave the GC's young generations,
    # so collections during request bursts stay short (STYLE.md measurement note).
    gc.freeze()


async def shutdown(services: Services) -> None:
    for hook in SHUTDOWN_HOOKS:
        await hook(services)


Loop = Callable[[Services, asyncio.Event], Coroutine[Any, Any, None]]


def start_loop(services: Services, name: str, loop: Loop) -> None:
    """Run ``loop(services, stop)`` in the background until ``stop_loop`` sets ``stop``."""
    stop = asyncio.Event()
    services.extra[name] = (stop, asyncio.get_running_loop().create_task(loop(services, stop)))


async def stop_loop(services: Services, name: str) -> None:
    """Stop by signal, never by cancel: a write already queued must finish on the writer thread."""
    running = services.extra.pop(name, None)
    if running is not None:
        stop, task = running
        stop.set()
        await task
