"""Applications through the one write path: signed ``service_application`` envelopes on POST /sync/v1/outbox.

Runs once the sync leg A endpoints are mounted (they are built in parallel); until then it skips.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server.domain.crypto import SigningKey, b64url_encode
from server.domain.ids import now_china, uuid7
from server.web.routes import all_endpoints
from sync.envelopes import sign_envelope
from tests.conftest import Logins
from tests.hall.helpers import ID_CARD, form

pytestmark = pytest.mark.skipif(
    "POST /sync/v1/outbox" not in {ep.name for ep in all_endpoints()},
    reason="sync leg A (outbox) is not mounted yet",
)


class Device:
    def __init__(self, client: TestClient, auth: Logins, username: str) -> None:
        code = client.post("/sync/v1/devices/enrolments", headers=auth("admin"), json={"label": "窗口平板"})
        assert code.status_code in (200, 201), code.text
        body = code.json()
        self.key = SigningKey.generate()
        reg = client.post("/sync/v1/devices/register", json={
            "code": body.get("code") or body.get("enrolment_code"), "public_key": b64url_encode(self.key.public_raw),
            "alg": self.key.alg, "label": "窗口平板"})
        assert reg.status_code in (200, 201), reg.text
        self.id = reg.json()["device_id"]
        self.seq = 0
        self.client, self.headers = client, {**auth(username), "X-Device-Id": self.id}
        self.user = client.get("/api/v1/auth/me", headers=auth(username)).json()["user"]

    def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        sid = uuid7()
        env = sign_envelope({
            "submission_id": sid, "root_id": sid, "supersedes": None, "kind": "service_application",
            "form_id": "service_application", "form_version": "1", "org_path": self.user["org_path"],
            "device_id": self.id, "device_seq": self.seq, "user_id": self.user["id"],
            "created_at_device": now_china(), "payload": payload, "attachments": []}, self.key)
        resp = self.client.post("/sync/v1/outbox", headers=self.headers, json={"envelopes": [env]})
        assert resp.status_code == 200, resp.text
        return resp.json()["results"][0]  # type: ignore[no-any-return]


def test_window_tablet_submits_through_the_outbox(client: TestClient, auth: Logins) -> None:
    device = Device(client, auth, "clerk")
    result = device.send(form())
    assert result["status"] == "created", result
    queue = client.get("/api/v1/hall/queue", headers=auth("clerk")).json()["items"]
    assert len(queue) == 1 and queue[0]["item_name"] == "最低生活保障审批"


def test_bad_application_is_a_per_item_invalid_result_naming_the_field(client: TestClient, auth: Logins) -> None:
    device = Device(client, auth, "clerk")
    result = device.send(form(applicant={"id_card": ID_CARD[:-1] + ("0" if ID_CARD[-1] != "0" else "1")}))
    assert result["status"] == "invalid"
    assert "payload.applicant.id_card" in [e["field"] for e in result["errors"]]
    assert client.get("/api/v1/hall/queue", headers=auth("clerk")).json()["items"] == []
