"""``make demo``: a district hub and a pilot street node with demo data, in one process.

Both servers run in the foreground on one event loop; Ctrl-C stops both. Data lives
under ``var/demo/`` and is reused on the next run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
import uvicorn

from server.config import Settings
from server.node import ensure_keys
from server.store.db import Store
from server.store.seed import DEMO_PASSWORD, init_node
from server.web.app import create_app


def demo_settings(base: Path, street_port: int, hub_port: int) -> tuple[Settings, Settings]:
    hub = Settings(role="district", node_id="tianhe-hub", data_dir=base / "hub", port=hub_port, org_unit="440106")
    street = Settings(role="street", node_id="shipai-node", data_dir=base / "street", port=street_port,
                      hub_url=f"http://127.0.0.1:{hub_port}")
    return hub, street


def prepare(settings: Settings) -> dict[str, object]:
    with Store(settings.db_path) as store:
        result = store.write(lambda db: init_node(db, role=settings.role, node_id=settings.node_id,
                                                  org_unit=settings.org_unit if settings.role == "street" else "",
                                                  demo=True))
    ensure_keys(settings)
    return result


def run_demo(base: Path, street_port: int, hub_port: int) -> None:
    hub, street = demo_settings(base, street_port, hub_port)
    for s in (hub, street):
        result = prepare(s)
        state = "新建" if result["created"] else "沿用已有数据"
        click.echo(f"{'区级枢纽' if s.role == 'district' else '试点街道节点'} {s.node_id}：{state}（{s.data_dir}）")
    from sync.pairing import pair_nodes

    pair_nodes(hub, street, f"http://127.0.0.1:{hub_port}")  # enrol the street at the hub, pin the hub
    click.echo("")
    click.echo(f"  街道节点（PWA）：http://127.0.0.1:{street_port}/")
    click.echo(f"  街道节点健康检查：http://127.0.0.1:{street_port}/api/v1/health")
    click.echo(f"  区级枢纽：http://127.0.0.1:{hub_port}/api/v1/health")
    click.echo(f"  演示账号（密码均为 {DEMO_PASSWORD}）：街道 admin clerk handler reviewer supervisor leader "
               "dispatcher grid1 grid2 community1；区级 district_admin approver")
    # The console script next to this interpreter: `make demo` users have no activated venv.
    cli = Path(sys.executable).parent / "streetnode"
    command = os.path.relpath(cli) if cli.exists() else "streetnode"
    click.echo(f"  立即同步（街道 ⇄ 区级）：{command} --data-dir {street.data_dir} sync")
    click.echo("  按 Ctrl-C 同时停止两个服务")
    click.echo("")

    async def main() -> None:
        servers = [
            uvicorn.Server(uvicorn.Config(create_app(s), host="127.0.0.1", port=s.port, access_log=False,
                                          log_level="warning"))
            for s in (hub, street)
        ]
        await asyncio.gather(*(srv.serve() for srv in servers))

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
