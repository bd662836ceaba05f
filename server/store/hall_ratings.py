"""The resident's side of a case: tracking by query code, 好差评 ratings, appeals and rectification.

Tracking answers the same "not found" for an unknown code and for wrong phone digits (no oracle),
and shows the case's own steps and deadlines, never a name, number or address. Ratings come only
with the receipt's token, one per stage, never edited; a bad one opens a ``rating_rectification``
case; an appeal is decided by a second reviewer, and an upheld one annotates the rating (the
rating row itself is immutable) and voids the rectification.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from schemas.hall import HallSettings, RatingRequest
from server.domain import evaluation
from server.domain.calendar import WorkCalendar
from server.domain.crypto import DataKey
from server.domain.engine import Draft, RuleViolation
from server.domain.hall import KIND, SERVICE_APPLICATION, STATES, TRANSITIONS
from server.domain.ids import uuid7
from server.domain.personal import phone_last4
from server.domain.roles import Principal, path_within
from server.domain.views import clock_at
from server.store import audit, changes, reactions, settings
from server.store import cases as case_store
from server.store.hall import token_hash
from server.store.scope import under

# What the resident may see of each step: only what was addressed to them.
_PUBLIC_DETAIL = {
    "pre_review_return": ("reasons",), "correction_notice": ("items",), "not_accept": ("reasons",),
    "book_appointment": ("slot",), "start_special": ("procedure", "notice"), "end_special": ("result",),
    "extend": ("days", "reason"), "decide": ("outcome", "reasons"), "deliver": ("method",),
}
# Which clock the resident is told about, by state.
_CURRENT_CLOCK = {
    "decided": "delivery", "accepted": "promised", "deemed_accepted": "promised", "in_approval": "promised",
    "special_procedure": "promised",
}
_RESPONSIBLE = {"receipt": ("submit",), "acceptance": ("accept", "deem_accept", "not_accept"),
                "completion": ("decide",)}


def rectification_wd(db: Database) -> int:
    return settings.load(db, SERVICE_APPLICATION, HallSettings).rectification_wd


def set_rectification_wd(db: Database, days: int, principal: Principal) -> None:
    new = settings.load(db, SERVICE_APPLICATION, HallSettings).model_copy(update={"rectification_wd": days})
    settings.save(db, SERVICE_APPLICATION, new, actor=principal.user_id, role=principal.role.value,
                  org_path=principal.org_path, action="hall.settings")


def _case_by_code(db: Database, code: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT r.case_id, r.rating_token_hash, p.id AS applicant_id, p.phone_enc FROM hall_receipts r"
        " JOIN hall_applications a ON a.case_id = r.case_id JOIN hall_applicants p ON p.id = a.applicant_id"
        " WHERE r.query_code = ?", [code.strip().upper()]
    ).fetchone()
    return dict(row) if row else None


_decoys: list[tuple[DataKey, str]] = []


def _decoy(key: DataKey) -> str:
    """An encrypted phone number no applicant has, for look-ups of unknown codes (made once per data key)."""
    for known, token in _decoys:
        if known is key:
            return token
    token = key.encrypt_field("00000000000", "hall_applicants.phone:decoy")
    _decoys[:] = [*_decoys[-3:], (key, token)]  # a handful of keys per process (tests open many nodes)
    return token


def track(db: Database, code: str, phone4: str, key: DataKey, calendar: WorkCalendar,
          now: datetime) -> dict[str, Any] | None:
    """The resident's view, or None for an unknown code *and* for wrong phone digits alike."""
    found = _case_by_code(db, code)
    if found is None:
        # An unknown code does the same decryption and comparison as wrong digits for a real code, so the
        # two cannot be told apart by timing either (hardening issue, item 10).
        found = {"phone_enc": _decoy(key), "applicant_id": "decoy"}
    phone = key.decrypt_field(found["phone_enc"], f"hall_applicants.phone:{found['applicant_id']}")
    if not hmac.compare_digest(phone_last4(phone).encode(), phone4.strip().encode()) or "case_id" not in found:
        return None
    case = case_store.case_row(db, found["case_id"])
    assert case is not None
    events = db.execute("SELECT transition, to_state, node_time, payload FROM case_events WHERE case_id = ?"
                        " ORDER BY seq", [case["id"]]).fetchall()
    timeline = []
    for transition, to_state, at, payload in events:
        data = json.loads(payload)
        t = TRANSITIONS.get(transition)
        timeline.append({"at": at, "step": t.label_zh if t else transition, "state": to_state,
                         "state_label": STATES.get(to_state, to_state),
                         "detail": {k: data[k] for k in _PUBLIC_DETAIL.get(transition, ()) if k in data}})
    clocks = {n: clock_at(c, calendar, now) for n, c in case["clocks"].items()}
    current = _CURRENT_CLOCK.get(case["state"], "acceptance")
    rated = [r[0] for r in db.execute("SELECT stage FROM hall_ratings WHERE case_id = ?", [case["id"]]).fetchall()]
    return {
        "number": case["number"], "item_name": case["data"].get("item_name"), "state": case["state"],
        "state_label": STATES.get(case["state"], case["state"]), "received_at": case["created_at"],
        "timeline": timeline,
        "due": clocks.get(current) if case["state"] not in ("not_accepted", "delivered") else None,
        "clocks": {n: clocks[n] for n in ("promised", "statutory") if n in clocks},
        "rating": {"rated": rated, "open": [s for s in evaluation.STAGES
                                            if s not in rated and evaluation.stage_open(s, case["state"]) is None]},
    }


def rate(db: Database, code: str, form: RatingRequest, *, now: datetime, node_id: str,
         calendar: WorkCalendar) -> dict[str, Any]:
    found = _case_by_code(db, code)
    if found is None or not hmac.compare_digest(found["rating_token_hash"], token_hash(form.token)):
        raise RuleViolation("forbidden", "bad_rating_token", "评价码无效：只能使用办件回执上的评价码评价", "token")
    case = case_store.case_row(db, found["case_id"])
    assert case is not None
    problem = evaluation.stage_open(form.stage, case["state"])
    if problem:
        raise RuleViolation("invalid", "stage_not_open", problem, "stage")
    for field, message in evaluation.check_indicators(form.channel, form.indicators):
        raise RuleViolation("invalid", "bad_indicator", message, field)
    if db.execute("SELECT 1 FROM hall_ratings WHERE case_id = ? AND stage = ?", [case["id"], form.stage]).fetchone():
        raise RuleViolation("conflict", "already_rated", "该环节已评价；评价提交后不能修改或删除", "stage")
    rating_id = uuid7()
    responsible = _responsible(db, case["id"], form.stage)
    rectification_id = None
    if evaluation.is_bad(form.level):
        rectification_id = reactions.open_rectification(db, case, rating_id, form.level, responsible,
                                                        rectification_wd(db), now=now, node_id=node_id,
                                                        calendar=calendar)
    db.execute(
        "INSERT INTO hall_ratings (id, case_id, stage, channel, level, indicators, comment, problems,"
        " indicator_version, responsible, org_path, rectification_case_id, rated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [rating_id, case["id"], form.stage, form.channel, form.level, json.dumps(form.indicators),
         form.comment, json.dumps(form.problems, ensure_ascii=False), evaluation.INDICATOR_VERSION, responsible,
         case["org_path"], rectification_id, now.isoformat()],
    )
    audit.append(db, actor="resident", role="resident", action="hall.rating", object_type="hall_rating",
                 object_id=rating_id, org_path=case["org_path"],
                 after={"case_id": case["id"], "stage": form.stage, "level": form.level},
                 detail={"bad": evaluation.is_bad(form.level), "rectification": rectification_id})
    changes.record(db, "hall_rating", rating_id, case["org_path"])
    return {"rating_id": rating_id, "stage": form.stage, "level": form.level,
            "level_label": evaluation.LEVELS[form.level], "rectification_case_id": rectification_id}


def _responsible(db: Database, case_id: str, stage: str) -> str:
    names = _RESPONSIBLE[stage]
    row = db.execute(
        f"SELECT actor FROM case_events WHERE case_id = ? AND transition IN ({', '.join('?' for _ in names)})"
        " ORDER BY seq DESC LIMIT 1", [case_id, *names]
    ).fetchone()
    return str(row[0]) if row else ""


# --- staff side: lists and appeals ------------------------------------------------------------


def ratings(db: Database, scope: str, *, bad_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    where, params = under("r.org_path", scope)
    sql = (
        "SELECT r.id, r.case_id, c.number, r.stage, r.channel, r.level, r.indicators, r.comment, r.problems,"
        " r.responsible, r.rectification_case_id, r.rated_at, r.org_path,"
        " EXISTS (SELECT 1 FROM hall_appeals x WHERE x.rating_id = r.id AND x.status = 'upheld') AS excluded,"
        " (SELECT status FROM hall_appeals x WHERE x.rating_id = r.id ORDER BY created_at DESC LIMIT 1)"
        " AS appeal_status FROM hall_ratings r JOIN cases c ON c.id = r.case_id"
        f" WHERE {where}"
    )
    if bad_only:
        sql += " AND r.level <= 2"
    sql += " ORDER BY r.rated_at DESC LIMIT ?"
    out = []
    for r in db.execute(sql, [*params, limit]).fetchall():
        row = dict(r)
        row.update(indicators=json.loads(row["indicators"]), problems=json.loads(row["problems"]),
                   excluded=bool(row["excluded"]), level_label=evaluation.LEVELS[row["level"]])
        out.append(row)
    return out


def _rating(db: Database, rating_id: str, principal: Principal) -> dict[str, Any]:
    row = db.execute("SELECT * FROM hall_ratings WHERE id = ?", [rating_id]).fetchone()
    if row is None or not path_within(row["org_path"], principal.org_path):
        raise RuleViolation("not_found", "rating_not_found", "未找到该评价", "rating_id")
    return dict(row)


def appeal(db: Database, rating_id: str, principal: Principal, reason: str, now: datetime) -> dict[str, Any]:
    rating = _rating(db, rating_id, principal)
    if db.execute("SELECT 1 FROM hall_appeals WHERE rating_id = ? AND status = 'pending'", [rating_id]).fetchone():
        raise RuleViolation("conflict", "appeal_pending", "该评价已有待复核的申诉", "rating_id")
    appeal_id = uuid7()
    db.execute("INSERT INTO hall_appeals (id, rating_id, appellant_id, appellant_role, reason, created_at)"
               " VALUES (?,?,?,?,?,?)", [appeal_id, rating_id, principal.user_id, principal.role.value, reason,
                                         now.isoformat()])
    audit.append(db, actor=principal.user_id, role=principal.role.value, action="hall.rating_appeal",
                 object_type="hall_appeal", object_id=appeal_id, org_path=rating["org_path"],
                 after={"rating_id": rating_id, "reason": reason})
    changes.record(db, "hall_appeal", appeal_id, rating["org_path"])
    return {"appeal_id": appeal_id, "status": "pending"}


def review_appeal(db: Database, appeal_id: str, principal: Principal, decision: str, reason: str, *,
                  now: datetime, node_id: str, calendar: WorkCalendar) -> dict[str, Any]:
    row = db.execute("SELECT * FROM hall_appeals WHERE id = ?", [appeal_id]).fetchone()
    if row is None:
        raise RuleViolation("not_found", "appeal_not_found", "未找到该申诉", "appeal_id")
    appeal_row = dict(row)
    rating = _rating(db, appeal_row["rating_id"], principal)
    if appeal_row["status"] != "pending":
        raise RuleViolation("conflict", "appeal_decided", "该申诉已复核", "appeal_id")
    problem = evaluation.appeal_reviewer_problem(appeal_row["appellant_id"], principal.user_id)
    if problem:
        raise RuleViolation("forbidden", "same_reviewer", problem, "reviewer")
    db.execute("UPDATE hall_appeals SET status = ?, reviewer_id = ?, review_reason = ?, reviewed_at = ?"
               " WHERE id = ?", [decision, principal.user_id, reason, now.isoformat(), appeal_id])
    rect = rating["rectification_case_id"]
    if decision == "upheld" and rect:
        state = db.execute("SELECT state FROM cases WHERE id = ?", [rect]).fetchone()[0]
        if state in ("open", "fed_back"):
            draft = Draft("void", {"appeal_id": appeal_id, "reason": reason}, principal, now, uuid7())
            case_store.transition(db, rect, draft, node_id=node_id, calendar=calendar)
    audit.append(db, actor=principal.user_id, role=principal.role.value, action="hall.rating_appeal_review",
                 object_type="hall_appeal", object_id=appeal_id, org_path=rating["org_path"],
                 after={"decision": decision, "reason": reason}, detail={"rating_id": rating["id"]})
    changes.record(db, "hall_appeal", appeal_id, rating["org_path"])
    return {"appeal_id": appeal_id, "status": decision, "rating_id": rating["id"]}


__all__ = ["KIND", "appeal", "rate", "ratings", "rectification_wd", "review_appeal", "set_rectification_wd",
           "track"]
