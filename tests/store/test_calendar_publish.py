"""Publishing a calendar version recomputes every open deadline, audited."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from server.cli import main
from server.config import Settings
from server.domain.engine import Draft
from server.domain.ids import CHINA_TZ, uuid7
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.kinds_for_tests import TEST_PERMIT


def open_case(settings: Settings) -> str:
    with Store(settings.db_path) as store:
        user = store.read(lambda db: get_user_by_name(db, "clerk"))
        assert user is not None
        at = datetime(2026, 12, 21, 9, 0, tzinfo=CHINA_TZ)  # Monday; 5 working days -> Monday 12-28

        def write(db):  # type: ignore[no-untyped-def]
            d = Draft("submit", {"title": "t"}, user.principal(), at, uuid7())
            return cases.create_case(db, TEST_PERMIT, d, org_path=user.org_path, node_id="n",
                                     calendar=current_calendar(db))[0].id

        return store.write(write)


def due_of(settings: Settings, case_id: str) -> str:
    with Store(settings.db_path) as store:
        row = store.read(lambda db: cases.case_row(db, case_id))
    assert row is not None
    return str(row["clocks"]["decide"]["due_at"])


def test_publishing_a_holiday_moves_open_deadlines_and_is_audited(settings: Settings, tmp_path: Path) -> None:
    case_id = open_case(settings)
    assert due_of(settings, case_id).startswith("2026-12-28")
    doc = {"version": "tianhe-2026-v2", "source_notice": "区政府通知（演示）",
           "entries": [{"day": "2026-12-24", "work": False, "reason": "other", "name": "临时调整"}]}
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "calendar", "publish", str(path)])
    assert result.exit_code == 0, result.output
    assert "重算 1 个" in result.output
    assert due_of(settings, case_id).startswith("2026-12-29")
    with Store(settings.db_path) as store:
        row = store.read(lambda db: cases.case_row(db, case_id))
        assert row is not None and "tianhe-2026-v2" in row["clocks"]["decide"]["explanation"]
        entry = store.query("SELECT detail FROM audit_log WHERE action = 'calendar.publish'")
        assert json.loads(entry[0]["detail"]) == {"recomputed_cases": 1, "held_earlier": 0}


def test_bad_calendar_file_is_refused_with_a_clear_message(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text('{"version": "v", "entries": [{"day": "2026-13-01", "work": false}]}', encoding="utf-8")
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), "calendar", "publish", str(path)])
    assert result.exit_code != 0 and "日历文件格式错误（共 3 处），未作任何改动" in result.output
    assert "source_notice：须注明所依据的通知文号" in result.output
    assert '  entries[0]（第 1 条，第 1 行）.day：须为 YYYY-MM-DD 格式的日期，收到 "2026-13-01"' in result.output
    assert "entries[0]（第 1 条，第 1 行）.reason：须为 " in result.output
    with Store(settings.db_path) as store:
        assert store.query("SELECT * FROM calendar_versions") == []
        assert store.query("SELECT * FROM audit_log WHERE action = 'calendar.publish'") == []
