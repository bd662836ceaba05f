"""The service_application intake handler: created records, field-named rejections, nothing half-written."""

from __future__ import annotations

from typing import Any

import pytest

from server.config import Settings
from server.node import data_key
from server.store import hall, intake
from server.store.db import Store
from tests.hall.helpers import (
    DISABILITY_CARD,
    EMPLOYMENT_REG,
    ID_CARD,
    MINIMUM_LIVING,
    PHONE,
    POSTER_PERMIT,
    form,
    submit,
    submitted,
)


def counts(store: Store) -> dict[str, int]:
    tables = ["cases", "case_events", "hall_applicants", "hall_applications", "hall_materials", "hall_receipts"]
    return {t: store.query(f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in tables}


def test_handler_is_registered_for_the_envelope_kind(store: Store) -> None:
    assert intake.handler_for("service_application") is hall.handle_application


def test_window_application_creates_case_receipt_and_encrypted_applicant(store: Store, settings: Settings) -> None:
    record = submitted(store, settings, "clerk")
    assert set(record) >= {"case_id", "number", "query_code", "receipt_token", "state", "due_at"}
    assert record["state"] == "submitted" and len(record["query_code"]) == 8
    case = store.query("SELECT * FROM cases WHERE id = ?", [record["case_id"]])[0]
    assert case["number"].startswith("440106006000-")  # <street code (石牌街)>-<yyyymmdd>-<n>
    row = store.query("SELECT * FROM hall_applicants WHERE case_id = ?", [record["case_id"]])[0]
    raw = str(row)
    assert ID_CARD not in raw and PHONE not in raw and "张三丰" not in raw  # encrypted at rest
    assert row["id_card_masked"] == ID_CARD[:4] + "*" * 10 + ID_CARD[-4:] and row["phone_masked"] == "138****5678"
    assert row["name_masked"] == "张*丰"
    for table in ("case_events", "audit_log", "cases"):  # no personal data in the log, the audit or the cache
        dump = str(store.query(f"SELECT * FROM {table}"))
        assert ID_CARD not in dump and PHONE not in dump and "张三丰" not in dump
    key = data_key(settings)
    assert hall.cases_of_applicant(store.reader(), key, id_card=ID_CARD) == [record["case_id"]]
    assert hall.cases_of_applicant(store.reader(), key, phone=PHONE) == [record["case_id"]]
    clear = store.read(lambda db: hall.applicant_clear(db, record["case_id"], key))
    assert clear == {"name": "张三丰", "id_card": ID_CARD, "phone": PHONE, "address": "天河区石牌街道某路 1 号"}


def test_promised_and_statutory_clocks_start_side_by_side_from_the_items_limits(store: Store,
                                                                               settings: Settings) -> None:
    record = submitted(store, settings, "clerk")
    clocks = store.read(lambda db: hall.case_store.case_row(db, record["case_id"]))["clocks"]  # type: ignore[index]
    assert {n: clocks[n]["duration"] for n in clocks} == {"acceptance": 5, "promised": 20, "statutory": 30}
    assert "第三十二条" in clocks["acceptance"]["explanation"]
    quick = submitted(store, settings, "clerk", EMPLOYMENT_REG)  # 即办: no promised clock, statutory 1 day
    clocks = store.read(lambda db: hall.case_store.case_row(db, quick["case_id"]))["clocks"]  # type: ignore[index]
    assert set(clocks) == {"acceptance", "statutory"} and clocks["statutory"]["duration"] == 1


def test_community_worker_receives_on_the_applicants_behalf(store: Store, settings: Settings) -> None:
    record = submitted(store, settings, "community1")
    event = store.query("SELECT * FROM case_events WHERE case_id = ?", [record["case_id"]])[0]
    app = store.query("SELECT * FROM hall_applications WHERE case_id = ?", [record["case_id"]])[0]
    assert event["role"] == "community_worker" and event["on_behalf_of"] == app["applicant_id"]
    assert app["channel"] == "community_proxy"
    case = store.query("SELECT org_path FROM cases WHERE id = ?", [record["case_id"]])[0]
    assert case["org_path"].count("/") == 2  # lives at the community, visible to the street above it


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing name", {"applicant": {"name": ""}}, "invalid", "payload.applicant.name"),
    ("unknown field", {"colour": "red"}, "invalid", "payload.colour"),
    ("id checksum", {"applicant": {"id_card": ID_CARD[:-1] + ("0" if ID_CARD[-1] != "0" else "1")}}, "invalid",
     "payload.applicant.id_card"),
    ("mobile", {"applicant": {"phone": "12345"}}, "invalid", "payload.applicant.phone"),
    ("unknown item", {"item_code": "NOPE-1"}, "invalid", "payload.item_code"),
    ("material not in guide", {"materials": [{"material": "结婚证", "file_name": "a.pdf", "sha256": "b" * 64,
                                              "size": 10, "mime": "application/pdf"}]}, "invalid",
     "payload.materials.0.material"),
    ("too large", {"materials": [{"material": "户口簿", "file_name": "a.pdf", "sha256": "b" * 64,
                                  "size": 11 * 1024 * 1024, "mime": "application/pdf"}]}, "invalid",
     "payload.materials.0.size"),
    ("wrong type", {"materials": [{"material": "户口簿", "file_name": "a.exe", "sha256": "b" * 64, "size": 10,
                                   "mime": "application/x-msdownload"}]}, "invalid", "payload.materials.0.mime"),
    ("bad hash", {"materials": [{"material": "户口簿", "file_name": "a.pdf", "sha256": "xyz", "size": 10,
                                 "mime": "application/pdf"}]}, "invalid", "payload.materials.0.sha256"),
]


@pytest.mark.parametrize(("label", "change", "status", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_rejected_naming_the_field_and_writes_nothing(store: Store, settings: Settings, label: str,
                                                                   change: dict[str, Any], status: str,
                                                                   field: str) -> None:
    before = counts(store)
    result = submit(store, settings, "clerk", form(**change))
    assert result.status == status
    assert field in [e["field"] for e in result.errors], result.errors
    assert counts(store) == before


def test_item_outside_the_windows_tier_is_forbidden(store: Store, settings: Settings) -> None:
    before = counts(store)
    result = submit(store, settings, "community1", form(DISABILITY_CARD))  # street windows only
    assert result.status == "forbidden" and result.errors[0]["field"] == "payload.item_code"
    result = submit(store, settings, "clerk", form(POSTER_PERMIT))  # district hall only
    assert result.status == "forbidden"
    assert counts(store) == before


def test_a_reused_case_id_is_invalid_and_the_first_case_stays(store: Store, settings: Settings) -> None:
    first = submitted(store, settings, "clerk")
    result = submit(store, settings, "clerk", form(case_id=first["case_id"]))
    assert result.status == "invalid" and result.errors[0]["field"] == "payload.case_id"
    assert store.query("SELECT COUNT(*) AS n FROM cases")[0]["n"] == 1


def test_client_chosen_case_id_is_used(store: Store, settings: Settings) -> None:
    from server.domain.ids import uuid7

    case_id = uuid7()
    assert submitted(store, settings, "clerk", case_id=case_id)["case_id"] == case_id


def test_item_code_of_a_minimum_living_application_is_the_implementation_code() -> None:
    assert form()["item_code"] == MINIMUM_LIVING


def test_running_node_supplies_its_data_key_to_any_outbox(store: Store, settings: Settings) -> None:
    from server.domain.ids import now_china
    from server.store import users
    from server.store.calendars import current_calendar
    from server.store.intake import IntakeContext

    user = store.read(lambda db: users.get_user_by_name(db, "clerk"))
    assert user is not None

    def write(db):  # type: ignore[no-untyped-def]
        ctx = IntakeContext(node_id=settings.node_id, principal=user.principal(), received_at=now_china(),
                            calendar=current_calendar(db))  # no services: the started app configured them
        return hall.handle_application(db, form(), ctx)

    assert store.write(write).status == "created"
