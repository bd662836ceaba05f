"""A paired district hub (in-process app) and street node for the escalation tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.config import Settings
from server.store.db import Store
from server.web.app import create_app
from sync.pairing import pair_nodes
from sync.replication import run_sync
from tests.conftest import init_demo, make_settings


@dataclass
class HubAndStreet:
    hub: Settings
    street: Settings
    hub_client: TestClient
    street_store: Store

    def sync(self, **kw: Any) -> Any:
        return run_sync(self.street_store, self.street, http_client=self.hub_client, **kw)


@pytest.fixture
def hub_and_street(tmp_path: Path) -> Iterator[HubAndStreet]:
    hub, street = make_settings(tmp_path, "district"), make_settings(tmp_path, "street")
    init_demo(hub)
    init_demo(street)
    pair_nodes(hub, street, "http://testserver")
    with TestClient(create_app(hub)) as hub_client, Store(street.db_path) as street_store:
        yield HubAndStreet(hub, street, hub_client, street_store)
