"""Down-packages: the hub's ordered, signed publications, and the street's rules for applying them.

After DHIS2 metadata versioning (sync.md §1.4, §4.3): each package has a ``stream`` (``all`` for
every street, ``node:<id>`` for one), a gapless ``seq`` with ``base_seq = seq - 1``, a type ``ATOMIC``
(all items or none) or ``BEST_EFFORT`` (each item on its own; a failed item becomes a conflict record),
the sha256 of its items, the hub's signature and ``min_node_schema``. A street node

- verifies the signature and the items' hash before looking at anything else;
- applies packages strictly in order, each in one transaction with its checkpoint; a gap is refused;
- refuses a package that needs a newer node (``min_node_schema``) or has a type it does not know;
- never authors a hub-owned record: the entities package types own are listed in ``hub_owned_entities``
  and ``assert_may_author`` refuses them on a street node; the up-sync sends them only as echoes.

Package types are a small registry (``register_type``). Built in: ``calendar`` (district calendar
versions, applied with ``server.store.calendars.publish_version``), ``directory`` (the org tree),
``case_decision`` (the district's decision on a case a street handed up) and ``void`` (a placeholder
for a package lost when the hub was restored from a backup). Features publish their own tables (the
services catalogue …) with ``register_hub_table``.

Exceptions::

    PackageError (code, message_zh, message_en)
    ├── PackageRefused   bad signature or hash, gap, newer schema, unknown type: nothing applied
    └── ItemRefused      one item cannot be applied (ATOMIC: the package is refused; BEST_EFFORT: recorded)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from schemas.sync_leg_b import DownPackage
from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import (
    ED25519,
    SigningKey,
    b64url_decode,
    b64url_encode,
    key_id_of,
    verify_signature,
)
from server.domain.ids import uuid7
from server.store.repos_sqlite import repos_for
from sync.errors import SyncError

__all__ = [
    "NODE_SCHEMA",
    "ApplyContext",
    "HubOwnedRecord",
    "ItemRefused",
    "PackageError",
    "PackageRefused",
    "PackageType",
    "assert_may_author",
    "hub_owned_entities",
    "make_package",
    "register_type",
    "verify_package",
]

NODE_SCHEMA = 1  # raise when a package type changes shape; older nodes then refuse newer packages


class PackageError(SyncError):
    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(message_zh, message_en, code=code)


class PackageRefused(PackageError):
    pass


class ItemRefused(PackageError):
    pass


class HubOwnedRecord(PackageError):
    """A street tried to author a record type the district hub owns (DESIGN §6 rule 4)."""


@dataclass(frozen=True)
class ApplyContext:
    node_id: str
    hub_id: str
    stream: str
    seq: int
    now: datetime
    street_code: str  # this node's street (meta org_unit)


# Street side: apply one item, return the (entity, entity_id) hub-owned records it wrote (echo marks).
Applier = Callable[[Database, dict[str, Any], ApplyContext], list[tuple[str, str]]]
# Hub side: the current publications of a type: (publication key, stream, items).
Collector = Callable[[Database], list[tuple[str, str, list[dict[str, Any]]]]]


@dataclass(frozen=True)
class PackageType:
    name: str
    atomic: bool
    apply_item: Applier
    hub_owned: frozenset[str] = frozenset()
    collect: Collector | None = None
    tombstone_key: str | None = None  # snapshot types: rows gone since the last package travel as tombstones
    extra: dict[str, Any] = field(default_factory=dict)


TYPES: dict[str, PackageType] = {}


def register_type(ptype: PackageType) -> PackageType:
    TYPES[ptype.name] = ptype
    return ptype


def hub_owned_entities() -> frozenset[str]:
    return frozenset(e for t in TYPES.values() for e in t.hub_owned)


def assert_may_author(role: str, entity: str) -> None:
    """Call before a street writes a record of ``entity``: the hub's types are written only by packages."""
    if role == "street" and entity in hub_owned_entities():
        raise HubOwnedRecord("hub_owned", f"「{entity}」由区级枢纽统一发布，街道节点不能自行修改",
                             f"{entity} is owned by the district hub; a street node never authors it")


# --- signing and verifying -------------------------------------------------------------------------------


def _body(pkg: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in pkg.items() if k != "sig"})


def make_package(key: SigningKey, hub_id: str, stream: str, seq: int, ptype: str, atomic: bool,
                 items: list[dict[str, Any]], created_at: datetime) -> dict[str, Any]:
    pkg: dict[str, Any] = {
        "package_id": uuid7(), "hub_id": hub_id, "stream": stream, "seq": seq, "base_seq": seq - 1,
        "type": "ATOMIC" if atomic else "BEST_EFFORT", "ptype": ptype, "created_at": created_at.isoformat(),
        "min_node_schema": NODE_SCHEMA, "items": items, "sha256": sha256_hex(canonical_json(items)),
    }
    pkg["sig"] = {"alg": ED25519, "key_id": key.key_id, "value": b64url_encode(key.sign(_body(pkg)))}
    return pkg


def verify_package(raw: Any, hub_public: bytes, hub_id: str) -> DownPackage:
    """Signature, then items hash, then shape; raises ``PackageRefused``."""
    if not isinstance(raw, dict) or not isinstance(raw.get("sig"), dict):
        raise PackageRefused("malformed", "下发包格式错误", "a package is a signed JSON object")
    sig = raw["sig"]
    if sig.get("alg") != ED25519 or sig.get("key_id") != key_id_of(hub_public):
        raise PackageRefused("bad_signature", "下发包的签名密钥与区级枢纽不符", "package not signed by the pinned hub key")
    try:
        value = b64url_decode(str(sig.get("value", "")))
    except ValueError:
        value = b""
    if not verify_signature(hub_public, value, _body(raw)):
        raise PackageRefused("bad_signature", "下发包签名无效，可能已被篡改", "package signature does not verify")
    if sha256_hex(canonical_json(raw.get("items"))) != raw.get("sha256"):
        raise PackageRefused("hash_mismatch", "下发包内容摘要不符", "package items do not match their sha256")
    try:
        pkg = DownPackage.model_validate(raw)
    except ValidationError as exc:
        raise PackageRefused("malformed", "下发包格式错误", f"package shape: {exc.errors()[0]['msg']}") from None
    if pkg.hub_id != hub_id:
        raise PackageRefused("wrong_hub", "下发包来自其他区级枢纽", f"package of hub {pkg.hub_id}, expected {hub_id}")
    if pkg.base_seq != pkg.seq - 1:
        raise PackageRefused("malformed", "下发包序号不连续", "base_seq must be seq - 1")
    return pkg


def check_applicable(pkg: DownPackage, last_applied: int) -> PackageType:
    """The order and version rules, before any item is touched."""
    if pkg.base_seq != last_applied:
        raise PackageRefused("gap", f"下发包不连续：已应用至第 {last_applied} 号，收到第 {pkg.seq} 号",
                             f"gap: applied through {last_applied}, package {pkg.seq} has base {pkg.base_seq}")
    if pkg.min_node_schema > NODE_SCHEMA:
        raise PackageRefused("schema_too_new", "下发包需要更新版本的节点软件，请先升级",
                             f"package needs node schema {pkg.min_node_schema}, this node has {NODE_SCHEMA}")
    ptype = TYPES.get(pkg.ptype)
    if ptype is None:
        raise PackageRefused("unknown_type", f"未知的下发包类型「{pkg.ptype}」，请先升级节点软件",
                             f"unknown package type {pkg.ptype!r}")
    return ptype


def apply_items(db: Database, pkg: DownPackage, ptype: PackageType, ctx: ApplyContext) -> dict[str, Any]:
    """Apply every item (inside the caller's transaction). ATOMIC: the first refusal refuses the package.
    BEST_EFFORT: each item in its own savepoint; a refusal becomes a conflict record."""
    written: list[tuple[str, str]] = []
    refused = 0
    for i, item in enumerate(pkg.items):
        if ptype.atomic:
            try:
                written += ptype.apply_item(db, item, ctx)
            except ItemRefused as exc:
                raise PackageRefused("item_refused", f"第 {i + 1} 项无法应用：{exc.message_zh}",
                                     f"item {i + 1}: {exc.message_en}") from exc
            continue
        db.execute("SAVEPOINT pkg_item")
        try:
            written += ptype.apply_item(db, item, ctx)
        except ItemRefused as exc:
            db.execute("ROLLBACK TO SAVEPOINT pkg_item")
            record_conflict(db, "package_item", None, pkg.ptype, str(item.get("id", i)), None,
                            {"stream": pkg.stream, "seq": pkg.seq, "code": exc.code, "message": exc.message_zh,
                             "item": item}, ctx.now)
            refused += 1
        db.execute("RELEASE SAVEPOINT pkg_item")
    for entity, entity_id in written:
        db.execute("INSERT INTO sync_hub_owned (entity, entity_id, stream, seq) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT(entity, entity_id) DO UPDATE SET stream = excluded.stream, seq = excluded.seq",
                   [entity, entity_id, pkg.stream, pkg.seq])
    return {"items": len(pkg.items), "refused": refused}


def record_conflict(db: Database, kind: str, node_id: str | None, entity: str | None, entity_id: str | None,
                    node_seq: int | None, detail: dict[str, Any], now: datetime, conflict_id: str | None = None) -> str:
    """A conflict record: what could not be applied silently. A stable ``conflict_id`` makes it idempotent."""
    cid = conflict_id or uuid7()
    repos_for(db).hub.add_conflict(kind, node_id, entity, entity_id, node_seq, detail, now, cid)
    return cid


# The built-in types register themselves; imported last because they use the names above.
from sync import package_types as _builtin_types  # noqa: E402,F401
