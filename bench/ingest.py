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


def run_intake_server(port: int, data_dir: str, public_key_b64: str) -> None:
    """The real app plus one bench-only route doing what the outbox does for one envelope, minus its own
    bookkeeping (dedupe table, receipts): token, signature check, envelope model, intake handler."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from schemas.envelope import SubmissionEnvelope
    from server.config import load_settings
    from server.domain.crypto import b64url_decode
    from server.node import data_key
    from server.store.calendars import current_calendar
    from server.store.hall import handle_application
    from server.store.intake import IntakeContext
    from server.web.app import create_app
    from server.web.endpoint import authenticate
    from sync.envelopes import verify_envelope

    settings = load_settings(data_dir=Path(data_dir))
    app = create_app(settings)
    services = app.state.services
    public = b64url_decode(public_key_b64)
    key = data_key(settings)

    async def intake(request: Request) -> JSONResponse:
        principal, _ = authenticate(services, request)
        env = (await request.json())["envelopes"][0]
        verify_envelope(env, public)
        parsed = SubmissionEnvelope.model_validate(env)

        def write(db: Any) -> Any:
            ctx = IntakeContext(node_id=settings.node_id, principal=principal, received_at=now_china(),
                                calendar=current_calendar(db), device_id=parsed.device_id,
                                device_time=parsed.created_at_device, services={"data_key": key})
            return handle_application(db, env["payload"], ctx)

        result = await services.store.awrite(write)
        return JSONResponse({"results": [{"submission_id": parsed.submission_id, "status": result.status,
                                          "record": result.record}]})

    app.router.routes.insert(0, Route("/bench/intake", intake, methods=["POST"]))
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# --- load generation ---------------------------------------------------------------------------------


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def encode_requests(host: str, path: str, bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[bytes]:
    """Pre-encoded HTTP/1.1 keep-alive requests: the load generator must cost far less than the servers."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    out = []
    for body in bodies:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        out.append(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}"
                   f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return out


async def load(url: str, bodies: list[list[dict[str, Any]]], headers: dict[str, str] | list[dict[str, str]],
               check: Any) -> tuple[float, list[float], int]:
    """Each client (one connection) posts its bodies one after another; returns (seconds, latencies, ok)."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    per_client = headers if isinstance(headers, list) else [headers] * len(bodies)
    requests = [encode_requests(host_port, path, items, h) for items, h in zip(bodies, per_client, strict=True)]
    latencies: list[float] = []
    ok = 0
    deadline = time.monotonic() + TIME_LIMIT_S

    async def worker(items: list[bytes]) -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in items:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                status, body = await exchange(reader, writer, request)
                latencies.append(time.perf_counter() - t0)
                ok += bool(check(status, body))
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(items) for items in requests))
    return time.perf_counter() - start, latencies, ok


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def application(n: int) -> dict[str, Any]:
    return {"item_code": ITEM,
            "applicant": {"name": "张三丰", "id_card": ID17 + id_card_check_char(ID17), "phone": "13812345678",
                          "address": f"天河区石牌街道某路 {n} 号"},
            "materials": [], "note": ""}


class Unavailable(Exception):
    pass


def prepare_ours(url: str, clients: int, per_client: int) -> tuple[list[list[dict[str, Any]]], list[dict[str, str]]]:
    login = httpx2.post(url + "/api/v1/auth/login", json={"username": "clerk", "password": "demo1234"}).json()
    admin = httpx2.post(url + "/api/v1/auth/login", json={"username": "admin", "password": "demo1234"}).json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    user = login["user"]
    bodies: list[list[dict[str, Any]]] = []
    device_headers: list[dict[str, str]] = []
    for i in range(clients):
        code = httpx2.post(url + "/sync/v1/devices/enrolments", json={"label": f"bench-{i}"},
                           headers={"Authorization": f"Bearer {admin['token']}"})
        if code.status_code in (404, 405):
            raise Unavailable("the node does not serve device enrolment and the outbox (sync leg A) yet")
        code.raise_for_status()
        key = SigningKey.generate()
        reg = httpx2.post(url + "/sync/v1/devices/register",
                          json={"code": code.json().get("code") or code.json().get("enrolment_code"),
                                "public_key": b64url_encode(key.public_raw), "alg": key.alg, "label": f"bench-{i}"})
        reg.raise_for_status()
        bodies += signed_bodies(key, user, 1, per_client, [reg.json()["device_id"]])
        device_headers.append({**headers, "X-Device-Id": reg.json()["device_id"]})
    return bodies, device_headers


def created(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    results = json.loads(body).get("results", [])
    return bool(results) and results[0].get("status") == "created"


def http_ok(status: int, body: bytes) -> bool:
    return status == 200


def signed_bodies(key: SigningKey, user: dict[str, Any], clients: int, per_client: int,
                  device_ids: list[str]) -> list[list[dict[str, Any]]]:
    bodies = []
    for i in range(clients):
        mine = []
        for seq in range(1, per_client + 1):
            sid = uuid7()
            mine.append({"envelopes": [sign_envelope({
                "submission_id": sid, "root_id": sid, "supersedes": None, "kind": "service_application",
                "form_id": "service_application", "form_version": "1", "org_path": user["org_path"],
                "device_id": device_ids[i], "device_seq": seq, "user_id": user["id"],
                "created_at_device": now_china(), "payload": application(seq), "attachments": [],
            }, key)]})
        bodies.append(mine)
    return bodies


def line(name: str, secs: float, lat: list[float], ok: int, baseline: float, n: int, **extra: Any) -> str:
    value = ok / secs
    return json.dumps({"bench": name, "value": round(value, 1), "unit": "submissions/s",
                       "baseline": round(baseline, 1), "ratio": round(value / baseline, 3), "n": n, "created": ok,
                       "p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
                       **extra})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=150)
    parser.add_argument("--baseline-server", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    parser.add_argument("--intake-server", nargs=3, metavar=("PORT", "DIR", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        run_baseline(int(args.baseline_server[0]), args.baseline_server[1])
        return
    if args.intake_server:
        run_intake_server(int(args.intake_server[0]), args.intake_server[1], args.intake_server[2])
        return
    env = {**os.environ, "STREETNODE_SYNC_ENABLED": "false", "PYTHONPATH": str(ROOT)}
    n = args.clients * args.per_client
    with tempfile.TemporaryDirectory(prefix="streetnode-bench-") as tmp:
        dirs = {name: Path(tmp) / name for name in ("node", "intake")}
        for d in dirs.values():
            subprocess.run([sys.executable, "-m", "server.cli", "--data-dir", str(d), "init", "--demo"], cwd=ROOT,
                           env=env, check=True, capture_output=True)

        def spawn(*argv: str) -> tuple[subprocess.Popen[bytes], str]:
            port = free_port()
            proc = subprocess.Popen([sys.executable, *[a.replace("{port}", str(port)) for a in argv]], cwd=ROOT,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            return proc, f"http://127.0.0.1:{port}"

        # 1. the baseline, alone on the machine
        base, burl = spawn(__file__, "--baseline-server", "{port}", str(Path(tmp) / "b.db"))
        try:
            _wait_port(burl)
            tiny = [[{"item": ITEM, "n": i * args.per_client + j} for j in range(args.per_client)]
                    for i in range(args.clients)]
            asyncio.run(load(burl + "/submit", [b[:10] for b in tiny], {}, http_ok))
            b_secs, _lat, b_ok = asyncio.run(load(burl + "/submit", tiny, {}, http_ok))
        finally:
            stop(base)
        baseline = b_ok / b_secs

        # 2. ours: the real node, envelopes through the outbox
        ours, url = spawn("-m", "server.cli", "--data-dir", str(dirs["node"]), "serve", "--port", "{port}")
        try:
            wait_healthy(url, ours)
            try:
                bodies, headers = prepare_ours(url, args.clients, args.per_client)
                o_secs, o_lat, o_ok = asyncio.run(load(url + "/sync/v1/outbox", bodies, headers, created))
                print(line("ingest_http", o_secs, o_lat, o_ok, baseline, n, clients=args.clients))
            except Unavailable as exc:  # report the baseline and why ours is missing; never a fake figure
                print(json.dumps({"bench": "ingest_http", "value": None, "unit": "submissions/s",
                                  "baseline": round(baseline, 1), "ratio": None, "n": n, "error": str(exc)}))
        finally:
            stop(ours)

        # 3. the hall's part of that path alone (token, signature, envelope model, intake handler)
        key = SigningKey.generate()
        srv, iurl = spawn(__file__, "--intake-server", "{port}", str(dirs["intake"]), b64url_encode(key.public_raw))
        try:
            wait_healthy(iurl, srv)
            login = httpx2.post(iurl + "/api/v1/auth/login", json={"username": "clerk", "password": "demo1234"}).json()
            bearer = {"Authorization": f"Bearer {login['token']}"}
            devices = [f"bench-{i}" for i in range(args.clients)]
            bodies = signed_bodies(key, login["user"], args.clients, args.per_client, devices)
            i_secs, i_lat, i_ok = asyncio.run(load(iurl + "/bench/intake", bodies, bearer, created))
            print(line("ingest_http_intake_only", i_secs, i_lat, i_ok, baseline, n, clients=args.clients))
        finally:
            stop(srv)


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
