"""The hub's counter-signatures over a street's audit-chain head (DESIGN §5; sync.md §4.4).

Each session the street sends ``(seq, hash)`` of its audit head; the hub signs
``{node_id, hub_id, audit_seq, audit_hash, at}`` and the street keeps the signature. Later anyone can
check that the street's chain still has that hash at that seq (``check_countersigned``): a history
rewritten after the hub saw it no longer matches a signature the street cannot forge.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from server.domain.canonical import canonical_json
from server.domain.crypto import b64url_decode, verify_signature
from server.store.repos_sqlite import repos_for
from sync.pairing import HubPin, StreetSide

__all__ = ["check_countersigned", "store_countersig", "verify_countersig"]


def verify_countersig(sig: dict[str, Any], pin: HubPin, node_id: str) -> bool:
    body = {k: v for k, v in sig.items() if k != "sig"}
    s = sig.get("sig") or {}
    if body.get("hub_id") != pin.hub_id or body.get("node_id") != node_id or s.get("key_id") != pin.key_id:
        return False
    try:
        value = b64url_decode(str(s.get("value", "")))
    except ValueError:
        return False
    return verify_signature(pin.public_key, value, canonical_json(body))


def store_countersig(db: Database, side: StreetSide, sig: dict[str, Any], now: datetime) -> bool:
    """Keep a verified counter-signature; an unverifiable one is ignored (and reported as False)."""
    if not verify_countersig(sig, side.pin, side.node_id):
        return False
    db.execute("INSERT OR REPLACE INTO sync_countersigs (audit_seq, audit_hash, hub_id, body, received_at)"
               " VALUES (?, ?, ?, ?, ?)", [sig["audit_seq"], sig["audit_hash"], sig["hub_id"],
                                           json.dumps(sig, ensure_ascii=False), now.isoformat()])
    return True


def check_countersigned(db: Database) -> list[dict[str, Any]]:
    """Counter-signed heads the chain no longer matches (empty = the chain is what the hub saw)."""
    bad = []
    chain = repos_for(db).audit
    for seq, expected, at in db.execute(
        "SELECT audit_seq, audit_hash, received_at FROM sync_countersigs ORDER BY audit_seq").fetchall():
        if seq == 0:
            continue
        current = chain.hash_at(seq)
        if current != expected:
            bad.append({"audit_seq": seq, "countersigned_hash": expected, "current_hash": current,
                        "countersigned_at": at})
    return bad
