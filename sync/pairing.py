"""Who talks to whom: a street node's identity, the hub it pins, and enrolment at the hub.

Keys (ops/keys.md):
- street ``node.key`` (Ed25519, from ``server.node``): signs up-batches; its public half is enrolled at the hub;
- street ``node-enc.key`` (X25519, made here): down-bundles from the hub are sealed to it;
- hub ``node.key``: signs replies, counter-signatures and down-packages; streets pin it;
- hub ``district-enc.key`` (X25519): personal fields are sealed to it; streets hold ``district-enc.pub``.

A street pins the hub in ``<key_dir>/hub.json`` (hub id, signing key, district encryption key, URL),
written by ``streetnode sync pair FILE`` from the hub's sheet (``streetnode hub sheet``). The settings
``hub_url`` and ``hub_public_key`` win over the file when set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from server.config import Settings
from server.domain.crypto import (
    EncryptionKeyPair,
    SigningKey,
    b64url_decode,
    b64url_encode,
    key_id_of,
    write_private_file,
)
from server.domain.ids import now_china
from server.node import data_key, node_key
from server.store.db import Store
from server.store.seed import get_meta

__all__ = ["HubPin", "StreetSide", "hub_sheet", "load_pin", "node_sheet", "pair_nodes", "pin_hub",
           "street_enc_key", "street_side"]

PIN_FILE = "hub.json"


@dataclass(frozen=True)
class HubPin:
    hub_id: str
    public_key: bytes
    district_enc: bytes
    url: str | None

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)


@dataclass(frozen=True)
class StreetSide:
    node_id: str
    street_code: str
    epoch: str
    key: SigningKey
    pin: HubPin


def street_enc_key(settings: Settings) -> EncryptionKeyPair:
    path = settings.key_dir / "node-enc.key"
    if not path.exists():
        try:
            EncryptionKeyPair.generate().save(path)
        except FileExistsError:
            pass
    return EncryptionKeyPair.load(path)


def pin_hub(settings: Settings, sheet: dict[str, Any]) -> HubPin:
    """Pin the hub from its sheet; refuses to silently replace a pin with another hub key."""
    pin = HubPin(str(sheet["hub_id"]), b64url_decode(sheet["public_key"]),
                 b64url_decode(sheet["district_enc_public_key"]), sheet.get("url"))
    if sheet.get("key_id") and sheet["key_id"] != pin.key_id:
        raise ValueError("hub sheet key_id does not match its public key")
    path = settings.key_dir / PIN_FILE
    doc = {"hub_id": pin.hub_id, "public_key": b64url_encode(pin.public_key), "key_id": pin.key_id,
           "district_enc_public_key": b64url_encode(pin.district_enc), "url": pin.url,
           "pinned_at": now_china().isoformat()}
    write_private_file(path, json.dumps(doc, ensure_ascii=False, indent=2).encode(), overwrite=True)
    # The district's public encryption key where server.node documents it.
    write_private_file(settings.key_dir / "district-enc.pub", pin.district_enc, overwrite=True)
    return pin


def load_pin(settings: Settings) -> HubPin | None:
    path = settings.key_dir / PIN_FILE
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    enc_path = settings.key_dir / "district-enc.pub"
    public = settings.hub_public_key or doc.get("public_key")
    if not public or not doc.get("hub_id") or not enc_path.exists():
        return None
    return HubPin(doc["hub_id"], b64url_decode(public), enc_path.read_bytes(), settings.hub_url or doc.get("url"))


def street_side(settings: Settings, db: Database) -> StreetSide | None:
    pin = load_pin(settings)
    if pin is None:
        return None
    from sync import expand_hall

    expand_hall.register(data_key(settings))  # applicants go up readable by the district, sealed to it
    return StreetSide(node_id=get_meta(db, "node_id") or settings.node_id, street_code=get_meta(db, "org_unit") or "",
                      epoch=get_meta(db, "epoch") or "", key=node_key(settings), pin=pin)


def node_sheet(settings: Settings, db: Database) -> dict[str, Any]:
    """What a district admin needs to enrol this street node (printed by ``streetnode sync identity``)."""
    key = node_key(settings)
    return {"node_id": get_meta(db, "node_id") or settings.node_id, "org_unit": get_meta(db, "org_unit") or "",
            "public_key": b64url_encode(key.public_raw), "key_id": key.key_id,
            "enc_public_key": b64url_encode(street_enc_key(settings).public_raw)}


def hub_sheet(settings: Settings, db: Database, url: str | None = None) -> dict[str, Any]:
    """What a street pins (printed by ``streetnode hub sheet``); compare ``key_id`` by phone or on paper."""
    key = node_key(settings)
    enc = EncryptionKeyPair.load(settings.key_dir / "district-enc.key")
    return {"hub_id": get_meta(db, "node_id") or settings.node_id, "public_key": b64url_encode(key.public_raw),
            "key_id": key.key_id, "district_enc_public_key": b64url_encode(enc.public_raw),
            "district_enc_key_id": enc.key_id, "url": url or f"http://{settings.host}:{settings.port}"}


def pair_nodes(hub: Settings, street: Settings, hub_url: str) -> dict[str, Any]:
    """Enrol ``street`` at ``hub`` and pin the hub at the street (the demo does this; production uses the
    two sheets and the CLI, so the key ids are compared by a person)."""
    from sync.hub import enrol_node

    with Store(street.db_path) as s:
        sheet = s.read(lambda db: node_sheet(street, db))
    with Store(hub.db_path) as h:
        hub_doc = h.read(lambda db: hub_sheet(hub, db, hub_url))
        h.write(lambda db: enrol_node(db, node_id=sheet["node_id"], org_unit=sheet["org_unit"],
                                      public_key=b64url_decode(sheet["public_key"]),
                                      enc_public_key=b64url_decode(sheet["enc_public_key"]),
                                      actor="system", role="system", now=now_china()))
    pin_hub(street, hub_doc)
    return {"node": sheet, "hub": hub_doc}


def read_sheet(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("a sheet is a JSON object")
    return doc
