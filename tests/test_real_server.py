"""The real server in a subprocess: `streetnode serve`, and `streetnode demo` serving both roles."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx2

from server.store.seed import DEMO_PASSWORD
from tests.servers import free_port, start, stop, streetnode, wait_healthy


def test_serve_answers_health_and_login_over_real_http(tmp_path: Path) -> None:
    data = str(tmp_path / "node")
    streetnode("--data-dir", data, "init", "--demo")
    port = free_port()
    proc = start("--data-dir", data, "serve", "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        health = wait_healthy(base, proc)
        assert health["role"] == "street" and health["database"]["journal_mode"] == "wal"
        r = httpx2.post(base + "/api/v1/auth/login", json={"username": "clerk", "password": DEMO_PASSWORD})
        assert r.status_code == 200 and r.json()["token"]
        r = httpx2.post(base + "/api/v1/auth/login", content=b"{bad", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "malformed_json"
    finally:
        assert stop(proc) == 0


def test_demo_runs_hub_and_street_node_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    street_port, hub_port = free_port(), free_port()
    args = ("demo", "--dir", str(tmp_path / "demo"), "--street-port", str(street_port), "--hub-port", str(hub_port))
    first_epoch = None
    for run in range(2):  # the second run reuses the data
        proc = start(*args)
        try:
            street = wait_healthy(f"http://127.0.0.1:{street_port}", proc, timeout=40)
            hub = wait_healthy(f"http://127.0.0.1:{hub_port}", proc, timeout=40)
            assert (street["role"], hub["role"]) == ("street", "district")
            if run == 1:
                assert street["epoch"] == first_epoch
            first_epoch = street["epoch"]
        finally:
            stop(proc, signal.SIGINT)
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "demo1234" in output and f":{street_port}/" in output
        assert ("沿用已有数据" in output) == (run == 1)
