"""The street's inbox of down-packages: stored once verified, applied strictly in order.

Receiving and applying are separate steps (and separate stages of a session): a package fetched over
HTTP or read from a bundle is verified and stored in ``sync_inbox``; ``apply_next`` then applies the
package right after the last applied one of its stream — in one transaction with its checkpoint — or
nothing. A package whose seq does not follow is never applied (a gap is refused); a refused package
stops its stream until the cause is fixed (an upgrade for a newer schema), and says so in
``streetnode sync status``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from schemas.sync_leg_b import DownPackage
from sync import checkpoints
from sync.packages import (
    ApplyContext,
    PackageRefused,
    apply_items,
    check_applicable,
    record_conflict,
    verify_package,
)
from sync.pairing import StreetSide

__all__ = ["apply_all", "apply_next", "down_applied", "last_applied", "last_received", "record_refusal", "store_packages"]

STREAMS_OF = ("all", "node:{node_id}")


def streams_of(node_id: str) -> list[str]:
    return [s.format(node_id=node_id) for s in STREAMS_OF]


def last_applied(db: Database, stream: str) -> int:
    row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM sync_inbox WHERE stream = ? AND applied_at IS NOT NULL",
                     [stream]).fetchone()
    return int(row[0])


def last_received(db: Database, stream: str) -> int:
    row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM sync_inbox WHERE stream = ?", [stream]).fetchone()
    return int(row[0])


def down_applied(db: Database, node_id: str) -> dict[str, int]:
    return {s: last_applied(db, s) for s in streams_of(node_id)}


def store_packages(db: Database, side: StreetSide, raws: list[Any], now: datetime) -> int:
    """Verify and store packages (any order, duplicates harmless). Returns how many were new.

    Raises ``PackageRefused`` for the first package that does not verify: nothing of this call is stored.
    """
    allowed = set(streams_of(side.node_id))
    new = 0
    for raw in raws:
        pkg = verify_package(raw, side.pin.public_key, side.pin.hub_id)
        if pkg.stream not in allowed:
            raise PackageRefused("wrong_stream", "下发包不是发给本节点的", f"package for stream {pkg.stream}")
        have = db.execute("SELECT sha256, applied_at, package_id FROM sync_inbox WHERE stream = ? AND seq = ?",
                          [pkg.stream, pkg.seq]).fetchone()
        if have is not None and (have[2], have[0]) == (pkg.package_id, pkg.sha256):
            continue  # the same package again (a rerun, a bundle imported twice)
        if have is not None and have[1] is not None:
            # Applied already under this seq with other content (the hub lost and re-issued it): keep what was
            # applied, never overwrite silently.
            record_conflict(db, "package_mismatch", side.node_id, pkg.ptype, pkg.package_id, pkg.seq,
                            {"stream": pkg.stream, "applied_package": have[2], "offered_package": pkg.package_id},
                            now, conflict_id=f"pkgmm-{pkg.stream}-{pkg.seq}-{pkg.package_id}")
            continue
        db.execute(
            "INSERT INTO sync_inbox (stream, seq, package_id, base_seq, ptype, sha256, body, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(stream, seq) DO UPDATE SET package_id = excluded.package_id,"
            " base_seq = excluded.base_seq, ptype = excluded.ptype, sha256 = excluded.sha256, body = excluded.body,"
            " received_at = excluded.received_at, result = NULL",
            [pkg.stream, pkg.seq, pkg.package_id, pkg.base_seq, pkg.ptype, pkg.sha256,
             json.dumps(raw, ensure_ascii=False, sort_keys=True), now.isoformat()],
        )
        new += 1
    return new


def apply_next(db: Database, side: StreetSide, stream: str, session_id: str, now: datetime) -> dict[str, Any] | None:
    """Apply the package after the last applied one of ``stream`` (inside one write); None when there is none.

    Raises ``PackageRefused`` (the caller's transaction rolls back, so nothing of it is applied).
    """
    last = last_applied(db, stream)
    row = db.execute("SELECT body FROM sync_inbox WHERE stream = ? AND seq = ?", [stream, last + 1]).fetchone()
    if row is None:
        return None
    raw = json.loads(row[0])
    pkg: DownPackage = verify_package(raw, side.pin.public_key, side.pin.hub_id)  # the inbox is not trusted either
    ptype = check_applicable(pkg, last)
    ctx = ApplyContext(node_id=side.node_id, hub_id=side.pin.hub_id, stream=stream, seq=pkg.seq, now=now,
                       street_code=side.street_code)
    result = apply_items(db, pkg, ptype, ctx)
    db.execute("UPDATE sync_inbox SET applied_at = ?, result = ? WHERE stream = ? AND seq = ?",
               [now.isoformat(), json.dumps({"ok": True, **result}), stream, pkg.seq])
    rep_id = checkpoints.replication_id("down:" + stream, side.pin.hub_id, side.node_id, side.pin.key_id)
    checkpoints.save(db, rep_id, session_id, pkg.seq, written=result["items"] - result["refused"],
                     failures=result["refused"])
    return {"stream": stream, "seq": pkg.seq, "ptype": pkg.ptype, **result}


def record_refusal(db: Database, stream: str, exc: PackageRefused) -> None:
    last = last_applied(db, stream)
    db.execute("UPDATE sync_inbox SET result = ? WHERE stream = ? AND seq = ?",
               [json.dumps({"ok": False, "code": exc.code, "message": exc.message_zh}, ensure_ascii=False),
                stream, last + 1])


def apply_all(store: Any, side: StreetSide, session_id: str, now: Callable[[], datetime],
              on_applied: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, list[str]]:
    """Apply every applicable package of both streams, one transaction each. Returns (applied, refusals)."""
    applied, errors = 0, []
    for stream in streams_of(side.node_id):
        while True:
            try:
                result = store.write(lambda db, s=stream: apply_next(db, side, s, session_id, now()))
            except PackageRefused as exc:
                store.write(lambda db, s=stream, e=exc: record_refusal(db, s, e))
                errors.append(f"{stream}: {exc.message_zh}")
                break
            if result is None:
                break
            applied += 1
            if on_applied is not None:
                on_applied(result)
    return applied, errors
