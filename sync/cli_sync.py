"""``streetnode sync``, ``streetnode bundle`` and ``streetnode hub``: thin commands over the sync library.

Attached to ``server.cli.main`` by ``attach``. ``FEATURE_LOADERS`` are called before a command touches
the database, so case kinds and package types that features register at import are known in this process
too (``server.cli`` adds the route table's loader: ``sync`` itself never imports ``server.web``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from server.config import Settings
from server.domain.crypto import b64url_decode
from server.domain.ids import now_china
from server.store.db import Store

__all__ = ["FEATURE_LOADERS", "attach"]

FEATURE_LOADERS: list[Callable[[], object]] = []


def _prepare(ctx: click.Context) -> Settings:
    for load in FEATURE_LOADERS:
        load()
    settings: Settings = ctx.obj
    if not settings.db_path.exists():
        raise click.ClickException(f"数据库不存在：{settings.db_path}（请先运行 streetnode init）")
    return settings


def _role(store: Store, settings: Settings) -> str:
    from server.store.seed import get_meta

    return store.read(lambda db: get_meta(db, "role")) or settings.role


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


@click.group(invoke_without_command=True)
@click.option("--batch-rows", type=click.IntRange(1, 500), default=500, show_default=True,
              help="rows per up-batch (at most 500)")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.pass_context
def sync(ctx: click.Context, batch_rows: int, as_json: bool) -> None:
    """Sync this street node with the district hub now (up: changes; down: packages).

    Resumes an interrupted session. Exit 0 when done, 2 when the hub cannot be reached (nothing is lost;
    run again later), 1 when the hub refused.
    """
    if ctx.invoked_subcommand is not None:
        return
    from sync.replication import SyncBusy, SyncNotPaired, run_sync
    from sync.transport import HubRefused, HubUnreachable

    settings = _prepare(ctx)
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if as_json or total <= 0:
            return
        if stage not in bars:
            label = {"push": "上传变更", "apply": "应用下发包"}.get(stage, stage)
            bars[stage] = click.progressbar(length=total, label=label, file=sys.stderr)
            bars[stage].__enter__()
        bar = bars[stage]
        bar.update(done - bar.pos)

    with Store(settings.db_path) as store:
        try:
            summary = run_sync(store, settings, progress=progress, batch_rows=batch_rows)
        except (SyncNotPaired, SyncBusy) as exc:
            raise click.ClickException(str(exc)) from None
        except HubUnreachable as exc:
            click.echo(f"无法连接区级枢纽，稍后重试（未丢失任何数据）：{exc.message_en}", err=True)
            sys.exit(2)
        except HubRefused as exc:
            click.echo(f"区级枢纽拒绝同步：{exc.message_zh}", err=True)
            sys.exit(1)
        finally:
            for bar in bars.values():
                bar.__exit__(None, None, None)
    if as_json:
        _echo_json(summary.__dict__)
        return
    c = summary.counts
    click.echo(f"同步完成（会话 {summary.session_id[:8]}，{summary.seconds:.2f} 秒）"
               + (f"，续接中断的会话（停在 {summary.resumed_from}）" if summary.resumed_from else ""))
    click.echo(f"  上传：{summary.rows_sent} 条（{summary.batches} 批），区级已确认至第 {summary.acked_through_seq} 号；"
               f"新增 {c.get('created', 0)}，重复 {c.get('duplicate', 0)}，冲突 {c.get('conflict', 0)}，"
               f"拒收 {c.get('refused', 0)}")
    click.echo(f"  下发：收到 {summary.packages_received} 个包，应用 {summary.packages_applied} 个")
    for err in summary.package_errors:
        click.echo(f"  下发包被拒：{err}", err=True)
    click.echo(f"  审计链头第 {summary.countersigned_seq} 条已由区级枢纽会签")
    if summary.clock_suspect:
        click.echo(f"  注意：本机时钟与区级枢纽相差 {summary.clock_offset_ms // 1000} 秒，请校准时间", err=True)


@sync.command("status")
@click.option("--json", "as_json", is_flag=True, help="print as JSON")
@click.pass_context
def sync_status(ctx: click.Context, as_json: bool) -> None:
    """Last run, pending rows, lag, conflicts, quarantine, counter-signed audit head."""
    from sync.status import hub_status, street_status

    settings = _prepare(ctx)
    with Store(settings.db_path) as store:
        role = _role(store, settings)
        st = store.read(lambda db: street_status(db, settings, now_china()) if role == "street" else hub_status(db))
    if as_json or role != "street":
        _echo_json(st)
        return
    last = st["last_session"] or {}
    click.echo(f"区级枢纽：{st['hub']['hub_id']}（{st['hub']['url']}）" if st["hub"] else "尚未与区级枢纽配对")
    click.echo(f"上次同步：{st['last_sync'] or '从未'}；最近会话 {last.get('trigger', '-')} 停在 {last.get('stage', '-')}"
               + (f"，错误：{last['error']}" if last.get("error") else ""))
    click.echo(f"待上传：{st['pending_rows']} 条（本地至第 {st['high_seq']} 号，区级已确认至第 {st['acked_through_seq']} 号），"
               f"滞后 {st['lag_seconds'] // 3600} 小时 {st['lag_seconds'] % 3600 // 60} 分")
    click.echo(f"待应用下发包：{st['packages_waiting']}；被拒：{len(st['packages_refused'])}")
    click.echo(f"冲突：{sum(st['conflicts'].values())} {st['conflicts'] or ''}；隔离区：{st['quarantine'] or 0}")
    cs = st["countersigned"]
    click.echo(f"审计链会签：第 {cs['audit_seq']} 条（{cs['at']}）" if cs else "审计链尚未会签")
    if st["countersig_mismatches"]:
        click.echo(f"警告：审计链与区级会签不符：{st['countersig_mismatches']}", err=True)
        sys.exit(1)


@sync.command("identity")
@click.pass_context
def sync_identity(ctx: click.Context) -> None:
    """Print this street node's enrolment sheet (node id, street, public keys) for the district admin."""
    from sync.pairing import node_sheet

    settings = _prepare(ctx)
    with Store(settings.db_path) as store:
        _echo_json(store.read(lambda db: node_sheet(settings, db)))


@sync.command("pair")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def sync_pair(ctx: click.Context, sheet: Path) -> None:
    """Pin the district hub from its sheet (written by `streetnode hub sheet`); compare its key id by phone."""
    from sync.pairing import pin_hub, read_sheet

    settings = _prepare(ctx)
    try:
        pin = pin_hub(settings, read_sheet(sheet))
    except (KeyError, ValueError) as exc:
        raise click.ClickException(f"枢纽信息文件无效：{exc}") from None
    click.echo(f"已配对区级枢纽 {pin.hub_id}，签名密钥 {pin.key_id}，地址 {pin.url}")


@click.group()
def bundle() -> None:
    """Offline bundles (USB): the same signed batches and packages, encrypted, for weeks without a network."""


@bundle.command("export")
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False, path_type=Path), help="bundle file")
@click.option("--node", "node_id", default=None, help="(hub) the street node the bundle is for")
@click.pass_context
def bundle_export(ctx: click.Context, target: Path, node_id: str | None) -> None:
    """Write a signed, encrypted bundle: a street's unacknowledged changes, or the hub's packages for --node."""
    from sync.bundle import BundleError
    from sync.bundle_flows import export_down, export_up

    settings = _prepare(ctx)
    with Store(settings.db_path) as store:
        try:
            if _role(store, settings) == "district":
                if not node_id:
                    raise click.ClickException("区级枢纽导出时须指定 --node（接收的街道节点）")
                out = export_down(store, settings, target, node_id, now_china)
                click.echo(f"已导出给 {node_id} 的下发包 {out['packages']} 个到 {target}")
            else:
                out = export_up(store, settings, target, now_china)
                click.echo(f"已导出 {out['rows']} 条变更（{out['batches']} 批）到 {target}")
        except BundleError as exc:
            raise click.ClickException(str(exc)) from None


@bundle.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def bundle_import(ctx: click.Context, source: Path) -> None:
    """Verify and apply a bundle from the other end; a tampered or truncated file is refused whole."""
    from sync.bundle import BundleError
    from sync.bundle_flows import import_down, import_up

    settings = _prepare(ctx)
    with Store(settings.db_path) as store:
        try:
            if _role(store, settings) == "district":
                out = import_up(store, settings, source, now_china)
                c = out["counts"]
                click.echo(f"已导入 {out['node_id']} 的 {out['batches']} 批：新增 {c.get('created', 0)}，"
                           f"重复 {c.get('duplicate', 0)}，冲突 {c.get('conflict', 0)}；已确认至第 {out['acked_through_seq']} 号")
            else:
                out = import_down(store, settings, source, now_china)
                click.echo(f"已导入下发包 {out['received']} 个，应用 {out['applied']} 个；区级已确认至第 "
                           f"{out['acked_through_seq']} 号")
                for err in out["errors"]:
                    click.echo(f"  下发包被拒：{err}", err=True)
        except BundleError as exc:
            click.echo(f"导入被拒绝，未应用任何数据：{exc.message_zh}\nImport refused, nothing applied: "
                       f"{exc.message_en}", err=True)
            sys.exit(1)


@click.group()
def hub() -> None:
    """District hub: enrol street nodes, publish, show the hub's keys."""


@hub.command("sheet")
@click.option("--url", default=None, help="the hub URL streets should use")
@click.option("--to", "target", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write to a file")
@click.pass_context
def hub_sheet_cmd(ctx: click.Context, url: str | None, target: Path | None) -> None:
    """Print (or write) the hub's sheet: id, signing key, district encryption key, URL."""
    from sync.pairing import hub_sheet

    settings = _prepare(ctx)
    with Store(settings.db_path) as store:
        doc = store.read(lambda db: hub_sheet(settings, db, url))
    if target:
        target.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
        click.echo(f"已写入 {target}（签名密钥 {doc['key_id']}）")
    else:
        _echo_json(doc)


@hub.command("enrol-node")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def hub_enrol(ctx: click.Context, sheet: Path) -> None:
    """Enrol a street node from its sheet (`streetnode sync identity` at the street); re-enrolling rotates its key."""
    from sync.hub import HubError, enrol_node
    from sync.pairing import read_sheet

    settings = _prepare(ctx)
    try:
        doc = read_sheet(sheet)
        public = b64url_decode(doc["public_key"])
        enc = b64url_decode(doc["enc_public_key"]) if doc.get("enc_public_key") else None
    except (KeyError, ValueError) as exc:
        raise click.ClickException(f"节点信息文件无效：{exc}") from None
    with Store(settings.db_path) as store:
        try:
            node = store.write(lambda db: enrol_node(db, node_id=str(doc["node_id"]), org_unit=str(doc["org_unit"]),
                                                     public_key=public, enc_public_key=enc, actor="cli",
                                                     role="system", now=now_china()))
        except HubError as exc:
            raise click.ClickException(exc.message_zh) from None
    click.echo(f"已登记街道节点 {node['node_id']}（{node['org_unit']}），密钥 {node['key_id']}")


@hub.command("revoke-node")
@click.argument("node_id")
@click.option("--reason", required=True, help="why, for the audit log (e.g. 设备被盗)")
@click.pass_context
def hub_revoke(ctx: click.Context, node_id: str, reason: str) -> None:
    """Revoke a street node (a stolen machine): its key is refused from now on, for good, and the packages
    queued for it are withdrawn. A replacement machine enrols with a new key (`hub enrol-node`)."""
    from server.node import node_key
    from server.store.seed import get_meta
    from sync.hub import HubError
    from sync.hub_revoke import revoke_node

    settings = _prepare(ctx)
    with Store(settings.db_path) as store:
        hub_id = store.read(lambda db: get_meta(db, "node_id")) or settings.node_id
        try:
            done = store.write(lambda db: revoke_node(db, node_key(settings), hub_id, node_id=node_id, reason=reason,
                                                      actor="cli", role="system", now=now_china()))
        except HubError as exc:
            raise click.ClickException(exc.message_zh) from None
    click.echo(f"已吊销街道节点 {node_id}（密钥 {done['key_id']}），自 {done['revoked_at']} 起拒绝其全部请求")
    if done["withdrawn"]:
        click.echo(f"已撤回 {len(done['withdrawn'])} 项尚未送达的区级决定，请在新节点登记后重新作出：")
        for w in done["withdrawn"]:
            click.echo(f"  事项 {w['case_id']}：{w['transition']}（{w['decided_at']}）")


@hub.command("publish")
@click.pass_context
def hub_publish(ctx: click.Context) -> None:
    """Publish what changed at the hub (directory, calendars, catalogue) as new down-packages."""
    from server.node import node_key
    from server.store.seed import get_meta
    from sync.hub_publish import publish_pending

    settings = _prepare(ctx)
    with Store(settings.db_path) as store:
        hub_id = store.read(lambda db: get_meta(db, "node_id")) or settings.node_id
        done = store.write(lambda db: publish_pending(db, node_key(settings), hub_id, now_china()))
    click.echo(f"已发布 {len(done)} 个下发包" + (f"：{done}" if done else "（无变化）"))


def attach(main: click.Group) -> None:
    main.add_command(sync)
    main.add_command(bundle)
    main.add_command(hub)
