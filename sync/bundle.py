"""Offline bundles: the same signed batches and packages, in one signed, encrypted file (USB).

For weeks without a network (sync.md §4.3, like ODK Briefcase or Survey Solutions' relay). A bundle is

    STREETNODE-BUNDLE/1\\n
    <manifest: canonical JSON, one line>\\n
    <ciphertext>

The manifest names direction (``up`` street → hub, ``down`` hub → street), sender, recipient, codec, the
contents' counts, the sealed box's public parts (X25519 + HKDF-SHA256 + AES-256-GCM, sealed to the
recipient: the district's key going up, the street's ``node-enc`` key coming down), the ciphertext's
length and sha256, and the sender's Ed25519 signature over all of it. The sealed box's AAD is the
manifest's core, so a ciphertext cannot be moved under another manifest.

Inside: going up, the session's begin message and every batch exactly as they would travel over HTTP
(each still signed by the node, verified again on import); coming down, the hub-signed packages and a
hub-signed state (acked seq, checkpoint, counter-signature). Import verifies the whole file — signature,
length (a truncated copy), hash, decryption, every inner signature — before anything is applied, so a
tampered or truncated bundle applies nothing; importing the same bundle twice is harmless (the hub is
idempotent on ``(node_id, node_seq)``, the street's inbox on ``(stream, seq)``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import (
    ED25519,
    CryptoError,
    EncryptionKeyPair,
    SigningKey,
    b64url_decode,
    b64url_encode,
    key_id_of,
    open_sealed,
    seal,
    verify_signature,
)
from sync import wire
from sync.errors import SyncError

__all__ = ["MAGIC", "BundleError", "ReadBundle", "read_bundle", "write_bundle"]

MAGIC = b"STREETNODE-BUNDLE/1\n"
_MAX_MANIFEST = 64 * 1024
_CORE = ("format", "direction", "from", "to", "created_at", "recipient_key_id", "codec", "contents")


class BundleError(SyncError):
    """A bundle that must not be imported; the message is shown to the operator in Chinese and English."""


@dataclass(frozen=True)
class ReadBundle:
    manifest: dict[str, Any]
    payload: dict[str, Any]


def _aad(manifest: dict[str, Any]) -> bytes:
    return canonical_json({k: manifest[k] for k in _CORE})


def _unsigned(manifest: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in manifest.items() if k != "sig"})


def write_bundle(path: Path, *, direction: str, sender: str, recipient: str, key: SigningKey,
                 recipient_public: bytes, payload: dict[str, Any], contents: dict[str, Any],
                 created_at: datetime) -> dict[str, Any]:
    """Write a bundle file atomically (temp file, then rename); returns its manifest."""
    manifest: dict[str, Any] = {
        "format": "streetnode-bundle/1", "direction": direction, "from": sender, "to": recipient,
        "created_at": created_at.isoformat(), "recipient_key_id": key_id_of(recipient_public), "codec": "zstd",
        "contents": contents,
    }
    box = seal(wire.encode_body(payload, "zstd"), recipient_public, _aad(manifest))
    ciphertext = b64url_decode(box["ct"])
    manifest["seal"] = {k: box[k] for k in ("alg", "kid", "epk", "nonce")}
    manifest["payload_len"] = len(ciphertext)
    manifest["payload_sha256"] = sha256_hex(ciphertext)
    manifest["signer_key_id"] = key.key_id
    manifest["sig"] = {"alg": ED25519, "key_id": key.key_id, "value": b64url_encode(key.sign(_unsigned(manifest)))}
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC + canonical_json(manifest) + b"\n" + ciphertext)
    tmp.replace(path)
    return manifest


def peek_manifest(path: Path) -> dict[str, Any]:
    """The manifest, unverified (to find the sender's key); use ``read_bundle`` before trusting it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(MAGIC) + _MAX_MANIFEST + 1)
    except OSError as exc:
        raise BundleError(f"无法读取文件：{exc.strerror}", f"cannot read file: {exc}") from exc
    if not head.startswith(MAGIC):
        raise BundleError("不是 streetnode 同步包文件", "not a streetnode bundle")
    end = head.find(b"\n", len(MAGIC))
    if end < 0:
        raise BundleError("同步包文件不完整（可能被截断）", "bundle truncated inside its manifest")
    try:
        manifest = json.loads(head[len(MAGIC):end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError("同步包清单已损坏", "bundle manifest is corrupt") from exc
    if not isinstance(manifest, dict) or not all(k in manifest for k in (*_CORE, "seal", "payload_len", "sig")):
        raise BundleError("同步包清单不完整", "bundle manifest is incomplete")
    return manifest


def read_bundle(path: Path, *, sender_public: bytes, recipient: EncryptionKeyPair, expect_direction: str,
                expect_to: str) -> ReadBundle:
    """Verify everything, then decrypt and parse; raises ``BundleError`` naming the first problem."""
    manifest = peek_manifest(path)
    sig = manifest.get("sig") or {}
    try:
        value = b64url_decode(str(sig.get("value", "")))
    except ValueError:
        value = b""
    if sig.get("key_id") != key_id_of(sender_public) or not verify_signature(sender_public, value,
                                                                               _unsigned(manifest)):
        raise BundleError("同步包签名无效：文件被篡改，或不是由登记的发送方生成", "bundle signature does not verify")
    if manifest["direction"] != expect_direction or manifest["to"] != expect_to:
        raise BundleError(f"同步包不是发给本节点的（收件方 {manifest['to']}）",
                          f"bundle is for {manifest['to']} ({manifest['direction']})")
    data = path.read_bytes()
    start = data.find(b"\n", len(MAGIC)) + 1
    ciphertext = data[start:]
    if len(ciphertext) != manifest["payload_len"]:
        raise BundleError(f"同步包不完整（可能被截断）：应有 {manifest['payload_len']} 字节，实有 {len(ciphertext)} 字节",
                          f"bundle truncated: {len(ciphertext)} of {manifest['payload_len']} bytes")
    if sha256_hex(ciphertext) != manifest.get("payload_sha256"):
        raise BundleError("同步包内容摘要不符：文件已损坏或被篡改", "bundle payload hash mismatch")
    box = {**manifest["seal"], "ct": b64url_encode(ciphertext)}
    try:
        plain = open_sealed(box, recipient, _aad(manifest))
    except CryptoError as exc:
        raise BundleError("同步包无法解密：不是加密给本节点的，或已被篡改", f"cannot decrypt: {exc}") from exc
    try:
        payload = wire.decode_body(plain, "zstd", limit=1024 * 1024 * 1024)
    except wire.WireError as exc:
        raise BundleError("同步包内容已损坏", f"payload: {exc.message_en}") from exc
    if not isinstance(payload, dict):
        raise BundleError("同步包内容已损坏", "payload is not an object")
    return ReadBundle(manifest, payload)


def pack_message(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """One signed wire message inside a bundle, byte for byte."""
    return {"headers": {k: v for k, v in headers.items() if k.lower().startswith(wire.HEADER_PREFIX)},
            "body": base64.b64encode(body).decode("ascii")}


def unpack_message(msg: Any) -> tuple[bytes, dict[str, str]]:
    try:
        return base64.b64decode(msg["body"], validate=True), dict(msg["headers"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError("同步包内的消息格式错误", "malformed message inside the bundle") from exc
