"""Ingest benchmark: signed ``service_application`` envelopes into the real node, against a same-run baseline.

Starts, each with uvicorn and one worker on 127.0.0.1 (DESIGN.md §9):
- **ours**: ``streetnode serve`` on a fresh demo street node in a temporary data directory; N enrolled
  devices (one per client) each post their own pre-signed envelopes, one per request, to
  ``POST /sync/v1/outbox`` as the window clerk — the full path: token, signature, dedupe, intake
  handler (validation, ID-card checksum, encryption, case + event + audit + change log, receipt);
- **baseline**: a bare Starlette endpoint inserting the request body as one row into SQLite
  (WAL, synchronous=NORMAL) per request, the machine's limit for "one durable row per POST".

Prints one JSON line: ``{"bench": "ingest_http", "value", "unit", "baseline", "ratio", "n", "p50_ms", "p99_ms"}``.
Bounded: a fixed number of requests per client and a time limit; only loopback addresses are used.

    python bench/ingest.py [--clients 16] [--per-client 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402

from server.domain.crypto import SigningKey, b64url_encode  # noqa: E402
from server.domain.ids import now_china, uuid7  # noqa: E402
from server.domain.personal import id_card_check_char  # noqa: E402
from sync.envelopes import sign_envelope  # noqa: E402
from tests.servers import free_port, stop, wait_healthy  # noqa: E402

TIME_LIMIT_S = 120.0
ITEM = "GF00101000-440106000000-01"
ID17 = "44010619900101123"


# --- the baseline server (run in its own process) -------------------------------------------------


def baseline_app(db_path: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS submissions (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")

    async def submit(request: Request) -> JSONResponse:
        body = await request.body()
        cur = conn.execute("INSERT INTO submissions (body) VALUES (?)", [body.decode("utf-8")])
        return JSONResponse({"ok": True, "id": cur.lastrowid})

    return Starlette(routes=[Route("/submit", submit, methods=["POST"])])


def run_baseline(port: int, db_path: str) -> None:
    import uvicorn

    uvicorn.run(baseline_app(db_path), host="127.0.0.1", port=port, access_log=False, log_level="warning")


# --- load generation ---------------------------------------------------------------------------------


async def load(url: str, bodies: list[list[dict[str, Any]]], headers: dict[str, str],
               check: Any) -> tuple[float, list[float], int]:
    """Each client posts its bodies one after another; returns (seconds, latencies, successes)."""
    latencies: list[float] = []
    ok = 0
    deadline = time.monotonic() + TIME_LIMIT_S
    limits = httpx2.Limits(max_connections=len(bodies) + 4, max_keepalive_connections=len(bodies) + 4)
    async with httpx2.AsyncClient(limits=limits, timeout=60.0) as client:

        async def worker(items: list[dict[str, Any]]) -> None:
            nonlocal ok
            for body in items:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                resp = await client.post(url, json=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                ok += bool(check(resp))

        start = time.perf_counter()
        await asyncio.gather(*(worker(items) for items in bodies))
        return time.perf_counter() - start, latencies, ok


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def application(n: int) -> dict[str, Any]:
    return {"item_code": ITEM,
            "applicant": {"name": "张三丰", "id_card": ID17 + id_card_check_char(ID17), "phone": "13812345678",
                          "address": f"天河区石牌街道某路 {n} 号"},
            "materials": [], "note": ""}


def prepare_ours(url: str, clients: int, per_client: int) -> tuple[list[list[dict[str, Any]]], dict[str, str]]:
    login = httpx2.post(url + "/api/v1/auth/login", json={"username": "clerk", "password": "demo1234"}).json()
    admin = httpx2.post(url + "/api/v1/auth/login", json={"username": "admin", "password": "demo1234"}).json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    user = login["user"]
    bodies: list[list[dict[str, Any]]] = []
    for i in range(clients):
        code = httpx2.post(url + "/sync/v1/devices/enrolments", json={"label": f"bench-{i}"},
                           headers={"Authorization": f"Bearer {admin['token']}"})
        if code.status_code == 404:
            raise SystemExit("the node does not serve device enrolment (sync leg A) yet")
        code.raise_for_status()
        key = SigningKey.generate()
        reg = httpx2.post(url + "/sync/v1/devices/register",
                          json={"code": code.json().get("code") or code.json().get("enrolment_code"),
                                "public_key": b64url_encode(key.public_raw), "alg": key.alg, "label": f"bench-{i}"})
        reg.raise_for_status()
        device_id = reg.json()["device_id"]
        mine = []
        for seq in range(1, per_client + 1):
            sid = uuid7()
            env = sign_envelope({
                "submission_id": sid, "root_id": sid, "supersedes": None, "kind": "service_application",
                "form_id": "service_application", "form_version": "1", "org_path": user["org_path"],
                "device_id": device_id, "device_seq": seq, "user_id": user["id"],
                "created_at_device": now_china(), "payload": application(seq), "attachments": [],
            }, key)
            mine.append({"envelopes": [env]})
        bodies.append(mine)
    return bodies, {**headers}


def created(resp: httpx2.Response) -> bool:
    if resp.status_code != 200:
        return False
    results = resp.json().get("results", [])
    return bool(results) and results[0].get("status") == "created"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=150)
    parser.add_argument("--baseline-server", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        run_baseline(int(args.baseline_server[0]), args.baseline_server[1])
        return
    env = {**os.environ, "STREETNODE_SYNC_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="streetnode-bench-") as tmp:
        data = Path(tmp) / "node"
        cli = [sys.executable, "-m", "server.cli", "--data-dir", str(data)]
        subprocess.run([*cli, "init", "--demo"], cwd=ROOT, env=env, check=True, capture_output=True)
        port, bport = free_port(), free_port()
        ours = subprocess.Popen([*cli, "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        base = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(bport), str(Path(tmp) / "b.db")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            url, burl = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bport}"
            wait_healthy(url, ours)
            _wait_port(burl)
            n = args.clients * args.per_client
            bodies, headers = prepare_ours(url, args.clients, args.per_client)
            tiny = [[{"item": ITEM, "n": i * args.per_client + j} for j in range(args.per_client)]
                    for i in range(args.clients)]
            asyncio.run(load(burl + "/submit", [b[:10] for b in tiny], {}, lambda r: r.status_code == 200))
            b_secs, _b_lat, b_ok = asyncio.run(load(burl + "/submit", tiny, {}, lambda r: r.status_code == 200))
            o_secs, o_lat, o_ok = asyncio.run(load(url + "/sync/v1/outbox", bodies, headers, created))
        finally:
            stop(ours)
            stop(base)
        value, baseline = o_ok / o_secs, b_ok / b_secs
        print(json.dumps({"bench": "ingest_http", "value": round(value, 1), "unit": "submissions/s",
                          "baseline": round(baseline, 1), "ratio": round(value / baseline, 3), "n": n,
                          "created": o_ok, "clients": args.clients, "p50_ms": round(percentile(o_lat, 0.5), 2),
                          "p99_ms": round(percentile(o_lat, 0.99), 2)}))


def _wait_port(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx2.post(url + "/submit", json={"warm": True}, timeout=1.0)
            return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


if __name__ == "__main__":
    main()
