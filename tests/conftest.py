"""Shared fixtures: a real SQLite file per test, the real app in-process, demo accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.config import Settings
from server.node import ensure_keys
from server.store.db import Store
from server.store.seed import DEMO_PASSWORD, init_node
from server.web.app import create_app


def make_settings(tmp: Path, role: str = "street", **kw: object) -> Settings:
    node_id = "test-hub" if role == "district" else "test-street"
    return Settings(role=role, node_id=node_id, data_dir=tmp / role, **kw)  # type: ignore[arg-type]


def init_demo(settings: Settings) -> dict[str, object]:
    with Store(settings.db_path) as store:
        result = store.write(
            lambda db: init_node(db, role=settings.role, node_id=settings.node_id, org_unit=settings.org_unit,
                                 demo=True)
        )
    ensure_keys(settings)
    return result


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = make_settings(tmp_path)
    init_demo(s)
    return s


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def store(client: TestClient) -> Store:
    services = client.app.state.services  # type: ignore[attr-defined]
    return services.store  # type: ignore[no-any-return]


class Logins:
    """Bearer headers per demo username, logged in once per test."""

    def __init__(self, client: TestClient):
        self.client = client
        self.tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self.tokens:
            resp = self.client.post("/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
            assert resp.status_code == 200, resp.text
            self.tokens[username] = resp.json()["token"]
        return self.tokens[username]

    def __call__(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


@pytest.fixture
def auth(client: TestClient) -> Logins:
    return Logins(client)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main thread for
    the session, and tests that call ``asyncio.run`` must not share the thread with it. Non-browser
    failures also show sooner."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None or "tests/browser/" in item.nodeid)
