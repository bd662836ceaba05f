"""Services-hall applications on disk: the ``service_application`` intake handler and its records.

The one write path (DESIGN.md §6): a window's tablet or desk sends a ``service_application``
envelope to ``POST /sync/v1/outbox``; the outbox calls ``handle_application`` inside its write
transaction. The handler validates everything first and returns ``invalid``/``forbidden`` with
field errors; only then does it write — the case (its creating event, audit entry and change-log
row), the applicant (encrypted, with blind indexes), the materials and the receipt — all inside
one SAVEPOINT, so nothing is ever half-written.

The case's own data holds no personal data: only the applicant's row id and masked name.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from schemas.hall import ServiceApplicationPayload
from schemas.reference import ServiceItemSpec
from server.domain.canonical import canonical_json
from server.domain.crypto import DataKey
from server.domain.engine import Draft
from server.domain.hall import SERVICE_APPLICATION
from server.domain.ids import query_code, uuid7
from server.domain.personal import mask_id_card, mask_name, mask_phone, validate_id_card, validate_mobile
from server.domain.roles import Principal, Tier
from server.errors import field_errors_from_pydantic
from server.store import cases as case_store
from server.store import changes, intake, org
from server.store.hall_catalogue import current_item, current_spec
from server.store.intake import IntakeContext, IntakeResult, IntakeStatus

DEFAULT_MAX_ATTACHMENT = 10 * 1024 * 1024
# The running node's data key, set at start-up (``configure``), for callers of the handler whose
# IntakeContext.services does not carry "data_key"; an explicit one always wins.
_NODE_SERVICES: dict[str, Any] = {}


def configure(**services: Any) -> None:
    """Node-wide defaults for the intake handler: ``data_key``, ``max_attachment_bytes``."""
    _NODE_SERVICES.update(services)


def _service(ctx: IntakeContext, name: str, default: Any = None) -> Any:
    return ctx.services.get(name, _NODE_SERVICES.get(name, default))


def _aad(applicant_id: str, column: str) -> str:
    return f"hall_applicants.{column}:{applicant_id}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _pydantic_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return field_errors_from_pydantic(exc, "payload")


def _district_path(db: Database, spec: ServiceItemSpec, home_path: str) -> str:
    """The implementing department's path (区民政局 …), else the district itself."""
    row = db.execute(
        "SELECT path FROM org_units WHERE kind = 'department' AND json_extract(data, '$.full_name') = ?",
        [spec.implementing_body],
    ).fetchone()
    return str(row[0]) if row else home_path.split("/")[0]


def originals_required(spec: ServiceItemSpec) -> list[str]:
    # Government-issued materials are fetched by data sharing: never asked for again (domain.md §1.7).
    return [m.name for m in spec.materials if m.required and m.original_or_copy != "copy"
            and not m.issued_by_government]


def _check(db: Database, form: ServiceApplicationPayload, ctx: IntakeContext) -> tuple[
        list[dict[str, Any]], IntakeStatus, tuple[ServiceItemSpec, int] | None, dict[str, str]]:
    """Every rule that can be checked before writing. Returns (errors, error status, item, clean values)."""
    errors: list[dict[str, Any]] = []
    clean: dict[str, str] = {}
    try:
        clean["id_card"] = validate_id_card(form.applicant.id_card, today=ctx.received_at.date())
    except ValueError as exc:
        errors.append({"field": "payload.applicant.id_card", "message": str(exc)})
    try:
        clean["phone"] = validate_mobile(form.applicant.phone)
    except ValueError as exc:
        errors.append({"field": "payload.applicant.phone", "message": str(exc)})
    found = current_spec(db, form.item_code)
    if found is None:
        item = current_item(db, form.item_code)
        message = (f"「{item['name']}」已停止办理，不再受理新的申请" if item is not None
                   else f"未知的事项编码：{form.item_code}")
        errors.append({"field": "payload.item_code", "message": message})
        return errors, "invalid", None, clean
    spec = found[0]
    max_bytes = int(_service(ctx, "max_attachment_bytes", DEFAULT_MAX_ATTACHMENT))
    names = {m.name for m in spec.materials}
    for i, m in enumerate(form.materials):
        if m.material not in names:
            errors.append({"field": f"payload.materials.{i}.material",
                           "message": f"「{spec.name}」的办事指南中没有材料「{m.material}」"})
        if m.size > max_bytes:
            errors.append({"field": f"payload.materials.{i}.size",
                           "message": f"文件超过 {max_bytes // (1024 * 1024)} MB 上限"})
    if form.case_id and db.execute("SELECT 1 FROM cases WHERE id = ?", [form.case_id]).fetchone():
        errors.append({"field": "payload.case_id", "message": "该办件 ID 已被使用"})
    if errors:
        return errors, "invalid", found, clean
    tier = ctx.principal.tier
    if tier.value not in spec.accepted_at:
        where = "社区服务站" if tier is Tier.COMMUNITY else "本窗口"
        return ([{"field": "payload.item_code", "message": f"「{spec.name}」不能在{where}受理"}], "forbidden",
                found, clean)
    return [], "created", found, clean


def handle_application(db: Database, payload: dict[str, Any], ctx: IntakeContext) -> IntakeResult:
    """Intake handler for ``service_application`` envelopes (registered below)."""
    try:
        form = ServiceApplicationPayload.model_validate(payload)
    except ValidationError as exc:
        return IntakeResult("invalid", _pydantic_errors(exc))
    errors, status, found, clean = _check(db, form, ctx)
    if errors:
        return IntakeResult(status, errors)
    assert found is not None
    data_key: DataKey | None = _service(ctx, "data_key")
    if data_key is None:
        raise RuntimeError("the intake handler needs the node's data key (services['data_key'])")
    return intake.attempt(db, lambda: _write(db, form, found, clean, ctx, data_key))


def _write(db: Database, form: ServiceApplicationPayload, found: tuple[ServiceItemSpec, int],
           clean: dict[str, str], ctx: IntakeContext, key: DataKey) -> dict[str, Any]:
    spec, item_version = found
    principal = ctx.principal
    now = ctx.received_at
    case_id = form.case_id or uuid7()
    applicant_id = uuid7()
    home_path = principal.org_path
    community = principal.tier is Tier.COMMUNITY
    a = form.applicant
    draft_payload: dict[str, Any] = {
        "item_code": spec.implementation_code, "item_name": spec.name, "item_version": item_version,
        "item_level": spec.level, "item_type": spec.item_type, "item_accepted_at": list(spec.accepted_at),
        "promised_limit_wd": spec.promised_limit_wd, "statutory_limit_wd": spec.statutory_limit_wd,
        # the statutory clock shows the item's 设定依据; only declared special steps may pause it (art. 45)
        "item_legal_basis": list(spec.legal_basis), "special_steps": [s.model_dump() for s in spec.special_steps],
        "originals_required": originals_required(spec), "home_path": home_path,
        "district_path": _district_path(db, spec, home_path) if spec.level == "district" else "",
        "applicant_ref": applicant_id, "applicant_name_masked": mask_name(a.name),
        "channel": "community_proxy" if community else "window",
        "materials": [{"material": m.material, "file_name": m.file_name, "sha256": m.sha256} for m in form.materials],
        "note": form.note,
    }
    draft = Draft(
        transition="submit", payload=draft_payload, principal=principal, node_time=now, event_id=uuid7(),
        # 代办: the community worker acts for the applicant (domain.md §1.7, acting_for)
        on_behalf_of=applicant_id if community else None, device_time=ctx.device_time, device_id=ctx.device_id,
        # received offline on a tablet whose clock the sync checked: the 5-WD acceptance period (行政许可法
        # art. 32) runs from when the application was received, not from the upload
        device_clock_trusted=ctx.device_clock_trusted, device_offset_ms=ctx.device_offset_ms,
    )
    view, number = case_store.create_case(db, SERVICE_APPLICATION, draft, org_path=home_path, node_id=ctx.node_id,
                                          calendar=ctx.calendar, case_id=case_id)
    db.execute(
        "INSERT INTO hall_applicants (id, case_id, name_enc, id_card_enc, phone_enc, address_enc, id_card_index,"
        " phone_index, name_masked, id_card_masked, phone_masked, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        [applicant_id, case_id, key.encrypt_field(a.name, _aad(applicant_id, "name")),
         key.encrypt_field(clean["id_card"], _aad(applicant_id, "id_card")),
         key.encrypt_field(clean["phone"], _aad(applicant_id, "phone")),
         key.encrypt_field(a.address, _aad(applicant_id, "address")),
         key.blind_index(clean["id_card"], "id_card"), key.blind_index(clean["phone"], "phone"),
         mask_name(a.name), mask_id_card(clean["id_card"]), mask_phone(clean["phone"]), now.isoformat()],
    )
    db.execute(
        "INSERT INTO hall_applications (case_id, item_code, item_version, item_name, level, channel, received_by,"
        " on_behalf_of, applicant_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [case_id, spec.implementation_code, item_version, spec.name, spec.level, draft_payload["channel"],
         principal.user_id, draft.on_behalf_of, applicant_id, now.isoformat()],
    )
    for m in form.materials:
        db.execute(
            "INSERT INTO hall_materials (id, case_id, material, file_name, sha256, size, mime, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [uuid7(), case_id, m.material, m.file_name, m.sha256, m.size, m.mime, now.isoformat()],
        )
    code, token = _issue_receipt(db, case_id, number, spec, ctx, key)
    changes.record(db, "hall_application", case_id, view.org_path)
    due_at = db.execute("SELECT due_at FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    return {"case_id": case_id, "number": number, "query_code": code, "receipt_token": token,
            "state": view.state, "due_at": due_at, "item_name": spec.name}


def _issue_receipt(db: Database, case_id: str, number: str, spec: ServiceItemSpec, ctx: IntakeContext,
                   key: DataKey) -> tuple[str, str]:
    while True:  # 31^8 codes: a collision is rare, and the UNIQUE index is the final word
        code = query_code()
        if db.execute("SELECT 1 FROM hall_receipts WHERE query_code = ?", [code]).fetchone() is None:
            break
    token = secrets.token_urlsafe(24)
    body = {"case_id": case_id, "number": number, "query_code": code, "item_code": spec.implementation_code,
            "item_name": spec.name, "received_at": ctx.received_at.isoformat(), "node_id": ctx.node_id}
    db.execute(
        "INSERT INTO hall_receipts (case_id, query_code, rating_token_hash, rating_token_enc, issued_at, node_id,"
        " signed_body) VALUES (?,?,?,?,?,?,?)",
        [case_id, code, token_hash(token), key.encrypt_field(token, f"hall_receipts.rating_token:{case_id}"),
         ctx.received_at.isoformat(), ctx.node_id, canonical_json(body).decode("utf-8")],
    )
    return code, token


# --- reads --------------------------------------------------------------------------------


def application_extra(db: Database, case: Mapping[str, Any], principal: Principal) -> dict[str, Any]:
    """The hall's part of the generic case screen: the application (item, masked applicant, materials)."""
    return {"application": application(db, case["id"])}


def application(db: Database, case_id: str) -> dict[str, Any] | None:
    """The hall's view of one application: item, masked applicant, materials with verification."""
    row = db.execute(
        "SELECT a.*, p.name_masked, p.id_card_masked, p.phone_masked FROM hall_applications a"
        " JOIN hall_applicants p ON p.id = a.applicant_id WHERE a.case_id = ?", [case_id]
    ).fetchone()
    if row is None:
        return None
    app = dict(row)
    case = case_store.case_row(db, case_id) or {}
    verified = set(case.get("data", {}).get("verified") or [])
    materials = [dict(r) for r in db.execute(
        "SELECT material, file_name, sha256, size, mime FROM hall_materials WHERE case_id = ? ORDER BY file_name",
        [case_id]).fetchall()]
    for m in materials:
        m["original_verified"] = m["material"] in verified
    receipt = db.execute("SELECT query_code, issued_at FROM hall_receipts WHERE case_id = ?", [case_id]).fetchone()
    return {
        "case_id": case_id, "item_code": app["item_code"], "item_name": app["item_name"],
        "item_version": app["item_version"], "level": app["level"], "channel": app["channel"],
        "received_by": app["received_by"], "on_behalf_of": app["on_behalf_of"],
        "applicant": {"name": app["name_masked"], "id_card": app["id_card_masked"], "phone": app["phone_masked"]},
        "materials": materials, "verified_materials": sorted(verified),
        "query_code": receipt["query_code"] if receipt else None,
    }


def applicant_clear(db: Database, case_id: str, key: DataKey) -> dict[str, str] | None:
    """The applicant's data in clear, for the staff who handle the case (the caller audits the view)."""
    row = db.execute("SELECT * FROM hall_applicants WHERE case_id = ?", [case_id]).fetchone()
    if row is None:
        return None
    r = dict(row)
    return {c: key.decrypt_field(r[f"{c}_enc"], _aad(r["id"], c)) for c in ("name", "id_card", "phone", "address")}


def cases_of_applicant(db: Database, key: DataKey, *, id_card: str = "", phone: str = "") -> list[str]:
    """Case ids of an applicant found by blind index (no clear value is ever compared in SQL)."""
    if id_card:
        rows = db.execute("SELECT case_id FROM hall_applicants WHERE id_card_index = ?",
                          [key.blind_index(id_card, "id_card")]).fetchall()
    else:
        rows = db.execute("SELECT case_id FROM hall_applicants WHERE phone_index = ?",
                          [key.blind_index(phone, "phone")]).fetchall()
    return [r[0] for r in rows]


def receipt(db: Database, case_id: str, key: DataKey) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM hall_receipts WHERE case_id = ?", [case_id]).fetchone()
    if row is None:
        return None
    r = dict(row)
    r["rating_token"] = key.decrypt_field(r.pop("rating_token_enc"), f"hall_receipts.rating_token:{case_id}")
    return r


def unit_name(db: Database, org_path: str) -> str:
    code = org_path.rstrip("/").split("/")[-1]
    unit = org.get_unit(db, code)
    return str(unit["name"]) if unit else code


