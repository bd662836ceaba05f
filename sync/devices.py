"""Enrolled tablets: one-time enrolment codes, registered keys, revocation, sequence gaps, clocks.

A street admin creates an enrolment (a one-time code shown as a QR code, ODK App User style); the
tablet registers its own public key with that code and receives a device id (sync.md §4.4). Every
envelope names its device and a gapless per-device ``device_seq``; a jump in that sequence raises a
"possibly lost on device X" alert (sync.md §4.3), closed again when the missing items turn up.
Each sync measures the device's clock offset; more than five minutes is ``clock_suspect``
(sync.md §4.5, the CHT "time-traveling phones").

Functions taking ``db`` run inside ``Store.write`` (writes) or ``Store.read`` (reads).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from server.domain.crypto import (
    SIGNATURE_ALGS,
    InvalidKeyError,
    UnsupportedAlgorithmError,
    b64url_decode,
    b64url_encode,
    key_id_of,
    normalize_public_key,
)
from server.domain.ids import uuid7
from server.domain.roles import Principal, can_see, path_within
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.store import audit, changes

__all__ = [
    "CLOCK_SUSPECT_MS",
    "Device",
    "EnrolmentCodeInvalid",
    "create_enrolment",
    "get_device",
    "list_devices",
    "note_clock",
    "note_seq",
    "normalise_code",
    "register_device",
    "revoke_device",
]

CLOCK_SUSPECT_MS = 5 * 60 * 1000  # sync.md §4.5: |offset| > 5 min
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # read aloud and typed: no 0/O, 1/I/L
_CODE_LENGTH = 10  # 31^10 ≈ 2^49 guesses, against a code that lives an hour and works once


class EnrolmentCodeInvalid(Forbidden):
    code = "enrolment_code_invalid"


class DeviceRevoked(Forbidden):
    code = "device_revoked"


@dataclass(frozen=True)
class Device:
    id: str
    label: str
    alg: str
    public_raw: bytes
    key_id: str
    org_unit: str
    org_path: str
    registered_at: str
    revoked_at: str | None
    seq_high: int
    clock_offset_ms: int | None
    clock_suspect: bool
    last_seen_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, Any]:
        return {
            "device_id": self.id, "label": self.label, "alg": self.alg, "key_id": self.key_id,
            "org_unit": self.org_unit, "org_path": self.org_path, "registered_at": self.registered_at,
            "revoked_at": self.revoked_at, "active": self.active, "seq_high": self.seq_high,
            "clock_offset_ms": self.clock_offset_ms, "clock_suspect": self.clock_suspect,
            "last_seen_at": self.last_seen_at,
        }


_DEVICE_COLS = (
    "id, label, alg, public_key, key_id, org_unit, org_path, registered_at, revoked_at, seq_high,"
    " clock_offset_ms, clock_suspect, last_seen_at"
)


def _device(row: Any) -> Device:
    (did, label, alg, public_key, key_id, org_unit, org_path, registered_at, revoked_at, seq_high,
     offset, suspect, last_seen) = tuple(row)
    return Device(did, label, alg, b64url_decode(public_key), key_id, org_unit, org_path, registered_at,
                  revoked_at, int(seq_high), offset, bool(suspect), last_seen)


def get_device(db: Database, device_id: str) -> Device | None:
    row = db.execute(f"SELECT {_DEVICE_COLS} FROM devices WHERE id = ?", [device_id]).fetchone()
    return _device(row) if row is not None else None


def list_devices(db: Database, scope_path: str) -> list[dict[str, Any]]:
    """Devices enrolled within ``scope_path``, each with its open alerts."""
    rows = db.execute(f"SELECT {_DEVICE_COLS} FROM devices ORDER BY registered_at").fetchall()
    out = []
    for row in rows:
        device = _device(row)
        if not path_within(device.org_path, scope_path):
            continue
        alerts = db.execute(
            "SELECT id, kind, from_seq, to_seq, message, created_at FROM sync_alerts"
            " WHERE device_id = ? AND resolved_at IS NULL ORDER BY created_at", [device.id]
        ).fetchall()
        out.append({**device.public(), "alerts": [dict(a) for a in alerts]})
    return out


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def normalise_code(code: str) -> str:
    """Codes are shown as ``ABCDE-FGHJK``; accept them typed with spaces, dashes, lower case."""
    # ASCII only: str.isalnum() also accepts 汉字 and full-width letters, which no code contains (and which
    # the ASCII hash below cannot encode); they simply make the code not match
    return "".join(ch for ch in code.upper() if ch.isascii() and ch.isalnum())


def create_enrolment(
    db: Database, principal: Principal, *, org_unit: str | None, label: str, ttl: timedelta, now: datetime
) -> dict[str, Any]:
    """A one-time enrolment code for a tablet of ``org_unit`` (default: the admin's own unit)."""
    unit_code = org_unit or principal.org_unit
    row = db.execute("SELECT path FROM org_units WHERE code = ?", [unit_code]).fetchone()
    if row is None:
        raise ValidationFailed("组织单元不存在", field="org_unit")
    org_path = row[0]
    if not can_see(principal, org_path):
        raise Forbidden("只能为本人管辖范围内的单位登记设备", field="org_unit")
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    enrolment_id = uuid7()
    expires = now + ttl
    db.execute(
        "INSERT INTO device_enrolments (id, code_hash, label, org_unit, org_path, created_by, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [enrolment_id, _code_hash(code), label, unit_code, org_path, principal.user_id, now.isoformat(),
         expires.isoformat()],
    )
    audit.append(db, actor=principal.user_id, role=principal.role.value, action="device.enrolment_created",
                 object_type="device_enrolment", object_id=enrolment_id, org_path=org_path,
                 detail={"label": label, "expires_at": expires.isoformat()})
    return {"enrolment_id": enrolment_id, "code": f"{code[:5]}-{code[5:]}", "expires_at": expires.isoformat(),
            "org_unit": unit_code, "org_path": org_path, "label": label}


def register_device(
    db: Database, *, code: str, public_key: str, alg: str, label: str, now: datetime
) -> Device:
    """Register a tablet's public key against a one-time code; the code is spent even on a retry."""
    if alg not in SIGNATURE_ALGS:
        raise ValidationFailed(f"不支持的签名算法：{alg}", field="alg")
    try:
        public_raw = normalize_public_key(b64url_decode(public_key), alg)
    except (ValueError, InvalidKeyError, UnsupportedAlgorithmError):
        raise ValidationFailed("公钥格式错误（应为 base64url 编码的原始公钥）", field="public_key") from None
    row = db.execute(
        "SELECT id, label, org_unit, org_path, created_by, expires_at, used_at FROM device_enrolments"
        " WHERE code_hash = ?", [_code_hash(normalise_code(code))]
    ).fetchone()
    if row is None or row["used_at"] is not None or row["expires_at"] <= now.isoformat():
        raise EnrolmentCodeInvalid("登记码无效、已使用或已过期，请向街道管理员重新申请", field="code")
    key_id = key_id_of(public_raw)
    if db.execute("SELECT 1 FROM devices WHERE key_id = ?", [key_id]).fetchone() is not None:
        raise Conflict("该密钥已登记为另一台设备", field="public_key")
    device_id = uuid7()
    db.execute(
        "INSERT INTO devices (id, label, alg, public_key, key_id, org_unit, org_path, enrolment_id, enrolled_by,"
        " registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [device_id, label or row["label"], alg, b64url_encode(public_raw), key_id, row["org_unit"], row["org_path"],
         row["id"], row["created_by"], now.isoformat()],
    )
    db.execute("UPDATE device_enrolments SET used_at = ?, device_id = ? WHERE id = ?",
               [now.isoformat(), device_id, row["id"]])
    audit.append(db, actor=row["created_by"], role="device", action="device.registered", object_type="device",
                 object_id=device_id, org_path=row["org_path"], device_id=device_id,
                 after={"key_id": key_id, "alg": alg}, detail={"enrolment_id": row["id"], "key_id": key_id})
    changes.record(db, "device", device_id, row["org_path"])
    device = get_device(db, device_id)
    assert device is not None
    return device


def revoke_device(db: Database, principal: Principal, device_id: str, reason: str, now: datetime) -> Device:
    """Revoke a device and the sign-in tokens bound to it; later envelopes go to quarantine."""
    device = get_device(db, device_id)
    if device is None or not can_see(principal, device.org_path):
        raise NotFound("未找到该设备", field="device_id")
    if device.revoked_at is not None:
        return device  # revoking twice changes nothing: the first revocation time stands
    db.execute("UPDATE devices SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ?",
               [now.isoformat(), principal.user_id, reason, device_id])
    db.execute("UPDATE tokens SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL",
               [now.isoformat(), device_id])
    audit.append(db, actor=principal.user_id, role=principal.role.value, action="device.revoked",
                 object_type="device", object_id=device_id, org_path=device.org_path, device_id=device_id,
                 detail={"reason": reason})
    changes.record(db, "device", device_id, device.org_path)
    revoked = get_device(db, device_id)
    assert revoked is not None
    return revoked


def _seq_present(db: Database, device_id: str, lo: int, hi: int) -> set[int]:
    rows = db.execute(
        "SELECT device_seq FROM submissions WHERE device_id = ? AND device_seq BETWEEN ? AND ?"
        " UNION SELECT device_seq FROM quarantine WHERE device_id = ? AND device_seq BETWEEN ? AND ?",
        [device_id, lo, hi, device_id, lo, hi],
    ).fetchall()
    return {int(r[0]) for r in rows if r[0] is not None}


def note_seq(db: Database, device: Device, seq: int, now: datetime) -> None:
    """Record that ``seq`` of ``device`` arrived (call after the item is stored or quarantined).

    A jump past ``seq_high + 1`` opens a ``seq_gap`` alert for the missing range; an item that fills
    an open gap closes the alert once the whole range has arrived (out-of-order batches are normal).
    """
    high = int(db.execute("SELECT seq_high FROM devices WHERE id = ?", [device.id]).fetchone()[0])
    if seq > high + 1:
        lo, hi = high + 1, seq - 1
        missing = f"{lo}" if lo == hi else f"{lo}–{hi}"
        message = f"设备「{device.label or device.id}」的第 {missing} 条提交尚未到达，可能在设备上丢失"
        alert_id = uuid7()
        db.execute(
            "INSERT INTO sync_alerts (id, kind, device_id, from_seq, to_seq, message, created_at)"
            " VALUES (?, 'seq_gap', ?, ?, ?, ?, ?)", [alert_id, device.id, lo, hi, message, now.isoformat()]
        )
        audit.append(db, actor="system", role="system", action="sync.seq_gap", object_type="device",
                     object_id=device.id, org_path=device.org_path, device_id=device.id,
                     detail={"alert_id": alert_id, "from_seq": lo, "to_seq": hi})
    if seq > high:
        db.execute("UPDATE devices SET seq_high = ? WHERE id = ?", [seq, device.id])
        return
    for alert in db.execute(
        "SELECT id, from_seq, to_seq FROM sync_alerts WHERE device_id = ? AND kind = 'seq_gap'"
        " AND resolved_at IS NULL AND from_seq <= ? AND to_seq >= ?", [device.id, seq, seq]
    ).fetchall():
        lo, hi = int(alert["from_seq"]), int(alert["to_seq"])
        if len(_seq_present(db, device.id, lo, hi)) == hi - lo + 1:
            db.execute("UPDATE sync_alerts SET resolved_at = ?, detail = ? WHERE id = ?",
                       [now.isoformat(), json.dumps({"resolution": "arrived"}), alert["id"]])


def note_clock(
    db: Database, device: Device, *, offset_ms: int | None, suspect: bool | None, user_id: str, now: datetime
) -> None:
    """Store this sync's clock measurement (``suspect`` None: nothing measured, keep the flag);
    raise an alert when the device turns clock-suspect, close it when the clock is right again."""
    db.execute("UPDATE devices SET last_seen_at = ?, last_user_id = ? WHERE id = ?",
               [now.isoformat(), user_id, device.id])
    if suspect is None:
        return
    db.execute(
        "UPDATE devices SET clock_offset_ms = COALESCE(?, clock_offset_ms), clock_suspect = ?, clock_checked_at = ?"
        " WHERE id = ?", [offset_ms, int(suspect), now.isoformat(), device.id],
    )
    if suspect and not device.clock_suspect:
        minutes = round((offset_ms or 0) / 60000)
        db.execute(
            "INSERT INTO sync_alerts (id, kind, device_id, message, detail, created_at) VALUES (?, 'clock_suspect',"
            " ?, ?, ?, ?)",
            [uuid7(), device.id, f"设备「{device.label or device.id}」的时钟与节点相差约 {minutes} 分钟，请校准",
             json.dumps({"offset_ms": offset_ms}), now.isoformat()],
        )
    elif not suspect and device.clock_suspect:
        db.execute("UPDATE sync_alerts SET resolved_at = ? WHERE device_id = ? AND kind = 'clock_suspect'"
                   " AND resolved_at IS NULL", [now.isoformat(), device.id])


def require_active(device: Device | None, device_id: str) -> Device:
    if device is None:
        raise Forbidden("设备未登记，请先用登记码登记本设备", field="x-device-id")
    if device.revoked_at is not None:
        raise DeviceRevoked("该设备已被停用，请联系街道管理员", field="x-device-id")
    return device
