"""The printable receipt (QR, print CSS, node signature), exported form schemas, the timer hook."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from starlette.testclient import TestClient

from schemas.hall import FORM_SCHEMAS, export_json_schemas
from server.config import Settings
from server.domain.crypto import b64url_decode, verify_signature
from server.domain.ids import now_china
from server.node import node_key
from server.store.db import Store
from server.web import lifecycle
from server.web.app import create_app
from tests.conftest import Logins
from tests.hall.helpers import ID_CARD, PHONE, form, submit, submitted

ROOT = Path(__file__).resolve().parents[2]


def test_receipt_is_printable_with_qr_and_a_verifiable_node_signature(client: TestClient, auth: Logins,
                                                                      store: Store, settings: Settings) -> None:
    rec = submitted(store, settings, "community1")
    resp = client.get(f"/receipt/{rec['case_id']}", headers=auth("community1"))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "<svg" in html and "@media print" in html and rec["query_code"] in html
    assert "最低生活保障审批" in html and "张*丰" in html
    assert ID_CARD not in html and PHONE not in html and "张三丰" not in html
    signed = store.query("SELECT signed_body FROM hall_receipts WHERE case_id = ?", [rec["case_id"]])[0]
    key = node_key(settings)
    signature = html.split("签名（Ed25519，密钥 ")[1].split("）：")[1].split("<")[0]
    assert verify_signature(key.public_raw, b64url_decode(signature), signed["signed_body"].encode())
    assert client.get(f"/receipt/{rec['case_id']}", headers=auth("grid1")).status_code == 403
    assert client.get(f"/receipt/{rec['case_id']}").status_code == 401


def test_staff_open_the_applicant_in_clear_and_the_view_is_audited(client: TestClient, auth: Logins,
                                                                    store: Store, settings: Settings) -> None:
    rec = submitted(store, settings, "clerk")
    listed = client.get(f"/api/v1/hall/applications/{rec['case_id']}", headers=auth("clerk")).json()
    assert listed["application"]["applicant"]["id_card"].count("*") == 10
    resp = client.get(f"/api/v1/hall/applications/{rec['case_id']}/applicant", headers=auth("handler"))
    assert resp.status_code == 200 and resp.json()["applicant"]["id_card"] == ID_CARD
    assert store.query("SELECT actor FROM audit_log WHERE action = 'hall.applicant_viewed'")
    assert client.get(f"/api/v1/hall/applications/{rec['case_id']}/applicant",
                      headers=auth("supervisor")).status_code == 403


def test_exported_form_schemas_are_current(tmp_path: Path) -> None:
    export_json_schemas(tmp_path)
    for name in FORM_SCHEMAS:
        fresh = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        shipped = json.loads((ROOT / "schemas" / "json" / f"{name}.json").read_text(encoding="utf-8"))
        assert shipped == fresh, f"schemas/json/{name}.json is stale: run python -m schemas.hall"


def test_running_node_fires_overdue_timers_on_start(settings: Settings) -> None:
    with Store(settings.db_path) as store:
        result = submit(store, settings, "clerk", form(), at=now_china() - timedelta(days=15))
    case_id = result.record["case_id"]
    with TestClient(create_app(settings)) as c:  # the startup hook runs the first round at once
        services = c.app.state.services  # type: ignore[attr-defined]
        state = services.store.query("SELECT state FROM cases WHERE id = ?", [case_id])[0]["state"]
        assert lifecycle.TIMER_LOOP in services.extra
    assert state == "deemed_accepted"
    assert lifecycle.TIMER_INTERVAL_SECONDS == 60.0
