"""The ``streetnode`` command: a thin shell over the library (STYLE.md, after sqlite-utils)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from server.config import Settings, load_settings
from server.store.db import Store


def _settings(ctx: click.Context) -> Settings:
    obj: Settings = ctx.obj
    return obj


@click.group()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), envvar="STREETNODE_CONFIG",
              help="TOML settings file (see ops/node.example.toml)")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="override data_dir")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, data_dir: Path | None) -> None:
    """streetnode: offline-first street node and district hub for open government work."""
    ctx.obj = load_settings(config_file, data_dir=data_dir)


@main.group()
def config() -> None:
    """Inspect configuration."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the effective settings as JSON (defaults, TOML file and STREETNODE_* merged)."""
    s = _settings(ctx)
    click.echo(json.dumps(s.model_dump(mode="json"), ensure_ascii=False, indent=2))


@main.command()
@click.option("--role", type=click.Choice(["street", "district"]), default=None, help="node role")
@click.option("--node-id", default=None, help="stable node id")
@click.option("--org-unit", default=None, help="street code (street role); default the first pilot street")
@click.option("--demo", is_flag=True, help="also create demo accounts (password demo1234)")
@click.pass_context
def init(ctx: click.Context, role: str | None, node_id: str | None, org_unit: str | None, demo: bool) -> None:
    """Create the database, the org tree and node identity. Safe to run twice."""
    s = _settings(ctx)
    role = role or s.role
    node_id = node_id or s.node_id
    from server.store.seed import DEMO_PASSWORD, init_node

    with Store(s.db_path) as store:
        result = store.write(
            lambda db: init_node(db, role=role, node_id=node_id, org_unit=org_unit or s.org_unit, demo=demo)
        )
    from server.node import ensure_keys

    ensure_keys(s)
    if not result["created"]:
        click.echo(f"节点已初始化：{result['node_id']}（{result['org_unit']}），未做改动")
        return
    click.echo(f"已初始化 {role} 节点 {node_id}，组织单元 {result['org_unit']}，共 {result['units']} 个单元")
    for username, name, r in result.get("accounts", []):
        click.echo(f"  演示账号 {username:<14} {r:<24} {name}（密码 {DEMO_PASSWORD}）")


@main.command()
@click.option("--list", "list_only", is_flag=True, help="list applied and pending migrations, apply nothing")
@click.pass_context
def migrate(ctx: click.Context, list_only: bool) -> None:
    """Apply pending database migrations (also done at every start)."""
    from sqlite_utils import Database

    from server.store.db import connect
    from server.store.schema import applied_migrations, apply_migrations, pending_migrations

    s = _settings(ctx)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(connect(s.db_path))
    try:
        if list_only:
            for mset, name, at in applied_migrations(db):
                click.echo(f"[x] {mset}:{name}  {at}")
            for mset, name in pending_migrations(db):
                click.echo(f"[ ] {mset}:{name}")
            return
        pending = pending_migrations(db)
        apply_migrations(db)
        click.echo(f"已应用 {len(pending)} 个迁移" if pending else "数据库已是最新")
    finally:
        db.conn.close()


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, path: Path) -> None:
    """Online backup of the database to PATH (the node may keep running)."""
    s = _settings(ctx)
    if not s.db_path.exists():
        raise click.ClickException(f"数据库不存在：{s.db_path}")
    Store(s.db_path).backup_to(path)
    click.echo(f"已备份到 {path}（{path.stat().st_size} 字节）")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_context
def restore(ctx: click.Context, path: Path, yes: bool) -> None:
    """Replace the database with a backup (stop the node first). The node gets a new epoch."""
    import sqlite3

    s = _settings(ctx)
    try:
        check = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        ok = check.execute("PRAGMA integrity_check").fetchone()[0]
        check.close()
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"备份文件无效：{exc}") from None
    if ok != "ok":
        raise click.ClickException(f"备份文件损坏：{ok}")
    if s.db_path.exists() and not yes:
        click.confirm(f"将用 {path} 覆盖 {s.db_path}，确定吗？", abort=True)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(s.db_path) + suffix).unlink(missing_ok=True)
    shutil.copyfile(path, s.db_path)
    from server.store.seed import new_epoch

    with Store(s.db_path) as store:
        epoch = store.write(lambda db: new_epoch(db, f"restored from {path.name}"))
    click.echo(f"已从 {path} 恢复；新纪元 {epoch}（平板与区级枢纽将重新同步）")


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Walk the audit chain end to end; exit 1 and name the first broken link if any."""
    from server.store.audit import verify_chain

    s = _settings(ctx)
    with Store(s.db_path) as store:
        report = store.read(verify_chain)
    if report.ok:
        click.echo(f"审计链完整：{report.entries} 条，链头 {report.head_hash}")
        return
    click.echo(f"审计链断裂：第 {report.broken_at} 条 —— {report.reason}（此前 {report.entries} 条完好）", err=True)
    sys.exit(1)


@main.group()
def cases() -> None:
    """Case log checks."""


@cases.command("verify")
@click.pass_context
def cases_verify(ctx: click.Context) -> None:
    """Rebuild every case from its event log and compare with the stored row."""
    from server.domain.ids import now_china
    from server.store.calendars import current_calendar
    from server.store.cases import rebuild_case

    s = _settings(ctx)
    with Store(s.db_path) as store:
        ids = [r["id"] for r in store.query("SELECT id FROM cases")]
        cal = store.read(current_calendar)
        bad = {}
        with click.progressbar(ids, label="重放事项日志") as bar:
            for case_id in bar:
                diff = rebuild_case(store.reader(), case_id, cal, now_china())
                if diff:
                    bad[case_id] = diff
    if bad:
        click.echo(json.dumps(bad, ensure_ascii=False, default=str, indent=2), err=True)
        sys.exit(1)
    click.echo(f"{len(ids)} 个事项与事件日志一致")


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("add")
@click.option("--username", required=True)
@click.option("--display-name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in __import__("server.domain.roles",
              fromlist=["STAFF_ROLES"]).STAFF_ROLES]))
@click.option("--org-unit", required=True, help="org unit code")
@click.password_option()
@click.pass_context
def user_add(ctx: click.Context, username: str, display_name: str, role: str, org_unit: str, password: str) -> None:
    """Create a staff account."""
    from server.domain.roles import Role
    from server.store import audit as audit_store
    from server.store.users import create_user

    s = _settings(ctx)

    def add(db: Any) -> str:
        u = create_user(db, username=username, display_name=display_name, password=password, role=Role(role),
                        org_unit=org_unit)
        audit_store.append(db, actor="cli", role="system", action="user.create", object_type="user",
                           object_id=u.id, org_path=u.org_path)
        return u.id

    with Store(s.db_path) as store:
        try:
            uid = store.write(add)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"已创建账号 {username}（{uid}）")


@user.command("unlock")
@click.argument("username")
@click.pass_context
def user_unlock(ctx: click.Context, username: str) -> None:
    """Lift the sign-in locks of an account (from every client), after checking who is asking."""
    from server.store import audit as audit_store
    from server.store.login_guard import unlock

    s = _settings(ctx)

    def lift(db: Any) -> int:
        n = unlock(db, username)
        audit_store.append(db, actor="cli", role="system", action="user.unlock", object_type="user",
                           object_id=username, detail={"locks_lifted": n})
        return n

    with Store(s.db_path) as store:
        n = store.write(lift)
    click.echo(f"已解除账号 {username} 的登录限制（{n} 处）" if n else f"账号 {username} 没有登录限制")


@main.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run the node's HTTP server (uvicorn, one worker)."""
    import uvicorn

    from server.web.app import create_app

    s = _settings(ctx)
    if host:
        s = s.model_copy(update={"host": host})
    if port:
        s = s.model_copy(update={"port": port})
    tls = {"ssl_certfile": str(s.tls_cert), "ssl_keyfile": str(s.tls_key)} if s.tls_cert and s.tls_key else {}
    uvicorn.run(create_app(s), host=s.host, port=s.port, access_log=s.access_log, log_level="info",
                **tls)  # type: ignore[arg-type]


@main.command()
@click.option("--host", "hosts", multiple=True, required=True, help="LAN address or name tablets use (repeat)")
@click.option("--street-name", default="街道", help="name shown in the CA certificate")
@click.pass_context
def tls(ctx: click.Context, hosts: tuple[str, ...], street_name: str) -> None:
    """Create the street's CA (once) and issue the node's HTTPS certificate under <data_dir>/tls."""
    from server.tls import issue_server_cert, make_ca

    s = _settings(ctx)
    directory = s.data_dir / "tls"
    ca_cert, _ = make_ca(directory, street_name)
    cert, key = issue_server_cert(directory, list(hosts))
    click.echo(f"CA 证书（安装到平板）：{ca_cert}")
    click.echo(f"节点证书：{cert}\n节点私钥：{key}")
    click.echo(f"在配置中设置 tls_cert = \"{cert}\" 与 tls_key = \"{key}\" 后重启节点")


@main.command()
@click.option("--dir", "base", type=click.Path(file_okay=False, path_type=Path), default=Path("var/demo"))
@click.option("--street-port", type=int, default=8000)
@click.option("--hub-port", type=int, default=8100)
def demo(base: Path, street_port: int, hub_port: int) -> None:
    """Initialise (once) and run a demo district hub and a pilot street node together."""
    from server.demo import run_demo

    run_demo(base, street_port, hub_port)


@main.command("get")
@click.argument("path")
@click.option("--token", default=None, help="bearer token")
@click.pass_context
def get(ctx: click.Context, path: str, token: str | None) -> None:
    """Run one in-process GET request (smoke check), print the JSON."""
    from starlette.testclient import TestClient

    from server.web.app import create_app

    s = _settings(ctx)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with TestClient(create_app(s)) as client:
        resp = client.get(path, headers=headers)
    click.echo(resp.text)
    if resp.status_code >= 400:
        sys.exit(1)


def _load_features() -> object:
    from server.web.routes import all_endpoints

    return all_endpoints()  # importing the route table registers every feature's kinds and package types


from server.cli_calendar import calendar  # noqa: E402  (publish, confirm held earlier dates)
from sync import cli_sync  # noqa: E402  (sync, bundle, hub commands)

main.add_command(calendar)

cli_sync.FEATURE_LOADERS.append(_load_features)
cli_sync.attach(main)


if __name__ == "__main__":
    main()
