"""A paired district hub (in-process app) and street node (real SQLite files) for leg B tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.config import Settings
from server.domain.engine import Draft
from server.domain.ids import CHINA_TZ, now_china, uuid7
from server.domain.roles import Principal
from server.store import cases
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.users import get_user_by_name
from server.web.app import create_app
from sync.pairing import pair_nodes
from sync.replication import SyncSummary, run_sync
from tests.conftest import init_demo, make_settings
from tests.kinds_for_tests import TEST_PERMIT
from tests.syncb.kinds import HANDUP

AT = datetime(2026, 9, 28, 10, 0, tzinfo=CHINA_TZ)


@dataclass
class Pair:
    hub: Settings
    street: Settings
    hub_client: TestClient
    street_store: Store

    @property
    def hub_store(self) -> Store:
        return self.hub_client.app.state.services.store  # type: ignore[attr-defined,no-any-return]

    def sync(self, **kw: Any) -> SyncSummary:
        return run_sync(self.street_store, self.street, http_client=self.hub_client, **kw)

    def principal(self, username: str, store: Store | None = None) -> Principal:
        user = (store or self.street_store).read(lambda db: get_user_by_name(db, username))
        assert user is not None
        return user.principal()

    def new_case(self, title: str = "测试", kind: Any = TEST_PERMIT, **payload: Any) -> str:
        clerk = self.principal("clerk")

        def create(db: Any) -> str:
            d = Draft(transition="submit", payload={"title": title, **payload}, principal=clerk, node_time=now_china(),
                      event_id=uuid7())
            view, _ = cases.create_case(db, kind, d, org_path=clerk.org_path, node_id="test-street",
                                        calendar=current_calendar(db))
            return view.id

        return self.street_store.write(create)

    def step(self, case_id: str, username: str, transition: str, **payload: Any) -> cases.TransitionResult:
        p = self.principal(username)
        d = Draft(transition=transition, payload=payload, principal=p, node_time=now_china(), event_id=uuid7())
        return self.street_store.write(
            lambda db: cases.transition(db, case_id, d, node_id="test-street", calendar=current_calendar(db)))


def make_pair(tmp: Path) -> tuple[Settings, Settings]:
    hub = make_settings(tmp, "district")
    street = make_settings(tmp, "street")
    init_demo(hub)
    init_demo(street)
    pair_nodes(hub, street, "http://testserver")
    return hub, street


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    hub, street = make_pair(tmp_path)
    with TestClient(create_app(hub)) as hub_client, Store(street.db_path) as street_store:
        yield Pair(hub, street, hub_client, street_store)


__all__ = ["AT", "HANDUP", "Pair", "make_pair"]
