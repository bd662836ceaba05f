"""The nightly sync job (APScheduler 3.x), started with the street node's server.

One cron job at ``settings.sync_time`` in ``settings.sync_timezone`` (default 02:00 Asia/Shanghai) with
``max_instances=1, coalesce=True`` and a misfire grace of an hour: a node that was off at 02:00 syncs
when it comes back within the hour, and a backlog of missed runs collapses into one. While the hub is
unreachable the job schedules one-off retries with exponential backoff (1, 2, 4 … min, capped at an
hour, at most ``max_retries`` a night); the next night starts afresh. A lock keeps the nightly run,
a retry and nothing else from ever running two sessions at once in this process (``streetnode sync``
from another process is kept out by the session's owner pid, ``sync.replication``).

Started by ``startup_hook`` only when the node is a street, ``sync_enabled`` is on and a hub URL is set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from server.config import Settings
from sync.pairing import load_pin
from sync.transport import HubUnreachable

__all__ = ["SyncScheduler", "backoff_seconds", "shutdown_hook", "should_schedule", "startup_hook"]

log = logging.getLogger("streetnode.sync")
NIGHTLY_ID = "streetnode-sync-nightly"
RETRY_ID = "streetnode-sync-retry"
MISFIRE_GRACE_S = 3600


def backoff_seconds(attempt: int, base: int = 60, cap: int = 3600) -> int:
    """Seconds before retry ``attempt`` (1-based): 60, 120, 240 … capped at an hour."""
    return int(min(base * 2 ** max(attempt - 1, 0), cap))


def should_schedule(settings: Settings) -> bool:
    if settings.role != "street" or not settings.sync_enabled:
        return False
    pin = load_pin(settings)
    return bool(settings.hub_url or (pin is not None and pin.url))


class SyncScheduler:
    def __init__(self, run: Callable[[str], Any], sync_time: str, timezone: str, *, max_retries: int = 12,
                 clock: Callable[[], datetime] | None = None):
        self.run = run
        self.tz = ZoneInfo(timezone)
        self.max_retries = max_retries
        self.clock = clock or (lambda: datetime.now(self.tz))
        self.attempts = 0
        self._lock = threading.Lock()
        hour, minute = (int(x) for x in sync_time.split(":"))
        self.scheduler = BackgroundScheduler(timezone=self.tz)
        self.scheduler.add_job(self.job, CronTrigger(hour=hour, minute=minute, timezone=self.tz), args=["nightly"],
                               id=NIGHTLY_ID, max_instances=1, coalesce=True, misfire_grace_time=MISFIRE_GRACE_S,
                               replace_existing=True)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def next_run(self, job_id: str = NIGHTLY_ID) -> datetime | None:
        job = self.scheduler.get_job(job_id)
        return getattr(job, "next_run_time", None) if job else None

    def job(self, trigger: str) -> str:
        """Run one session; on an unreachable hub schedule the next retry. Returns what happened."""
        if trigger == "nightly":
            self.attempts = 0
        if not self._lock.acquire(blocking=False):
            return "busy"
        try:
            self.run(trigger)
        except HubUnreachable as exc:
            self.attempts += 1
            if self.attempts > self.max_retries:
                log.warning("hub unreachable, giving up until tomorrow: %s", exc)
                return "gave_up"
            delay = backoff_seconds(self.attempts)
            log.info("hub unreachable (attempt %d), retrying in %ds", self.attempts, delay)
            if self.scheduler.get_job(RETRY_ID) is not None:
                self.scheduler.remove_job(RETRY_ID)
            self.scheduler.add_job(self.job, DateTrigger(self.clock() + timedelta(seconds=delay)), args=["retry"],
                                   id=RETRY_ID, max_instances=1, coalesce=True,
                                   misfire_grace_time=MISFIRE_GRACE_S, replace_existing=True)
            return "retry_scheduled"
        except Exception:  # a refusal or a bug: logged, the next night tries again
            log.exception("sync run failed")
            return "failed"
        finally:
            self._lock.release()
        self.attempts = 0
        return "ok"


async def startup_hook(services: Any) -> None:
    settings: Settings = services.settings
    if not should_schedule(settings):
        return
    from sync.replication import run_sync

    sched = SyncScheduler(lambda trigger: run_sync(services.store, settings, trigger=trigger), settings.sync_time,
                          settings.sync_timezone)
    sched.start()
    services.extra["sync_scheduler"] = sched


async def shutdown_hook(services: Any) -> None:
    sched = services.extra.pop("sync_scheduler", None)
    if sched is not None:
        sched.shutdown()
