"""Fault tests with real processes: a street node and a district hub as uvicorn subprocesses on free ports
with real SQLite files. kill -9 of either at random points during a sync, a TCP proxy that cuts connections
mid-batch, a replayed and a tampered batch over real HTTP, a truncated bundle through the real CLI, and a
hub restored from a backup. After every fault and a rerun, every record is on both sides exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from server.config import Settings
from server.domain.ids import now_china
from server.store.calendars import publish_version
from server.store.db import Store
from server.store.seed import DEMO_PASSWORD
from sync import wire
from sync.pairing import hub_sheet, pin_hub, street_side
from sync.replication import up_replication_id
from sync.up_batches import build_batch
from tests.servers import ROOT, STREETNODE, free_port, stop, streetnode, wait_healthy
from tests.syncb.conftest import make_pair
from tests.syncb.test_down_packages import ENTRIES

pytestmark = pytest.mark.slow

KILL_TRIALS = 20  # 10 kills of the street node, 10 of the hub
CASES_PER_TRIAL = 40  # 80 change-log rows, in batches of 10


@dataclass
class Proc:
    settings: Settings
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Output to a file, not a pipe: a pipe nobody reads would block a chatty server.
        log = open(self.settings.data_dir / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([*STREETNODE, "--data-dir", str(self.settings.data_dir), "serve", "--port",
                                      str(self.port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env})
        log.close()
        wait_healthy(self.url, self.proc, timeout=30)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@dataclass
class Cluster:
    hub: Proc
    street: Proc
    token: str = ""
    rng: random.Random = field(default_factory=lambda: random.Random(20261001))

    def login(self) -> None:
        r = httpx2.post(self.street.url + "/api/v1/auth/login", json={"username": "admin", "password": DEMO_PASSWORD})
        self.token = r.json()["token"]

    def run_sync(self, timeout: float = 60) -> httpx2.Response:
        return httpx2.post(self.street.url + "/api/v1/hub-sync/run", json={"batch_rows": 10}, timeout=timeout,
                           headers={"Authorization": f"Bearer {self.token}"})

    def sync_until_done(self) -> dict[str, Any]:
        for _ in range(5):
            resp = self.run_sync()
            if resp.status_code == 200:
                return resp.json()["summary"]  # type: ignore[no-any-return]
            time.sleep(0.2)
        raise AssertionError(f"sync does not complete: {resp.status_code} {resp.text}")

    def settle(self) -> dict[str, Any]:
        """Sync until a session moves nothing: applying packages writes echo rows the next session carries."""
        first = self.sync_until_done()
        for _ in range(3):
            quiet = self.sync_until_done()
            if quiet["rows_sent"] == 0 and quiet["packages_applied"] == 0:
                return first
        raise AssertionError("sync does not settle")

    def add_cases(self, n: int) -> None:
        # Written by another process than the node's server, as SQLite allows (WAL, busy timeout).
        from tests.kinds_for_tests import TEST_PERMIT
        from tests.syncb.conftest import Pair

        with Store(self.street.settings.db_path) as s:
            helper = Pair(self.hub.settings, self.street.settings, None, s)  # type: ignore[arg-type]
            for i in range(n):
                helper.new_case(f"故障测试 {i}", kind=TEST_PERMIT, applicant_name="王五", phone="13900001111")

    def publish_calendar(self, version: str) -> None:
        with Store(self.hub.settings.db_path) as h:
            h.write(lambda db: publish_version(db, version=version, entries=ENTRIES, source_notice="测试",
                                               actor="district_admin", role="district_admin", now=now_china()))


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def assert_exactly_once(c: Cluster) -> None:
    street, hub = c.street.settings.db_path, c.hub.settings.db_path
    log = rows(street, "SELECT node_seq, entity, entity_id FROM change_log ORDER BY node_seq")
    got = rows(hub, "SELECT node_seq, entity, entity_id FROM hub_rows WHERE node_id = 'test-street' ORDER BY node_seq")
    assert got == log
    assert rows(hub, "SELECT COUNT(*) FROM hub_records WHERE entity = 'case'") == rows(street, "SELECT COUNT(*) FROM cases")
    published = set(rows(hub, "SELECT stream, seq, package_id FROM hub_packages WHERE ptype != 'void'"
                                " AND stream IN ('all', 'node:test-street')"))
    applied = set(rows(street, "SELECT stream, seq, package_id FROM sync_inbox WHERE applied_at IS NOT NULL"
                                " AND ptype != 'void'"))
    assert published == applied
    assert set(rows(street, "SELECT version FROM calendar_versions")) == set(rows(hub, "SELECT version FROM calendar_versions"))
    ack = rows(hub, "SELECT acked_through_seq FROM hub_nodes WHERE node_id = 'test-street'")[0][0]
    assert ack == log[-1][0]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    hub_s, street_s = make_pair(tmp_path_factory.mktemp("faults"))
    hub = Proc(hub_s, {"STREETNODE_ROLE": "district", "STREETNODE_NODE_ID": "test-hub"})
    street = Proc(street_s, {"STREETNODE_NODE_ID": "test-street", "STREETNODE_SYNC_ENABLED": "false"})
    pin_hub(street_s, {**_sheet(hub_s), "url": hub.url})
    hub.start()
    street.start()
    c = Cluster(hub, street)
    c.login()
    try:
        yield c
    finally:
        street.stop()
        hub.stop()


def _sheet(hub: Settings) -> dict[str, Any]:
    with Store(hub.db_path) as h:
        return h.read(lambda db: hub_sheet(hub, db))


@pytest.mark.parametrize("trial", range(KILL_TRIALS))
def test_kill_9_of_node_or_hub_mid_sync_then_rerun_leaves_every_record_exactly_once(cluster: Cluster,
                                                                                   trial: int) -> None:
    c = cluster
    victim = c.street if trial % 2 == 0 else c.hub
    c.add_cases(CASES_PER_TRIAL)
    if trial % 5 == 0:
        c.publish_calendar(f"fault-{trial}")  # down-packages in flight as well
    delay = c.rng.uniform(0.0, 0.2)  # a session of 8 batches takes about 0.15-0.2 s here
    result: dict[str, Any] = {}
    caller = threading.Thread(target=lambda: result.setdefault("resp", _quiet(c.run_sync)))
    caller.start()
    time.sleep(delay)
    victim.kill9()
    caller.join(timeout=60)
    victim.start()
    if victim is c.street:
        c.login()
    summary = c.settle()
    assert summary["package_errors"] == []
    assert_exactly_once(c)


def _quiet(call: Any) -> Any:
    try:
        return call()
    except httpx2.HTTPError as exc:  # the victim died under the request
        return exc


class CuttingProxy:
    """TCP proxy that closes the first ``cuts`` connections after ``after`` bytes from the client."""

    def __init__(self, upstream_port: int, after: int, cuts: int):
        self.upstream_port, self.after, self.cuts = upstream_port, after, cuts
        self.port = free_port()
        self.cut_done = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        cut = self.cut_done < self.cuts
        if cut:
            self.cut_done += 1

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None) -> None:
            sent = 0
            try:
                while data := await src.read(16384):
                    if limit is not None and sent + len(data) > limit:
                        dst.write(data[: limit - sent])
                        await dst.drain()
                        break  # cut mid-request
                    dst.write(data)
                    await dst.drain()
                    sent += len(data)
            except (ConnectionError, OSError):
                pass
            finally:
                for w in (writer, up_w):
                    w.close()

        await asyncio.gather(pump(reader, up_w, self.after if cut else None), pump(up_r, writer, None))

    def __enter__(self) -> CuttingProxy:
        self.thread.start()
        self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_a_proxy_cutting_connections_mid_batch_loses_and_duplicates_nothing(cluster: Cluster) -> None:
    c = cluster
    c.add_cases(60)
    with CuttingProxy(c.hub.port, after=12_000, cuts=3) as proxy:
        pin_hub(c.street.settings, {**_sheet(c.hub.settings), "url": f"http://127.0.0.1:{proxy.port}"})
        try:
            failures = 0
            while (resp := c.run_sync()).status_code != 200:
                assert resp.status_code == 503 and resp.json()["code"] == "hub_unreachable"
                failures += 1
                assert failures <= 5
            assert proxy.cut_done == 3 and failures >= 1
        finally:
            pin_hub(c.street.settings, {**_sheet(c.hub.settings), "url": c.hub.url})
    c.settle()
    assert_exactly_once(c)


def test_a_replayed_batch_and_a_tampered_signature_over_real_http(cluster: Cluster) -> None:
    c = cluster
    with Store(c.street.settings.db_path) as s:
        side = s.read(lambda db: street_side(c.street.settings, db))
        assert side is not None
        built = s.read(lambda db: build_batch(db, side, 0, session_id="replay", replication_id=up_replication_id(side),
                                              now=now_china(), max_rows=50))
    assert built is not None
    body, headers = wire.sign_message(side.key, side.node_id, "up_batch", built.batch)
    before = rows(c.hub.settings.db_path, "SELECT COUNT(*) FROM hub_rows")
    for _ in range(3):
        resp = httpx2.post(c.hub.url + "/hub/v1/up/batch", content=body, headers=headers)
        assert resp.status_code == 200
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    resp = httpx2.post(c.hub.url + "/hub/v1/up/batch", content=tampered, headers=headers)
    assert resp.status_code == 401 and resp.json()["code"] == "bad_signature"
    assert rows(c.hub.settings.db_path, "SELECT COUNT(*) FROM hub_rows") == before
    assert_exactly_once(c)


def test_a_truncated_bundle_is_refused_by_the_real_cli_and_a_good_one_imports_once(cluster: Cluster,
                                                                                    tmp_path: Path) -> None:
    c = cluster
    c.add_cases(5)
    bundle = tmp_path / "up.bundle"
    streetnode("--data-dir", str(c.street.settings.data_dir), "bundle", "export", "--to", str(bundle))
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    before = rows(c.hub.settings.db_path, "SELECT COUNT(*) FROM hub_rows")
    env = {**os.environ, **c.hub.env}
    out = subprocess.run([*_cli(), "--data-dir", str(c.hub.settings.data_dir), "bundle", "import", str(cut)],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 1 and "截断" in out.stderr and "truncated" in out.stderr
    assert rows(c.hub.settings.db_path, "SELECT COUNT(*) FROM hub_rows") == before
    for _ in range(2):  # the good one, twice: harmless
        streetnode("--data-dir", str(c.hub.settings.data_dir), "bundle", "import", str(bundle), env=c.hub.env)
    c.settle()
    assert_exactly_once(c)


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "server.cli"]


def test_a_hub_restored_from_backup_gets_a_new_epoch_and_the_street_resends_what_it_lacks(
        cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    c.sync_until_done()
    backup = tmp_path / "hub-backup.db"
    Store(c.hub.settings.db_path).backup_to(backup)
    old_epoch = rows(c.hub.settings.db_path, "SELECT value FROM meta WHERE key = 'epoch'")[0][0]
    c.add_cases(30)
    c.publish_calendar("after-backup")
    c.sync_until_done()
    lost_rows = rows(c.hub.settings.db_path, "SELECT COUNT(*) FROM hub_rows")[0][0] - \
        rows(backup, "SELECT COUNT(*) FROM hub_rows")[0][0]
    assert lost_rows >= 60
    c.hub.stop()
    streetnode("--data-dir", str(c.hub.settings.data_dir), "restore", str(backup), "--yes", env=c.hub.env)
    assert rows(c.hub.settings.db_path, "SELECT value FROM meta WHERE key = 'epoch'")[0][0] != old_epoch
    c.hub.start()
    summary = c.sync_until_done()
    assert summary["counts"]["created"] >= lost_rows  # resent: the hub lacked them
    c.publish_calendar("after-restore")  # the restored hub publishes after what the street already applied
    c.settle()
    street_versions = {v for (v,) in rows(c.street.settings.db_path, "SELECT version FROM calendar_versions")}
    assert {"after-backup", "after-restore"} <= street_versions
    log = rows(c.street.settings.db_path, "SELECT node_seq, entity, entity_id FROM change_log ORDER BY node_seq")
    got = rows(c.hub.settings.db_path,
               "SELECT node_seq, entity, entity_id FROM hub_rows WHERE node_id = 'test-street' ORDER BY node_seq")
    assert got == log
    applied = json.loads(rows(c.hub.settings.db_path, "SELECT down_applied FROM hub_nodes")[0][0])
    assert applied["all"] >= 1
