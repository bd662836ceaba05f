"""Services-hall test helpers: an application form, submitting it, stepping a case over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.testclient import TestClient

from server.config import Settings
from server.domain.ids import now_china
from server.domain.personal import id_card_check_char
from server.domain.roles import Role
from server.node import data_key
from server.store import users
from server.store.calendars import current_calendar
from server.store.db import Store
from server.store.hall import handle_application
from server.store.intake import IntakeContext, IntakeResult
from server.store.seed import DEMO_PASSWORD
from tests.conftest import Logins

MINIMUM_LIVING = "GF00101000-440106000000-01"  # street item, community may receive, 20/30 WD
DISABILITY_CARD = "GG00201000-440106000000-03"  # district item (区残联), received at the street
EMPLOYMENT_REG = "GG00401000-440106000000-06"  # 即办: promised 0, statutory 1
POSTER_PERMIT = "XK00801000-440106000000-16"  # district item accepted only at the district
ID_CARD = "44010619900101123" + id_card_check_char("44010619900101123")
PHONE = "13812345678"
ORIGINALS = {
    MINIMUM_LIVING: ["最低生活保障申请书", "家庭经济状况核对授权书", "家庭成员收入情况声明或收入证明"],
    DISABILITY_CARD: ["残疾人证申请表", "近期免冠彩色二寸照片"],
}


def form(item_code: str = MINIMUM_LIVING, **overrides: Any) -> dict[str, Any]:
    applicant = {"name": "张三丰", "id_card": ID_CARD, "phone": PHONE, "address": "天河区石牌街道某路 1 号"}
    applicant.update(overrides.pop("applicant", {}))
    body: dict[str, Any] = {
        "item_code": item_code,
        "applicant": applicant,
        "materials": [{"material": "最低生活保障申请书", "file_name": "申请书.pdf", "sha256": "a" * 64,
                       "size": 120_000, "mime": "application/pdf"}] if item_code == MINIMUM_LIVING else [],
    }
    body.update(overrides)
    return body


def submit(store: Store, settings: Settings, username: str, payload: dict[str, Any],
           at: datetime | None = None) -> IntakeResult:
    """Run the intake handler as the outbox does: inside one write, for the signed-in user."""
    user = store.read(lambda db: users.get_user_by_name(db, username))
    assert user is not None
    key = data_key(settings)

    def write(db):  # type: ignore[no-untyped-def]
        ctx = IntakeContext(node_id=settings.node_id, principal=user.principal(), received_at=at or now_china(),
                            calendar=current_calendar(db), services={"data_key": key})
        return handle_application(db, payload, ctx)

    return store.write(write)


def submitted(store: Store, settings: Settings, username: str = "clerk", item_code: str = MINIMUM_LIVING,
              at: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    result = submit(store, settings, username, form(item_code, **overrides), at)
    assert result.status == "created", result.errors
    return result.record


def step(client: TestClient, auth: Logins, username: str, case_id: str, transition: str,
         expect: int = 200, **payload: Any) -> dict[str, Any]:
    resp = client.post(f"/api/v1/cases/{case_id}/events", headers=auth(username),
                       json={"transition": transition, "payload": payload})
    assert resp.status_code == expect, resp.text
    return resp.json()  # type: ignore[no-any-return]


def add_user(store: Store, username: str, role: Role, org_unit: str) -> None:
    store.write(lambda db: users.create_user(db, username=username, display_name=username, password=DEMO_PASSWORD,
                                             role=role, org_unit=org_unit))


def case(client: TestClient, auth: Logins, username: str, case_id: str) -> dict[str, Any]:
    resp = client.get(f"/api/v1/hall/applications/{case_id}", headers=auth(username))
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]
