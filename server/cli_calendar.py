"""``streetnode calendar …``: publish working-calendar versions, confirm held earlier due dates.

A thin shell over ``server.domain.calendar_file`` (the file format) and ``server.store.calendars``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from server.config import Settings
from server.store.db import Store


def _settings(ctx: click.Context) -> Settings:
    obj: Settings = ctx.find_root().obj
    return obj


def _day(iso: str | None) -> str:
    return "（暂停中）" if not iso else datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")


class _DryRun(Exception):
    def __init__(self, report: Any):
        self.report = report


@click.group("calendar")
def calendar() -> None:
    """The working calendar (statutory holidays and 调休 make-up days): publish versions, confirm held dates."""


@calendar.command("publish")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="check the file and report what would change; publish nothing")
@click.pass_context
def calendar_publish(ctx: click.Context, path: Path, dry_run: bool) -> None:
    """Publish a calendar version from a JSON file and recompute every open deadline.

    Versions are cumulative: the node's calendar is the builtin notices plus every published
    version, in publish order; a version overrides the days it lists and keeps all others.
    A due date that the new calendar would move EARLIER is held (the case keeps its date) and
    listed for an admin to confirm: `streetnode calendar earlier`, `streetnode calendar confirm`.

    The file (UTF-8 JSON; see ops/calendar.md):

    \b
    {
      "version": "440106-2027.1",             new label, never reused
      "source_notice": "国办发明电〔2026〕N号",  the notice it copies (required)
      "complete_years": [2027],               years published in full ([] if none)
      "entries": [
        {"day": "2027-01-01", "work": false, "reason": "statutory", "name": "元旦"},
        {"day": "2027-02-20", "work": true, "reason": "makeup_work", "name": "春节"}
      ]
    }

    \b
    reason: statutory 法定节假日 | makeup_rest 调休休息 | makeup_work 调休上班 |
            weekend 周末 | workday 工作日 | other 其他 (work must agree with it).
    A year in complete_years stops being provisional; it must list 元旦 (01-01),
    劳动节 (05-01, 05-02) and 国庆节 (10-01..10-03) as rest days. A bad file is refused
    with every problem named (field, entry number, line) and nothing is changed.
    """
    from server.domain.calendar_file import CalendarFileError, parse_version_text
    from server.domain.ids import now_china
    from server.store.calendars import PublishReport, publish_version

    s = _settings(ctx)
    try:
        parsed = parse_version_text(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise click.ClickException("日历文件格式错误：文件须为 UTF-8 编码的 JSON，未作任何改动") from None
    except CalendarFileError as exc:
        raise click.ClickException(exc.describe_zh()) from None
    years = "、".join(str(y) for y in parsed.complete_years) or "无"
    click.echo(f"日历版本 {parsed.version}：{len(parsed.entries)} 条，完整年份 {years}，依据 {parsed.source_notice}")
    click.echo("正在重算在办事项的期限……")

    def publish(db: Any) -> PublishReport:
        report = publish_version(db, version=parsed.version, entries=parsed.entry_dicts(),
                                 source_notice=parsed.source_notice, complete_years=parsed.complete_years,
                                 actor="cli", role="system", now=now_china())
        if dry_run:
            raise _DryRun(report)  # rolls the whole publish back
        return report

    if not s.db_path.exists():
        raise click.ClickException(f"数据库不存在：{s.db_path}（先运行 streetnode init）")
    with Store(s.db_path) as store:
        try:
            report = store.write(publish)
        except _DryRun as dry:
            report = dry.report
        except ValueError as exc:
            raise click.ClickException(f"{exc}；未作任何改动") from None
    verb = "试算（未发布）" if dry_run else "已发布"
    click.echo(f"{verb}日历版本 {report.version}（{report.entries} 条），重算 {report.recomputed} 个在办事项的期限；"
               f"已知年份至 {report.last_known_year} 年")
    if not report.held:
        click.echo("没有期限被提前")
        return
    click.echo(f"其中 {len(report.held)} 个期限将被提前，{'将' if dry_run else '已'}暂缓应用，待管理员核对确认：")
    for h in report.held:
        click.echo(f"  {h.number} {h.label}：{_day(h.held_due_at)} → {_day(h.new_due_at)}")
    if not dry_run:
        click.echo("核对后运行：streetnode calendar confirm <事项编号> --by <姓名> --note <核对说明>")


@calendar.command("show")
@click.pass_context
def calendar_show(ctx: click.Context) -> None:
    """List the published calendar versions, the last fully known year and held earlier dates."""
    from server.store.calendar_earlier import list_earlier
    from server.store.calendars import current_calendar, list_versions

    s = _settings(ctx)
    with Store(s.db_path) as store:
        cal = store.read(current_calendar)
        versions = store.read(list_versions)
        held = store.read(lambda db: list_earlier(db, None))
    click.echo(f"当前日历：{cal.version}；已知年份至 {cal.last_known_year} 年（其后按周末及固定日期法定节假日暂算）")
    for v in versions:
        years = "、".join(str(y) for y in v.complete_years) or "—"
        click.echo(f"  {v.published_at[:16]}  {v.version}  {v.entries} 条  完整年份 {years}  {v.source_notice}")
    click.echo(f"待确认的提前期限：{len(held)} 个")


@calendar.command("earlier")
@click.option("--all", "show_all", is_flag=True, help="also list confirmed and superseded ones")
@click.pass_context
def calendar_earlier(ctx: click.Context, show_all: bool) -> None:
    """List due dates a published calendar would move earlier, held until an admin confirms them."""
    from server.store.calendar_earlier import list_earlier

    s = _settings(ctx)
    with Store(s.db_path) as store:
        rows = store.read(lambda db: list_earlier(db, None, status="all" if show_all else "pending"))
    if not rows:
        click.echo("没有待确认的提前期限")
        return
    status_zh = {"pending": "待确认", "confirmed": "已确认", "superseded": "已失效"}
    for h in rows:
        note = "" if h.still_held or h.status != "pending" else "（事项已有新办理，已按新日历计算）"
        click.echo(f"{status_zh.get(h.status, h.status)}  {h.number}  {h.label}：{_day(h.held_due_at)} → "
                   f"{_day(h.new_due_at)}  日历版本 {h.version}{note}")


@calendar.command("confirm")
@click.argument("case")
@click.option("--by", "by", required=True, help="name of the admin who checked the new dates")
@click.option("--note", required=True, help="what was checked, e.g. 已核对区政府通知")
@click.pass_context
def calendar_confirm(ctx: click.Context, case: str, by: str, note: str) -> None:
    """Apply the held earlier due dates of CASE (its number or id), as listed; audited."""
    from server.domain.ids import now_china
    from server.store.calendar_earlier import HoldChanged, NothingToConfirm, confirm_earlier, find_case
    from server.store.calendars import current_calendar

    s = _settings(ctx)

    def confirm(db: Any) -> dict[str, Any]:
        case_id = find_case(db, case)
        if case_id is None:
            raise NothingToConfirm(f"未找到事项 {case}")
        return confirm_earlier(db, case_id, current_calendar(db), actor=f"cli:{by}", role="system", note=note,
                               now=now_china())

    with Store(s.db_path) as store:
        try:
            changed = store.write(confirm)
        except (NothingToConfirm, HoldChanged) as exc:
            raise click.ClickException(str(exc)) from None
    for name, c in changed.items():
        click.echo(f"已确认 {case} {name}：{_day(c['from'])} → {_day(c['to'])}")


@calendar.command("due")
@click.argument("start")
@click.argument("unit", type=click.Choice(["working_day", "working_hour", "calendar_day", "calendar_hour"]))
@click.argument("duration", type=click.IntRange(1, 1000))
@click.pass_context
def calendar_due(ctx: click.Context, start: str, unit: str, duration: int) -> None:
    """What if received on START (YYYY-MM-DD or YYYY-MM-DDTHH:MM): the due date under the node's calendar."""
    from server.domain.calendar_due import DueQueryError, due_if_received
    from server.store.calendars import current_calendar

    s = _settings(ctx)
    with Store(s.db_path) as store:
        cal = store.read(current_calendar)
    try:
        due = due_if_received(cal, start=start, unit=unit, duration=str(duration))
    except DueQueryError as exc:
        raise click.ClickException(f"{exc.field}：{exc.message}") from None
    click.echo(due.explanation_zh)
    if due.provisional:
        click.echo("注意：此日期为暂定，年度节假日安排发布后可能变化")
