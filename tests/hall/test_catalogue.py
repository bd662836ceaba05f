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
    two = codes(client.get("/api/v1/catalogue/items", params={"q": "低保"}))  # < 3 chars: LIKE on the name
    assert two == []  # "低保" is not in any name
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
