"""Up-sync content of a services-hall application, with the applicant readable by the district.

At the street the applicant's name, ID-card number, phone and address are encrypted with the node's
own data key (DESIGN.md §4), which never leaves the node. Sent as they are, the district would
receive tokens it cannot open. So this expander decrypts them into an ``applicant`` object — a
personal field (``sync.records.PERSONAL_FIELDS``), so the up-batch seals it to the district's key
(DESIGN.md §6 rule 5); the clear part of the row carries only routing data and masked values.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from server.domain.crypto import DataKey
from server.store.hall import applicant_clear
from sync.records import Expander, register_expander


def hall_application_expander(key: DataKey) -> Expander:
    def expand(db: Database, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            cur = db.execute(
                "SELECT a.case_id, a.item_code, a.item_version, a.item_name, a.level, a.channel, a.received_by,"
                " a.on_behalf_of, a.created_at, p.name_masked, p.id_card_masked, p.phone_masked"
                f" FROM hall_applications a JOIN hall_applicants p ON p.id = a.applicant_id WHERE a.case_id IN ({marks})",
                chunk,
            )
            names = [d[0] for d in cur.description]
            for raw in cur.fetchall():
                row = dict(zip(names, raw, strict=True))
                row["id"] = row["case_id"]
                row["applicant"] = applicant_clear(db, row["case_id"], key)
                out[row["case_id"]] = row
        return out

    return expand


def register(key: DataKey) -> None:
    """Called when the street side of a sync is assembled (the data key is only known then)."""
    register_expander("hall_application", hall_application_expander(key))
