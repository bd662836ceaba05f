"""Sync leg A test helpers for every feature: an enrolled tablet, signed envelopes, outbox, blobs.

    device = enrol_device(client, auth, "grid1")
    env = device.envelope("incident_report", payload, device.org_path, attachments=[photo])
    sha = upload_blob(client, auth("grid1"), device, jpeg_bytes, "image/jpeg")
    resp = post_outbox(client, auth("grid1"), device, [env])
    assert resp.json()["results"][0]["status"] == "created"

Everything goes through the real endpoints (enrolment by the street admin, registration with the
one-time code, the outbox), so a feature's tests exercise the same write path as a tablet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from starlette.testclient import TestClient

from server.domain.crypto import SigningKey, b64url_encode, key_id_of
from server.domain.ids import now_china, uuid7
from sync.envelopes import sign_envelope

__all__ = ["P256Key", "TestDevice", "attachment", "enrol_device", "jpeg_bytes", "post_outbox", "upload_blob"]

ADMIN = "admin"


class P256Key:
    """An ECDSA P-256 device key as a browser without WebCrypto Ed25519 would hold it."""

    alg = "ECDSA-P256-SHA256"

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_raw(self) -> bytes:
        return self._key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    def sign(self, data: bytes) -> bytes:  # WebCrypto's raw r||s, not DER
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@dataclass
class TestDevice:
    __test__ = False  # not a pytest class

    device_id: str
    key: SigningKey | P256Key
    username: str
    user_id: str
    org_path: str
    seq: int = 0
    registration: dict[str, Any] = field(default_factory=dict)

    def fields(self, kind: str, payload: Mapping[str, Any], org_path: str | None = None,
               attachments: Iterable[Mapping[str, Any]] = (), **overrides: Any) -> dict[str, Any]:
        """Unsigned envelope fields; ``device_seq`` is taken from the device's counter."""
        if "device_seq" not in overrides:
            self.seq += 1
        sid = overrides.pop("submission_id", None) or uuid7()
        fields: dict[str, Any] = {
            "submission_id": sid, "root_id": sid, "supersedes": None, "kind": kind,
            "form_id": kind, "form_version": "1", "org_path": org_path or self.org_path,
            "device_id": self.device_id, "device_seq": self.seq, "user_id": self.user_id,
            "created_at_device": now_china().isoformat(timespec="seconds"), "payload": dict(payload),
            "attachments": [dict(a) for a in attachments],
        }
        fields.update(overrides)
        return fields

    def envelope(self, kind: str, payload: Mapping[str, Any], org_path: str | None = None,
                 attachments: Iterable[Mapping[str, Any]] = (), **overrides: Any) -> dict[str, Any]:
        """A signed envelope, as the PWA would send it (seq auto-incremented)."""
        return sign_envelope(self.fields(kind, payload, org_path, attachments, **overrides), self.key)  # type: ignore[arg-type]

    def headers(self, auth_headers: Mapping[str, str]) -> dict[str, str]:
        return {**auth_headers, "X-Device-Id": self.device_id}


def enrol_device(client: TestClient, auth: Any, username: str, *, label: str = "测试平板",
                 key: SigningKey | P256Key | None = None, org_unit: str | None = None) -> TestDevice:
    """The street admin issues a code; the tablet registers its key with it; ``username`` will use it."""
    body: dict[str, Any] = {"label": label}
    if org_unit:
        body["org_unit"] = org_unit
    resp = client.post("/sync/v1/devices/enrolments", json=body, headers=auth(ADMIN))
    assert resp.status_code == 200, resp.text
    key = key or SigningKey.generate()
    reg = client.post("/sync/v1/devices/register", json={
        "code": resp.json()["code"], "public_key": b64url_encode(key.public_raw), "alg": key.alg, "label": label})
    assert reg.status_code == 200, reg.text
    me = client.get("/api/v1/auth/me", headers=auth(username))
    assert me.status_code == 200, me.text
    user = me.json()["user"]
    return TestDevice(device_id=reg.json()["device_id"], key=key, username=username, user_id=user["id"],
                      org_path=user["org_path"], registration=reg.json())


def post_outbox(client: Any, auth_headers: Mapping[str, str], device: TestDevice,
                envelopes: list[dict[str, Any]], *, device_time: datetime | None = None) -> Any:
    headers = device.headers(auth_headers)
    if device_time is not None:
        headers["X-Device-Time"] = device_time.isoformat()
    return client.post("/sync/v1/outbox", json={"envelopes": envelopes}, headers=headers)


def upload_blob(client: Any, headers: Mapping[str, str], device: TestDevice, data: bytes, mime: str) -> str:
    """Upload ``data`` whole; returns its sha256 (the blob's name)."""
    sha = hashlib.sha256(data).hexdigest()
    resp = client.put(f"/sync/v1/blobs/{sha}", content=data,
                      headers={**device.headers(headers), "Content-Type": mime})
    assert resp.status_code in (200, 201), resp.text
    return sha


def jpeg_bytes(tag: str = "", size: int = 2048) -> bytes:
    """Bytes that pass the node's JPEG type check (SOI marker), distinct per ``tag``."""
    body = (tag.encode() + b"streetnode") * (size // 10 + 1)
    return b"\xff\xd8\xff\xe0" + body[: max(size - 6, 0)] + b"\xff\xd9"


def attachment(data: bytes, mime: str = "image/jpeg", name: str | None = None) -> dict[str, Any]:
    """The envelope's attachment entry for ``data``."""
    sha = hashlib.sha256(data).hexdigest()
    return {"name": name or f"{sha[:12]}.jpg", "sha256": sha, "size": len(data), "mime": mime}


def later(minutes: int) -> str:
    return (now_china() + timedelta(minutes=minutes)).isoformat(timespec="seconds")


# --- a test-only envelope kind ------------------------------------------------------------------------
# ``test_permit`` envelopes create a case of the test kind (tests/kinds_for_tests.py; window clerks and
# community workers may submit), so outbox tests need no feature. ``payload.misbehave`` makes the handler write and then refuse, or raise, to prove
# that a refused item leaves nothing behind but its quarantine row.

TEST_KIND = "test_permit"


def _handle_test_permit(db: Any, payload: dict[str, Any], ctx: Any) -> Any:
    from server.domain.engine import Draft, RuleViolation
    from server.store import cases
    from server.store.intake import IntakeResult
    from tests.kinds_for_tests import TEST_PERMIT

    title = payload.get("title")
    if not isinstance(title, str) or not title:
        return IntakeResult.invalid("payload.title", "缺少标题")
    case_id = ctx.services["submission_id"]
    draft = Draft(transition="submit", payload={"title": title}, principal=ctx.principal, node_time=ctx.received_at,
                  event_id=case_id, device_time=ctx.device_time, device_id=ctx.device_id)
    try:
        view, number = cases.create_case(db, TEST_PERMIT, draft, org_path=ctx.principal.org_path,
                                         node_id=ctx.node_id, calendar=ctx.calendar, case_id=case_id)
    except RuleViolation as exc:
        return IntakeResult("forbidden" if exc.kind == "forbidden" else "invalid",
                            [{"field": f"payload.{exc.field or 'title'}", "message": exc.message}])
    misbehave = payload.get("misbehave")
    if misbehave == "write_then_invalid":
        return IntakeResult.invalid("payload.title", "写入后拒绝")
    if misbehave == "write_then_forbidden":
        return IntakeResult.forbidden("payload.title", "写入后拒绝")
    if misbehave == "raise":
        raise RuntimeError("handler bug")
    return IntakeResult("created", record={"case_id": case_id, "number": number, "version": view.version})


def register_test_kind() -> None:
    from server.store import intake

    intake.register(TEST_KIND, _handle_test_permit)


register_test_kind()
