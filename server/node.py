"""Node identity on disk: the keys a node needs, created once with mode 0600.

- ``node.key``: Ed25519 identity; signs receipts, up-batches and (at the hub) down-packages.
- ``data.key``: AES-256-GCM key for personal data at rest and the blind-index subkey.
- ``district-enc.key`` (hub only): X25519 key personal fields are sealed to when they travel up;
  street nodes hold only its public half (``district-enc.pub``), copied at enrolment.
Key ids and rotation: ops/keys.md.
"""

from __future__ import annotations

from pathlib import Path

from server.config import Settings
from server.domain.crypto import DataKey, EncryptionKeyPair, SigningKey, load_or_create_key


def node_key_path(settings: Settings) -> Path:
    return settings.key_dir / "node.key"


def ensure_keys(settings: Settings) -> dict[str, str]:
    """Create missing keys; return their key ids (never the keys)."""
    settings.key_dir.mkdir(parents=True, exist_ok=True)
    node = load_or_create_key(node_key_path(settings))
    DataKey.load_or_create(settings.key_dir / "data.key")
    out = {"node": node.key_id}
    if settings.role == "district":
        enc_path = settings.key_dir / "district-enc.key"
        if not enc_path.exists():
            EncryptionKeyPair.generate().save(enc_path)
        pair = EncryptionKeyPair.load(enc_path)
        (settings.key_dir / "district-enc.pub").write_bytes(pair.public_raw)
        out["district_enc"] = pair.key_id
    return out


def node_key(settings: Settings) -> SigningKey:
    return load_or_create_key(node_key_path(settings))


def data_key(settings: Settings) -> DataKey:
    return DataKey.load_or_create(settings.key_dir / "data.key")
