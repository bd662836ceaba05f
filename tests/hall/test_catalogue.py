"""The service-item catalogue: seeded once, searched in Chinese, versioned, edited only at the district hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from schemas.reference import load_service_catalogue
from server.store import hall_catalogue
from server.store.db import Store
from server.web.app import create_app
from tests.conftest import Logins, init_demo, make_settings
from tests.hall.helpers import MINIMUM_LIVING


def codes(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [i["code"] for i in resp.json()["items"]]


def test_catalogue_is_seeded_at_init_and_seeding_again_changes_nothing(store: Store) -> None:
    n = len(load_service_catalogue().items)
    assert n >= 12
    assert store.query("SELECT COUNT(*) AS n FROM catalogue_items WHERE is_current = 1")[0]["n"] == n
    assert store.write(hall_catalogue.seed_catalogue) == 0
    assert store.query("SELECT COUNT(*) AS n FROM catalogue_items")[0]["n"] == n


def test_chinese_substring_search_uses_trigrams_and_short_queries_fall_back(client: TestClient) -> None:
    found = codes(client.get("/api/v1/catalogue/items", params={"q": "最低生活"}))
    assert found[0] == MINIMUM_LIVING and len(found) > 1  # the name match ranks before mentions in guides
    # matches inside the guide's text (materials), not only the name
    assert MINIMUM_LIVING in codes(client.get("/api/v1/catalogue/items", params={"q": "核对授权书"}))
    assert MINIMUM_LIVING in codes(client.get("/api/v1/catalogue/items", params={"q": "低生"}))
    assert codes(client.get("/api/v1/catalogue/items", params={"q": '"; DROP'})) == []  # no query syntax


def test_filters_by_type_and_level(client: TestClient) -> None:
    district = client.get("/api/v1/catalogue/items", params={"level": "district"}).json()["items"]
    assert district and {i["level"] for i in district} == {"district"}
    grants = client.get("/api/v1/catalogue/items", params={"item_type": "行政给付", "q": "救助"}).json()["items"]
    assert grants and all(i["item_type"] == "行政给付" and "救助" in i["name"] for i in grants)


def test_item_guide_with_history(client: TestClient) -> None:
    body = client.get(f"/api/v1/catalogue/items/{MINIMUM_LIVING}").json()
    assert body["item"]["spec"]["promised_limit_wd"] == 20 and body["history"][0]["version"] == 1
    missing = client.get("/api/v1/catalogue/items/NOPE")
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "code"


def item_body(**change: Any) -> dict[str, Any]:
    spec = next(i for i in load_service_catalogue().items if i.implementation_code == MINIMUM_LIVING)
    return {**spec.model_dump(mode="json"), **change}


def test_a_street_node_cannot_edit_the_catalogue(client: TestClient, auth: Logins) -> None:
    for user in ("admin", "clerk"):
        resp = client.put(f"/api/v1/catalogue/items/{MINIMUM_LIVING}", headers=auth(user), json=item_body())
        assert resp.status_code == 403 and resp.json()["errors"][0]["field"] == "role"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, "district")
    init_demo(settings)
    with TestClient(create_app(settings)) as c:
        yield c


def test_district_edits_are_new_versions_and_promised_cannot_exceed_statutory(hub: TestClient) -> None:
    auth = Logins(hub)
    url = f"/api/v1/catalogue/items/{MINIMUM_LIVING}"
    bad = hub.put(url, headers=auth("district_admin"), json=item_body(promised_limit_wd=31))
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["promised_limit_wd"]
    assert hub.put(url, headers=auth("district_admin"), json=item_body(name="")).status_code == 422
    mismatch = hub.put(url, headers=auth("district_admin"), json=item_body(implementation_code="OTHER"))
    assert mismatch.json()["errors"][0]["field"] == "implementation_code"
    assert hub.put(url, headers=auth("approver"), json=item_body()).status_code == 403
    ok = hub.put(url, headers=auth("district_admin"), json=item_body(promised_limit_wd=15))
    assert ok.status_code == 200 and ok.json()["version"] == 2
    body = hub.get(url).json()
    assert body["item"]["promised_limit_wd"] == 15 and [h["is_current"] for h in body["history"]] == [0, 1]
    services = hub.app.state.services  # type: ignore[attr-defined]
    audit = services.store.query("SELECT action FROM audit_log WHERE action = 'catalogue.publish_item'")
    changes = services.store.query("SELECT entity FROM change_log WHERE entity = 'catalogue_item' AND entity_id = ?",
                                   [MINIMUM_LIVING])
    assert len(audit) == 1 and len(changes) == 2  # seeded once, published once: both travel down to streets


def search(client: TestClient, q: str) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/catalogue/items", params={"q": q})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


@pytest.mark.parametrize("q", ["低保", "低保申请", "DBSQ", "dbsq", "db", "dibao", "zdshbz", "低保 申请"])
def test_residents_words_and_pinyin_find_the_item_first(client: TestClient, q: str) -> None:
    """低保 is 最低生活保障审批's everyday name; a tablet user may type its pinyin initials instead."""
    found = search(client, q)
    assert found and found[0]["code"] == MINIMUM_LIVING, [i["name"] for i in found]


def test_exact_alias_ranks_before_names_that_merely_contain_the_query(client: TestClient) -> None:
    found = search(client, "失业证")
    assert found[0]["name"] == "就业失业登记" and found[0]["matched_alias"] == "失业证"
    # 医疗救助 is an alias starting with 医疗; the health-insurance item only contains it in its name
    names = [i["name"] for i in search(client, "医疗")]
    assert names[:2] == ["困难群众医疗救助", "城乡居民基本医疗保险参保登记"]


def test_rows_carry_aliases_and_initials_for_offline_filtering(client: TestClient) -> None:
    row = search(client, "低保")[0]
    assert row["aliases"] == ["低保", "低保申请", "最低生活保障"] and row["matched_alias"] == "低保"
    assert "zdshbzsp" in row["initials"] and "dbsq" in row["initials"]
    assert search(client, "最低生活")[0]["matched_alias"] is None  # the name matched, no alias to show


def test_latin_query_that_is_no_reading_finds_nothing_and_chinese_never_matches_pinyin(client: TestClient) -> None:
    assert search(client, "xyzq") == []
    assert search(client, "%") == [] and search(client, "_") == []  # LIKE wildcards are escaped


def test_district_alias_edit_is_searchable_at_once(hub: TestClient) -> None:
    auth = Logins(hub)
    url = f"/api/v1/catalogue/items/{MINIMUM_LIVING}"
    assert codes(hub.get("/api/v1/catalogue/items", params={"q": "吃低保"})) == []
    spec = item_body()
    ok = hub.put(url, headers=auth("district_admin"), json={**spec, "aliases": [*spec["aliases"], "吃低保"]})
    assert ok.status_code == 200, ok.text
    assert codes(hub.get("/api/v1/catalogue/items", params={"q": "吃低保"})) == [MINIMUM_LIVING]
    assert codes(hub.get("/api/v1/catalogue/items", params={"q": "cdb"})) == [MINIMUM_LIVING]


def test_terms_migration_indexes_an_existing_catalogue(store: Store) -> None:
    from server.store.hall_schema import m004_catalogue_terms

    def redo(db: Any) -> None:
        db.execute("DROP TABLE catalogue_terms")
        m004_catalogue_terms(db)

    store.write(redo)
    n = store.query("SELECT COUNT(DISTINCT code) AS n FROM catalogue_terms")[0]["n"]
    assert n == len(load_service_catalogue().items)
    assert store.read(lambda db: hall_catalogue.search_items(db, "dbsq"))[0]["code"] == MINIMUM_LIVING


def test_the_district_withdraws_an_item_and_it_leaves_search_but_keeps_its_guide(hub: TestClient) -> None:
    auth = Logins(hub)
    url = f"/api/v1/catalogue/items/{MINIMUM_LIVING}/withdrawal"
    assert hub.post(url, headers=auth("approver"), json={"reason": "职能调整"}).status_code == 403
    assert hub.post(url, headers=auth("district_admin"), json={"reason": ""}).status_code == 422
    missing = hub.post("/api/v1/catalogue/items/NOPE/withdrawal", headers=auth("district_admin"), json={"reason": "x"})
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "code"
    ok = hub.post(url, headers=auth("district_admin"), json={"reason": "职能调整，停止办理"})
    assert ok.status_code == 200 and ok.json()["status"] == "withdrawn"
    assert MINIMUM_LIVING not in codes(hub.get("/api/v1/catalogue/items", params={"q": "低保"}))
    guide = hub.get(f"/api/v1/catalogue/items/{MINIMUM_LIVING}").json()
    assert guide["item"]["status"] == "withdrawn"  # the guide stays readable, marked as no longer offered
    again = hub.put(f"/api/v1/catalogue/items/{MINIMUM_LIVING}", headers=auth("district_admin"), json=item_body())
    assert again.status_code == 200  # publishing it again offers it again, as a new revision
    assert MINIMUM_LIVING in codes(hub.get("/api/v1/catalogue/items", params={"q": "低保"}))


def test_a_street_node_cannot_withdraw_an_item(client: TestClient, auth: Logins) -> None:
    resp = client.post(f"/api/v1/catalogue/items/{MINIMUM_LIVING}/withdrawal", headers=auth("admin"),
                       json={"reason": "x"})
    assert resp.status_code == 403
