"""Signing, verifying and sealing sync envelopes and receipts (sync.md §4.1, §4.4; DESIGN §6).

Everything here works on the raw JSON object as it arrived, because a signature covers the bytes
the signer produced, not our parse of them: **verify before you decrypt or parse**. The order at
the outbox is ``verify_envelope(raw)`` → ``open_payload`` (if sealed) → ``SubmissionEnvelope``.

The signed bytes are the canonical JSON (sorted keys, compact, UTF-8) of the object minus ``sig``.
``payload_sha256`` is the sha256 of the canonical JSON of ``payload`` *as sent*: for a sealed
payload that is the sealed form, so the node dedupes and verifies without the district's key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import (
    SIGNATURE_ALGS,
    CryptoError,
    EncryptionKeyPair,
    InvalidKeyError,
    SigningKey,
    UnsupportedAlgorithmError,
    b64url_decode,
    b64url_encode,
    key_id_of,
    normalize_public_key,
    open_sealed,
    seal,
    verify_signature,
)

__all__ = [
    "RECEIPT_FIELDS",
    "EnvelopeError",
    "make_receipt",
    "open_payload",
    "payload_hash",
    "seal_payload",
    "sealed_payload_aad",
    "sign_envelope",
    "signing_bytes",
    "verify_envelope",
    "verify_receipt",
]

RECEIPT_FIELDS = frozenset({"submission_id", "node_id", "node_seq", "received_at", "payload_sha256", "sig"})
_SIG_FIELDS = frozenset({"alg", "key_id", "value"})
_MAX_DEPTH = 32  # form payloads are shallow; deeper nesting is an attack on the recursion limit


class EnvelopeError(Exception):
    """An envelope or receipt that must not be accepted.

    ``field`` names the offending field (dotted path), ``message`` is for the person at the tablet
    (zh-CN), ``message_en`` for logs, ``code`` is stable: ``malformed``, ``unknown_alg``,
    ``alg_mismatch``, ``key_mismatch``, ``payload_hash_mismatch``, ``bad_signature``,
    ``decrypt_failed``, ``receipt_mismatch``.
    """

    def __init__(self, field: str, code: str, message: str, message_en: str) -> None:
        super().__init__(f"{field}: {message_en} ({message})")
        self.field = field
        self.code = code
        self.message = message
        self.message_en = message_en

    def to_field_error(self) -> dict[str, str]:
        """The ``{field, message}`` item of an outbox result's ``errors``."""
        return {"field": self.field, "message": self.message}


def _malformed(field: str, message_en: str) -> EnvelopeError:
    return EnvelopeError(field, "malformed", "数据格式错误", message_en)


def _json_native(value: Any, path: str, *, convert: bool, depth: int = 0) -> Any:
    """Check (and with ``convert``, copy) ``value`` as plain JSON; aware datetimes become RFC 3339."""
    if depth > _MAX_DEPTH:
        raise _malformed(path, "nested too deeply")
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _malformed(path, "NaN and Infinity are not JSON numbers")
        return value
    if convert and isinstance(value, datetime):
        if value.utcoffset() is None:
            raise _malformed(path, "a timestamp needs a UTC offset")
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _malformed(path, "object keys must be strings")
            out[key] = _json_native(item, f"{path}.{key}" if path else key, convert=convert, depth=depth + 1)
        return out
    if isinstance(value, list) or (convert and isinstance(value, tuple)):
        return [
            _json_native(item, f"{path}[{i}]", convert=convert, depth=depth + 1)
            for i, item in enumerate(value)
        ]
    raise _malformed(path, f"{type(value).__name__} is not a JSON value")


def payload_hash(payload: Any) -> str:
    """sha256 hex of the canonical JSON of ``payload`` (clear or sealed, as it travels)."""
    return sha256_hex(canonical_json(payload))


def signing_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON of the object without its ``sig`` field."""
    body = {key: value for key, value in envelope.items() if key != "sig"}
    return canonical_json(_json_native(body, "", convert=False))


def _signature(body: Mapping[str, Any], key: SigningKey) -> dict[str, str]:
    return {"alg": key.alg, "key_id": key.key_id, "value": b64url_encode(key.sign(signing_bytes(body)))}


def _sig_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    sig = obj.get("sig")
    if (
        not isinstance(sig, Mapping)
        or set(sig) != _SIG_FIELDS
        or not all(isinstance(v, str) for v in sig.values())
    ):
        raise _malformed("sig", "sig must be {alg, key_id, value} strings")
    if sig["alg"] not in SIGNATURE_ALGS:
        alg = sig["alg"]
        raise EnvelopeError(
            "sig.alg", "unknown_alg", f"不支持的签名算法：{alg}", f"unknown signature algorithm {alg!r}"
        )
    return sig


def _check_signature(
    sig: Mapping[str, str], body: bytes, public_raw: bytes, expected_alg: str | None
) -> None:
    alg = sig["alg"]
    if expected_alg is not None and alg != expected_alg:
        raise EnvelopeError(
            "sig.alg",
            "alg_mismatch",
            "签名算法与登记的密钥不符",
            f"signed with {alg}, key is enrolled for {expected_alg}",
        )
    try:
        public = normalize_public_key(public_raw, alg)
    except (InvalidKeyError, UnsupportedAlgorithmError) as exc:
        raise EnvelopeError("sig.alg", "key_mismatch", "签名算法与登记的密钥不符", str(exc)) from exc
    if sig["key_id"] != key_id_of(public):
        raise EnvelopeError(
            "sig.key_id",
            "key_mismatch",
            "签名密钥与登记的密钥不符",
            f"signed by key {sig['key_id']}, expected {key_id_of(public)}",
        )
    try:
        value = b64url_decode(sig["value"])
    except ValueError:
        value = b""  # fails verification below, reported as a bad signature
    if not verify_signature(public, value, body, alg=alg):
        raise EnvelopeError(
            "sig.value", "bad_signature", "签名无效，数据可能已被篡改", "signature does not verify"
        )


def sign_envelope(fields: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """A signed copy of ``fields``: sets ``payload_sha256`` and ``sig`` (any old ``sig`` is dropped).

    Aware datetimes in ``fields`` become RFC 3339 strings first, so the signed bytes are exactly what
    JSON transport will carry.
    """
    body = _json_native({k: v for k, v in fields.items() if k != "sig"}, "", convert=True)
    if "payload" not in body:
        raise _malformed("payload", "an envelope needs a payload")
    digest = payload_hash(body["payload"])
    if body.setdefault("payload_sha256", digest) != digest:
        raise ValueError("payload_sha256 given does not match the payload")
    return {**body, "sig": _signature(body, key)}


def verify_envelope(env: Mapping[str, Any], public_raw: bytes, *, expected_alg: str | None = None) -> None:
    """Raise ``EnvelopeError`` unless ``env`` (the raw JSON object) is signed by ``public_raw``.

    ``public_raw`` is the device's enrolled key (raw or SPKI); ``expected_alg`` the algorithm it was
    enrolled with. Checks, in order: shape of ``sig``, known algorithm, plain JSON values, payload
    hash, enrolled algorithm and key id, signature. Call it before parsing the envelope with pydantic
    and before any decryption.
    """
    if not isinstance(env, Mapping):
        raise _malformed("envelope", "an envelope is a JSON object")
    sig = _sig_of(env)
    if "payload" not in env or not isinstance(env.get("payload_sha256"), str):
        raise _malformed("payload_sha256", "an envelope needs payload and payload_sha256")
    body = signing_bytes(env)  # non-JSON values are reported as malformed before any comparison
    if payload_hash(env["payload"]) != env["payload_sha256"]:
        raise EnvelopeError(
            "payload_sha256",
            "payload_hash_mismatch",
            "数据摘要不符，数据在传输中被改动或损坏",
            "payload_sha256 does not match the payload",
        )
    _check_signature(sig, body, public_raw, expected_alg)


def sealed_payload_aad(env: Mapping[str, Any]) -> bytes:
    """The AAD a sealed payload is bound to, so a box cannot be moved into another envelope."""
    try:
        bound = {name: env[name] for name in ("submission_id", "form_id", "form_version")}
    except KeyError as exc:
        raise _malformed(
            str(exc.args[0]), "a sealed payload needs submission_id, form_id and form_version"
        ) from exc
    return canonical_json(_json_native(bound, "", convert=False))


def seal_payload(fields: Mapping[str, Any], recipient_public_raw: bytes) -> dict[str, Any]:
    """A copy of ``fields`` whose payload is sealed to ``recipient_public_raw``; sign it afterwards."""
    payload = fields.get("payload")
    if not isinstance(payload, Mapping) or "sealed" in payload:
        raise _malformed("payload", "only a clear JSON object payload can be sealed")
    plaintext = canonical_json(_json_native(payload, "payload", convert=True))
    box = seal(plaintext, recipient_public_raw, sealed_payload_aad(fields))
    out = {k: v for k, v in fields.items() if k not in ("payload_sha256", "sig")}
    out["payload"] = {"sealed": box}
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def open_payload(
    env: Mapping[str, Any],
    device_public_raw: bytes,
    recipient: EncryptionKeyPair,
    *,
    expected_alg: str | None = None,
) -> dict[str, Any]:
    """Verify ``env``, then return its payload in clear (opening it with ``recipient`` if sealed)."""
    verify_envelope(env, device_public_raw, expected_alg=expected_alg)
    payload = env["payload"]
    if not isinstance(payload, Mapping):
        raise _malformed("payload", "payload must be a JSON object")
    if "sealed" not in payload:
        return dict(payload)
    if set(payload) != {"sealed"} or not isinstance(payload["sealed"], Mapping):
        raise _malformed("payload", "a sealed payload is exactly {sealed: <box>}")
    try:
        plaintext = open_sealed(payload["sealed"], recipient, sealed_payload_aad(env))
    except UnsupportedAlgorithmError as exc:
        raise EnvelopeError("payload.sealed.alg", "unknown_alg", "不支持的加密算法", str(exc)) from exc
    except CryptoError as exc:
        raise EnvelopeError("payload.sealed", "decrypt_failed", "加密数据无法解密", str(exc)) from exc
    try:
        value = json.loads(plaintext.decode("utf-8"), parse_constant=_reject_constant)
    except ValueError as exc:
        raise _malformed("payload.sealed", "sealed plaintext is not JSON") from exc
    if not isinstance(value, dict):
        raise _malformed("payload.sealed", "sealed plaintext is not a JSON object")
    return value


def make_receipt(
    *,
    submission_id: str,
    node_id: str,
    node_seq: int,
    received_at: datetime,
    payload_sha256: str,
    key: SigningKey,
) -> dict[str, Any]:
    """The node's signed receipt for one accepted submission (``received_at`` must be aware)."""
    body = _json_native(
        {
            "submission_id": submission_id,
            "node_id": node_id,
            "node_seq": node_seq,
            "received_at": received_at,
            "payload_sha256": payload_sha256,
        },
        "",
        convert=True,
    )
    return {**body, "sig": _signature(body, key)}


def verify_receipt(
    receipt: Mapping[str, Any],
    node_public_raw: bytes,
    *,
    submission_id: str | None = None,
    payload_sha256: str | None = None,
) -> None:
    """Raise ``EnvelopeError`` unless ``receipt`` is signed by the node key and (when given) is the
    receipt for ``submission_id`` with ``payload_sha256``.

    The exact field set is required, so nothing else the node signs can pass for a receipt.
    """
    if not isinstance(receipt, Mapping) or set(receipt) != RECEIPT_FIELDS:
        raise _malformed("receipt", f"a receipt has exactly the fields {sorted(RECEIPT_FIELDS)}")
    _check_signature(_sig_of(receipt), signing_bytes(receipt), node_public_raw, None)
    for name, expected in (("submission_id", submission_id), ("payload_sha256", payload_sha256)):
        if expected is not None and receipt[name] != expected:
            raise EnvelopeError(
                name, "receipt_mismatch", "回执与所提交的数据不符", f"receipt is for another {name}"
            )
