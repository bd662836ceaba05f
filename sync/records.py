"""What an up-row carries: the record's current content, personal fields sealed to the district.

Expansion: a change-log row names ``(entity, entity_id)``; an *expander* turns ids into the records'
current content. Built in: ``case`` (the ``cases`` row), ``case_event`` (``case_events``) and
``case_conflict`` (``case_conflicts``). Features register theirs with ``register_expander``; any other
entity whose table (``<entity>`` or ``<entity>s``) has an ``id`` column is read generically; an entity
with no table travels as a ``ref`` (id and op only) — never dropped (sync.md §4 principle 1).

Personal data (DESIGN §6 rule 5): a key is personal when it is in ``PERSONAL_FIELDS`` or ends with one
of ``PERSONAL_SUFFIXES`` (``_enc`` node-encrypted tokens, ``_bidx`` blind indexes), at any depth of the
record, including JSON text columns such as ``cases.data`` and ``case_events.payload``. Personal values
leave the clear ``data`` and travel in one sealed box per record (a fresh key per record, X25519 +
HKDF-SHA256 + AES-256-GCM; ``BatchSealer`` derives the per-record keys from one exchange per batch),
bound by its AAD to the node, entity and id; routing metadata (entity, id,
op, org path, state, times) stays clear so the hub can route, count and dedupe without the key.
Features name their fields accordingly, or call ``register_personal_fields``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlite_utils import Database

from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import (
    SEAL_ALG,
    DecryptionError,
    EncryptionKeyPair,
    b64url_decode,
    b64url_encode,
    key_id_of,
    open_sealed,
    seal,
)

__all__ = [
    "BATCH_SEAL_ALG",
    "BatchSealer",
    "PERSONAL_FIELDS",
    "PERSONAL_SUFFIXES",
    "Expander",
    "expand",
    "is_personal",
    "open_personal",
    "register_expander",
    "register_personal_fields",
    "row_sha256",
    "seal_aad",
    "split_personal",
]

PERSONAL_FIELDS: set[str] = {
    "id_card", "id_card_no", "id_number", "id_no", "passport_no",
    "phone", "mobile", "telephone", "contact_phone", "applicant_phone", "reporter_phone",
    "applicant", "applicant_name", "applicant_id_card", "applicant_address", "contact_name",
    "reporter_name", "resident_name", "person_name", "real_name",
    "address", "home_address", "email", "birth_date", "query_code",
    "id_card_index", "phone_index", "name_index",  # blind indexes (services hall)
}
PERSONAL_SUFFIXES: tuple[str, ...] = ("_enc", "_encrypted", "_bidx", "_blind_index")
_MAX_DEPTH = 6
BATCH_SEAL_ALG = SEAL_ALG + "/batch-ecdh"  # per-record keys from one exchange per batch (see BatchSealer)

Expander = Callable[[Database, list[str]], dict[str, dict[str, Any]]]
EXPANDERS: dict[str, Expander] = {}


def register_personal_fields(*names: str) -> None:
    PERSONAL_FIELDS.update(names)


def register_expander(entity: str, expander: Expander) -> Expander:
    EXPANDERS[entity] = expander
    return expander


def is_personal(key: str) -> bool:
    return key in PERSONAL_FIELDS or key.endswith(PERSONAL_SUFFIXES)


def table_expander(table: str, key: str = "id") -> Expander:
    """Read rows of ``table`` by ``key``; JSON object text columns become objects."""

    def expand_rows(db: Database, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            cur = db.execute(f"SELECT * FROM [{table}] WHERE [{key}] IN ({marks})", chunk)
            names = [d[0] for d in cur.description]
            for raw in cur.fetchall():
                row = {n: _json_or_value(v) for n, v in zip(names, raw, strict=True)}
                out[str(row[key])] = row
        return out

    return expand_rows


def _json_or_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] == "{" and value[-1:] == "}":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


register_expander("case", table_expander("cases"))
register_expander("case_event", table_expander("case_events"))
register_expander("case_conflict", table_expander("case_conflicts"))


def _generic_table(db: Database, entity: str, cache: dict[str, str | None]) -> str | None:
    if entity not in cache:
        found = None
        for name in (entity, entity + "s"):
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone():
                cols = {r[1] for r in db.execute(f"PRAGMA table_info([{name}])").fetchall()}
                if "id" in cols:
                    found = name
                    break
        cache[entity] = found
    return cache[entity]


def expand(db: Database, wanted: Iterable[tuple[str, str]],
           cache: dict[str, str | None] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Current content of each ``(entity, entity_id)`` that still exists; missing keys mean ``ref``."""
    by_entity: dict[str, list[str]] = {}
    for entity, entity_id in wanted:
        by_entity.setdefault(entity, []).append(entity_id)
    cache = {} if cache is None else cache
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entity, ids in by_entity.items():
        expander = EXPANDERS.get(entity)
        if expander is None:
            table = _generic_table(db, entity, cache)
            if table is None:
                continue
            expander = table_expander(table)
        for entity_id, content in expander(db, sorted(set(ids))).items():
            out[(entity, entity_id)] = content
    return out


def split_personal(content: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(clear, personal): personal values keyed by their dotted path, removed from the clear copy."""
    personal: dict[str, Any] = {}

    def walk(obj: dict[str, Any], prefix: str, depth: int) -> dict[str, Any]:
        clear: dict[str, Any] = {}
        for key, value in obj.items():
            path = f"{prefix}{key}"
            if is_personal(key):
                personal[path] = value
            elif isinstance(value, dict) and depth < _MAX_DEPTH:
                clear[key] = walk(value, path + ".", depth + 1)
            else:
                clear[key] = value
        return clear

    return walk(content, "", 0), personal


def merge_personal(clear: dict[str, Any], personal: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(clear))
    for path, value in personal.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out  # type: ignore[no-any-return]


class BatchSealer:
    """Seals many records to one recipient with one X25519 exchange and a fresh AES key per record.

    ``crypto.seal`` spends an ephemeral key pair and an exchange on every record (~100 µs); an up-batch of
    500 records would spend most of its time there. Here one ephemeral exchange per batch gives a shared
    secret that lives only in memory, and HKDF-SHA256 derives each record's own AES-256-GCM key from it with
    the record's AAD (node, entity, id) in ``info`` — still a key per record, and still nothing but the
    district's private key opens any of them. The box has ``seal``'s fields and names its own ``alg``.
    """

    def __init__(self, recipient_public: bytes) -> None:
        ephemeral = X25519PrivateKey.generate()
        self.epk = ephemeral.public_key().public_bytes_raw()
        self.kid = key_id_of(recipient_public)
        self._salt = self.epk + recipient_public
        self._shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
        self._epk_text = b64url_encode(self.epk)

    def seal(self, plaintext: bytes, aad: bytes) -> dict[str, str]:
        nonce = os.urandom(12)
        key = _record_key(self._shared, self._salt, self.kid, aad)
        return {"alg": BATCH_SEAL_ALG, "kid": self.kid, "epk": self._epk_text, "nonce": b64url_encode(nonce),
                "ct": b64url_encode(AESGCM(key).encrypt(nonce, plaintext, aad))}


def _record_key(shared: bytes, salt: bytes, kid: str, aad: bytes) -> bytes:
    info = f"streetnode/{BATCH_SEAL_ALG}/{kid}/".encode() + aad
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(shared)


def _open_batch_box(box: dict[str, str], district: EncryptionKeyPair, aad: bytes) -> bytes:
    if box.get("kid") != district.key_id:
        raise DecryptionError("sealed to another key")
    try:
        epk, nonce, ct = (b64url_decode(box[k]) for k in ("epk", "nonce", "ct"))
        shared = district.private_key.exchange(X25519PublicKey.from_public_bytes(epk))
        key = _record_key(shared, epk + district.public_raw, district.key_id, aad)
        return AESGCM(key).decrypt(nonce, ct, aad)
    except (KeyError, ValueError, InvalidTag) as exc:
        raise DecryptionError("sealed personal fields failed authentication") from exc


def seal_aad(node_id: str, entity: str, entity_id: str) -> bytes:
    # Bound to the record, not the seq: a resend of the same record seals under the same AAD.
    return f"streetnode/up/v1/{node_id}/{entity}/{entity_id}".encode()


def seal_personal(personal: dict[str, Any], sealer: BatchSealer | bytes, node_id: str, entity: str,
                  entity_id: str) -> dict[str, str]:
    """One record's personal fields in a box: with a ``BatchSealer`` (up-batches) or, given the district's
    public key, with ``crypto.seal`` (one ephemeral key per record)."""
    aad = seal_aad(node_id, entity, entity_id)
    if isinstance(sealer, BatchSealer):
        return sealer.seal(canonical_json(personal), aad)
    return seal(canonical_json(personal), sealer, aad)


def open_personal(sealed: dict[str, str], district: EncryptionKeyPair, node_id: str, entity: str,
                  entity_id: str) -> dict[str, Any]:
    """The hub opens a record's personal fields (only where a district user needs them)."""
    aad = seal_aad(node_id, entity, entity_id)
    plain = _open_batch_box(sealed, district, aad) if sealed.get("alg") == BATCH_SEAL_ALG else \
        open_sealed(sealed, district, aad)
    value = json.loads(plain)
    if not isinstance(value, dict):
        raise ValueError("sealed personal fields are not an object")
    return value


def row_sha256(entity: str, entity_id: str, op: str, kind: str, org_path: str, data_json: bytes) -> str:
    """Hash of the clear part of a row (``data_json`` = canonical JSON of its clear data): what the hub
    compares when the same (node, seq) arrives again. Sealed boxes are random, so they are not hashed."""
    return sha256_hex(canonical_json([entity, entity_id, op, kind, org_path]) + b"\n" + data_json)
