"""The resident's side: track a case with the receipt's query code, rate it with the receipt's token.

Residents have no accounts (DESIGN.md §3). Abuse resistance:
- an unknown query code and wrong phone digits answer the same 404, so neither can be probed;
- look-ups and ratings are rate-limited per client address and per query code
  (``settings.track_rate_per_minute``), which makes guessing an 8-character code from a 31-letter
  alphabet (31^8 ≈ 8.5e11) hopeless;
- a rating carries the receipt's token and no sign-in: a request with a staff bearer token is
  refused, so staff cannot rate on a resident's behalf (GB/T 39734 principle 4.1, voluntary).
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any

from sqlite_utils import Database

from schemas.hall import RatingRequest
from server.domain.ids import now_china
from server.errors import Forbidden, NotFound, RateLimited, ValidationFailed
from server.store import hall_ratings
from server.store.calendars import current_calendar
from server.web.api_hall import hall_key
from server.web.endpoint import PUBLIC, Endpoint, RequestContext, bearer_token

# fullmatch, ASCII classes: "$" also matches before a trailing newline, and \d accepts any script's digits
_CODE = re.compile(r"[0-9A-Z]{8}")
_PHONE4 = re.compile(r"[0-9]{4}")
_WINDOW_SECONDS = 60.0


class SlidingWindow:
    """At most ``limit`` hits per key within the last minute (in memory: a node is one process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.hits: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        q = self.hits.setdefault(key, deque())
        while q and q[0] <= now - _WINDOW_SECONDS:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        if len(self.hits) > 10_000:  # bound memory under a scan: forget idle keys
            for k in [k for k, v in self.hits.items() if not v or v[-1] <= now - _WINDOW_SECONDS]:
                del self.hits[k]
        return True


def _limit(ctx: RequestContext, code: str | None) -> None:
    limiter: SlidingWindow | None = ctx.services.extra.get("track_limiter")
    if limiter is None:
        limiter = ctx.services.extra["track_limiter"] = SlidingWindow(ctx.settings.track_rate_per_minute)
    now = time.monotonic()
    client = ctx.request.client.host if ctx.request.client else "unknown"
    by_client = limiter.allow(f"ip:{client}", now)
    by_code = code is None or limiter.allow(f"code:{code}", now)
    if not by_client or not by_code:
        raise RateLimited("查询过于频繁，请一分钟后再试", field="client" if not by_client else "query_code")


def _code(ctx: RequestContext) -> str:
    # Normalised before counting: "code", "CODE" and "CODE\n" are one code with one rate-limit counter.
    code = ctx.path["query_code"].strip().upper()
    valid = _CODE.fullmatch(code) is not None
    _limit(ctx, code if valid else None)  # a malformed code still counts against the client
    if not valid:
        raise ValidationFailed("查询码为 8 位字母或数字", field="query_code")
    return code


async def track(ctx: RequestContext) -> dict[str, Any]:
    code = _code(ctx)
    phone4 = ctx.query.get("phone4", "")
    if not _PHONE4.fullmatch(phone4):
        raise ValidationFailed("请输入申请时登记的手机号码后四位", field="phone4")
    key = hall_key(ctx.services)
    now = now_china()
    found = ctx.store.read(lambda db: hall_ratings.track(db, code, phone4, key, current_calendar(db), now))
    if found is None:
        # one answer for an unknown code and for wrong digits: no oracle for either
        raise NotFound("查询码或手机号码后四位不正确", field="query_code")
    return {"ok": True, "case": found}


async def rate(ctx: RequestContext) -> dict[str, Any]:
    if bearer_token(ctx.request) is not None:
        raise Forbidden("评价只能由申请人通过回执上的评价码提交，工作人员不能代为评价", field="authorization")
    code = _code(ctx)
    body: RatingRequest = ctx.body
    node_id = ctx.services.node_id

    def write(db: Database) -> dict[str, Any]:
        return hall_ratings.rate(db, code, body, now=now_china(), node_id=node_id, calendar=current_calendar(db))

    result = await ctx.store.awrite(write)
    return {"ok": True, **result}


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/track/{query_code}", track, PUBLIC, "凭查询码和手机号后四位查询办理进度",
             tags=("track",)),
    Endpoint("POST", "/api/v1/track/{query_code}/rating", rate, PUBLIC, "好差评（凭回执评价码）", body=RatingRequest,
             writes=True, tags=("track",)),
]
