"""Start-up and shutdown of the running node: every background task in one explicit list.

The order is the list's order (issue 9: registration is explicit, not a side effect of importing an
API module): the hall's data key and catalogue first, then the node's timers (the first round at
once: a node started after a weekend deems what fell due meanwhile), the grid's emergency watch
and the sync scheduler. Each loop stops by signal, never by cancel, so a write it queued finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlite_utils import Database

from server.domain.ids import now_china
from server.store import reactions
from server.store.calendars import current_calendar
from server.web.endpoint import Services

log = logging.getLogger("streetnode.lifecycle")
Hook = Callable[[Services], Coroutine[Any, Any, None]]
TIMER_INTERVAL_SECONDS = 60.0
TIMER_LOOP = "timers"

# Hooks of optional parts added at run time (kept for extensions; the node's own are in ``hooks``).
STARTUP_HOOKS: list[Hook] = []
SHUTDOWN_HOOKS: list[Hook] = []


def hooks() -> list[tuple[Hook | None, Hook | None]]:
    """(startup, shutdown) of every part of the node, in start order (stopped in reverse)."""
    from server.web import api_grid, api_hall
    from sync import scheduler

    return [
        (api_hall.hall_startup, None),
        (timers_startup, timers_shutdown),
        (api_grid.grid_startup, api_grid.grid_shutdown),
        (scheduler.startup_hook, scheduler.shutdown_hook),
    ]


async def startup(services: Services) -> None:
    for start, _ in hooks():
        if start is not None:
            await start(services)
    for hook in STARTUP_HOOKS:
        await hook(services)
    # Long-lived objects (route table, kinds, settings) leave the GC's young generations,
    # so collections during request bursts stay short (STYLE.md measurement note).
    gc.freeze()


async def shutdown(services: Services) -> None:
    for hook in SHUTDOWN_HOOKS:
        await hook(services)
    for _, stop in reversed(hooks()):
        if stop is not None:
            await stop(services)


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


# --- the node's timers and reactions ------------------------------------------------------------


async def fire_timers_once(services: Services) -> reactions.TimerRun:
    node_id = services.node_id

    def write(db: Database) -> reactions.TimerRun:
        return reactions.fire_due_timers(db, current_calendar(db), now_china(), node_id)

    return await services.store.awrite(write)


async def _timer_loop(services: Services, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TIMER_INTERVAL_SECONDS)
        if not stop.is_set():
            try:
                await fire_timers_once(services)
            except Exception:  # a failed round (disk full) must not end the node's clock
                log.exception("firing timers failed")


async def timers_startup(services: Services) -> None:
    await fire_timers_once(services)
    start_loop(services, TIMER_LOOP, _timer_loop)


async def timers_shutdown(services: Services) -> None:
    await stop_loop(services, TIMER_LOOP)
