"""District reference data travels down: an incident category edited at the hub, a service item withdrawn
(停止办理) at the hub — both reach the street at its next sync, and the street never authors them."""

from __future__ import annotations

from typing import Any

from schemas.grid import CategoryInput
from server.domain.ids import now_china
from server.store import grid_config, hall_catalogue
from tests.hall.helpers import MINIMUM_LIVING, form, submit
from tests.syncb.conftest import Pair


def _category(pair: Pair, code: str) -> dict[str, Any]:
    rows = pair.street_store.query("SELECT time_unit, time_amount, active FROM grid_categories WHERE code = ?", [code])
    assert rows, code
    return rows[0]


def test_a_category_edited_at_the_district_reaches_the_street(pair: Pair) -> None:
    pair.sync()
    hub_row = pair.hub_store.read(lambda db: grid_config.list_categories(db))[0]
    code = hub_row["code"]
    before = _category(pair, code)
    limit = {**hub_row["time_limit"], "amount": int(before["time_amount"]) + 3}
    body = CategoryInput.model_validate({**{k: v for k, v in hub_row.items() if k in CategoryInput.model_fields},
                                         "time_limit": limit, "active": False})
    pair.hub_store.write(lambda db: grid_config.save_category(db, body, actor="district_admin", role="district_admin",
                                                             org_path="440106"))
    summary = pair.sync()
    assert summary.package_errors == []
    after = _category(pair, code)
    assert after["time_amount"] == int(before["time_amount"]) + 3 and after["active"] == 0
    again = pair.sync()  # the street's applied rows go up as echoes, never as the street's own edits
    assert again.counts.get("refused", 0) == 0
    assert pair.hub_store.query("SELECT * FROM sync_conflicts") == []


def test_an_item_withdrawn_at_the_district_is_withdrawn_at_the_street(pair: Pair) -> None:
    pair.sync()
    assert pair.street_store.read(lambda db: hall_catalogue.current_spec(db, MINIMUM_LIVING)) is not None
    pair.hub_store.write(lambda db: hall_catalogue.withdraw_item(db, MINIMUM_LIVING, reason="职能调整，停止办理",
                                                                 actor="district_admin", role="district_admin",
                                                                 now=now_china()))
    summary = pair.sync()
    assert summary.package_errors == []
    street = pair.street_store
    assert street.read(lambda db: hall_catalogue.current_spec(db, MINIMUM_LIVING)) is None  # no new applications
    assert MINIMUM_LIVING not in [i["code"] for i in street.read(lambda db: hall_catalogue.search_items(db, "低保"))]
    item = street.read(lambda db: hall_catalogue.current_item(db, MINIMUM_LIVING))
    assert item is not None and item["status"] == "withdrawn"  # its revisions stay for the cases that used them
    refused = submit(street, pair.street, "clerk", form(MINIMUM_LIVING))
    assert refused.status == "invalid" and "已停止办理" in refused.errors[0]["message"]
    assert pair.sync().counts.get("refused", 0) == 0
    assert pair.hub_store.query("SELECT * FROM sync_conflicts") == []
