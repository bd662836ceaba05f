"""``GET /sync/v1/changes``: what a tablet's user may see, paged from the change log (sync.md §4.2).

Rows ``{seq, type, id, op: put|delete, data}`` in ``change_log.node_seq`` order — a server sequence,
never a clock. The cursor is opaque: base64url of ``{v, e: node epoch, s: scope hash, q: seq}``.
A cursor from another epoch (the node was restored from a backup) or another scope (the user was
moved to another grid) answers ``409 must_reset``: the tablet downloads its scope again and keeps its
outbox (CommCare 412, Electric must-refetch).

Deletes are tombstones, and so is a record that *left* the scope: a change-log row outside the scope
for a record that had an earlier row inside it, or a record whose current ``org_path`` is outside
(the CHT orphans). The data of a ``put`` is the record's current row, read in the same snapshot;
encrypted tokens and blind indexes never travel to tablets, and ID-card numbers, phones and names
travel masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from server.domain.canonical import canonical_json, sha256_hex
from server.domain.crypto import b64url_decode, b64url_encode
from server.domain.personal import mask_id_card, mask_name, mask_phone
from server.domain.roles import Principal, path_within
from server.errors import Forbidden, MustReset
from server.store import changes
from server.store.seed import get_meta
from sync.devices import Device

__all__ = ["DEFAULT_LIMIT", "FEED_EXCLUDED", "MAX_LIMIT", "decode_cursor", "encode_cursor", "page",
           "feed_scope", "parse_limit", "register_projector", "scope_hash"]

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
# Node-internal records: submissions come back as receipts, quarantine is for staff, keys stay home.
FEED_EXCLUDED = frozenset({"submission", "quarantine", "device", "blob", "sync_alert"})
PERSONAL_SUFFIXES = ("_enc", "_encrypted", "_bidx", "_blind_index")

Projector = Callable[[Database, list[str]], dict[str, dict[str, Any]]]
PROJECTORS: dict[str, Projector] = {}


def register_projector(entity: str, projector: Projector) -> Projector:
    """A feature's own view of its records for tablets (default: the table row, personal fields dropped)."""
    PROJECTORS[entity] = projector
    return projector


def parse_limit(text: str | None) -> int:
    if text is None or not (text.isascii() and text.isdigit()):
        return DEFAULT_LIMIT
    return min(max(int(text), 1), MAX_LIMIT)


def feed_scope(principal: Principal, device: Device) -> str:
    """The narrower of the user's scope and the device's unit: a street clerk signed in on a grid's
    tablet pulls only that grid (a lost grid tablet never held the street), a grid member on a street
    tablet only their grid. A device of an unrelated unit gets nothing (as the outbox refuses it)."""
    if path_within(device.org_path, principal.org_path):
        return device.org_path
    if path_within(principal.org_path, device.org_path):
        return principal.org_path
    raise Forbidden("本设备登记的单位与您的管辖范围无关", field="x-device-id")


def scope_hash(principal: Principal, device: Device | None = None) -> str:
    parts = [principal.user_id, principal.role.value, principal.org_path]
    scope = feed_scope(principal, device) if device is not None else principal.org_path
    if scope != principal.org_path:
        parts.append(scope)  # the hash is unchanged wherever the device narrows nothing
    return sha256_hex(canonical_json(parts))[:16]


def encode_cursor(epoch: str, scope: str, seq: int) -> str:
    return b64url_encode(canonical_json({"v": 1, "e": epoch, "s": scope, "q": seq}))


def decode_cursor(cursor: str) -> tuple[str, str, int] | None:
    try:
        value = json.loads(b64url_decode(cursor))
        epoch, scope, seq = value["e"], value["s"], value["q"]
    except (ValueError, KeyError, TypeError):
        return None
    if value.get("v") != 1 or not isinstance(seq, int) or seq < 0:
        return None
    return str(epoch), str(scope), seq


def _reset(reason: str, message: str) -> MustReset:
    return MustReset(message, [{"field": "cursor", "message": message, "reason": reason}])


# DESIGN §4: lists show masked values. A tablet holds its whole scope and can be lost, so the feed
# carries ID-card numbers, phones and names masked; the full value stays on the node.
_MASKS: dict[str, Callable[[str], str]] = {
    **dict.fromkeys(("id_card", "id_card_no", "id_number", "id_no", "applicant_id_card"), mask_id_card),
    **dict.fromkeys(("phone", "mobile", "telephone", "contact_phone", "applicant_phone", "reporter_phone"),
                    mask_phone),
    **dict.fromkeys(("applicant_name", "reporter_name", "resident_name", "contact_name", "real_name",
                     "person_name"), mask_name),
}


def _clean(value: Any, key: str = "") -> Any:
    if isinstance(value, str) and key in _MASKS:
        return _MASKS[key](value)
    if isinstance(value, dict):
        return {k: _clean(v, k) for k, v in value.items() if not k.endswith(PERSONAL_SUFFIXES)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _clean(json.loads(value))
        except ValueError:
            return value
    return value


def _table_of(db: Database, entity: str, cache: dict[str, tuple[str, str] | None]) -> tuple[str, str] | None:
    """(table, single-column primary key) holding ``entity`` records, if there is one."""
    if entity not in cache:
        cache[entity] = None
        for name in (entity, entity + "s"):
            cols = db.execute("SELECT name, pk FROM pragma_table_info(?)", [name]).fetchall()
            pks = [c[0] for c in cols if c[1]]
            if len(pks) == 1:
                cache[entity] = (name, pks[0])
                break
    return cache[entity]


def _expand(db: Database, entity: str, ids: list[str], cache: dict[str, tuple[str, str] | None]
            ) -> dict[str, dict[str, Any]] | None:
    """Current rows by id; None when the entity has no table (it travels as a reference)."""
    projector = PROJECTORS.get(entity)
    if projector is not None:
        return {k: _clean(v) for k, v in projector(db, ids).items()}
    found = _table_of(db, entity, cache)
    if found is None:
        return None
    table, pk = found
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(f'SELECT * FROM "{table}" WHERE "{pk}" IN ({marks})', ids).fetchall()
    return {str(r[pk]): _clean(dict(r)) for r in rows}


def _catalogue_items(db: Database, codes: list[str]) -> dict[str, dict[str, Any]]:
    """The service catalogue reaches every tablet (sync.md §4.2): the current revision of each item."""
    marks = ", ".join("?" for _ in codes)
    rows = db.execute(f"SELECT code, version, name, item_type, level, status, statutory_limit_wd, promised_limit_wd,"
                      f" spec, published_at FROM catalogue_items WHERE is_current = 1 AND code IN ({marks})",
                      codes).fetchall()
    return {str(r["code"]): dict(r) for r in rows}


register_projector("catalogue_item", _catalogue_items)


def _case_events(db: Database, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Events carry their case's *current* org path, so a case that moved away takes its history along."""
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(f"SELECT e.*, c.org_path AS org_path FROM case_events e JOIN cases c ON c.id = e.case_id"
                      f" WHERE e.id IN ({marks})", ids).fetchall()
    return {str(r["id"]): dict(r) for r in rows}


register_projector("case_event", _case_events)

_IN_SCOPE = "({a}.org_path = '' OR {a}.org_path = :scope OR substr({a}.org_path, 1, :n) = :prefix)"


def _rows(db: Database, scope: str, after: int, high: int, limit: int) -> list[Any]:
    excluded = ", ".join(f"'{e}'" for e in sorted(FEED_EXCLUDED))
    sql = (
        f"SELECT c.node_seq, c.entity, c.entity_id, c.op, c.org_path FROM change_log c"
        f" WHERE c.node_seq > :after AND c.node_seq <= :high AND c.entity NOT IN ({excluded})"
        f" AND ({_IN_SCOPE.format(a='c')} OR EXISTS (SELECT 1 FROM change_log p WHERE p.entity = c.entity"
        f" AND p.entity_id = c.entity_id AND p.node_seq < c.node_seq AND {_IN_SCOPE.format(a='p')}))"
        f" ORDER BY c.node_seq LIMIT :limit"
    )
    prefix = scope.rstrip("/") + "/"
    return db.execute(sql, {"after": after, "high": high, "scope": scope, "prefix": prefix, "n": len(prefix),
                            "limit": limit}).fetchall()


def _visible(path: str, scope: str) -> bool:
    return path == "" or path_within(path, scope)


def _changes(db: Database, rows: list[Any], scope: str) -> list[dict[str, Any]]:
    latest: dict[tuple[str, str], Any] = {}
    for row in rows:  # one row per record: its latest change in this page (CouchDB _changes style)
        latest.pop((row[1], row[2]), None)
        latest[(row[1], row[2])] = row
    by_entity: dict[str, list[str]] = {}
    for entity, entity_id in latest:
        by_entity.setdefault(entity, []).append(entity_id)
    cache: dict[str, tuple[str, str] | None] = {}
    current = {entity: _expand(db, entity, ids, cache) for entity, ids in by_entity.items()}
    out = []
    for (entity, entity_id), row in latest.items():
        item: dict[str, Any] = {"seq": row[0], "type": entity, "id": entity_id, "op": "delete", "data": None}
        records = current[entity]
        data = records.get(entity_id) if records is not None else None
        if row[3] == "delete":
            item["reason"] = "deleted"
        elif not _visible(row[4], scope):
            item["reason"] = "left_scope"
        elif records is not None and data is None:
            item["reason"] = "deleted"
        elif isinstance(data, dict) and isinstance(data.get("org_path"), str) and not _visible(data["org_path"], scope):
            item["reason"] = "left_scope"  # the row was in scope then; the record has moved since
        else:
            item["op"], item["data"] = "put", data
        out.append(item)
    return out


def page(db: Database, principal: Principal, device: Device, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of changes after ``cursor`` (None: from the start), read in one snapshot."""
    db.execute("BEGIN")
    try:
        epoch = get_meta(db, "epoch") or ""
        scope = feed_scope(principal, device)
        shash = scope_hash(principal, device)
        after = 0
        if cursor is not None:
            decoded = decode_cursor(cursor)
            if decoded is None:
                raise _reset("unknown_cursor", "同步游标无法识别，请重新下载本辖区数据（待上传的数据会保留）")
            if decoded[0] != epoch:
                raise _reset("new_epoch", "节点已从备份恢复，请重新下载本辖区数据（待上传的数据会保留）")
            if decoded[1] != shash:
                raise _reset("scope_changed", "您的管辖范围已变化，请重新下载本辖区数据（待上传的数据会保留）")
            after = decoded[2]
        high = changes.high_seq(db)
        if after > high:
            raise _reset("unknown_cursor", "同步游标超出节点记录，请重新下载本辖区数据（待上传的数据会保留）")
        rows = _rows(db, scope, after, high, limit + 1)
        has_more = len(rows) > limit
        rows = rows[:limit]
        # Without more rows the cursor jumps to the snapshot's high seq: out-of-scope rows are not rescanned.
        last = rows[-1][0] if has_more else high
        out = _changes(db, rows, scope)
        wc = db.execute("SELECT MAX(node_seq) FROM submissions WHERE device_id = ?", [device.id]).fetchone()[0]
    finally:
        if db.conn.in_transaction:
            db.execute("COMMIT")
    return {"ok": True, "changes": out, "next_cursor": encode_cursor(epoch, shash, last), "has_more": has_more,
            "epoch": epoch, "checkpoint": {"high_seq": high, "write_checkpoint": wc or 0}}
