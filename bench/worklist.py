"""Work-list benchmark: ``GET /api/v1/worklist`` over 50,000 cases, and ``/api/v1/health`` under that load.

Starts, each with uvicorn and one worker on 127.0.0.1 (DESIGN.md §9):
- **ours**: ``streetnode serve`` on a demo street node whose ``cases`` table holds N synthetic cases
  (services-hall applications and grid incidents over the street's communities and grids, every state,
  due dates from a month ago to a month ahead); C clients request work-list pages as the street admin
  (open cases by due date; "actions available to me"; overdue grid incidents; the next page by cursor)
  while one more client calls ``/api/v1/health`` every 20 ms;
- **baseline**: a bare Starlette endpoint on the same database file serving the same kind of page (the
  first 50 open cases by due date, decoded to JSON) from the thread pool, and a bare health endpoint,
  under the same load: the machine's limit for "a page of 50 cases over HTTP".

The synthetic cases are inserted straight into ``cases`` (the cache rows the list reads), not made
through the engine: this measures the list, not case creation (bench/ingest.py measures that).

Prints JSON lines: ``{"bench": "worklist_p95", ...}`` (target < 50 ms) and
``{"bench": "health_p99_under_worklist_load", ...}`` (target < 10 ms), each with its same-run baseline and
ratio. Bounded: a fixed number of requests per client and a time limit; only loopback addresses are used.

    python bench/worklist.py [--cases 50000] [--clients 4] [--per-client 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402

from bench.ingest import exchange  # noqa: E402  (one HTTP/1.1 keep-alive exchange for both benchmarks)
from server.domain.ids import now_china, uuid7  # noqa: E402
from tests.servers import free_port, stop, wait_healthy  # noqa: E402

TIME_LIMIT_S = 120.0
HEALTH_EVERY_S = 0.02
STREET = "440106/440106006000"


# --- data -------------------------------------------------------------------------------------------


def fill(db_path: Path, n: int, seed: int = 9) -> None:
    """N case cache rows spread over kinds, states, units and due dates (reproducible)."""
    from server.domain.grid import GRID_INCIDENT
    from server.domain.hall import SERVICE_APPLICATION

    rnd = random.Random(seed)
    conn = sqlite3.connect(db_path)
    units = [r[0] for r in conn.execute("SELECT path FROM org_units WHERE path = ? OR path LIKE ?",
                                        [STREET, STREET + "/%"])]
    grids = [r[0] for r in conn.execute("SELECT path FROM org_units WHERE kind = 'grid' AND path LIKE ?",
                                        [STREET + "/%"])]
    now = now_china()
    rows = []
    for i in range(n):
        hall = i % 2 == 0
        kind = SERVICE_APPLICATION if hall else GRID_INCIDENT
        state = rnd.choice(list(kind.states))
        path = rnd.choice(units) if hall else rnd.choice(grids or units)
        created = now - timedelta(days=rnd.uniform(0, 60))
        due = None if state in kind.terminal else (now + timedelta(days=rnd.uniform(-30, 30))).isoformat()
        data = ({"item_code": f"ITEM{i % 40}", "item_name": f"事项 {i % 40}", "applicant_name_masked": "张*丰",
                 "channel": "window", "item_level": "street"} if hall else
                {"category_code": "SJ0102", "category": {"name": "暴露垃圾"}, "description": f"第 {i} 号",
                 "grid_code": path.rsplit("/", 1)[-1], "emergency": i % 50 == 1})
        clocks = {"handle" if not hall else "promised": {"label": "时限", "due_at": due, "status": "running"}}
        rows.append((uuid7(), kind.name, f"BENCH-{i:06d}", path, "street", state, 1,
                     json.dumps(data, ensure_ascii=False), json.dumps(clocks, ensure_ascii=False), due,
                     created.isoformat(), (created + timedelta(hours=rnd.uniform(0, 48))).isoformat(), "bench"))
    conn.executemany("INSERT INTO cases (id, kind, number, org_path, owner_tier, state, version, data, clocks,"
                     " due_at, created_at, updated_at, origin_node) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


# --- the baseline server (run in its own process) -------------------------------------------------


def baseline_app(db_path: str) -> Any:
    import threading

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    local = threading.local()

    def page() -> list[dict[str, Any]]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(db_path, check_same_thread=False)
        cur = conn.execute("SELECT id, kind, number, state, org_path, due_at, data, updated_at FROM cases"
                           " WHERE state NOT IN ('delivered', 'not_accepted', 'closed', 'merged', 'not_filed')"
                           " ORDER BY COALESCE(due_at, '~'), id LIMIT 50")
        names = [d[0] for d in cur.description]
        return [{**dict(zip(names, r, strict=True)), "data": json.loads(r[6])} for r in cur.fetchall()]

    async def worklist(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "items": await run_in_threadpool(page)})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/api/v1/worklist", worklist), Route("/api/v1/health", health)])


def run_baseline(port: int, db_path: str) -> None:
    import uvicorn

    uvicorn.run(baseline_app(db_path), host="127.0.0.1", port=port, access_log=False, log_level="warning")


# --- load generation ---------------------------------------------------------------------------------


def request(host: str, path: str, headers: dict[str, str]) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


async def run_load(url: str, paths: list[str], headers: dict[str, str], clients: int,
                   per_client: int) -> tuple[list[float], list[float], int, float]:
    """Clients fetch work-list pages (one keep-alive connection each) while a prober calls health.

    Returns (work-list latencies, health latencies, failed requests, seconds)."""
    host_port = url.split("//", 1)[1]
    host, port = host_port.split(":")
    lists: list[float] = []
    health: list[float] = []
    failed = 0
    deadline = time.monotonic() + TIME_LIMIT_S
    done = asyncio.Event()

    async def client(k: int) -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for i in range(per_client):
                if time.monotonic() > deadline:
                    return
                path = paths[(k + i) % len(paths)]
                if "{cursor}" in path:  # the next page: ask the first one for its cursor
                    _, body = await exchange(reader, writer, request(host_port, path.split("&cursor")[0], headers))
                    path = path.replace("{cursor}", json.loads(body).get("next_cursor") or "")
                t0 = time.perf_counter()
                status, _ = await exchange(reader, writer, request(host_port, path, headers))
                lists.append(time.perf_counter() - t0)
                failed += status != 200
        finally:
            writer.close()

    async def prober() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not done.is_set():
                t0 = time.perf_counter()
                status, _ = await exchange(reader, writer, request(host_port, "/api/v1/health", {}))
                health.append(time.perf_counter() - t0)
                failed += status != 200
                await asyncio.sleep(HEALTH_EVERY_S)
        finally:
            writer.close()

    start = time.perf_counter()
    probe = asyncio.create_task(prober())
    await asyncio.gather(*(client(k) for k in range(clients)))
    secs = time.perf_counter() - start
    done.set()
    await probe
    return lists, health, failed, secs


async def idle_health(url: str, n: int = 200) -> list[float]:
    host_port = url.split("//", 1)[1]
    host, port = host_port.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    out = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            await exchange(reader, writer, request(host_port, "/api/v1/health", {}))
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.005)
    finally:
        writer.close()
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0 if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--per-client", type=int, default=200)
    parser.add_argument("--baseline-server", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        run_baseline(int(args.baseline_server[0]), args.baseline_server[1])
        return
    env = {**os.environ, "STREETNODE_SYNC_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="streetnode-bench-") as tmp:
        data_dir = Path(tmp) / "node"
        subprocess.run([sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "init", "--demo"],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        db_path = next(data_dir.rglob("*.db"))
        fill(db_path, args.cases)

        def spawn(*argv: str) -> tuple[subprocess.Popen[bytes], str]:
            port = free_port()
            proc = subprocess.Popen([sys.executable, *[a.replace("{port}", str(port)) for a in argv]], cwd=ROOT,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            return proc, f"http://127.0.0.1:{port}"

        # 1. the baseline: a bare page of 50 cases and a bare health check, same load, same file
        base, burl = spawn(__file__, "--baseline-server", "{port}", str(db_path))
        try:
            wait_healthy(burl, base)
            asyncio.run(run_load(burl, ["/api/v1/worklist"], {}, args.clients, 20))  # warm-up
            b_lists, b_health, _, _ = asyncio.run(run_load(burl, ["/api/v1/worklist"], {}, args.clients,
                                                           args.per_client))
        finally:
            stop(base)

        # 2. ours: the real node
        ours, url = spawn("-m", "server.cli", "--data-dir", str(data_dir), "serve", "--port", "{port}")
        try:
            wait_healthy(url, ours)
            idle = asyncio.run(idle_health(url))
            token = httpx2.post(url + "/api/v1/auth/login", json={"username": "admin", "password": "demo1234"}
                                ).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            paths = ["/api/v1/worklist", "/api/v1/worklist?actionable=1",
                     "/api/v1/worklist?kind=grid_incident&overdue=1", "/api/v1/worklist?sort=updated",
                     "/api/v1/worklist?kind=service_application&due_soon=1",
                     "/api/v1/worklist?limit=50&cursor={cursor}"]
            asyncio.run(run_load(url, paths, headers, args.clients, 20))  # warm-up
            lists, health, failed, secs = asyncio.run(run_load(url, paths, headers, args.clients, args.per_client))
        finally:
            stop(ours)

    p95, b95 = percentile(lists, 0.95), percentile(b_lists, 0.95)
    h99, idle99, bh99 = percentile(health, 0.99), percentile(idle, 0.99), percentile(b_health, 0.99)
    print(json.dumps({"bench": "worklist_p95", "value": round(p95, 2), "unit": "ms", "baseline": round(b95, 2),
                      "ratio": round(p95 / b95, 3), "n": len(lists), "cases": args.cases, "clients": args.clients,
                      "p50_ms": round(percentile(lists, 0.5), 2), "failed": failed,
                      "pages_per_s": round(len(lists) / secs, 1), "target_ms": 50}))
    print(json.dumps({"bench": "health_p99_under_worklist_load", "value": round(h99, 2), "unit": "ms",
                      "baseline": round(bh99, 2), "ratio": round(h99 / bh99, 3), "n": len(health),
                      "idle_p99_ms": round(idle99, 2), "p50_ms": round(percentile(health, 0.5), 2),
                      "target_ms": 10}))


if __name__ == "__main__":
    main()
