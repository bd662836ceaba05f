"""A calendar version published at the district hub reaches the street with the years it completes."""

from __future__ import annotations

from datetime import date

from server.domain.ids import now_china
from server.store.calendars import current_calendar, publish_version
from tests.calendar.helpers import CAL_2027, CAL_2028
from tests.syncb.conftest import Pair


def test_complete_years_travel_down_and_versions_stay_cumulative_at_the_street(pair: Pair) -> None:
    for doc in (CAL_2027, CAL_2028):
        pair.hub_store.write(lambda db, d=doc: publish_version(  # type: ignore[misc]
            db, version=d["version"], entries=d["entries"], source_notice=d["source_notice"],
            complete_years=d["complete_years"], actor="district_admin", role="district_admin", now=now_china()))
    summary = pair.sync()
    assert summary.package_errors == []
    street = pair.street_store.read(current_calendar)
    assert (street.version, street.last_known_year) == ("demo-2028.1", 2028)
    spring_2027 = street.day_info(date(2027, 2, 9))
    assert (spring_2027.work, spring_2027.name, spring_2027.known) == (False, "春节", True)
    assert pair.street_store.query("SELECT version, complete_years FROM calendar_versions ORDER BY seq") == [
        {"version": "demo-2027.1", "complete_years": "[2027]"}, {"version": "demo-2028.1", "complete_years": "[2028]"}]
