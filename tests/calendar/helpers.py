"""Hand-written calendar files and a CLI runner for the calendar-publishing tests.

The 2027 and 2028 arrangements below are ILLUSTRATIVE, not the State Council's notices (not yet
published when these tests were written): they follow 《全国年节及纪念日放假办法》 (2024) and the
shape of the 2026 notice, so that every due date in the tests can be worked by hand.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from server.cli import main
from server.config import Settings
from server.domain.engine import Draft
from server.domain.ids import CHINA_TZ, uuid7
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from tests.kinds_for_tests import TEST_PERMIT


def _e(day: str, work: bool, reason: str, name: str) -> dict[str, Any]:
    return {"day": day, "work": work, "reason": reason, "name": name}


CAL_2027: dict[str, Any] = {
    "version": "demo-2027.1",
    "source_notice": "示例：2027 年部分节假日安排（测试用，非真实通知）",
    "complete_years": [2027],
    "entries": [
        _e("2027-01-01", False, "statutory", "元旦"),
        _e("2027-02-05", False, "statutory", "春节"),  # 除夕, Friday
        _e("2027-02-06", False, "statutory", "春节"),
        _e("2027-02-07", False, "statutory", "春节"),
        _e("2027-02-08", False, "statutory", "春节"),
        _e("2027-02-09", False, "makeup_rest", "春节"),
        _e("2027-02-10", False, "makeup_rest", "春节"),
        _e("2027-02-11", False, "makeup_rest", "春节"),
        _e("2027-02-20", True, "makeup_work", "春节"),  # Saturday
        _e("2027-04-05", False, "statutory", "清明节"),
        _e("2027-05-01", False, "statutory", "劳动节"),  # Saturday
        _e("2027-05-02", False, "statutory", "劳动节"),
        _e("2027-05-03", False, "makeup_rest", "劳动节"),
        _e("2027-05-04", False, "makeup_rest", "劳动节"),
        _e("2027-05-05", False, "makeup_rest", "劳动节"),
        _e("2027-05-08", True, "makeup_work", "劳动节"),  # Saturday
        _e("2027-06-09", False, "statutory", "端午节"),
        _e("2027-09-15", False, "statutory", "中秋节"),
        _e("2027-10-01", False, "statutory", "国庆节"),
        _e("2027-10-02", False, "statutory", "国庆节"),
        _e("2027-10-03", False, "statutory", "国庆节"),
        _e("2027-10-04", False, "makeup_rest", "国庆节"),
        _e("2027-10-05", False, "makeup_rest", "国庆节"),
        _e("2027-10-06", False, "makeup_rest", "国庆节"),
        _e("2027-10-07", False, "makeup_rest", "国庆节"),
        _e("2027-10-09", True, "makeup_work", "国庆节"),  # Saturday
    ],
}

CAL_2028: dict[str, Any] = {
    "version": "demo-2028.1",
    "source_notice": "示例：2028 年部分节假日安排（测试用，非真实通知）",
    "complete_years": [2028],
    "entries": [
        _e("2028-01-01", False, "statutory", "元旦"),  # Saturday
        _e("2028-01-22", True, "makeup_work", "春节"),  # Saturday
        _e("2028-01-25", False, "statutory", "春节"),  # 除夕, Tuesday
        _e("2028-01-26", False, "statutory", "春节"),
        _e("2028-01-27", False, "statutory", "春节"),
        _e("2028-01-28", False, "statutory", "春节"),
        _e("2028-01-31", False, "makeup_rest", "春节"),
        _e("2028-02-01", False, "makeup_rest", "春节"),
        _e("2028-02-05", True, "makeup_work", "春节"),  # Saturday
        _e("2028-05-01", False, "statutory", "劳动节"),
        _e("2028-05-02", False, "statutory", "劳动节"),
        _e("2028-10-01", False, "statutory", "国庆节"),
        _e("2028-10-02", False, "statutory", "国庆节"),
        _e("2028-10-03", False, "statutory", "国庆节"),
    ],
}

# A district correction of the 2027 version: 2027-02-11 becomes a working day again.
CORRECTION_2027: dict[str, Any] = {
    "version": "demo-2027.2",
    "source_notice": "示例：区政府更正通知（测试用）",
    "complete_years": [],
    "entries": [_e("2027-02-11", True, "other", "更正")],
}


def publish(settings: Settings, tmp_path: Path, doc: dict[str, Any] | str, *extra: str) -> Result:
    """``streetnode calendar publish FILE`` through the real command."""
    path = tmp_path / f"calendar-{uuid7()}.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return cli(settings, "calendar", "publish", str(path), *extra)


def cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), *args])


def open_case(settings: Settings, received: datetime) -> str:
    """A test-permit case received at ``received`` (5-working-day ``decide`` clock starts then)."""
    with Store(settings.db_path) as store:
        user = store.read(lambda db: get_user_by_name(db, "clerk"))
        assert user is not None

        def write(db):  # type: ignore[no-untyped-def]
            d = Draft("submit", {"title": "t"}, user.principal(), received, uuid7())
            return cases.create_case(db, TEST_PERMIT, d, org_path=user.org_path, node_id="n",
                                     calendar=current_calendar(db))[0].id

        return store.write(write)


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=CHINA_TZ)


def clock(settings: Settings, case_id: str, name: str = "decide") -> dict[str, Any]:
    with Store(settings.db_path) as store:
        row = store.read(lambda db: cases.case_row(db, case_id))
    assert row is not None
    return dict(row["clocks"][name])


def due_day(settings: Settings, case_id: str) -> str:
    return str(clock(settings, case_id)["due_at"])[:10]
