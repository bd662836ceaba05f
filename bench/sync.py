"""Sync benchmarks (issue 5; DESIGN.md §9): one JSON line per figure, each with a same-run baseline.

(a) ``sync_up_records``: up-sync of N (default 100,000) records street → hub over loopback, with every
    record's personal fields sealed to the district (X25519 + HKDF + AES-GCM, a key per record), every
    batch signed (Ed25519) and zstd-compressed. The street side is ``streetnode sync`` (its own process),
    the hub a uvicorn subprocess; rate from the session's own timer. Baseline: the same rows inserted in
    batches of 500 into SQLite plus Ed25519 signing of the same batches, in one process.
    ``sync_up_peak_rss_street`` / ``sync_up_peak_rss_hub``: peak RSS of each process (baseline: the peak
    RSS of this benchmark process after building the baseline).
(b) ``sync_noop_ms``: a whole session (handshake, nothing to push, pull, apply) when nothing changed,
    median of 20; baseline: one GET /api/v1/health round trip to the same hub.
(c) ``tablet_first_pull_s``: a tablet's first pull of 5,000 records in its grid through
    ``GET /sync/v1/changes`` (leg A), all pages; baseline: reading and JSON-encoding the same rows in-process.

Run: ``.venv/bin/python bench/sync.py`` (``SYNC_BENCH_N=20000`` for a quicker run). Not a test.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.config import Settings  # noqa: E402
from server.domain.canonical import canonical_json  # noqa: E402
from server.domain.crypto import SigningKey, b64url_encode  # noqa: E402
from server.domain.ids import now_china, uuid7  # noqa: E402
from server.node import ensure_keys  # noqa: E402
from server.store.db import Store, connect  # noqa: E402
from server.store.seed import DEMO_PASSWORD, init_node  # noqa: E402
from sync.pairing import pair_nodes  # noqa: E402
from sync.replication import run_sync  # noqa: E402

CLI = [sys.executable, "-m", "server.cli"]
GRID_PATH = "440106/440106006000/440106006001/440106006001-G01"  # grid1's grid in the demo data


def emit(bench: str, value: float, unit: str, baseline: float, n: int, **extra: Any) -> None:
    ratio = round(value / baseline, 3) if baseline else None
    print(json.dumps({"bench": bench, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
                      "ratio": ratio, "n": n, **extra}, ensure_ascii=False), flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init(settings: Settings) -> None:
    with Store(settings.db_path) as store:
        store.write(lambda db: init_node(db, role=settings.role, node_id=settings.node_id, org_unit="", demo=True))
    ensure_keys(settings)


def add_records(db_path: Path, n: int, org_path: str) -> None:
    """N records with personal fields, and their change-log rows, written the way a busy street would."""
    conn = connect(db_path)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_records (id TEXT PRIMARY KEY, org_path TEXT NOT NULL, kind TEXT,"
                 " state TEXT, title TEXT, detail TEXT, created_at TEXT, applicant_name TEXT, phone TEXT, id_card TEXT)")
    at = now_china().isoformat()
    for start in range(0, n, 5000):
        batch = []
        for i in range(start, min(start + 5000, n)):
            batch.append((uuid7(), org_path, "grid_incident", "reported", f"占道经营 第{i}号",
                          json.dumps({"category": "市容环境", "location": "石牌东路 12 号", "note": "早市摊档"},
                                     ensure_ascii=False), at, "张伟", f"138{i:08d}", f"44010619900101{i % 10000:04d}"))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO bench_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        conn.executemany("INSERT INTO change_log (entity, entity_id, op, org_path, at) VALUES ('bench_record', ?,"
                         " 'put', ?, ?)", [(r[0], org_path, at) for r in batch])
        conn.execute("COMMIT")
    conn.close()


def start_server(settings: Settings, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(settings.data_dir / "server.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([*CLI, "--data-dir", str(settings.data_dir), "serve", "--port", str(port)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def baseline_up(street_db: Path, workdir: Path) -> float:
    """Batched SQLite inserts of the same rows plus Ed25519 signing of the same batches, one process."""
    src = sqlite3.connect(street_db)
    src.row_factory = sqlite3.Row
    rows = [dict(r) for r in src.execute("SELECT * FROM bench_records ORDER BY rowid")]
    src.close()
    key = SigningKey.generate()
    dst = connect(workdir / "baseline.db")
    dst.execute("CREATE TABLE received (node_id TEXT, node_seq INTEGER, data TEXT, UNIQUE (node_id, node_seq))")
    started = time.perf_counter()
    for start in range(0, len(rows), 500):
        batch = rows[start:start + 500]
        body = canonical_json(batch)
        key.sign(body)
        dst.execute("BEGIN")
        dst.executemany("INSERT INTO received VALUES ('n', ?, ?)",
                        [(start + i, json.dumps(r, ensure_ascii=False)) for i, r in enumerate(batch)])
        dst.execute("COMMIT")
    elapsed = time.perf_counter() - started
    dst.close()
    return len(rows) / elapsed


def bench_up_and_noop(base: Path, n: int) -> None:
    hub_port = free_port()
    hub = Settings(role="district", node_id="bench-hub", data_dir=base / "hub")
    street = Settings(role="street", node_id="bench-street", data_dir=base / "street")
    init(hub)
    init(street)
    pair_nodes(hub, street, f"http://127.0.0.1:{hub_port}")
    add_records(street.db_path, n, GRID_PATH)
    base_rate = baseline_up(street.db_path, base)
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    proc = start_server(hub, hub_port, {"STREETNODE_ROLE": "district", "STREETNODE_NODE_ID": "bench-hub"})
    try:
        sync = subprocess.Popen([*CLI, "--data-dir", str(street.data_dir), "sync", "--json"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        street_peak = 0.0
        while sync.poll() is None:  # VmHWM is a high-water mark: the last sample before exit is the peak
            try:
                street_peak = max(street_peak, peak_rss_mb(sync.pid))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.05)
        out = sync.stdout.read() if sync.stdout else b""
        if sync.wait() != 0:
            raise RuntimeError(f"streetnode sync failed: {out[-500:]!r}")
        summary = json.loads(out)
        rows = summary["rows_sent"]
        rate = rows / summary["seconds"]
        emit("sync_up_records", rate, "records/s", base_rate, rows, seconds=summary["seconds"],
             batches=summary["batches"], codec="zstd-1", sealed_per_record=True)
        emit("sync_up_peak_rss_street", street_peak, "MB", self_rss, rows)
        emit("sync_up_peak_rss_hub", peak_rss_mb(proc.pid), "MB", self_rss, rows)
        with Store(street.db_path) as store:
            run_sync(store, street)  # settle: the packages applied above write echo rows
            times = []
            for _ in range(20):
                t = time.perf_counter()
                s = run_sync(store, street)
                times.append((time.perf_counter() - t) * 1000)
                assert s.rows_sent == 0
        health = []
        with httpx2.Client() as c:
            for _ in range(20):
                t = time.perf_counter()
                c.get(f"http://127.0.0.1:{hub_port}/api/v1/health")
                health.append((time.perf_counter() - t) * 1000)
        emit("sync_noop_ms", statistics.median(times), "ms", statistics.median(health), 20)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


def bench_tablet_pull(base: Path, n: int = 5000) -> None:
    port = free_port()
    street = Settings(role="street", node_id="bench-tablets", data_dir=base / "street2")
    init(street)
    add_records(street.db_path, n, GRID_PATH)
    proc = start_server(street, port, {"STREETNODE_NODE_ID": "bench-tablets", "STREETNODE_SYNC_ENABLED": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx2.Client(base_url=url, timeout=60) as c:
            def login(user: str) -> dict[str, str]:
                r = c.post("/api/v1/auth/login", json={"username": user, "password": DEMO_PASSWORD})
                return {"Authorization": f"Bearer {r.json()['token']}"}

            admin, grid = login("admin"), login("grid1")
            code = c.post("/sync/v1/devices/enrolments", json={"label": "测速平板"}, headers=admin).json()["code"]
            key = SigningKey.generate()
            device = c.post("/sync/v1/devices/register", json={"code": code, "public_key": b64url_encode(key.public_raw),
                                                                "alg": key.alg, "label": "测速平板"}).json()["device_id"]
            headers = {**grid, "X-Device-Id": device}
            started = time.perf_counter()
            cursor, got, pages = None, 0, 0
            while True:
                params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
                page = c.get("/sync/v1/changes", params=params, headers=headers).json()
                got += len(page["changes"])
                pages += 1
                cursor = page["next_cursor"]
                if not page["has_more"]:
                    break
            elapsed = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    t = time.perf_counter()
    conn = sqlite3.connect(street.db_path)
    conn.row_factory = sqlite3.Row
    data = [dict(r) for r in conn.execute("SELECT * FROM bench_records WHERE org_path = ?", [GRID_PATH])]
    json.dumps(data, ensure_ascii=False)
    conn.close()
    emit("tablet_first_pull_s", elapsed, "s", time.perf_counter() - t, got, pages=pages, scoped_records=n)


def main() -> None:
    n = int(os.environ.get("SYNC_BENCH_N", "100000"))
    base = Path(tempfile.mkdtemp(prefix="streetnode-bench-sync-"))
    try:
        bench_up_and_noop(base, n)
        bench_tablet_pull(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
