"""Cases for the browser tests, made the way tablets make them: a Python "tablet" enrolled on the
running node sends signed envelopes (an incident report with its photo, a window application), and
earlier steps go through ``POST /api/v1/cases/{id}/events`` as the staff who make them. The screens
under test then start from a case in a known state."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.browser.conftest import Node
from tests.hall.helpers import form
from tests.sync.helpers import TestDevice, attachment, enrol_device, post_outbox, upload_blob

# 石牌街 暨大社区 第一网格, where grid1 and grid2 work
INSIDE = {"lng": 113.3411, "lat": 23.1318, "place": "华文路口东侧人行道"}
NEAR = {"lng": 113.34115, "lat": 23.13185}
GRID = "440106006001-G01"


class Seeder:
    """One enrolled Python tablet per user, talking to the real node over HTTP."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # The sync test helpers take any client with TestClient's post/get/put signature.
        self.client: Any = httpx2.Client(base_url=node.url, timeout=15.0)
        self.devices: dict[str, TestDevice] = {}

    def device(self, username: str) -> TestDevice:
        if username not in self.devices:
            self.devices[username] = enrol_device(self.client, self.node.headers, username, label=f"测试平板-{username}")
        return self.devices[username]

    def send(self, username: str, kind: str, payload: dict[str, Any], attachments: list[dict[str, Any]] | None = None,
             ) -> dict[str, Any]:
        dev = self.device(username)
        env = dev.envelope(kind, payload, attachments=attachments or [])
        resp = post_outbox(self.client, self.node.headers(username), dev, [env])
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()["results"][0]
        assert result["status"] == "created", result
        return result

    def report(self, photo: bytes, description: str, username: str = "grid1") -> str:
        """A grid member's incident report with one photo; returns the case id (state 已上报)."""
        upload_blob(self.client, self.node.headers(username), self.device(username), photo, "image/jpeg")
        payload = {"category_code": "SJ0102", "location": INSIDE, "description": description}
        result = self.send(username, "incident_report", payload, [attachment(photo, name="现场.jpg")])
        return str(result["record"]["case_id"])

    def application(self, username: str = "clerk") -> str:
        """A window application for 最低生活保障 (state 已申办); returns the case id."""
        return str(self.send(username, "service_application", form())["record"]["case_id"])

    def case(self, case_id: str, username: str = "admin") -> dict[str, Any]:
        resp = self.node.get(f"/api/v1/cases/{case_id}", username)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def state(self, case_id: str) -> str:
        return str(self.case(case_id)["case"]["state"])

    def step(self, case_id: str, username: str, transition: str, payload: dict[str, Any] | None = None) -> None:
        version = self.case(case_id)["case"]["version"]
        resp = self.node.post(f"/api/v1/cases/{case_id}/events",
                              {"transition": transition, "payload": payload or {}, "base_version": version}, username)
        assert resp.status_code == 200, resp.text

    def act(self, case_id: str, username: str, transition: str, payload: dict[str, Any],
            photos: dict[str, bytes] | None = None) -> None:
        """A step as a tablet makes it: a signed ``case_event`` envelope, its photos as attachments."""
        body = dict(payload)
        attachments = []
        for key, data in (photos or {}).items():
            upload_blob(self.client, self.node.headers(username), self.device(username), data, "image/jpeg")
            ref = attachment(data, name=f"{key}.jpg")
            attachments.append(ref)
            body[key] = [ref]
        version = self.case(case_id)["case"]["version"]
        self.send(username, "case_event", {"case_id": case_id, "transition": transition, "payload": body,
                                           "base_version": version}, attachments)

    def close(self) -> None:
        self.client.close()
